//! [`TokenManager`]: one MCP server, one principal, tokens always ready.
//!
//! # What it does
//!
//! - [`access_token`](TokenManager::access_token) returns a token that is valid now: the one in
//!   memory, else the stored one, else a refreshed one, else — if the manager is interactive — one
//!   from a full authorization (discovery, registration, PKCE S256, loopback redirect).
//! - [`cached_token`](TokenManager::cached_token) does the same without ever starting an
//!   authorization: what an outbound request uses before the server has asked for anything.
//! - [`on_unauthorized`](TokenManager::on_unauthorized) handles a 401: adopts a token another task
//!   already obtained, else refreshes, else authorizes with the challenge's scopes (SPEC C-28).
//! - [`on_insufficient_scope`](TokenManager::on_insufficient_scope) handles a 403
//!   `insufficient_scope`: a new authorization for the **union** of the granted and challenged
//!   scopes — never a refresh, which cannot widen a grant — at most
//!   [`max_authorization_attempts`](TokenManagerBuilder::max_authorization_attempts) (3) times per
//!   operation until one succeeds (SPEC C-29, C-30).
//!
//! # Refresh
//!
//! Expiry is stored as an absolute time and a token is refreshed
//! [`refresh_buffer`](TokenManagerBuilder::refresh_buffer) (60 s) before it expires. However many
//! tasks ask at once, **one** refresh runs (per principal and server) and the others wait for its
//! result; across processes the [store lock](crate::store::TokenStore::lock) plays the same role,
//! and a token another process stored meanwhile is adopted instead of refreshing again. The refresh
//! request carries the same `resource` as the authorization (SPEC C-19) and the client's registered
//! secret and authentication method (SPEC C-18); a rotated refresh token replaces the old one
//! (SPEC C-24).
//!
//! A refresh the server **rejects** (`invalid_grant`, `invalid_client`, …) discards the tokens and
//! leads to a new authorization. Before that, an `invalid_grant` makes the manager read the store
//! once more: another process sharing it without sharing its lock may have refreshed with the same
//! (now rotated) refresh token, and its stored token is adopted instead of re-authorizing. A **transient** failure (network, timeout, 5xx, 429) is retried
//! with bounded exponential backoff ([`RetryPolicy`]) and then reported as
//! [`AuthErrorKind::Transient`](crate::AuthErrorKind::Transient) — the refresh token is kept.
//!
//! # Example
//!
//! ```
//! use mcp_auth_client::{TokenManager, store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore}};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryTokenStore::new();
//! let manager = TokenManager::builder("https://mcp.example.com/mcp")
//!     .store(store.clone())
//!     .interactive(false) // an agent with no user at hand: never open a browser
//!     .build()?;
//! assert!(manager.cached_token().await?.is_none());
//!
//! // A token obtained earlier (by this process or another one sharing the store).
//! let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
//! let record = StoredTokens::new(
//!     "https://auth.example.com", "https://auth.example.com/token",
//!     "https://mcp.example.com/mcp", "client-1", "tok-1",
//! );
//! store.save_tokens(&key, &record).await?;
//! let fresh = TokenManager::builder("https://mcp.example.com/mcp").store(store).build()?;
//! assert_eq!(fresh.access_token().await?.expose(), "tok-1");
//! # Ok(())
//! # }
//! ```

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use http::HeaderMap;
use mcp_auth_core::{Clock, ResourceId, ScopeSet, Secret, SystemClock, is_loopback_host};

use crate::{
    authorize::{BrowserOpener, SystemBrowser},
    discovery::Discovery,
    dpop::{Nonces, ProofKey},
    error::{AuthError, ConfigError},
    fetch::{Http, UrlPolicy},
    registration::ClientCredentials,
    store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore},
    token::{AccessToken, Principal},
};

mod flow;

pub(crate) use self::flow::bearer_challenge;

/// How transient failures of a refresh are retried: `max_attempts` tries in all, waiting
/// `initial_backoff`, then twice as long each time, at most `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 250 ms then 500 ms apart (at most 5 s).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// `max_attempts` tries in all (at least 1), default backoff.
    #[must_use]
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// No retry: one attempt.
    #[must_use]
    pub fn none() -> Self {
        Self::new(1)
    }

    /// The first wait.
    #[must_use]
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// The longest wait.
    #[must_use]
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// Tries in all.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything the builder set.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) resource: ResourceId,
    pub(crate) policy: UrlPolicy,
    pub(crate) client_name: String,
    pub(crate) cimd_url: Option<String>,
    pub(crate) credentials: Vec<ClientCredentials>,
    pub(crate) dynamic_registration: bool,
    pub(crate) redirect_port: u16,
    pub(crate) authorization_timeout: Duration,
    pub(crate) refresh_buffer: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_authorization_attempts: u32,
    pub(crate) interactive: bool,
    pub(crate) offline_access: bool,
    pub(crate) client_credentials_grant: bool,
    pub(crate) jwt_bearer_assertion: Option<mcp_auth_core::Secret>,
    pub(crate) enterprise: Option<Enterprise>,
    pub(crate) assume_s256: Vec<String>,
    pub(crate) dpop: bool,
}

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
/// Cheap to clone (an `Arc`); clones share everything. See the [module docs](crate::manager) for
/// the behaviour and an example, and [`OAuthLayer`](crate::OAuthLayer) for the outbound layer
/// that calls it.
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
        self.authorize_locked(None, flow::Scopes::Select, None)
            .await
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
        let scopes = scopes.map_or(flow::Scopes::Select, |s| flow::Scopes::Exactly(s.clone()));
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
        let challenge = flow::bearer_challenge(headers);
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
        let challenge = flow::bearer_challenge(headers);
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

    fn now(&self) -> SystemTime {
        self.shared.clock.now()
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

/// Configures a [`TokenManager`]. Every setting is checked in [`build`](Self::build).
#[must_use]
pub struct TokenManagerBuilder {
    url: String,
    principal: Principal,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    browser: Option<Arc<dyn BrowserOpener>>,
    allow_insecure_loopback: bool,
    client_name: String,
    cimd_url: Option<String>,
    credentials: Vec<ClientCredentials>,
    dynamic_registration: bool,
    redirect_port: u16,
    authorization_timeout: Duration,
    request_timeout: Duration,
    refresh_buffer: Duration,
    retry: RetryPolicy,
    max_authorization_attempts: u32,
    interactive: bool,
    offline_access: bool,
    client_credentials_grant: bool,
    jwt_bearer_assertion: Option<mcp_auth_core::Secret>,
    enterprise: Option<Enterprise>,
    assume_s256: Vec<String>,
    dpop: bool,
}

/// Enterprise-managed authorization (SEP-990): where the identity assertion grant comes from.
#[derive(Debug, Clone)]
pub(crate) struct Enterprise {
    /// The enterprise IdP's token endpoint (RFC 8693 token exchange).
    pub(crate) idp_token_endpoint: String,
    /// This client's id at the IdP.
    pub(crate) idp_client_id: String,
    /// The user's ID token from the IdP (the subject token).
    pub(crate) id_token: mcp_auth_core::Secret,
}

impl fmt::Debug for TokenManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("url", &self.url)
            .field("principal", &self.principal)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The default [`TokenManagerBuilder::refresh_buffer`].
pub const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// The default [`TokenManagerBuilder::authorization_timeout`].
pub const DEFAULT_AUTHORIZATION_TIMEOUT: Duration = Duration::from_secs(300);
/// The default [`TokenManagerBuilder::max_authorization_attempts`] (SPEC C-30).
pub const DEFAULT_MAX_AUTHORIZATION_ATTEMPTS: u32 = 3;
/// The largest value [`TokenManagerBuilder::max_authorization_attempts`] accepts.
pub(crate) const MAX_ATTEMPTS_LIMIT: u32 = 10;

impl TokenManagerBuilder {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            principal: Principal::shared(),
            store: None,
            clock: None,
            browser: None,
            allow_insecure_loopback: false,
            client_name: "mcp-auth-client".to_owned(),
            cimd_url: None,
            credentials: Vec::new(),
            dynamic_registration: true,
            redirect_port: 0,
            authorization_timeout: DEFAULT_AUTHORIZATION_TIMEOUT,
            request_timeout: Duration::from_secs(30),
            refresh_buffer: DEFAULT_REFRESH_BUFFER,
            retry: RetryPolicy::default(),
            max_authorization_attempts: DEFAULT_MAX_AUTHORIZATION_ATTEMPTS,
            interactive: true,
            offline_access: true,
            client_credentials_grant: false,
            jwt_bearer_assertion: None,
            enterprise: None,
            assume_s256: Vec::new(),
            dpop: true,
        }
    }

    /// Whose tokens (default: [`Principal::shared`]).
    pub fn principal(mut self, principal: impl Into<Principal>) -> Self {
        self.principal = principal.into();
        self
    }

    /// Where tokens and registrations are kept (default: a new [`MemoryTokenStore`]).
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store shared as an `Arc`.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where time comes from (default: [`SystemClock`]); tests pass a
    /// [`ManualClock`](mcp_auth_core::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How the authorization URL is shown (default: [`SystemBrowser`]).
    pub fn browser(mut self, browser: impl BrowserOpener) -> Self {
        self.browser = Some(Arc::new(browser));
        self
    }

    /// Allows plain `http` to loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) for every URL:
    /// the MCP server, metadata, endpoints. Off by default: https only (SPEC C-9). For local
    /// development and the conformance suite, whose mocks run on `http://localhost`.
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback = allow;
        self
    }

    /// The `client_name` sent at dynamic registration (default `mcp-auth-client`).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// The URL of this application's Client ID Metadata Document (https with a path), used as
    /// `client_id` with authorization servers that advertise
    /// `client_id_metadata_document_supported` (SPEC C-13, C-15). The document must list
    /// `http://127.0.0.1/callback` (any port) among its `redirect_uris` and use
    /// `token_endpoint_auth_method` `none`. With
    /// [`allow_insecure_loopback`](Self::allow_insecure_loopback), an `http://` URL on a
    /// loopback host is accepted too (for tests against a local server).
    pub fn client_id_metadata_document(mut self, url: impl Into<String>) -> Self {
        self.cimd_url = Some(url.into());
        self
    }

    /// Pre-registered client credentials (SPEC C-14); may be given several times (one per issuer,
    /// and/or one for any issuer). They take priority over every other registration.
    pub fn client_credentials(mut self, credentials: ClientCredentials) -> Self {
        self.credentials.push(credentials);
        self
    }

    /// Whether dynamic registration (RFC 7591) may be used (default: yes).
    pub fn dynamic_registration(mut self, enabled: bool) -> Self {
        self.dynamic_registration = enabled;
        self
    }

    /// The loopback redirect port (default 0: a free port each time).
    pub fn redirect_port(mut self, port: u16) -> Self {
        self.redirect_port = port;
        self
    }

    /// How long to wait for the authorization response (default 5 minutes).
    pub fn authorization_timeout(mut self, timeout: Duration) -> Self {
        self.authorization_timeout = timeout;
        self
    }

    /// The timeout of each HTTP request the manager makes (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long before expiry a token is refreshed (default 60 s).
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.refresh_buffer = buffer;
        self
    }

    /// How transient refresh failures are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many authorizations one operation may trigger before it succeeds (default 3,
    /// SPEC C-30; 1 to 10).
    pub fn max_authorization_attempts(mut self, attempts: u32) -> Self {
        self.max_authorization_attempts = attempts;
        self
    }

    /// Whether the manager may start an authorization (open a browser). Default: yes. An agent
    /// without a user sets `false` and gets
    /// [`InteractionRequired`](crate::AuthErrorKind::InteractionRequired) instead.
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = interactive;
        self
    }

    /// Whether to add `offline_access` to the requested scopes when the authorization server lists
    /// it in `scopes_supported` (SEP-2207), so a refresh token is issued. Default: yes.
    pub fn offline_access(mut self, request: bool) -> Self {
        self.offline_access = request;
        self
    }

    /// A machine client (no user at hand): tokens come from the OAuth client credentials grant
    /// (RFC 6749 §4.4) with the [pre-registered credentials](Self::client_credentials) for the
    /// authorization server — `client_secret_basic` or `client_secret_post` — never from a
    /// browser. Scopes are chosen as for a user (SPEC C-20), a 403 `insufficient_scope` asks
    /// again for the union, and an expired token is replaced by a new grant. Default: off.
    pub fn client_credentials_grant(mut self, machine: bool) -> Self {
        self.client_credentials_grant = machine;
        self
    }

    /// Workload identity federation (SEP-1933; RFC 7523 §2.1): tokens come from the JWT bearer
    /// grant with `assertion`, a JWT the platform issued to this workload (its audience the
    /// authorization server), and the [pre-registered](Self::client_credentials) client id; never
    /// from a browser. A rejected assertion is reported, not retried with another grant.
    pub fn jwt_bearer_grant(mut self, assertion: impl Into<mcp_auth_core::Secret>) -> Self {
        self.jwt_bearer_assertion = Some(assertion.into());
        self
    }

    /// Enterprise-managed authorization (SEP-990, "ID-JAG"): the user's `id_token` from the
    /// enterprise IdP is exchanged at `idp_token_endpoint` (RFC 8693, as `idp_client_id`) for an
    /// identity assertion grant naming the MCP server's authorization server and resource, which
    /// the [pre-registered](Self::client_credentials) confidential client presents with the JWT
    /// bearer grant (RFC 7523). No browser. The endpoint is checked like every other URL.
    pub fn enterprise_managed_authorization(
        mut self,
        idp_token_endpoint: impl Into<String>,
        idp_client_id: impl Into<String>,
        id_token: impl Into<mcp_auth_core::Secret>,
    ) -> Self {
        self.enterprise = Some(Enterprise {
            idp_token_endpoint: idp_token_endpoint.into(),
            idp_client_id: idp_client_id.into(),
            id_token: id_token.into(),
        });
        self
    }

    /// **Non-conformant override** (SPEC C-11): proceed with PKCE S256 although the authorization
    /// server `issuer` does not advertise `code_challenge_methods_supported` (Entra ID and Cognito
    /// omit it in their OIDC documents). Logged at `warn` each time it applies.
    pub fn assume_pkce_s256(mut self, issuer: impl Into<String>) -> Self {
        self.assume_s256.push(issuer.into());
        self
    }

    /// Whether to use DPoP (RFC 9449) when the authorization server advertises it (default: yes,
    /// with the `dpop` feature). When on and the server's metadata lists `ES256` in
    /// `dpop_signing_alg_values_supported`, every token request carries a proof signed by this
    /// principal's key (generated once and kept in the store with the tokens), the tokens come
    /// back DPoP-bound, and every request to the MCP server carries `Authorization: DPoP` and a
    /// fresh proof. `DPoP-Nonce` challenges are answered with one retry. When off, or when the
    /// server does not advertise DPoP, tokens are bearer tokens, as without DPoP.
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = enabled;
        self
    }

    /// Checks the configuration and builds the manager. No I/O.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid or insecure MCP server URL, an invalid Client ID Metadata
    /// Document URL, or an out-of-range number.
    pub fn build(self) -> Result<TokenManager, ConfigError> {
        let resource = ResourceId::parse(&self.url)?;
        let policy = UrlPolicy {
            allow_insecure_loopback: self.allow_insecure_loopback,
        };
        policy.check_config(resource.as_str(), "MCP server")?;
        if let Some(cimd) = &self.cimd_url {
            let url = url::Url::parse(cimd).map_err(|_| ConfigError::MetadataDocumentUrl)?;
            // Plain http only on loopback, with the same opt-in as every other URL.
            let secure = url.scheme() == "https"
                || (self.allow_insecure_loopback
                    && url.scheme() == "http"
                    && url.host_str().is_some_and(is_loopback_host));
            if !secure || matches!(url.path(), "" | "/") || url.fragment().is_some() {
                return Err(ConfigError::MetadataDocumentUrl);
            }
        }
        if let Some(enterprise) = &self.enterprise {
            policy.check_config(&enterprise.idp_token_endpoint, "IdP token endpoint")?;
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_authorization_attempts) {
            return Err(ConfigError::OutOfRange {
                what: "max_authorization_attempts",
            });
        }
        if self.authorization_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(ConfigError::OutOfRange { what: "timeout" });
        }
        let http = Http::new(self.request_timeout)?;
        let shared = Arc::new(Shared {
            config: Config {
                resource,
                policy,
                client_name: self.client_name,
                cimd_url: self.cimd_url,
                credentials: self.credentials,
                dynamic_registration: self.dynamic_registration,
                redirect_port: self.redirect_port,
                authorization_timeout: self.authorization_timeout,
                refresh_buffer: self.refresh_buffer,
                retry: self.retry,
                max_authorization_attempts: self.max_authorization_attempts,
                interactive: self.interactive,
                offline_access: self.offline_access,
                client_credentials_grant: self.client_credentials_grant,
                jwt_bearer_assertion: self.jwt_bearer_assertion,
                enterprise: self.enterprise,
                assume_s256: self.assume_s256,
                dpop: self.dpop,
            },
            http,
            store: self
                .store
                .unwrap_or_else(|| Arc::new(MemoryTokenStore::new())),
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(SystemClock::default())),
            browser: self
                .browser
                .unwrap_or_else(|| Arc::new(SystemBrowser::new())),
            discovery: tokio::sync::Mutex::new(None),
            registration: tokio::sync::Mutex::new(()),
            nonces: Arc::default(),
            principals: Mutex::new(HashMap::new()),
        });
        let state = shared.state_for(self.principal);
        Ok(TokenManager { shared, state })
    }
}
