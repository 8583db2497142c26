//! The token manager: the state machine behind [`TokenManager`] (documented on the type).

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use http::HeaderMap;
use mcp_auth_core::{Clock, ResourceId, ScopeSet, Secret};

use self::config::Config;
use crate::{
    authorize::{BrowserOpener, Scopes},
    discovery::Discovery,
    dpop::{Nonces, ProofKey},
    error::AuthError,
    fetch::Http,
    store::{StoredTokens, TokenKey, TokenStore},
    token::{AccessToken, Principal},
};

mod builder;
mod challenge;
mod config;
mod grant;
mod refresh;
mod tokens;

pub use self::{
    builder::TokenManagerBuilder,
    config::{
        DEFAULT_AUTHORIZATION_TIMEOUT, DEFAULT_MAX_AUTHORIZATION_ATTEMPTS, DEFAULT_REFRESH_BUFFER,
        RetryPolicy,
    },
};
pub(crate) use self::{challenge::bearer_challenge, config::MAX_ATTEMPTS_LIMIT};

/// State shared by every principal's manager for one MCP server.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) http: Http,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) browser: Arc<dyn BrowserOpener>,
    pub(crate) discovery: tokio::sync::Mutex<Option<Arc<Discovery>>>,
    pub(crate) registration: tokio::sync::Mutex<()>,
    pub(crate) nonces: Arc<Nonces>,
    principals: Mutex<HashMap<Principal, Arc<PrincipalState>>>,
}

/// One principal's tokens in memory and its single-flight lock.
pub(crate) struct PrincipalState {
    pub(crate) key: TokenKey,
    pub(crate) current: Mutex<Current>,
    pub(crate) flight: tokio::sync::Mutex<()>,
    pub(crate) attempts: Mutex<HashMap<String, u32>>,
    /// The DPoP key of the stored record, parsed once: (its stored form, the key).
    pub(crate) dpop_key: Mutex<Option<(Secret, ProofKey)>>,
}

#[derive(Default)]
pub(crate) struct Current {
    pub(crate) loaded: bool,
    pub(crate) tokens: Option<Arc<StoredTokens>>,
}

/// Obtains, stores, refreshes and steps up the tokens of one principal for one MCP server.
///
/// Cheap to clone (an `Arc`); clones share everything. See [`OAuthLayer`](crate::OAuthLayer) for
/// the outbound layer that calls it.
///
/// # What it does
///
/// - [`access_token`](TokenManager::access_token) returns a token that is valid now: the one in
///   memory, else the stored one, else a refreshed one, else — if the manager is interactive — one
///   from a full authorization (discovery, registration, PKCE S256, loopback redirect).
/// - [`cached_token`](TokenManager::cached_token) does the same without ever starting an
///   authorization: what an outbound request uses before the server has asked for anything.
/// - [`on_unauthorized`](TokenManager::on_unauthorized) handles a 401: adopts a token another task
///   already obtained, else refreshes, else authorizes with the challenge's scopes (SPEC C-28).
/// - [`on_insufficient_scope`](TokenManager::on_insufficient_scope) handles a 403
///   `insufficient_scope`: a new authorization for the **union** of the granted and challenged
///   scopes — never a refresh, which cannot widen a grant — at most
///   [`max_authorization_attempts`](TokenManagerBuilder::max_authorization_attempts) (3) times per
///   operation until one succeeds (SPEC C-29, C-30).
///
/// The manager is the state machine: which token is usable, when to refresh, when to authorize,
/// and the state that decides it (the tokens in memory, the single-flight lock, the discovery
/// made, the authorization attempts per operation). The steps themselves live in the modules
/// named after them: [`discovery`](crate::discovery), [`registration`](crate::registration), the
/// authorization run in [`authorize`](crate::authorize), and a crate-private token endpoint
/// client that every token request goes through.
///
/// # Refresh
///
/// Expiry is stored as an absolute time and a token is refreshed
/// [`refresh_buffer`](TokenManagerBuilder::refresh_buffer) (60 s) before it expires. However many
/// tasks ask at once, **one** refresh runs (per principal and server) and the others wait for its
/// result; across processes the [store lock](crate::store::TokenStore::lock) plays the same role,
/// and a token another process stored meanwhile is adopted instead of refreshing again. The refresh
/// request carries the same `resource` as the authorization (SPEC C-19) and the client's registered
/// secret and authentication method (SPEC C-18); a rotated refresh token replaces the old one
/// (SPEC C-24).
///
/// A refresh the server **rejects** (`invalid_grant`, `invalid_client`, …) discards the tokens and
/// leads to a new authorization. Before that, an `invalid_grant` makes the manager read the store
/// once more: another process sharing it without sharing its lock may have refreshed with the same
/// (now rotated) refresh token, and its stored token is adopted instead of re-authorizing. A **transient** failure (network, timeout, 5xx, 429) is retried
/// with bounded exponential backoff ([`RetryPolicy`]) and then reported as
/// [`AuthErrorKind::Transient`](crate::AuthErrorKind::Transient) — the refresh token is kept.
///
/// # Example
///
/// ```
/// use mcp_auth_client::{TokenManager, store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryTokenStore::new();
/// let manager = TokenManager::builder("https://mcp.example.com/mcp")
///     .store(store.clone())
///     .interactive(false) // an agent with no user at hand: never open a browser
///     .build()?;
/// assert!(manager.cached_token().await?.is_none());
///
/// // A token obtained earlier (by this process or another one sharing the store).
/// let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
/// let record = StoredTokens::new(
///     "https://auth.example.com", "https://auth.example.com/token",
///     "https://mcp.example.com/mcp", "client-1", "tok-1",
/// );
/// store.save_tokens(&key, &record).await?;
/// let fresh = TokenManager::builder("https://mcp.example.com/mcp").store(store).build()?;
/// assert_eq!(fresh.access_token().await?.expose(), "tok-1");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    shared: Arc<Shared>,
    state: Arc<PrincipalState>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("resource", &self.shared.config.resource)
            .field("principal", self.state.key.principal())
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Starts configuring a manager for the MCP server at `mcp_server_url` (its endpoint, e.g.
    /// `https://mcp.example.com/mcp`).
    pub fn builder(mcp_server_url: &str) -> TokenManagerBuilder {
        TokenManagerBuilder::new(mcp_server_url)
    }

    /// A manager for `principal` sharing this one's configuration, store, discovery and
    /// registrations, with its own tokens (never this one's). Asking twice for the same principal
    /// gives managers that share their tokens and their single refresh.
    #[must_use]
    pub fn for_principal(&self, principal: impl Into<Principal>) -> Self {
        let principal = principal.into();
        let state = self.shared.state_for(principal);
        Self {
            shared: Arc::clone(&self.shared),
            state,
        }
    }

    /// Whose tokens this manager holds.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        self.state.key.principal()
    }

    /// The MCP server (its canonical URI).
    #[must_use]
    pub fn resource(&self) -> &ResourceId {
        &self.shared.config.resource
    }

    /// A token valid now: from memory, the store or a refresh, else — when interactive — from a
    /// new authorization (scopes from the PRM's `scopes_supported`, else none; SPEC C-20).
    ///
    /// # Errors
    /// Any [`AuthErrorKind`](crate::AuthErrorKind): `InteractionRequired` when authorization is
    /// needed and the manager is not interactive, `Transient` when a refresh could not reach the
    /// server, the discovery and authorization kinds when a new authorization fails.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        if let Some(token) = self.memory_token() {
            return Ok(token);
        }
        let _flight = self.state.flight.lock().await;
        if let Some(token) = self.usable_locked(None).await? {
            return Ok(token);
        }
        self.authorize_locked(None, Scopes::Select, None).await
    }

    /// A token valid now, from memory, the store or a refresh; `None` when there is none and only
    /// an authorization could get one. Never opens a browser.
    ///
    /// # Errors
    /// `Transient` when a refresh could not reach the server; `Store` when the store fails.
    pub async fn cached_token(&self) -> Result<Option<AccessToken>, AuthError> {
        if let Some(token) = self.memory_token() {
            return Ok(Some(token));
        }
        let _flight = self.state.flight.lock().await;
        self.usable_locked(None).await
    }

    /// Runs a new authorization now (a CLI's `login`): for `scopes`, or the scopes the selection
    /// strategy picks when `None`. Replaces the stored tokens.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub async fn authorize(&self, scopes: Option<&ScopeSet>) -> Result<AccessToken, AuthError> {
        let _flight = self.state.flight.lock().await;
        let scopes = scopes.map_or(Scopes::Select, |s| Scopes::Exactly(s.clone()));
        self.authorize_locked(None, scopes, None).await
    }

    /// Handles a 401 from the MCP server (SPEC C-28): `headers` are the response's headers,
    /// `sent` the token the request carried, `operation` names what was attempted (for the
    /// attempt limit; the [`OAuthLayer`](crate::OAuthLayer) uses the method and path).
    ///
    /// Returns the token to retry with: one another task obtained meanwhile, else a refreshed
    /// one, else one from a new authorization for the challenge's `scope` (else the PRM's
    /// `scopes_supported`, else none). A challenge's `resource_metadata` is followed (SPEC C-8);
    /// when the server now names another authorization server, tokens of the old one are dropped.
    ///
    /// A server that challenges with `DPoP` only (RFC 9449 §7.1) is read the same way; when no
    /// DPoP-bound token was sent and the authorization server does not issue them, the answer is
    /// a [`Dpop`](crate::AuthErrorKind::Dpop) error rather than an authorization.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token), `StepUpLimit` once the operation used up its
    /// authorization attempts, and `Dpop` as above.
    pub async fn on_unauthorized(
        &self,
        headers: &HeaderMap,
        sent: Option<&AccessToken>,
        operation: &str,
    ) -> Result<AccessToken, AuthError> {
        let challenge = bearer_challenge(headers);
        let _flight = self.state.flight.lock().await;
        if crate::dpop::demands_dpop(headers) && !sent.is_some_and(AccessToken::is_dpop) {
            self.require_dpop(challenge.as_ref()).await?;
        }
        self.on_unauthorized_locked(challenge.as_ref(), sent, operation)
            .await
    }

    /// Handles a 403 `insufficient_scope` (SPEC C-29): a new authorization for the union of the
    /// scopes granted and the scopes the challenge names, whether or not a refresh token is held.
    /// Returns at once with a token another task obtained meanwhile if it already has those scopes.
    ///
    /// # Errors
    /// `StepUpLimit` once `operation` had
    /// [`max_authorization_attempts`](TokenManagerBuilder::max_authorization_attempts)
    /// authorizations without a success in between (see
    /// [`operation_succeeded`](Self::operation_succeeded)); `Protocol` when the headers carry no
    /// Bearer challenge; otherwise as [`access_token`](Self::access_token).
    pub async fn on_insufficient_scope(
        &self,
        headers: &HeaderMap,
        sent: Option<&AccessToken>,
        operation: &str,
    ) -> Result<AccessToken, AuthError> {
        let challenge = bearer_challenge(headers);
        let _flight = self.state.flight.lock().await;
        self.on_insufficient_scope_locked(challenge.as_ref(), sent, operation)
            .await
    }

    /// Records that `operation` succeeded, which resets its authorization attempt count.
    pub fn operation_succeeded(&self, operation: &str) {
        self.state
            .attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(operation);
    }

    /// Discovers (or returns the discovery made earlier): the protected resource metadata and the
    /// authorization server. See [`discovery`](crate::discovery).
    ///
    /// # Errors
    /// The discovery kinds: `Discovery`, `ResourceMismatch`, `IssuerMismatch`, `PkceUnsupported`,
    /// `InsecureUrl`, `Transient`.
    pub async fn discover(&self) -> Result<Arc<Discovery>, AuthError> {
        self.discovery(None, false).await
    }

    /// Remembers the `DPoP-Nonce` of a response from the server at `url` (RFC 9449 §8, §9), for
    /// the next proof sent to that origin; whether the response had a valid one. The
    /// [`OAuthLayer`](crate::OAuthLayer) calls this on every response; call it when sending
    /// requests by hand with [`AccessToken::dpop_proof`].
    pub fn observe_dpop_nonce(&self, url: &str, headers: &HeaderMap) -> bool {
        self.shared.nonces.observe(url, headers)
    }

    /// Forgets this principal's tokens (memory and store). Registrations are kept.
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn forget(&self) -> Result<(), AuthError> {
        let _flight = self.state.flight.lock().await;
        self.shared.store.remove_tokens(&self.state.key).await?;
        self.set_current(None);
        Ok(())
    }
}

impl Shared {
    fn state_for(&self, principal: Principal) -> Arc<PrincipalState> {
        let mut map = self
            .principals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(principal.clone()).or_insert_with(|| {
            Arc::new(PrincipalState {
                key: TokenKey::new(principal, self.config.resource.clone()),
                current: Mutex::new(Current::default()),
                flight: tokio::sync::Mutex::new(()),
                attempts: Mutex::new(HashMap::new()),
                dpop_key: Mutex::new(None),
            })
        }))
    }
}
