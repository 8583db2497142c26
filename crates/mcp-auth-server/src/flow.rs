//! Browser state between `GET /authorize` and the consent form's POST, and login sessions.
//!
//! All of it lives in the [`Store`] with an expiry, so that any replica sharing the store can
//! continue a flow another one started (no sticky sessions):
//!
//! 1. A *transaction* is one validated authorization request waiting for the user. Its id is
//!    in the form; it is bound to the browser by a random cookie (only its hash is kept) and to
//!    a CSRF token, and lives at most ten minutes.
//! 2. A *session* remembers who signed in on this browser (cookie, twelve hours), so a second
//!    authorization with remembered consent needs no page at all.
//! 3. A *pending upstream sign-in* is an approved transaction whose browser went to the
//!    upstream provider: keyed by its `state`, bound to the browser by a cookie set on the
//!    redirect (only its hash is kept), taken (single use) at the callback, and lives at most
//!    ten minutes.
//!
//! Each record is found by the SHA-256 of the browser's secret (transaction id, session
//! cookie, `state`) and sealed with AES-256-GCM under a key derived from that same secret: the
//! store holds neither the secret nor anything it could read (the upstream PKCE verifier and
//! nonce included).

use std::sync::Arc;

use mcp_auth_core::ScopeSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::login::User;
use crate::store::{ClientSource, FlowKind, FlowRecord, Store, StoreError, TokenHash};
use crate::upstream::UpstreamRequest;
use crate::vault::VaultKey;

/// How long a transaction waits for the user.
pub(crate) const TRANSACTION_TTL: u64 = 600;
/// How long a login session lasts.
pub(crate) const SESSION_TTL: u64 = 12 * 3600;

/// A validated authorization request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AuthRequest {
    pub(crate) client_id: String,
    pub(crate) client_name: String,
    #[serde(with = "source_name")]
    pub(crate) client_source: ClientSource,
    /// Where the response goes (the exact string the request named, or the single registered one).
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_in_request: bool,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) resource: String,
    pub(crate) scope: ScopeSet,
}

/// A transaction waiting for the user.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Transaction {
    pub(crate) request: AuthRequest,
    pub(crate) csrf: String,
    #[serde(with = "hash_bytes")]
    pub(crate) browser: TokenHash,
    pub(crate) expires_at: u64,
}

/// An approved transaction waiting for the upstream provider's callback.
#[derive(Debug)]
pub(crate) struct PendingUpstream {
    pub(crate) request: AuthRequest,
    pub(crate) upstream: UpstreamRequest,
    /// Hash of the binding cookie set on the redirect to the provider.
    pub(crate) browser: TokenHash,
    pub(crate) expires_at: u64,
}

/// [`PendingUpstream`] as sealed.
#[derive(Serialize, Deserialize)]
struct PendingUpstreamValue {
    request: AuthRequest,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
    #[serde(with = "hash_bytes")]
    browser: TokenHash,
    expires_at: u64,
}

/// A session as sealed.
#[derive(Serialize, Deserialize)]
struct SessionValue {
    subject: String,
    display_name: Option<String>,
}

mod source_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::store::ClientSource;

    pub(super) fn serialize<S: Serializer>(source: &ClientSource, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(source.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ClientSource, D::Error> {
        let name = <&str>::deserialize(d)?;
        ClientSource::from_name(name).ok_or_else(|| D::Error::custom("unknown client source"))
    }
}

mod hash_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::store::TokenHash;

    pub(super) fn serialize<S: Serializer>(hash: &TokenHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(hash.as_bytes())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenHash, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| D::Error::custom("a hash is 32 bytes"))?;
        Ok(TokenHash::from_bytes(bytes))
    }
}

/// Short-lived browser state, in the store.
#[derive(Debug)]
pub(crate) struct Flow {
    store: Arc<dyn Store>,
}

impl Flow {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Store a transaction under `id`.
    pub(crate) async fn insert_transaction(
        &self,
        id: &str,
        tx: &Transaction,
        now: u64,
    ) -> Result<(), StoreError> {
        self.put(FlowKind::Transaction, id, None, tx, tx.expires_at, now)
            .await
    }

    /// The live transaction `id`, if any.
    pub(crate) async fn transaction(
        &self,
        id: &str,
        now: u64,
    ) -> Result<Option<Transaction>, StoreError> {
        let record = self
            .store
            .get_flow(FlowKind::Transaction, &TokenHash::of(id), now)
            .await?;
        Ok(record.and_then(|r| unseal(FlowKind::Transaction, id, &r)))
    }

    /// Remove the transaction `id` and return it if it was live (it has been decided; of
    /// concurrent calls, at most one gets it).
    pub(crate) async fn take_transaction(
        &self,
        id: &str,
        now: u64,
    ) -> Result<Option<Transaction>, StoreError> {
        let record = self
            .store
            .take_flow(FlowKind::Transaction, &TokenHash::of(id), now)
            .await?;
        Ok(record.and_then(|r| unseal(FlowKind::Transaction, id, &r)))
    }

    /// Start a session for `user` under its cookie value.
    pub(crate) async fn insert_session(
        &self,
        cookie: &str,
        user: &User,
        now: u64,
    ) -> Result<(), StoreError> {
        let value = SessionValue {
            subject: user.subject.clone(),
            display_name: user.display_name.clone(),
        };
        self.put(
            FlowKind::Session,
            cookie,
            Some(user.subject.clone()),
            &value,
            now.saturating_add(SESSION_TTL),
            now,
        )
        .await
    }

    /// The user of a live session.
    pub(crate) async fn session_user(
        &self,
        cookie: &str,
        now: u64,
    ) -> Result<Option<User>, StoreError> {
        let record = self
            .store
            .get_flow(FlowKind::Session, &TokenHash::of(cookie), now)
            .await?;
        Ok(record
            .and_then(|r| unseal::<SessionValue>(FlowKind::Session, cookie, &r))
            .map(|v| User {
                subject: v.subject,
                display_name: v.display_name,
            }))
    }

    /// End every session of `subject` (signed out, or its upstream tokens deleted: the next
    /// authorization must sign the user in again, upstream included).
    pub(crate) async fn end_sessions(&self, subject: &str) -> Result<(), StoreError> {
        self.store
            .delete_flows_of(FlowKind::Session, subject)
            .await
            .map(|_| ())
    }

    /// Keep a pending upstream sign-in under its `state`.
    pub(crate) async fn insert_upstream(
        &self,
        pending: &PendingUpstream,
        now: u64,
    ) -> Result<(), StoreError> {
        let value = PendingUpstreamValue {
            request: pending.request.clone(),
            nonce: pending.upstream.nonce().to_owned(),
            code_verifier: pending.upstream.code_verifier().to_owned(),
            redirect_uri: pending.upstream.redirect_uri().to_owned(),
            browser: pending.browser,
            expires_at: pending.expires_at,
        };
        let sealed = self.put(
            FlowKind::PendingUpstream,
            pending.upstream.state(),
            None,
            &value,
            pending.expires_at,
            now,
        );
        // The value holds the verifier and nonce in the clear until sealed: drop it at once.
        let result = sealed.await;
        drop(zeroize::Zeroizing::new(value.code_verifier));
        drop(zeroize::Zeroizing::new(value.nonce));
        result
    }

    /// Take the pending sign-in of this `state` (single use: it is gone afterwards, even when
    /// it has expired, which answers `None`).
    pub(crate) async fn take_upstream(
        &self,
        state: &str,
        now: u64,
    ) -> Result<Option<PendingUpstream>, StoreError> {
        let record = self
            .store
            .take_flow(FlowKind::PendingUpstream, &TokenHash::of(state), now)
            .await?;
        Ok(record
            .and_then(|r| unseal::<PendingUpstreamValue>(FlowKind::PendingUpstream, state, &r))
            .map(|v| PendingUpstream {
                request: v.request,
                upstream: UpstreamRequest::from_parts(
                    state.to_owned(),
                    v.nonce,
                    v.code_verifier,
                    v.redirect_uri,
                ),
                browser: v.browser,
                expires_at: v.expires_at,
            }))
    }

    async fn put<T: Serialize>(
        &self,
        kind: FlowKind,
        secret: &str,
        subject: Option<String>,
        value: &T,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let sealed = seal(kind, secret, value)
            .ok_or_else(|| StoreError::new("cannot seal a browser flow"))?;
        let record = FlowRecord {
            kind,
            key: TokenHash::of(secret),
            subject,
            value: sealed,
            expires_at,
        };
        self.store.put_flow(record, now).await
    }
}

/// The sealing key of a record: derived from the browser's secret, which the store never sees
/// (it keeps the secret's plain SHA-256 as the record's key; this derivation is another hash).
fn key_of(kind: FlowKind, secret: &str) -> Option<VaultKey> {
    let derived: [u8; 32] = Sha256::new()
        .chain_update(b"mcp-auth-server flow seal v1\0")
        .chain_update(kind.as_str().as_bytes())
        .chain_update(b"\0")
        .chain_update(secret.as_bytes())
        .finalize()
        .into();
    VaultKey::from_bytes(derived).ok()
}

/// JSON, then AES-256-GCM: `nonce || ciphertext || tag`, bound to the record's kind.
fn seal<T: Serialize>(kind: FlowKind, secret: &str, value: &T) -> Option<Vec<u8>> {
    let key = key_of(kind, secret)?;
    let mut in_out = zeroize::Zeroizing::new(serde_json::to_vec(value).ok()?);
    let nonce = key.seal(kind.as_str().as_bytes(), &mut in_out)?;
    let mut sealed = Vec::with_capacity(nonce.len() + in_out.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    Some(sealed)
}

/// Open what [`seal`] made; `None` for a record that does not open or parse (altered, or
/// written by another version): the flow is then treated as gone.
fn unseal<T: for<'de> Deserialize<'de>>(
    kind: FlowKind,
    secret: &str,
    record: &FlowRecord,
) -> Option<T> {
    let key = key_of(kind, secret)?;
    let nonce_len = aws_lc_rs::aead::NONCE_LEN;
    if record.value.len() < nonce_len {
        return None;
    }
    let (nonce, sealed) = record.value.split_at(nonce_len);
    let mut in_out = zeroize::Zeroizing::new(sealed.to_vec());
    let plain = key.open(nonce, kind.as_str().as_bytes(), &mut in_out)?;
    serde_json::from_slice(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn request() -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            client_name: "C".into(),
            client_source: ClientSource::Dynamic,
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_in_request: true,
            state: Some("s".into()),
            code_challenge: "x".into(),
            resource: "https://r.example/mcp".into(),
            scope: ScopeSet::default(),
        }
    }

    #[tokio::test]
    async fn records_are_sealed_and_found_only_with_the_secret() {
        let store = Arc::new(MemoryStore::new());
        let flow = Flow::new(store.clone());
        let tx = Transaction {
            request: request(),
            csrf: "csrf-secret-value".into(),
            browser: TokenHash::of("b"),
            expires_at: 1_000,
        };
        flow.insert_transaction("tx-id", &tx, 10).await.unwrap();
        let raw = store
            .get_flow(FlowKind::Transaction, &TokenHash::of("tx-id"), 10)
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&raw.value);
        assert!(!text.contains("csrf-secret-value") && !text.contains("127.0.0.1"));
        assert!(flow.transaction("other", 10).await.unwrap().is_none());
        // A record copied under another key does not open.
        let mut copy = raw.clone();
        copy.key = TokenHash::of("other");
        store.put_flow(copy, 10).await.unwrap();
        assert!(flow.transaction("other", 10).await.unwrap().is_none());
        let got = flow.take_transaction("tx-id", 10).await.unwrap().unwrap();
        assert_eq!(got.csrf, "csrf-secret-value");
        assert!(flow.take_transaction("tx-id", 10).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn sessions_end_by_subject_and_expire() {
        let flow = Flow::new(Arc::new(MemoryStore::new()));
        flow.insert_session("cookie", &User::new("alice"), 100)
            .await
            .unwrap();
        let user = flow.session_user("cookie", 200).await.unwrap().unwrap();
        assert_eq!(user.subject, "alice");
        assert!(
            flow.session_user("cookie", 100 + SESSION_TTL)
                .await
                .unwrap()
                .is_none()
        );
        flow.end_sessions("alice").await.unwrap();
        assert!(flow.session_user("cookie", 200).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_pending_upstream_sign_in_is_taken_once() {
        let flow = Flow::new(Arc::new(MemoryStore::new()));
        let upstream = UpstreamRequest::generate("https://as.example/login/callback").unwrap();
        let state = upstream.state().to_owned();
        let verifier = upstream.code_verifier().to_owned();
        let pending = PendingUpstream {
            request: request(),
            upstream,
            browser: TokenHash::of("b"),
            expires_at: 700,
        };
        flow.insert_upstream(&pending, 100).await.unwrap();
        let got = flow.take_upstream(&state, 100).await.unwrap().unwrap();
        assert_eq!(got.upstream.code_verifier(), verifier);
        assert_eq!(got.upstream.state(), state);
        assert!(flow.take_upstream(&state, 100).await.unwrap().is_none());
    }
}
