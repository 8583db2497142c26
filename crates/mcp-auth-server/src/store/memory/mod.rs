//! [`MemoryStore`]: every record in process memory, behind one lock.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use self::tables::State;
use super::records::{foreign_refresh, merge_scopes};
use super::{
    ClientRecord, ClientSource, CodeRecord, CodeTake, ConsentRecord, FlowKind, FlowRecord,
    GrantRecord, LeaseTake, RefreshLease, RefreshRecord, Revoked, Rotation, Store, StoreError,
    StoreFuture, StoredKey, TokenHash, UpstreamTokenRecord, Window,
};

mod tables;

/// Bounds on what an unauthenticated caller can make this store hold: flow records of each
/// kind and rate-limit windows. A full table first drops what expired, then refuses.
const MAX_FLOWS_PER_KIND: usize = 10_000;
const MAX_WINDOWS: usize = 10_000;

/// An in-memory store (tests and single-process demos; forgets everything on restart).
///
/// Clones share the same records. Every operation takes one lock for its whole duration, so
/// [`take_code`](Store::take_code) and [`rotate_refresh`](Store::rotate_refresh) are atomic; the
/// lock is never held across an `.await`.
///
/// `Debug` prints record counts only.
///
/// # Example
///
/// ```
/// use mcp_auth_server::store::{CodeRecord, CodeTake, MemoryStore, Store, TokenHash};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
/// let store = MemoryStore::new();
/// let mut code = CodeRecord::default();
/// code.hash = TokenHash::of("the-code");
/// code.client_id = "client-1".into();
/// code.expires_at = 1_700_000_060;
/// store.put_code(code).await?;
///
/// let hash = TokenHash::of("the-code");
/// assert!(matches!(store.take_code(&hash).await?, CodeTake::Fresh(_)));
/// assert!(matches!(store.take_code(&hash).await?, CodeTake::Replayed(_)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<RwLock<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while the lock is held cannot leave a half-applied change behind (every mutation
    // is checked before it starts), so a poisoned lock is still consistent: keep serving.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.read();
        f.debug_struct("MemoryStore")
            .field("clients", &state.clients.len())
            .field("codes", &state.codes.len())
            .field("grants", &state.grants.len())
            .field("refresh_tokens", &state.refresh.len())
            .field("revoked_access_tokens", &state.revoked_jtis.len())
            .field("consents", &state.consents.len())
            .field("keys", &state.keys.len())
            .field(
                "upstream_tokens",
                &state
                    .upstream_tokens
                    .values()
                    .map(HashMap::len)
                    .sum::<usize>(),
            )
            .finish()
    }
}

fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

impl Store for MemoryStore {
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()> {
        let mut state = self.write();
        state.forget_registration_key(&client.client_id);
        state.clients.insert(client.client_id.clone(), client);
        ready(Ok(()))
    }

    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ClientRecord>> {
        ready(Ok(self.read().clients.get(client_id).cloned()))
    }

    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool> {
        let mut state = self.write();
        state.forget_registration_key(client_id);
        ready(Ok(state.clients.remove(client_id).is_some()))
    }

    fn client_authorized<'a>(&'a self, client_id: &'a str, now: u64) -> StoreFuture<'a, ()> {
        if let Some(client) = self.write().clients.get_mut(client_id) {
            client.last_authorized_at = Some(now);
        }
        ready(Ok(()))
    }

    fn purge_unused_public_clients(&self, unused_since: u64, now: u64) -> StoreFuture<'_, u64> {
        let mut state = self.write();
        let in_use: HashSet<&str> = state
            .grants
            .values()
            .filter(|grant| grant.is_active(now))
            .map(|grant| grant.client_id.as_str())
            .collect();
        let unused: Vec<String> = state
            .clients
            .values()
            .filter(|client| {
                client.source == ClientSource::Dynamic
                    && client.is_public()
                    && client.last_authorized_at.unwrap_or(client.issued_at) <= unused_since
                    && !in_use.contains(client.client_id.as_str())
            })
            .map(|client| client.client_id.clone())
            .collect();
        for client_id in &unused {
            state.forget_registration_key(client_id);
            state.clients.remove(client_id);
        }
        ready(Ok(u64::try_from(unused.len()).unwrap_or(u64::MAX)))
    }

    fn find_public_client<'a>(
        &'a self,
        registration_key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>> {
        let state = self.read();
        let found = state
            .public_clients
            .get(registration_key)
            .and_then(|id| state.clients.get(id))
            .cloned();
        ready(Ok(found))
    }

    fn put_public_client(
        &self,
        client: ClientRecord,
        registration_key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)> {
        let mut state = self.write();
        if let Some(existing) = state
            .public_clients
            .get(&registration_key)
            .and_then(|id| state.clients.get(id))
        {
            return ready(Ok((existing.clone(), false)));
        }
        if state.clients.contains_key(&client.client_id) {
            return ready(Err(StoreError::new("client already stored")));
        }
        state
            .public_clients
            .insert(registration_key, client.client_id.clone());
        state
            .clients
            .insert(client.client_id.clone(), client.clone());
        ready(Ok((client, true)))
    }

    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()> {
        let result = match self.write().codes.entry(code.hash) {
            // Replacing would reset a consumed code to fresh.
            Entry::Occupied(_) => Err(StoreError::new("authorization code already stored")),
            Entry::Vacant(slot) => {
                slot.insert((code, false));
                Ok(())
            }
        };
        ready(result)
    }

    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake> {
        let mut state = self.write();
        let take = match state.codes.get_mut(hash) {
            None => CodeTake::Unknown,
            Some((code, used)) if *used => CodeTake::Replayed(code.clone()),
            Some((code, used)) => {
                *used = true;
                CodeTake::Fresh(code.clone())
            }
        };
        ready(Ok(take))
    }

    fn create_grant(
        &self,
        grant: GrantRecord,
        refresh: Option<RefreshRecord>,
    ) -> StoreFuture<'_, ()> {
        let mut state = self.write();
        let result = (|| {
            if refresh
                .as_ref()
                .is_some_and(|r| r.grant_id != grant.grant_id)
            {
                return Err(foreign_refresh());
            }
            if state.grants.contains_key(&grant.grant_id) {
                return Err(StoreError::new("grant already stored"));
            }
            if refresh
                .as_ref()
                .is_some_and(|r| state.refresh.contains_key(&r.hash))
            {
                return Err(StoreError::new("refresh token already stored"));
            }
            state.grants.insert(grant.grant_id.clone(), grant);
            if let Some(refresh) = refresh {
                state.insert_refresh(refresh)?;
            }
            Ok(())
        })();
        ready(result)
    }

    fn get_grant<'a>(&'a self, grant_id: &'a str) -> StoreFuture<'a, Option<GrantRecord>> {
        ready(Ok(self.read().grants.get(grant_id).cloned()))
    }

    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>> {
        let state = self.read();
        let found = state.refresh.get(hash).and_then(|token| {
            let grant = state.grants.get(&token.grant_id)?;
            Some((token.clone(), grant.clone()))
        });
        ready(Ok(found))
    }

    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation> {
        let mut state = self.write();
        ready(state.rotate(old, new, now, grace))
    }

    fn revoke_grant<'a>(&'a self, grant_id: &'a str, now: u64) -> StoreFuture<'a, bool> {
        ready(Ok(self.write().revoke_family(grant_id, now)))
    }

    fn revoke_access_token<'a>(
        &'a self,
        jti: &'a str,
        expires_at: u64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.write();
        let entry = state
            .revoked_jtis
            .entry(jti.to_owned())
            .or_insert((expires_at, now));
        entry.0 = entry.0.max(expires_at);
        ready(Ok(()))
    }

    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.read().revoked_jtis.contains_key(jti)))
    }

    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>> {
        let state = self.read();
        let tokens = state
            .revoked_jtis
            .iter()
            .filter(|(_, (expires_at, revoked_at))| *expires_at > now && *revoked_at >= since)
            .map(|(jti, (expires_at, _))| Revoked::AccessToken {
                jti: jti.clone(),
                expires_at: *expires_at,
            });
        let grants = state
            .grants
            .values()
            .filter_map(|grant| match grant.revoked_at {
                Some(revoked_at) if revoked_at >= since => Some(Revoked::Grant {
                    grant_id: grant.grant_id.clone(),
                    revoked_at,
                }),
                _ => None,
            });
        ready(Ok(tokens.chain(grants).collect()))
    }

    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()> {
        let mut state = self.write();
        let key = (
            consent.subject.clone(),
            consent.client_id.clone(),
            consent.resource.clone(),
        );
        let existing = state.consents.get(&key).map_or("", |c| c.scope.as_str());
        let scope = merge_scopes(existing, &consent.scope);
        state
            .consents
            .insert(key, ConsentRecord { scope, ..consent });
        ready(Ok(()))
    }

    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>> {
        let key = (
            subject.to_owned(),
            client_id.to_owned(),
            resource.to_owned(),
        );
        ready(Ok(self.read().consents.get(&key).cloned()))
    }

    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()> {
        self.write().keys.insert(key.kid.clone(), key);
        ready(Ok(()))
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        let mut keys: Vec<StoredKey> = self.read().keys.values().cloned().collect();
        keys.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.kid.cmp(&b.kid))
        });
        ready(Ok(keys))
    }

    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.write().keys.remove(kid).is_some()))
    }

    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>> {
        let state = self.read();
        let mut grants: Vec<GrantRecord> = state
            .grants
            .values()
            .filter(|grant| grant.subject == subject && grant.is_active(now))
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        ready(Ok(grants))
    }

    fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> StoreFuture<'_, ()> {
        let record = UpstreamTokenRecord {
            refresh_lease: None,
            ..record
        };
        self.write()
            .upstream_tokens
            .entry(record.subject.clone())
            .or_default()
            .insert(record.upstream.clone(), record);
        ready(Ok(()))
    }

    fn get_upstream_tokens<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
    ) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
        let state = self.read();
        let found = state
            .upstream_tokens
            .get(subject)
            .and_then(|by_upstream| by_upstream.get(upstream))
            .cloned();
        ready(Ok(found))
    }

    fn delete_upstream_tokens<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64> {
        let removed = self
            .write()
            .upstream_tokens
            .remove(subject)
            .map_or(0, |by_upstream| by_upstream.len());
        ready(Ok(u64::try_from(removed).unwrap_or(u64::MAX)))
    }

    fn lease_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        lease: RefreshLease,
        now: u64,
    ) -> StoreFuture<'a, LeaseTake> {
        let mut state = self.write();
        let take = match state
            .upstream_tokens
            .get_mut(subject)
            .and_then(|by_upstream| by_upstream.get_mut(upstream))
        {
            None => LeaseTake::Missing,
            Some(record) => match &record.refresh_lease {
                Some(held) if held.until > now => LeaseTake::Busy { until: held.until },
                _ => {
                    record.refresh_lease = Some(lease);
                    LeaseTake::Granted(record.clone())
                }
            },
        };
        ready(Ok(take))
    }

    fn finish_upstream_refresh<'a>(
        &'a self,
        record: UpstreamTokenRecord,
        holder: &'a str,
    ) -> StoreFuture<'a, bool> {
        let mut state = self.write();
        let done = match state
            .upstream_tokens
            .get_mut(&record.subject)
            .and_then(|by_upstream| by_upstream.get_mut(&record.upstream))
        {
            Some(stored)
                if stored
                    .refresh_lease
                    .as_ref()
                    .is_some_and(|l| l.holder == holder) =>
            {
                *stored = UpstreamTokenRecord {
                    refresh_lease: None,
                    ..record
                };
                true
            }
            _ => false,
        };
        ready(Ok(done))
    }

    fn release_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        holder: &'a str,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.write();
        if let Some(stored) = state
            .upstream_tokens
            .get_mut(subject)
            .and_then(|by_upstream| by_upstream.get_mut(upstream))
            && stored
                .refresh_lease
                .as_ref()
                .is_some_and(|l| l.holder == holder)
        {
            stored.refresh_lease = None;
        }
        ready(Ok(()))
    }

    fn put_flow(&self, record: FlowRecord, now: u64) -> StoreFuture<'_, ()> {
        let mut state = self.write();
        let kind = record.kind;
        let count = |state: &State| state.flows.keys().filter(|(k, _)| *k == kind).count();
        if !state.flows.contains_key(&(kind, record.key)) && count(&state) >= MAX_FLOWS_PER_KIND {
            state.flows.retain(|_, r| r.expires_at > now);
            if count(&state) >= MAX_FLOWS_PER_KIND {
                return ready(Err(StoreError::new("too many pending browser flows")));
            }
        }
        state.flows.insert((kind, record.key), record);
        ready(Ok(()))
    }

    fn get_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        let state = self.read();
        ready(Ok(state
            .flows
            .get(&(kind, *key))
            .filter(|r| r.expires_at > now)
            .cloned()))
    }

    fn take_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        let mut state = self.write();
        ready(Ok(state
            .flows
            .remove(&(kind, *key))
            .filter(|r| r.expires_at > now)))
    }

    fn delete_flows_of<'a>(&'a self, kind: FlowKind, subject: &'a str) -> StoreFuture<'a, u64> {
        let mut state = self.write();
        let before = state.flows.len();
        state
            .flows
            .retain(|(k, _), r| *k != kind || r.subject.as_deref() != Some(subject));
        ready(Ok((before - state.flows.len()) as u64))
    }

    fn count_event<'a>(&'a self, key: &'a str, window: u64, now: u64) -> StoreFuture<'a, Window> {
        let mut state = self.write();
        if !state.windows.contains_key(key) && state.windows.len() >= MAX_WINDOWS {
            state.windows.retain(|_, w| w.ends_at > now);
            if state.windows.len() >= MAX_WINDOWS {
                return ready(Err(StoreError::new("too many rate-limit windows")));
            }
        }
        let entry = state.windows.entry(key.to_owned()).or_default();
        if entry.ends_at <= now {
            *entry = Window {
                count: 0,
                ends_at: now.saturating_add(window),
            };
        }
        entry.count = entry.count.saturating_add(1);
        ready(Ok(*entry))
    }

    fn get_window<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Window>> {
        let state = self.read();
        ready(Ok(state
            .windows
            .get(key)
            .filter(|w| w.ends_at > now)
            .copied()))
    }

    fn clear_window<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.write().windows.remove(key);
        ready(Ok(()))
    }

    fn try_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        until: u64,
        now: u64,
    ) -> StoreFuture<'a, bool> {
        let mut state = self.write();
        let granted = match state.leases.get(name) {
            Some((current, ends)) => current == holder || *ends <= now,
            None => true,
        };
        if granted {
            state
                .leases
                .insert(name.to_owned(), (holder.to_owned(), until));
        }
        ready(Ok(granted))
    }

    fn release_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        let mut state = self.write();
        if state.leases.get(name).is_some_and(|(h, _)| h == holder) {
            state.leases.remove(name);
        }
        ready(Ok(()))
    }

    fn purge_expired(&self, now: u64) -> StoreFuture<'_, u64> {
        let mut state = self.write();
        let mut removed: usize = 0;

        let codes_before = state.codes.len();
        state.codes.retain(|_, (code, _)| code.expires_at > now);
        removed += codes_before - state.codes.len();

        let expired_grants: Vec<String> = state
            .grants
            .values()
            .filter(|grant| grant.expires_at <= now)
            .map(|grant| grant.grant_id.clone())
            .collect();
        let mut doomed_tokens: HashSet<TokenHash> = state
            .refresh
            .values()
            .filter(|token| token.expires_at <= now)
            .map(|token| token.hash)
            .collect();
        for grant_id in &expired_grants {
            if let Some(family) = state.families.get(grant_id) {
                doomed_tokens.extend(family.iter().copied());
            }
        }
        for hash in &doomed_tokens {
            if state.remove_refresh(hash) {
                removed += 1;
            }
        }
        for grant_id in &expired_grants {
            if state.grants.remove(grant_id).is_some() {
                removed += 1;
            }
            state.families.remove(grant_id);
        }

        let jtis_before = state.revoked_jtis.len();
        state
            .revoked_jtis
            .retain(|_, (expires_at, _)| *expires_at > now);
        removed += jtis_before - state.revoked_jtis.len();

        let flows_before = state.flows.len();
        state.flows.retain(|_, r| r.expires_at > now);
        removed += flows_before - state.flows.len();
        let windows_before = state.windows.len();
        state.windows.retain(|_, w| w.ends_at > now);
        removed += windows_before - state.windows.len();
        let leases_before = state.leases.len();
        state.leases.retain(|_, (_, until)| *until > now);
        removed += leases_before - state.leases.len();

        ready(Ok(u64::try_from(removed).unwrap_or(u64::MAX)))
    }
}
