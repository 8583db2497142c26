//! [`TokenManagerBuilder`]: every setting of a [`TokenManager`], checked when it is built.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use mcp_auth_core::{Clock, ResourceId, Secret, SystemClock, is_loopback_host};

use super::{
    Shared, TokenManager,
    config::{
        Config, DEFAULT_AUTHORIZATION_TIMEOUT, DEFAULT_MAX_AUTHORIZATION_ATTEMPTS,
        DEFAULT_REFRESH_BUFFER, MAX_ATTEMPTS_LIMIT, RetryPolicy,
    },
};
use crate::{
    authorize::{BrowserOpener, Enterprise, SystemBrowser},
    error::ConfigError,
    fetch::{Http, UrlPolicy},
    registration::ClientCredentials,
    store::{MemoryTokenStore, TokenStore},
    token::Principal,
};

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
    jwt_bearer_assertion: Option<Secret>,
    enterprise: Option<Enterprise>,
    assume_s256: Vec<String>,
    dpop: bool,
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

impl TokenManagerBuilder {
    pub(super) fn new(url: &str) -> Self {
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
    pub fn jwt_bearer_grant(mut self, assertion: impl Into<Secret>) -> Self {
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
        id_token: impl Into<Secret>,
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
