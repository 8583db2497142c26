//! Persistence: the [`Store`] trait and its backends.
//!
//! Everything the authorization server must remember across a restart goes through one trait:
//! registered clients, authorization codes, grants with their refresh-token families, consents,
//! signing keys and the users' upstream tokens. Secrets never reach a store in the clear: codes and
//! refresh tokens are kept as SHA-256 hashes ([`TokenHash`]), client secrets likewise, upstream
//! tokens encrypted by the [`Vault`](crate::vault::Vault) ([`UpstreamTokenRecord`]), and signing
//! keys are the one exception a server cannot avoid (see [`StoredKey`]).
//!
//! The operations the protocol needs to be atomic are single trait methods, so that a shared
//! database backend implements them as one transaction or one conditional `UPDATE`:
//!
//! 1. [`Store::take_code`] consumes an authorization code at most once, however many requests race.
//! 2. [`Store::rotate_refresh`] rotates a refresh token at most once; presenting an already rotated
//!    token revokes its whole grant (family) in the same step, unless it comes back inside the
//!    grace window with its successors still unused (then it gets one more successor).
//! 3. [`Store::lease_upstream_refresh`] lets one caller at a time (across processes) refresh a
//!    user's upstream tokens, and [`Store::finish_upstream_refresh`] stores the result only
//!    while that caller still holds the lease.
//!
//! The record types are plain structs with public fields, so a backend in another crate can
//! build them from its rows.
//!
//! # Choosing a store
//!
//! - [`MemoryStore`]: tests and single-process demos; forgets everything on restart.
//! - `SqliteStore` (feature `sqlite`, on by default): one process on one machine; a file,
//!   durable, nothing else to run.
//! - `PostgresStore` (feature `postgres`): several replicas of the server sharing one database
//!   (or one schema of it), each of which may serve any step of any flow; the atomic operations
//!   above hold across processes. Bounded: a database that is down or slow makes calls fail
//!   after the pool's acquire timeout or the statement timeout (`PostgresOptions`).
//!
//! [`Database`] picks one of the three from a single setting (`:memory:`, a file path or a
//! `postgres://` URL), as a command-line flag or config file gives it.
//!
//! The SQL backends migrate their schema at start (versions recorded in sqlx's
//! `_sqlx_migrations` table) and refuse a database that a newer server already migrated.
//! Every backend passes the same test suite (`tests/store.rs`).
//!
//! # Example
//!
//! ```
//! use mcp_auth_server::store::{ClientRecord, MemoryStore, Store};
//! use mcp_auth_core::metadata::ClientMetadata;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mcp_auth_server::store::StoreError> {
//! let store = MemoryStore::new();
//! let mut metadata = ClientMetadata::default();
//! metadata.redirect_uris = vec!["http://127.0.0.1/callback".into()];
//! store.put_client(ClientRecord::public("client-1", metadata, 1_700_000_000)).await?;
//! let client = store.get_client("client-1").await?.expect("stored");
//! assert!(client.is_public());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use mcp_auth_core::metadata::ClientMetadata;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod database;
#[cfg(feature = "sqlite")]
mod group_commit;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use self::database::{Database, OpenStore};
pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::{Durability, SqliteStore};

/// The boxed future every [`Store`] method returns (the trait is object safe, so the server holds
/// an `Arc<dyn Store>`; one allocation per call is noise next to a database round trip).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A storage backend for the authorization server.
///
/// Times are UNIX seconds from the server's [`Clock`](mcp_auth_core::Clock), passed in as `now`
/// so that backends never read the wall clock themselves.
///
/// Implementations must make [`take_code`](Self::take_code) and
/// [`rotate_refresh`](Self::rotate_refresh) atomic: of any number of concurrent calls for the same
/// hash, exactly one may observe the fresh record.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    // ----- clients -----
    /// Insert or replace a client.
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()>;
    /// Look a client up by `client_id`.
    fn get_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ClientRecord>>;
    /// Delete a client (its grants stay until revoked or expired). Returns whether it existed.
    fn delete_client<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool>;
    /// Record that `client_id` completed an authorization at `now` (sets
    /// [`ClientRecord::last_authorized_at`]; an unknown client is no error).
    fn client_authorized<'a>(&'a self, client_id: &'a str, now: u64) -> StoreFuture<'a, ()>;
    /// Delete the dynamically registered public clients that have not completed an
    /// authorization since `unused_since` (counting from registration when they never did) and
    /// hold no grant still active at `now` (SPEC AS-46). Returns how many went.
    fn purge_unused_public_clients(&self, unused_since: u64, now: u64) -> StoreFuture<'_, u64>;
    /// The public client registered under `registration_key` by
    /// [`put_public_client`](Self::put_public_client), if it still exists.
    fn find_public_client<'a>(
        &'a self,
        registration_key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>>;
    /// Store a dynamically registered public client under `registration_key` (the hash of its
    /// canonical metadata), unless a client is already stored under that key: atomically, so that
    /// of concurrent identical registrations exactly one creates a client. Returns the client
    /// stored under the key and whether it was created by this call. A later
    /// [`put_client`](Self::put_client) of the same `client_id` forgets the key.
    fn put_public_client(
        &self,
        client: ClientRecord,
        registration_key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)>;

    // ----- authorization codes -----
    /// Store a freshly issued authorization code.
    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()>;
    /// Atomically consume a code.
    ///
    /// The first call for a hash returns [`CodeTake::Fresh`] and marks the code used; every later
    /// call returns [`CodeTake::Replayed`] with the same record (so the caller can revoke the
    /// grant the code produced) until the record is purged. Unknown hashes give
    /// [`CodeTake::Unknown`]. Expiry is the caller's check: the record is returned either way.
    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake>;

    // ----- grants and refresh-token families -----
    /// Record a new grant (what one consent + one code exchange, or one client-credentials
    /// request, produced) together with its first refresh token, if any.
    fn create_grant(
        &self,
        grant: GrantRecord,
        refresh: Option<RefreshRecord>,
    ) -> StoreFuture<'_, ()>;
    /// Look a grant up.
    fn get_grant<'a>(&'a self, grant_id: &'a str) -> StoreFuture<'a, Option<GrantRecord>>;
    /// Look a refresh token up by hash, with its grant.
    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>>;
    /// Atomically rotate a refresh token: if `old` is [`RefreshState::Active`], mark it
    /// [`RefreshState::Rotated`] (recording `rotated_at = now`), mark its unused siblings (the
    /// other successors of its parent) [`RefreshState::Rotated`] too, and insert `new` (same
    /// grant, `parent` set to `old`).
    ///
    /// If `old` was already rotated, `grace` is not zero, `now` is at most `grace` seconds after
    /// `old` was rotated, the grant is active at `now`, and every successor of `old` is still
    /// [`RefreshState::Active`] (none used), insert `new` as one more successor of `old` and
    /// report [`Rotation::WithinGrace`] (the window still counts from the first rotation).
    /// Otherwise a rotated `old` is reuse: revoke the whole grant (every refresh token of the
    /// family) and report [`Rotation::Reused`].
    ///
    /// Expiry and client binding are the caller's checks, made on the record returned by
    /// [`get_refresh`](Self::get_refresh) before calling this; the store re-checks the state and,
    /// for the grace window, the grant's activity.
    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation>;
    /// Revoke a grant and every refresh token of its family. Returns whether it was active.
    fn revoke_grant<'a>(&'a self, grant_id: &'a str, now: u64) -> StoreFuture<'a, bool>;

    // ----- revoked access tokens (JWTs are stateless; revocation is a deny list until `exp`) -----
    /// Remember that the access token `jti` was revoked at `now` and must be refused until
    /// `expires_at`.
    fn revoke_access_token<'a>(
        &'a self,
        jti: &'a str,
        expires_at: u64,
        now: u64,
    ) -> StoreFuture<'a, ()>;
    /// Whether the access token `jti` was revoked.
    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool>;
    /// What a resource server must still refuse at `now`, of what was revoked at or after
    /// `since`: every deny-listed access token whose `expires_at` is after `now`, and every
    /// grant (the access tokens it issued before may still be unexpired). The server loads
    /// these when it starts (`since`: `now` less the longest access-token lifetime), so that
    /// [`Revocations`](crate::Revocations) survives a restart, and then polls for what other
    /// replicas revoked (`since`: shortly before the last poll).
    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>>;

    // ----- consents -----
    /// Remember that `subject` approved `scopes` for `client_id` at `resource` (merging with any
    /// earlier approval for the same triple).
    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()>;
    /// The scopes `subject` approved for `client_id` at `resource`, if any.
    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>>;

    // ----- signing keys -----
    /// Insert or replace a signing key.
    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()>;
    /// Every stored signing key, oldest first.
    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>>;
    /// Delete a signing key by `kid`.
    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool>;

    // ----- upstream tokens (encrypted by the vault; see crate::vault) -----
    /// The active grants of `subject` at `now` (not revoked, not expired), so that all of them
    /// can be revoked when the user must sign in again.
    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>>;
    /// Insert or replace a user's tokens from one upstream. Replacing ends any refresh lease on
    /// the old record (a refresh finishing later finds it gone and keeps what was put).
    fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> StoreFuture<'_, ()>;
    /// A user's tokens from one upstream, if any.
    fn get_upstream_tokens<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
    ) -> StoreFuture<'a, Option<UpstreamTokenRecord>>;
    /// Delete a user's tokens from every upstream. Returns how many records went.
    fn delete_upstream_tokens<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64>;
    /// Atomically take the refresh lease on a user's upstream tokens: when nobody holds it, or
    /// the holder's lease ended at or before `now`, record `lease` and return the record as it
    /// is now ([`LeaseTake::Granted`]). Of any number of concurrent calls (in any process
    /// sharing the store), at most one is granted until the lease ends or is released.
    fn lease_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        lease: RefreshLease,
        now: u64,
    ) -> StoreFuture<'a, LeaseTake>;
    /// Store the refreshed tokens and end the lease, only if `holder` still holds the lease on
    /// `record`'s subject and upstream. Returns whether it did (`false`: the lease ended and
    /// someone else took over, or the tokens were replaced or deleted meanwhile).
    fn finish_upstream_refresh<'a>(
        &'a self,
        record: UpstreamTokenRecord,
        holder: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// End `holder`'s lease without changing the tokens (the refresh failed and may be retried).
    fn release_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        holder: &'a str,
    ) -> StoreFuture<'a, ()>;

    // ----- short-lived browser state (see the `flow` rules in the crate docs) -----
    /// Insert or replace a short-lived record (an authorization waiting for the user, a login
    /// session, a pending upstream sign-in). A backend that bounds how many it holds may drop
    /// the records expired at `now` to make room, and fails when still full.
    fn put_flow(&self, record: FlowRecord, now: u64) -> StoreFuture<'_, ()>;
    /// The record of `kind` under `key`, if it exists and has not expired at `now`.
    fn get_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>>;
    /// Atomically remove the record of `kind` under `key` and return it if it had not expired
    /// at `now`: of any number of concurrent calls (in any process sharing the store), at most
    /// one gets it.
    fn take_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>>;
    /// Delete every record of `kind` belonging to `subject` (its sessions, when the user must
    /// sign in again). Returns how many went.
    fn delete_flows_of<'a>(&'a self, kind: FlowKind, subject: &'a str) -> StoreFuture<'a, u64>;

    // ----- rate-limit counters -----
    /// Atomically count one event for `key` in a fixed window of `window` seconds: when the
    /// key has no window, or its window ended at or before `now`, a new one starts at `now`
    /// with a count of 1; otherwise the count goes up by one. Returns the window after the
    /// event.
    fn count_event<'a>(&'a self, key: &'a str, window: u64, now: u64) -> StoreFuture<'a, Window>;
    /// The current window of `key` at `now`, without counting (`None`: no live window).
    fn get_window<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Window>>;
    /// Forget `key`'s window (a successful sign-in clears its failures).
    fn clear_window<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    // ----- leases (one replica at a time) -----
    /// Atomically take the lease `name` for `holder` until `until`: granted when nobody holds
    /// it, its holder's lease ended at or before `now`, or `holder` already holds it (then it
    /// is extended). Of any number of concurrent calls (in any process sharing the store), at
    /// most one is granted while a lease lasts. Used so that one replica at a time creates or
    /// rotates signing keys and purges expired records.
    fn try_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        until: u64,
        now: u64,
    ) -> StoreFuture<'a, bool>;
    /// End `holder`'s lease `name` (nothing happens when someone else holds it).
    fn release_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()>;

    // ----- upkeep -----
    /// Drop what can no longer be used at `now`: codes past expiry, refresh tokens and grants
    /// past expiry, deny-listed access tokens past `exp`, expired flow records, rate-limit
    /// windows and leases. Returns how many records went.
    fn purge_expired(&self, now: u64) -> StoreFuture<'_, u64>;
}

/// What a [`FlowRecord`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowKind {
    /// A validated authorization request waiting for the user's decision.
    #[default]
    Transaction,
    /// A login session: who signed in on one browser.
    Session,
    /// An approved authorization waiting for the upstream provider's callback.
    PendingUpstream,
}

impl FlowKind {
    /// The name stored in a database column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::Session => "session",
            Self::PendingUpstream => "upstream",
        }
    }

    /// Parse a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "transaction" => Some(Self::Transaction),
            "session" => Some(Self::Session),
            "upstream" => Some(Self::PendingUpstream),
            _ => None,
        }
    }
}

/// Short-lived browser state, kept in the store so that any replica can continue a flow
/// another one started.
///
/// The server seals `value` (AES-256-GCM) with a key derived from the browser's secret (the
/// cookie, the `state`, the transaction id) whose SHA-256 is `key`: the store alone can neither
/// find a record from a secret it never saw nor read one it holds. The `Debug` output shows no
/// value. Outside this crate, build one with `FlowRecord::default()` and set the fields.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FlowRecord {
    /// What it holds.
    pub kind: FlowKind,
    /// SHA-256 of the browser's secret.
    pub key: TokenHash,
    /// The user it belongs to, when known (sessions), so that
    /// [`Store::delete_flows_of`] can end them.
    pub subject: Option<String>,
    /// The sealed value (opaque to the store).
    pub value: Vec<u8>,
    /// When it expires (UNIX seconds).
    pub expires_at: u64,
}

impl fmt::Debug for FlowRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRecord")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("subject", &self.subject)
            .field("value_len", &self.value.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A fixed rate-limit window, from [`Store::count_event`] and [`Store::get_window`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Events counted in the window.
    pub count: u32,
    /// When the window ends (UNIX seconds).
    pub ends_at: u64,
}

/// A store failure. Opaque: the backend's own error is only reachable through
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("storage error: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message and no source.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error wrapping a backend error.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The SHA-256 of a secret value (a code, a refresh token, a client secret). Stores index by it;
/// comparisons are constant time.
///
/// The `Default` (all zeros) is the hash of no secret; it exists so that records can be built
/// with `Default` and field assignment outside this crate.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hash a secret.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// From raw bytes (as read back from a database).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex (64 characters), for keys built from a hash (rate-limit windows).
    pub(crate) fn to_hex(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Constant-time check that `secret` hashes to this value.
    pub fn verify(&self, secret: &str) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix identifies a record in logs without helping anyone guess the secret.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// How a client authenticates at the token endpoint (`token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// A public client: sends only `client_id`.
    None,
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the client's private key (RFC 7523 §2.2, OpenID Connect Core
    /// §9); the public keys are the client's `jwks` or `jwks_uri`. A confidential client without
    /// a secret.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The RFC 7591 name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Parse an RFC 7591 name; `None` for methods this server does not support.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// Where a client came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSource {
    /// Registered through `/register` (RFC 7591).
    Dynamic,
    /// Configured by the operator.
    Static,
    /// Resolved from a Client ID Metadata Document (never stored; cached by the fetcher).
    MetadataDocument,
}

impl ClientSource {
    /// The name stored in a database column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dynamic => "dynamic",
            Self::Static => "static",
            Self::MetadataDocument => "metadata_document",
        }
    }

    /// Parse a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "dynamic" => Some(Self::Dynamic),
            "static" => Some(Self::Static),
            "metadata_document" => Some(Self::MetadataDocument),
            _ => None,
        }
    }
}

/// A revocation a resource server must honour, from [`Store::list_revocations`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// One access token, by `jti`, until it expires.
    AccessToken {
        /// The token's `jti`.
        jti: String,
        /// Its `exp` (UNIX seconds).
        expires_at: u64,
    },
    /// A grant: every access token with this grant id in `sid`.
    Grant {
        /// The grant id.
        grant_id: String,
        /// When it was revoked (UNIX seconds).
        revoked_at: u64,
    },
}

/// A registered client.
///
/// Two fields say what the client may obtain beyond what a user approves (the rules are in the
/// crate's security section): [`machine_scope`](Self::machine_scope), the scopes the operator
/// arranged for machine grants (`client_credentials`), and [`resources`](Self::resources), the
/// resources it may get tokens for. Open registration and Client ID Metadata Documents never set
/// either.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// The `client_id`.
    pub client_id: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<TokenHash>,
    /// When the secret expires (UNIX seconds); `0` means never (RFC 7591).
    pub secret_expires_at: u64,
    /// How it authenticates at the token endpoint.
    pub auth_method: ClientAuthMethod,
    /// The registered metadata, as echoed to the client (exact `redirect_uris` strings).
    pub metadata: ClientMetadata,
    /// When it was registered (UNIX seconds).
    pub issued_at: u64,
    /// Where it came from.
    pub source: ClientSource,
    /// The scopes the operator allows this client to obtain with machine grants
    /// (`client_credentials`), space separated. `None`: no machine grant at all. Only
    /// operator-registered clients ([`ClientSource::Static`]) are honoured.
    pub machine_scope: Option<String>,
    /// The resources (canonical URLs) this client may obtain tokens for. Empty: every resource
    /// the server issues tokens for.
    pub resources: Vec<String>,
    /// When it last completed an authorization (an authorization code exchanged), UNIX
    /// seconds; `None`: never. Set by [`Store::client_authorized`]; unused dynamically
    /// registered public clients expire ([`Store::purge_unused_public_clients`]).
    pub last_authorized_at: Option<u64>,
}

impl ClientRecord {
    /// A public client (`token_endpoint_auth_method: none`) registered dynamically.
    pub fn public(client_id: impl Into<String>, metadata: ClientMetadata, issued_at: u64) -> Self {
        Self {
            client_id: client_id.into(),
            secret_hash: None,
            secret_expires_at: 0,
            auth_method: ClientAuthMethod::None,
            metadata,
            issued_at,
            source: ClientSource::Dynamic,
            machine_scope: None,
            resources: Vec::new(),
            last_authorized_at: None,
        }
    }

    /// A confidential client authenticating with `method` and a secret whose hash is given.
    pub fn confidential(
        client_id: impl Into<String>,
        method: ClientAuthMethod,
        secret_hash: TokenHash,
        metadata: ClientMetadata,
        issued_at: u64,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            secret_hash: Some(secret_hash),
            secret_expires_at: 0,
            auth_method: method,
            metadata,
            issued_at,
            source: ClientSource::Dynamic,
            machine_scope: None,
            resources: Vec::new(),
            last_authorized_at: None,
        }
    }

    /// Set where the client came from.
    #[must_use]
    pub fn with_source(mut self, source: ClientSource) -> Self {
        self.source = source;
        self
    }

    /// Allow machine grants for these scopes (space separated). See
    /// [`machine_scope`](Self::machine_scope).
    #[must_use]
    pub fn with_machine_scope(mut self, scope: impl Into<String>) -> Self {
        self.machine_scope = Some(scope.into());
        self
    }

    /// Restrict the client to these resources. See [`resources`](Self::resources).
    #[must_use]
    pub fn with_resources<I, T>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the operator registered this client (configuration or
    /// [`AuthorizationServer::register_machine_client`](crate::AuthorizationServer::register_machine_client)),
    /// as opposed to open registration or a metadata document.
    pub fn is_operator_registered(&self) -> bool {
        self.source == ClientSource::Static
    }

    /// Whether the client is public (it does not authenticate).
    pub fn is_public(&self) -> bool {
        self.auth_method == ClientAuthMethod::None
    }
}

/// An issued authorization code (stored by hash).
///
/// Outside this crate, build one with `CodeRecord::default()` and set the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub hash: TokenHash,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI the code was delivered to (the request's exact string).
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (then the token request must
    /// carry the identical value, RFC 6749 §4.1.3).
    pub redirect_uri_in_request: bool,
    /// The PKCE S256 `code_challenge`.
    pub code_challenge: String,
    /// The resource (RFC 8707) the grant is for: the token's `aud`.
    pub resource: String,
    /// The granted scopes, space separated.
    pub scope: String,
    /// The user.
    pub subject: String,
    /// The grant this code creates when exchanged (known in advance so a replay can revoke it).
    pub grant_id: String,
    /// Issued at (UNIX seconds).
    pub issued_at: u64,
    /// Expires at (UNIX seconds).
    pub expires_at: u64,
}

/// The result of [`Store::take_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeTake {
    /// First use: the code is now consumed.
    Fresh(CodeRecord),
    /// The code was already consumed.
    Replayed(CodeRecord),
    /// No such code.
    Unknown,
}

/// A grant: one user's approval of one client for one resource and scope set, from which
/// access and refresh tokens are issued. A refresh-token family belongs to one grant.
///
/// Outside this crate, build one with `GrantRecord::default()` and set the fields (the default
/// `expires_at` of `0` makes it inactive until set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantRecord {
    /// Random identifier (also the access tokens' `sid` claim).
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The user (for client credentials: the client itself).
    pub subject: String,
    /// The consented scopes, space separated (refreshes may only narrow this).
    pub scope: String,
    /// The resource the grant is for.
    pub resource: String,
    /// Created at (UNIX seconds).
    pub created_at: u64,
    /// Absolute end of the grant (UNIX seconds), whatever the refresh activity.
    pub expires_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

impl GrantRecord {
    /// Whether the grant can still issue tokens at `now`.
    pub fn is_active(&self, now: u64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// The state of one refresh token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshState {
    /// Usable.
    #[default]
    Active,
    /// Already exchanged for a successor: presenting it again is reuse.
    Rotated,
    /// Revoked (by the client, or with its family).
    Revoked,
}

impl RefreshState {
    /// The name stored in a database column.
    ///
    /// ```
    /// use mcp_auth_server::store::RefreshState;
    ///
    /// assert_eq!(RefreshState::Rotated.as_str(), "rotated");
    /// assert_eq!(RefreshState::from_name("rotated"), Some(RefreshState::Rotated));
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotated => "rotated",
            Self::Revoked => "revoked",
        }
    }

    /// Parse a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "active" => Some(Self::Active),
            "rotated" => Some(Self::Rotated),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A refresh token (stored by hash).
///
/// Outside this crate, build one with `RefreshRecord::default()` and set the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// Its grant (family).
    pub grant_id: String,
    /// The scopes it carries, space separated (identical along a family, RFC 6749 §6).
    pub scope: String,
    /// Issued at (UNIX seconds).
    pub issued_at: u64,
    /// Expires at (UNIX seconds): inactivity limit, capped by the grant's end.
    pub expires_at: u64,
    /// Its state.
    pub state: RefreshState,
    /// The token it was rotated from (`None` for a grant's first token). Set by the store.
    pub parent: Option<TokenHash>,
    /// When it was rotated (UNIX seconds): the start of its grace window. `None` while active,
    /// and for a sibling that was superseded rather than presented.
    pub rotated_at: Option<u64>,
    /// The JWK SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449 §5: public
    /// clients' refresh tokens), kept along the family; `None`: not bound.
    pub dpop_jkt: Option<String>,
}

/// The result of [`Store::rotate_refresh`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// Rotated: the old token is now [`RefreshState::Rotated`], the new one stored.
    Rotated,
    /// The old token had been rotated, but came back inside the grace window with its
    /// successors unused (a client's parallel or retried refresh): the new token is stored as
    /// one more successor in the same family, nothing is revoked.
    WithinGrace,
    /// The old token had already been rotated: the grant is now revoked.
    Reused {
        /// The revoked grant.
        grant_id: String,
    },
    /// The old token was revoked (or its grant was).
    Revoked,
    /// No such token.
    Unknown,
}

/// A remembered consent.
///
/// Outside this crate, build one with `ConsentRecord::default()` and set the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The user.
    pub subject: String,
    /// The client.
    pub client_id: String,
    /// The resource.
    pub resource: String,
    /// Approved scopes, space separated (union of every approval).
    pub scope: String,
    /// Last approval (UNIX seconds).
    pub updated_at: u64,
}

/// A signing key as stored: the private key in PKCS#8 DER.
///
/// The `Debug` output never shows the key material. Outside this crate, build one with
/// `StoredKey::default()` and set the fields.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (`kid`).
    pub kid: String,
    /// JWS algorithm name (`ES256`, `EdDSA`, `RS256`).
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// Created, and published in the JWKS, at (UNIX seconds).
    pub created_at: u64,
    /// Used for signing from (UNIX seconds): later than `created_at` so that resource servers
    /// see the key in the JWKS before any token signed with it.
    pub activates_at: u64,
    /// Stops signing at (UNIX seconds), if retired; published until `retired_at` + the longest
    /// access-token lifetime, then deleted.
    pub retired_at: Option<u64>,
}

impl Default for StoredKey {
    fn default() -> Self {
        Self {
            kid: String::new(),
            alg: String::new(),
            pkcs8: zeroize::Zeroizing::new(Vec::new()),
            created_at: 0,
            activates_at: 0,
            retired_at: None,
        }
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("pkcs8", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// One user's tokens from one upstream provider, as the [`Vault`](crate::vault::Vault) stores
/// them: AES-256-GCM ciphertext only, bound to `subject` and `upstream` (its additional
/// authenticated data), so a record copied to another user or upstream does not decrypt.
///
/// The `Debug` output shows neither the nonce nor the ciphertext. Outside this crate, build one
/// with `UpstreamTokenRecord::default()` and set the fields.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UpstreamTokenRecord {
    /// The user (our subject).
    pub subject: String,
    /// The upstream's id ([`UpstreamClient::upstream_id`](crate::upstream::UpstreamClient::upstream_id)).
    pub upstream: String,
    /// The id of the vault key that encrypted it ([`VaultKey::id`](crate::vault::VaultKey::id)).
    pub key_id: String,
    /// The 96-bit AES-GCM nonce, random per encryption.
    pub nonce: Vec<u8>,
    /// The encrypted tokens followed by the 128-bit tag.
    pub ciphertext: Vec<u8>,
    /// When the tokens were stored (UNIX seconds).
    pub updated_at: u64,
    /// A refresh in flight, if one is.
    pub refresh_lease: Option<RefreshLease>,
}

impl fmt::Debug for UpstreamTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokenRecord")
            .field("subject", &self.subject)
            .field("upstream", &self.upstream)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("updated_at", &self.updated_at)
            .field("refresh_lease", &self.refresh_lease)
            .finish_non_exhaustive()
    }
}

/// Who is refreshing a user's upstream tokens, and until when the others wait for them.
///
/// Outside this crate, build one with `RefreshLease::default()` and set the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshLease {
    /// A random id of the holder (one per refresh).
    pub holder: String,
    /// When the lease ends (UNIX seconds): then another caller may take over.
    pub until: u64,
}

/// The result of [`Store::lease_upstream_refresh`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseTake {
    /// The caller holds the lease; the record as stored now (another refresh may have
    /// completed since the caller last read it).
    Granted(UpstreamTokenRecord),
    /// Someone else holds the lease until then (UNIX seconds).
    Busy {
        /// When that lease ends.
        until: u64,
    },
    /// The user has no tokens from that upstream.
    Missing,
}
