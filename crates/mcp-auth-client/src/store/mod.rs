//! Where tokens and client registrations are kept: the [`TokenStore`] trait,
//! [`MemoryTokenStore`] and [`FileTokenStore`].
//!
//! Two kinds of record are stored:
//!
//! - [`StoredTokens`], keyed by [`TokenKey`] = (principal, canonical MCP server URI): the access
//!   token with its **absolute** expiry, the refresh token, the granted scopes, and everything a
//!   refresh needs without discovering again (issuer, token endpoint, the `resource` value sent,
//!   the client id), and the DPoP proof key when the tokens are DPoP-bound (RFC 9449). A token is never used for another principal or another resource (SPEC C-27),
//!   and a record whose issuer is no longer the resource's authorization server is discarded.
//! - [`StoredClient`], keyed by issuer: the registered client (id, secret, token endpoint
//!   authentication method, how it was obtained), so a refresh uses the secret and method the
//!   authorization server returned at registration (SPEC C-16, C-18), across processes.
//!
//! # Cross-process refresh
//!
//! [`TokenStore::lock`] takes a store-wide lock that the [`TokenManager`](crate::TokenManager)
//! holds while it refreshes or authorizes. Inside the lock it reads the record again and adopts a
//! token another process wrote meanwhile instead of refreshing, so two processes sharing a
//! [`FileTokenStore`] never both spend the same (rotating) refresh token.
//!
//! # Writing a store
//!
//! Records implement `Serialize`/`Deserialize` (secrets are written in clear: keep the bytes
//! somewhere only the owner can read, or encrypt them), so a keychain- or database-backed store is
//! a few lines around `serde_json`.
//!
//! # Example
//!
//! ```
//! use mcp_auth_client::store::{MemoryTokenStore, TokenKey, TokenStore};
//! use mcp_auth_client::Principal;
//! use mcp_auth_core::ResourceId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryTokenStore::new();
//! let key = TokenKey::new(Principal::new("alice"), ResourceId::parse("https://mcp.example.com/mcp")?);
//! assert!(store.load_tokens(&key).await?.is_none());
//! # Ok(())
//! # }
//! ```

use std::{any::Any, fmt, future::Future, pin::Pin};

use mcp_auth_core::{ResourceId, ScopeSet, Secret};
use serde::{Deserialize, Serialize};

pub use self::{file::FileTokenStore, memory::MemoryTokenStore};
use crate::error::StoreError;
use crate::{registration::TokenEndpointAuthMethod, token::Principal};

mod file;
mod memory;

/// The future every [`TokenStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Keeps tokens and client registrations. Object-safe: the manager holds an
/// `Arc<dyn TokenStore>`.
///
/// Implementations must be safe to call concurrently. See the [module docs](crate::store).
pub trait TokenStore: fmt::Debug + Send + Sync + 'static {
    /// The tokens of a principal for a resource.
    fn load_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<StoredTokens>>;

    /// Replaces the tokens of a principal for a resource.
    fn save_tokens<'a>(
        &'a self,
        key: &'a TokenKey,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, ()>;

    /// Forgets the tokens of a principal for a resource.
    fn remove_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, ()>;

    /// The client registered with an authorization server (by its exact issuer string).
    fn load_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, Option<StoredClient>>;

    /// Records the client registered with `client.issuer`.
    fn save_client<'a>(&'a self, client: &'a StoredClient) -> StoreFuture<'a, ()>;

    /// Forgets the client registered with an authorization server.
    fn remove_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, ()>;

    /// Takes a lock held while tokens for `key` are refreshed or obtained, so other processes
    /// sharing the store wait and then adopt the result. Released when the guard is dropped.
    ///
    /// The default is no lock (enough for a store used by one process: the manager already
    /// refreshes once per key in-process).
    fn lock<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, StoreLock> {
        let _ = key;
        Box::pin(async { Ok(StoreLock::none()) })
    }
}

/// A held [`TokenStore::lock`]; dropping it releases the lock.
pub struct StoreLock(Option<Box<dyn Any + Send>>);

impl StoreLock {
    /// A guard that holds nothing.
    #[must_use]
    pub fn none() -> Self {
        Self(None)
    }

    /// A guard that releases the lock when `guard` is dropped (a locked file, a mutex guard).
    #[must_use]
    pub fn new(guard: impl Any + Send) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreLock")
            .field(&if self.0.is_some() { "held" } else { "none" })
            .finish()
    }
}

/// The key of a token record: who, and for which MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenKey {
    principal: Principal,
    resource: ResourceId,
}

impl TokenKey {
    /// The key of `principal`'s tokens for the MCP server `resource`.
    #[must_use]
    pub fn new(principal: Principal, resource: ResourceId) -> Self {
        Self {
            principal,
            resource,
        }
    }

    /// Whose tokens.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The MCP server (its canonical URI).
    #[must_use]
    pub fn resource(&self) -> &ResourceId {
        &self.resource
    }
}

/// A principal's tokens for one MCP server, with what a refresh needs.
///
/// `Debug` never prints a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredTokens {
    /// The issuer that minted the tokens (exact string from its metadata).
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// The `resource` parameter sent on authorize, token and refresh requests (RFC 8707).
    pub resource: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// The access token.
    #[serde(with = "secret")]
    pub access_token: Secret,
    /// When the access token expires, in seconds since the Unix epoch (absolute, so a restart
    /// does not extend it). `None` when the server did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When the access token was obtained, in seconds since the Unix epoch: with `expires_at` it
    /// gives the token's lifetime, so a short-lived token is not refreshed on every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<u64>,
    /// The refresh token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "mcp_auth_core::secret_opt"
    )]
    pub refresh_token: Option<Secret>,
    /// The scopes granted.
    #[serde(default)]
    pub scope: ScopeSet,
    /// The access token's type when it is not `Bearer`: `DPoP` for a DPoP-bound token
    /// (RFC 9449 §5), sent with the `DPoP` scheme and a proof signed by [`dpop_key`](Self::dpop_key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The DPoP proof key (base64url of its PKCS#8 DER): a secret, kept with the tokens it binds
    /// (the access token's `cnf.jkt`, and a public client's refresh token), generated once and
    /// reused by every later grant for this principal and server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "mcp_auth_core::secret_opt"
    )]
    pub dpop_key: Option<Secret>,
}

impl StoredTokens {
    /// A record with no refresh token, expiry or scopes.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        token_endpoint: impl Into<String>,
        resource: impl Into<String>,
        client_id: impl Into<String>,
        access_token: impl Into<Secret>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            token_endpoint: token_endpoint.into(),
            resource: resource.into(),
            client_id: client_id.into(),
            access_token: access_token.into(),
            expires_at: None,
            obtained_at: None,
            refresh_token: None,
            scope: ScopeSet::new(),
            token_type: None,
            dpop_key: None,
        }
    }

    /// Whether the access token is DPoP-bound (`token_type` `DPoP`, compared case-insensitively).
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        self.token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(crate::dpop::TOKEN_TYPE_DPOP))
    }
}

/// How a client came to be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationKind {
    /// Credentials given by the application ([`ClientCredentials`](crate::ClientCredentials)).
    PreRegistered,
    /// A Client ID Metadata Document URL used as `client_id`.
    MetadataDocument,
    /// RFC 7591 dynamic registration.
    Dynamic,
}

/// A client registered with one authorization server.
///
/// `Debug` never prints the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredClient {
    /// The authorization server's issuer (exact string).
    pub issuer: String,
    /// How the client was registered.
    pub kind: RegistrationKind,
    /// The client identifier.
    pub client_id: String,
    /// The client secret, if one was issued.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "mcp_auth_core::secret_opt"
    )]
    pub client_secret: Option<Secret>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// When the secret expires, in seconds since the Unix epoch; `None` or 0 for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// The redirect URIs registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
}

impl StoredClient {
    /// A public client (`none`) with no secret.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        kind: RegistrationKind,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            kind,
            client_id: client_id.into(),
            client_secret: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            client_secret_expires_at: None,
            redirect_uris: Vec::new(),
        }
    }

    /// Whether the secret has expired at `now_unix` (seconds since the epoch).
    #[must_use]
    pub fn secret_expired(&self, now_unix: u64) -> bool {
        self.client_secret.is_some()
            && self
                .client_secret_expires_at
                .is_some_and(|at| at != 0 && at <= now_unix)
    }
}

mod secret {
    use mcp_auth_core::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Ok(Secret::from(String::deserialize(d)?))
    }
}
