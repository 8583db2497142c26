//! The upstream token vault: each user's upstream tokens, encrypted at rest, refreshed when
//! they expire (one refresh in flight per user), deleted when the user's grant is revoked.
//!
//! When the authorization server signs users in through another provider (an OpenID Connect
//! or OAuth 2.0 login), that provider hands out tokens for its own API. The [`Vault`] keeps them
//! so that tools can call that API **as the user**, while the MCP client's access token never
//! leaves the MCP server and the upstream token never reaches the MCP client (SPEC AS-53,
//! RS-29).
//!
//! The rules:
//!
//! 1. **Encrypted at rest.** Every record is AES-256-GCM under the deployment's [`VaultKey`],
//!    with a random 96-bit nonce and the subject and upstream as additional authenticated data
//!    (a record moved to another user does not decrypt). The store holds ciphertext only
//!    ([`UpstreamTokenRecord`]); tokens never appear in a log or a `Debug` string.
//! 2. **Key rotation.** The current key encrypts; [`old_key`](VaultBuilder::old_key)s still
//!    decrypt. Each record names the id of the key that made it; a refresh re-encrypts with the
//!    current key.
//! 3. **Fresh tokens.** [`Vault::access_token`] returns the access token while it has more than
//!    the [`refresh_margin`](VaultBuilder::refresh_margin) left (default 30 s); otherwise it
//!    refreshes it with the upstream refresh token through the upstream's
//!    [`UpstreamClient`]. However many calls wait for the same user and upstream, one refresh
//!    is in flight: in the process (the callers share one task) and across processes sharing
//!    the store (a lease in the store, [`Store::lease_upstream_refresh`]).
//! 4. **Refused refresh.** When the upstream refuses the refresh token
//!    ([`RefreshError::Rejected`], `invalid_grant`), or no refresh token is left, every grant
//!    the user holds at this server is revoked (so resource servers in the process refuse the
//!    user's MCP access tokens at once, see [`Revocations`](crate::Revocations)), the tokens
//!    are deleted, and the caller gets [`VaultError::SignInRequired`]: the MCP client's next
//!    request answers 401 and its refresh token is refused, so it signs the user in again.
//! 5. **Revocation.** Revoking an MCP grant (`/revoke`, refresh-token reuse, a replayed code)
//!    or [`signing the user out`](crate::AuthorizationServer::sign_out) deletes the user's
//!    upstream tokens.
//!
//! The vault keeps the records it has read or written in memory (still encrypted), so that
//! the hot path, a cached unexpired token, costs one decryption and no store round trip. Every
//! change made through this server goes through that cache; another process sharing the store
//! is seen when a refresh is due.
//!
//! # Tools
//!
//! A handler reads the vault and the request's subject with the [`UpstreamAccess`] extractor
//! (the resource server's bearer layer leaves the subject in the request extensions as an
//! [`mcp_auth_core::Subject`]; add the vault with `axum::Extension`). An rmcp tool gets the same
//! from its request context: [`UpstreamAccess::from_parts`] on the `http::request::Parts` rmcp
//! puts there, or `vault.access_token(auth.subject(), upstream)` with a [`Vault`] it holds.
//! [`VaultError`] answers as an HTTP response, so `?` works in an axum handler.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::Secret;
//! use mcp_auth_server::AuthorizationServer;
//! use mcp_auth_server::login::LoginFuture;
//! use mcp_auth_server::upstream::{RefreshError, UpstreamClient, UpstreamTokens};
//! use mcp_auth_server::vault::{Vault, VaultKey};
//!
//! /// An upstream whose tokens never expire (a real one calls its token endpoint).
//! #[derive(Debug)]
//! struct Example;
//!
//! impl UpstreamClient for Example {
//!     fn upstream_id(&self) -> &str {
//!         "https://idp.example.com"
//!     }
//!     fn refresh<'a>(
//!         &'a self,
//!         _refresh_token: &'a Secret,
//!     ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
//!         Box::pin(async { Err(RefreshError::Rejected) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The deployment supplies the key (e.g. MCP_AUTH_VAULT_KEY); a fresh one for the example.
//! let key = VaultKey::generate()?;
//! let server = AuthorizationServer::builder("https://mcp.example.com")
//!     .resource("https://mcp.example.com/mcp")
//!     .vault(Vault::builder(key).upstream(Example))
//!     .build()
//!     .await?;
//! let vault = server.vault().expect("configured");
//!
//! // The login stores what the upstream issued at sign-in...
//! vault
//!     .put("alice", "https://idp.example.com", UpstreamTokens::new("upstream-at"))
//!     .await?;
//! // ...and a tool gets it back for the user its request speaks for.
//! let token = vault.access_token("alice", "https://idp.example.com").await?;
//! assert_eq!(token.expose(), "upstream-at");
//! // The store holds ciphertext only.
//! let record = server.store().get_upstream_tokens("alice", "https://idp.example.com").await?;
//! assert!(!String::from_utf8_lossy(&record.expect("stored").ciphertext).contains("upstream-at"));
//! # Ok(())
//! # }
//! ```

mod extract;
mod key;
mod plaintext;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use mcp_auth_core::{Clock, Secret};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::store::{LeaseTake, RefreshLease, Store, StoreError, UpstreamTokenRecord};
use crate::upstream::{RefreshError, UpstreamClient, UpstreamTokens};

use self::plaintext::{Fields, Plaintext};

pub use self::extract::{UpstreamAccess, UpstreamAccessRejection};
pub use self::key::{VAULT_KEY_ENV, VaultKey, VaultKeyError};

/// Records kept in memory per upstream; past it, one is dropped for each one added.
const CACHE_CAPACITY: usize = 65_536;
/// How often a caller waiting for another process's refresh looks at the store again.
const LEASE_POLL: Duration = Duration::from_millis(50);

/// Why the vault could not hand out a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The user has no upstream tokens (never signed in upstream, or they were deleted): the
    /// user must sign in again.
    #[error("no upstream tokens for this user")]
    NotFound,
    /// The upstream refused the refresh (or no refresh token was left): the user's grants at
    /// this server are revoked and their upstream tokens deleted; the MCP client must sign the
    /// user in again.
    #[error("the upstream provider refused the refresh: the user must sign in again")]
    SignInRequired,
    /// The upstream could not be reached, or the refresh took too long; the tokens are kept
    /// and a later call tries again.
    #[error("the upstream provider is unavailable")]
    Unavailable,
    /// No [`UpstreamClient`] with this id was given to the [`VaultBuilder`].
    #[error("no upstream with the id {0:?} is configured")]
    UnknownUpstream(String),
    /// A stored record does not decrypt with any configured key (a key was removed, or the
    /// record was altered).
    #[error("the stored upstream tokens cannot be decrypted with the configured keys")]
    Undecryptable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The upstream token vault. Cheap to clone.
///
/// Built with [`Vault::builder`] and handed to
/// [`AuthorizationServerBuilder::vault`](crate::AuthorizationServerBuilder::vault), which binds it
/// to the server's store, clock and revocation; get it back with
/// [`AuthorizationServer::vault`](crate::AuthorizationServer::vault). See the
/// [module docs](self) for the rules and an example.
#[derive(Clone)]
pub struct Vault {
    shared: Arc<Shared>,
}

struct Shared {
    current: VaultKey,
    old: Vec<VaultKey>,
    upstreams: HashMap<String, Arc<dyn UpstreamClient>>,
    margin: u64,
    refresh_timeout: Duration,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The server, to revoke a user's grants (it owns this vault, hence weak).
    server: Weak<dyn SignOut>,
    /// The records as last read or written (still encrypted).
    cache: RwLock<Cache>,
    /// (subject, upstream) → the refresh in flight.
    flights: Mutex<HashMap<(String, String), Flight>>,
}

/// The vault's records in memory.
#[derive(Default)]
struct Cache {
    /// Bumped by every deletion: a record read from or written to the store before a deletion
    /// is not cached after it (it could bring deleted tokens back into memory).
    epoch: u64,
    /// Upstream → subject → record.
    records: HashMap<String, HashMap<String, Arc<UpstreamTokenRecord>>>,
}

/// Where the callers of one refresh wait for its [`Outcome`].
type Flight = watch::Receiver<Option<Outcome>>;

/// What a refresh task tells the callers waiting for it.
type Outcome = Result<Arc<UpstreamTokenRecord>, Failure>;

/// A [`VaultError`] that can be shared between the callers of one refresh.
#[derive(Clone, Debug)]
enum Failure {
    NotFound,
    SignInRequired,
    Unavailable,
    Undecryptable,
    Store(String),
}

impl From<Failure> for VaultError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotFound => Self::NotFound,
            Failure::SignInRequired => Self::SignInRequired,
            Failure::Unavailable => Self::Unavailable,
            Failure::Undecryptable => Self::Undecryptable,
            Failure::Store(message) => Self::Store(StoreError::new(message)),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error.to_string())
    }
}

impl From<VaultError> for Failure {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::NotFound => Self::NotFound,
            VaultError::SignInRequired => Self::SignInRequired,
            VaultError::Unavailable => Self::Unavailable,
            VaultError::Undecryptable | VaultError::UnknownUpstream(_) => Self::Undecryptable,
            VaultError::Store(error) => Self::Store(error.to_string()),
        }
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut upstreams: Vec<&str> = self.shared.upstreams.keys().map(String::as_str).collect();
        upstreams.sort_unstable();
        f.debug_struct("Vault")
            .field("key_id", &self.shared.current.id())
            .field("old_keys", &self.shared.old.len())
            .field("upstreams", &upstreams)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Start configuring a vault whose records `key` encrypts.
    pub fn builder(key: VaultKey) -> VaultBuilder {
        VaultBuilder {
            key,
            old: Vec::new(),
            upstreams: Vec::new(),
            margin: Duration::from_secs(30),
            refresh_timeout: Duration::from_secs(30),
        }
    }

    /// Keep a user's tokens from an upstream (replacing what was kept), encrypted with the
    /// current key. The login calls this after a sign-in.
    ///
    /// # Errors
    /// [`VaultError::UnknownUpstream`] when no [`UpstreamClient`] has this id,
    /// [`VaultError::Store`] when the store fails.
    pub async fn put(
        &self,
        subject: &str,
        upstream: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), VaultError> {
        self.client(upstream)?;
        let plain = Plaintext::encode(&Fields::of(&tokens));
        let record = Arc::new(self.seal(subject, upstream, plain)?);
        let epoch = self.cache_epoch();
        self.shared
            .store
            .put_upstream_tokens((*record).clone())
            .await?;
        self.cache_put(record, epoch);
        #[cfg(feature = "tracing")]
        tracing::debug!(sub = %subject, upstream = %upstream, "upstream tokens stored");
        Ok(())
    }

    /// A fresh upstream access token for this user: the stored one while it has more than the
    /// refresh margin left, else a refreshed one (one refresh in flight per user and upstream,
    /// however many calls wait for it). Send it to the upstream API only.
    ///
    /// # Errors
    /// [`VaultError::NotFound`] when the user has no tokens from this upstream,
    /// [`VaultError::SignInRequired`] when the upstream refused the refresh (the user's grants
    /// are revoked), [`VaultError::Unavailable`] when the upstream could not refresh now,
    /// [`VaultError::UnknownUpstream`], [`VaultError::Undecryptable`], [`VaultError::Store`].
    pub async fn access_token(&self, subject: &str, upstream: &str) -> Result<Secret, VaultError> {
        let client = self.client(upstream)?;
        let record = match self.cached(subject, upstream) {
            Some(record) => record,
            None => {
                let epoch = self.cache_epoch();
                let stored = self
                    .shared
                    .store
                    .get_upstream_tokens(subject, upstream)
                    .await?
                    .ok_or(VaultError::NotFound)?;
                let stored = Arc::new(stored);
                self.cache_put(stored.clone(), epoch);
                stored
            }
        };
        {
            let plain = self.open(&record)?;
            let fields = plain.fields().ok_or(VaultError::Undecryptable)?;
            if fields.is_fresh(self.now(), self.shared.margin) {
                return Ok(Secret::new(fields.access));
            }
        }
        let record = self.refresh(subject, upstream, client).await?;
        let plain = self.open(&record)?;
        let fields = plain.fields().ok_or(VaultError::Undecryptable)?;
        Ok(Secret::new(fields.access))
    }

    /// Delete the user's tokens from every upstream (the user signed out, or their grant was
    /// revoked). Their MCP grants are not touched: see
    /// [`AuthorizationServer::sign_out`](crate::AuthorizationServer::sign_out) for both.
    ///
    /// # Errors
    /// [`VaultError::Store`] when the store fails.
    pub async fn forget(&self, subject: &str) -> Result<(), VaultError> {
        self.delete(subject).await?;
        Ok(())
    }

    /// Delete a user's records, in the store and in memory.
    pub(crate) async fn delete(&self, subject: &str) -> Result<u64, StoreError> {
        let removed = self.shared.store.delete_upstream_tokens(subject).await?;
        let mut cache = self
            .shared
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        cache.epoch = cache.epoch.wrapping_add(1);
        for by_subject in cache.records.values_mut() {
            by_subject.remove(subject);
        }
        drop(cache);
        #[cfg(feature = "tracing")]
        if removed > 0 {
            tracing::info!(sub = %subject, records = removed, "upstream tokens deleted");
        }
        Ok(removed)
    }

    fn client(&self, upstream: &str) -> Result<Arc<dyn UpstreamClient>, VaultError> {
        self.shared
            .upstreams
            .get(upstream)
            .cloned()
            .ok_or_else(|| VaultError::UnknownUpstream(upstream.to_owned()))
    }

    fn now(&self) -> u64 {
        self.shared.clock.unix_seconds()
    }

    // ----- the in-memory records -----

    fn cached(&self, subject: &str, upstream: &str) -> Option<Arc<UpstreamTokenRecord>> {
        self.shared
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .get(upstream)?
            .get(subject)
            .cloned()
    }

    /// The deletion epoch, read before a store operation whose result will be cached.
    fn cache_epoch(&self) -> u64 {
        self.shared
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch
    }

    /// Cache a record read or written in the store since `epoch`, unless a deletion came
    /// between.
    fn cache_put(&self, record: Arc<UpstreamTokenRecord>, epoch: u64) {
        let mut cache = self
            .shared
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.epoch != epoch {
            return;
        }
        let by_subject = cache.records.entry(record.upstream.clone()).or_default();
        if by_subject.len() >= CACHE_CAPACITY
            && !by_subject.contains_key(&record.subject)
            && let Some(evicted) = by_subject.keys().next().cloned()
        {
            by_subject.remove(&evicted);
        }
        by_subject.insert(record.subject.clone(), record);
    }

    fn cache_remove(&self, subject: &str, upstream: &str) {
        let mut cache = self
            .shared
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(by_subject) = cache.records.get_mut(upstream) {
            by_subject.remove(subject);
        }
    }

    // ----- encryption -----

    fn seal(
        &self,
        subject: &str,
        upstream: &str,
        plain: Plaintext,
    ) -> Result<UpstreamTokenRecord, VaultError> {
        let mut buffer = plain.0;
        let key = &self.shared.current;
        let nonce = key
            .seal(&key::aad(subject, upstream), &mut buffer)
            .ok_or_else(|| StoreError::new("cannot encrypt upstream tokens"))?;
        Ok(UpstreamTokenRecord {
            subject: subject.to_owned(),
            upstream: upstream.to_owned(),
            key_id: key.id().to_owned(),
            nonce: nonce.to_vec(),
            // Sealed in place: the buffer now holds ciphertext + tag.
            ciphertext: std::mem::take(&mut *buffer),
            updated_at: self.now(),
            refresh_lease: None,
        })
    }

    fn open(&self, record: &UpstreamTokenRecord) -> Result<Plaintext, VaultError> {
        let shared = &self.shared;
        let key = if shared.current.id() == record.key_id {
            &shared.current
        } else {
            shared
                .old
                .iter()
                .find(|k| k.id() == record.key_id)
                .ok_or(VaultError::Undecryptable)?
        };
        let mut buffer = Zeroizing::new(record.ciphertext.clone());
        let aad = key::aad(&record.subject, &record.upstream);
        let len = key
            .open(&record.nonce, &aad, &mut buffer)
            .ok_or(VaultError::Undecryptable)?
            .len();
        buffer.truncate(len);
        Ok(Plaintext(buffer))
    }

    /// Whether a record's access token is fresh at this moment.
    fn is_fresh(&self, record: &UpstreamTokenRecord) -> Result<bool, VaultError> {
        let plain = self.open(record)?;
        let fields = plain.fields().ok_or(VaultError::Undecryptable)?;
        Ok(fields.is_fresh(self.now(), self.shared.margin))
    }

    // ----- refresh -----

    /// Wait for the one refresh of this user's tokens, starting it if none is in flight.
    async fn refresh(
        &self,
        subject: &str,
        upstream: &str,
        client: Arc<dyn UpstreamClient>,
    ) -> Result<Arc<UpstreamTokenRecord>, VaultError> {
        let mut receiver = {
            let mut flights = self
                .shared
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let id = (subject.to_owned(), upstream.to_owned());
            if let Some(receiver) = flights.get(&id) {
                receiver.clone()
            } else {
                let (sender, receiver) = watch::channel(None);
                flights.insert(id.clone(), receiver.clone());
                // A task of its own: a caller that goes away (a client disconnects) must not
                // cut a refresh short after the upstream rotated its refresh token.
                let vault = self.clone();
                tokio::spawn(async move {
                    let (subject, upstream) = &id;
                    let outcome = vault.run_refresh(subject, upstream, client.as_ref()).await;
                    vault
                        .shared
                        .flights
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                    sender.send_replace(Some(outcome));
                });
                receiver
            }
        };
        // The task bounds itself; this bounds the wait in case it never reports.
        let waited = tokio::time::timeout(
            self.shared.refresh_timeout.saturating_mul(2),
            receiver.wait_for(Option::is_some),
        )
        .await;
        match waited {
            Ok(Ok(outcome)) => match outcome.as_ref() {
                Some(Ok(record)) => Ok(record.clone()),
                Some(Err(failure)) => Err(failure.clone().into()),
                None => Err(VaultError::Unavailable),
            },
            Ok(Err(_)) | Err(_) => Err(VaultError::Unavailable),
        }
    }

    /// The refresh itself, run once per flight: take the store's lease (or wait for the
    /// process that holds it), refresh with the upstream, store the result.
    async fn run_refresh(
        &self,
        subject: &str,
        upstream: &str,
        client: &dyn UpstreamClient,
    ) -> Outcome {
        let deadline = Instant::now() + self.shared.refresh_timeout;
        let epoch = self.cache_epoch();
        let holder = crate::random::random_id().map_err(|_| Failure::Unavailable)?;
        let lease_secs = self.shared.refresh_timeout.as_secs().max(1);
        let store = &self.shared.store;
        let record = loop {
            let now = self.now();
            let lease = RefreshLease {
                holder: holder.clone(),
                until: now.saturating_add(lease_secs),
            };
            match store
                .lease_upstream_refresh(subject, upstream, lease, now)
                .await?
            {
                LeaseTake::Granted(record) => break record,
                LeaseTake::Missing => {
                    self.cache_remove(subject, upstream);
                    return Err(Failure::NotFound);
                }
                LeaseTake::Busy { .. } => {
                    // Another process is refreshing: its result may already be there.
                    if let Some(stored) = store.get_upstream_tokens(subject, upstream).await?
                        && self.is_fresh(&stored)?
                    {
                        let stored = Arc::new(stored);
                        self.cache_put(stored.clone(), epoch);
                        return Ok(stored);
                    }
                    if Instant::now() + LEASE_POLL > deadline {
                        return Err(Failure::Unavailable);
                    }
                    tokio::time::sleep(LEASE_POLL).await;
                }
            }
        };
        let outcome = self
            .refresh_leased(record, &holder, client, deadline, epoch)
            .await;
        if matches!(outcome, Err(Failure::Unavailable | Failure::Store(_))) {
            // Let the next call (here or in another process) try at once.
            let _ = store
                .release_upstream_refresh(subject, upstream, &holder)
                .await;
        }
        outcome
    }

    async fn refresh_leased(
        &self,
        record: UpstreamTokenRecord,
        holder: &str,
        client: &dyn UpstreamClient,
        deadline: Instant,
        epoch: u64,
    ) -> Outcome {
        let (subject, upstream) = (record.subject.as_str(), record.upstream.as_str());
        let old_plain = self.open(&record)?;
        let old = old_plain.fields().ok_or(Failure::Undecryptable)?;
        if old.is_fresh(self.now(), self.shared.margin) {
            // Refreshed meanwhile (by another process, or a new sign-in).
            let _ = self
                .shared
                .store
                .release_upstream_refresh(subject, upstream, holder)
                .await;
            let mut record = record;
            record.refresh_lease = None;
            let record = Arc::new(record);
            self.cache_put(record.clone(), epoch);
            return Ok(record);
        }
        let Some(refresh_token) = old.refresh.map(Secret::new) else {
            #[cfg(feature = "tracing")]
            tracing::info!(sub = %subject, upstream = %upstream, "upstream access token expired and no refresh token: the user must sign in again");
            return Err(self.sign_in_required(subject).await);
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        let refreshed = match tokio::time::timeout(budget, client.refresh(&refresh_token)).await {
            Ok(Ok(tokens)) => tokens,
            Ok(Err(RefreshError::Rejected)) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(sub = %subject, upstream = %upstream, "the upstream refused the refresh token: revoking the user's grants");
                return Err(self.sign_in_required(subject).await);
            }
            Ok(Err(_error)) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(sub = %subject, upstream = %upstream, error = %_error, "upstream refresh failed; tokens kept");
                return Err(Failure::Unavailable);
            }
            Err(_) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(sub = %subject, upstream = %upstream, "upstream refresh timed out; tokens kept");
                return Err(Failure::Unavailable);
            }
        };
        let plain = Plaintext::encode(&Fields {
            access: refreshed.access_token.expose(),
            // A provider that does not rotate sends no new refresh token: keep the old one.
            refresh: refreshed
                .refresh_token
                .as_ref()
                .map(Secret::expose)
                .or(old.refresh),
            expires_at: refreshed.expires_at,
            scope: refreshed.scope.as_deref().or(old.scope),
        });
        let new = self.seal(subject, upstream, plain)?;
        if self
            .shared
            .store
            .finish_upstream_refresh(new.clone(), holder)
            .await?
        {
            #[cfg(feature = "tracing")]
            tracing::debug!(sub = %subject, upstream = %upstream, "upstream tokens refreshed");
            let new = Arc::new(new);
            self.cache_put(new.clone(), epoch);
            return Ok(new);
        }
        // The lease was lost (a new sign-in replaced the tokens, they were deleted, or the
        // lease ran out and another process took over): what the store holds wins.
        match self
            .shared
            .store
            .get_upstream_tokens(subject, upstream)
            .await?
        {
            Some(stored) if self.is_fresh(&stored)? => {
                let stored = Arc::new(stored);
                self.cache_put(stored.clone(), epoch);
                Ok(stored)
            }
            Some(_) => Err(Failure::Unavailable),
            None => {
                self.cache_remove(subject, upstream);
                Err(Failure::NotFound)
            }
        }
    }

    /// The upstream refused: revoke the user's grants here (resource servers in the process
    /// see it at once) and delete their upstream tokens.
    async fn sign_in_required(&self, subject: &str) -> Failure {
        let result = match self.shared.server.upgrade() {
            Some(server) => server.revoke_subject(subject).await.map(|_| ()),
            None => self.delete(subject).await.map(|_| ()),
        };
        match result {
            Ok(()) => Failure::SignInRequired,
            Err(error) => Failure::Store(error.to_string()),
        }
    }
}

/// What the vault asks of the server that owns it (implemented by the server's state): when an
/// upstream refuses a user's refresh token, sign the user out everywhere.
pub(crate) trait SignOut: Send + Sync {
    /// Revoke every active grant of `subject` and delete their upstream tokens; returns how
    /// many grants were revoked.
    fn revoke_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + 'a>>;
}

/// Configures a [`Vault`]; checked and bound to the server's store when the
/// [`AuthorizationServer`](crate::AuthorizationServer) is built.
#[must_use]
pub struct VaultBuilder {
    key: VaultKey,
    old: Vec<VaultKey>,
    upstreams: Vec<Arc<dyn UpstreamClient>>,
    margin: Duration,
    refresh_timeout: Duration,
}

impl fmt::Debug for VaultBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBuilder")
            .field("key", &self.key)
            .field("old_keys", &self.old)
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl VaultBuilder {
    /// A retired key: it still decrypts what it encrypted, the current key encrypts everything
    /// new (a refresh re-encrypts a record with the current key).
    pub fn old_key(mut self, key: VaultKey) -> Self {
        self.old.push(key);
        self
    }

    /// An upstream the vault keeps tokens for, and refreshes them with (the OIDC and OAuth 2.0
    /// logins implement [`UpstreamClient`]).
    pub fn upstream(self, client: impl UpstreamClient) -> Self {
        self.shared_upstream(Arc::new(client))
    }

    /// A shared upstream (the same login object the server signs users in with).
    pub fn shared_upstream(mut self, client: Arc<dyn UpstreamClient>) -> Self {
        self.upstreams.push(client);
        self
    }

    /// Refresh an access token this long before it expires (default 30 s; at most 1 hour).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How long one refresh may take, waiting for another process's included (default 30 s;
    /// 1 s to 5 minutes); also the length of the store lease that keeps other processes from
    /// refreshing the same tokens at once.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }

    /// Check the configuration (called by the server builder).
    pub(crate) fn check(self) -> Result<Self, ConfigError> {
        if self.upstreams.is_empty() {
            return Err(ConfigError::Invalid(
                "the vault needs at least one upstream (VaultBuilder::upstream)".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for client in &self.upstreams {
            if client.upstream_id().is_empty() || !seen.insert(client.upstream_id()) {
                return Err(ConfigError::Invalid(
                    format!(
                        "vault upstream ids must be unique and non-empty: {:?}",
                        client.upstream_id()
                    )
                    .into(),
                ));
            }
        }
        if self.margin > Duration::from_secs(3600) {
            return Err(ConfigError::InvalidLifetime("the vault refresh margin"));
        }
        if self.refresh_timeout < Duration::from_secs(1)
            || self.refresh_timeout > Duration::from_secs(300)
        {
            return Err(ConfigError::InvalidLifetime("the vault refresh timeout"));
        }
        Ok(self)
    }

    /// Bind a checked builder to the server that owns the vault.
    pub(crate) fn bind(
        self,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        server: Weak<dyn SignOut>,
    ) -> Vault {
        let current_id = self.key.id().to_owned();
        let upstreams = self
            .upstreams
            .into_iter()
            .map(|client| (client.upstream_id().to_owned(), client))
            .collect();
        Vault {
            shared: Arc::new(Shared {
                current: self.key,
                old: self
                    .old
                    .into_iter()
                    .filter(|k| k.id() != current_id)
                    .collect(),
                upstreams,
                margin: self.margin.as_secs(),
                refresh_timeout: self.refresh_timeout,
                store,
                clock,
                server,
                cache: RwLock::default(),
                flights: Mutex::default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_plaintext_layout_round_trips_and_refuses_truncated_or_foreign_bytes() {
        let cases = [
            Fields {
                access: "at",
                refresh: Some("rt ✓"),
                expires_at: Some(1_700_000_000),
                scope: Some("openid email"),
            },
            Fields {
                access: "",
                refresh: None,
                expires_at: None,
                scope: None,
            },
        ];
        for case in &cases {
            let plain = Plaintext::encode(case);
            let back = plain.fields().unwrap();
            assert_eq!(back.access, case.access);
            assert_eq!(back.refresh, case.refresh);
            assert_eq!(back.expires_at, case.expires_at);
            assert_eq!(back.scope, case.scope);
            for cut in 0..plain.0.len() {
                let truncated = Plaintext(Zeroizing::new(plain.0[..cut].to_vec()));
                assert!(truncated.fields().is_none(), "cut at {cut}");
            }
        }
        let mut other_version = Plaintext::encode(&cases[0]).0.to_vec();
        other_version[0] = 2;
        assert!(Plaintext(Zeroizing::new(other_version)).fields().is_none());
        let not_utf8 = Plaintext(Zeroizing::new(vec![1, 0, 1, 0, 0, 0, 1, 0xff, 0, 0]));
        assert!(not_utf8.fields().is_none());
        assert!(
            Plaintext(Zeroizing::new(b"{\"v\":1}".to_vec()))
                .fields()
                .is_none()
        );
    }

    #[test]
    fn freshness_keeps_the_margin_and_a_token_without_expiry_is_fresh() {
        let at = |expires_at| Fields {
            access: "a",
            refresh: None,
            expires_at,
            scope: None,
        };
        assert!(at(Some(131)).is_fresh(100, 30));
        assert!(!at(Some(130)).is_fresh(100, 30));
        assert!(!at(Some(50)).is_fresh(100, 0));
        assert!(at(None).is_fresh(u64::MAX, 30));
    }
}
