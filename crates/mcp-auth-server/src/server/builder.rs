//! [`AuthorizationServerBuilder`]: every setting, checked in
//! [`build`](AuthorizationServerBuilder::build) (in `build.rs`), which assembles the server's
//! state.

mod build;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{Clock, Secret, SystemClock};

use crate::clients::MachineClient;
use crate::keys::{KeyPolicy, SigningAlgorithm};
use crate::login::Login;
use crate::store::{Store, TokenHash};
use crate::vault::VaultBuilder;

#[cfg(feature = "cimd")]
use crate::cimd::CimdConfig;

#[cfg(doc)]
use {
    super::AuthorizationServer,
    crate::{error::ConfigError, login::LocalLogin, store::MemoryStore},
};

/// Default of [`AuthorizationServerBuilder::max_body_size`]: 64 KiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 64 * 1024;
/// Default of [`AuthorizationServerBuilder::request_timeout`]: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures an [`AuthorizationServer`]. Every setting is checked in
/// [`build`](Self::build).
#[must_use]
pub struct AuthorizationServerBuilder {
    issuer: String,
    resources: Vec<String>,
    default_resource: Option<String>,
    scopes: Vec<String>,
    unadvertised_scopes: Vec<String>,
    default_scopes: Vec<String>,
    store: Option<Arc<dyn Store>>,
    login: Option<Arc<dyn Login>>,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "dpop")]
    dpop: bool,
    #[cfg(feature = "dpop")]
    dpop_nonces: bool,
    #[cfg(feature = "dpop")]
    dpop_nonce_secret: Option<Secret>,
    key_policy: KeyPolicy,
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    public_refresh_token_ttl: Duration,
    refresh_grace: Duration,
    grant_ttl: Duration,
    code_ttl: Duration,
    dynamic_registration: bool,
    reuse_public_registrations: bool,
    unused_public_client_ttl: Duration,
    revocation_poll: Duration,
    client_credentials: bool,
    issue_refresh_tokens: bool,
    offline_access: bool,
    introspection_clients: Vec<(String, TokenHash)>,
    machine_clients: Vec<MachineClient>,
    registrations_per_minute: u32,
    failed_logins_per_user: u32,
    failed_client_auths: u32,
    authorization_pages_per_address: u32,
    max_body_size: usize,
    request_timeout: Duration,
    #[cfg(feature = "cimd")]
    cimd: Option<CimdConfig>,
    vault: Option<VaultBuilder>,
    #[cfg(feature = "jwt-assertions")]
    jwt_bearer: Vec<crate::jwt_bearer::JwtBearerIssuer>,
}

impl fmt::Debug for AuthorizationServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServerBuilder")
            .field("issuer", &self.issuer)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServerBuilder {
    pub(super) fn new(issuer: String) -> Self {
        Self {
            issuer,
            resources: Vec::new(),
            default_resource: None,
            scopes: Vec::new(),
            unadvertised_scopes: Vec::new(),
            default_scopes: Vec::new(),
            store: None,
            login: None,
            clock: Arc::new(SystemClock::default()),
            #[cfg(feature = "dpop")]
            dpop: false,
            #[cfg(feature = "dpop")]
            dpop_nonces: false,
            #[cfg(feature = "dpop")]
            dpop_nonce_secret: None,
            key_policy: KeyPolicy::default(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            public_refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            refresh_grace: Duration::from_secs(30),
            grant_ttl: Duration::from_secs(90 * 24 * 3600),
            code_ttl: Duration::from_secs(60),
            dynamic_registration: true,
            reuse_public_registrations: true,
            unused_public_client_ttl: Duration::from_secs(30 * 24 * 3600),
            revocation_poll: Duration::from_millis(500),
            client_credentials: false,
            issue_refresh_tokens: true,
            offline_access: false,
            introspection_clients: Vec::new(),
            machine_clients: Vec::new(),
            registrations_per_minute: 60,
            failed_logins_per_user: 10,
            failed_client_auths: 20,
            authorization_pages_per_address: 100,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            #[cfg(feature = "cimd")]
            cimd: Some(CimdConfig::default()),
            vault: None,
            #[cfg(feature = "jwt-assertions")]
            jwt_bearer: Vec::new(),
        }
    }

    /// A resource (RFC 8707; the MCP server's canonical URL) this server issues tokens for.
    /// The first one is also the default for requests that name none, unless
    /// [`default_resource`](Self::default_resource) says otherwise.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The resource used when a request names none (AS-21), or `None` to refuse such requests
    /// with `invalid_target`. Defaults to the first configured resource.
    pub fn default_resource(mut self, resource: Option<&str>) -> Self {
        self.default_resource = Some(resource.unwrap_or("").to_owned());
        self
    }

    /// Scopes clients may request and that are advertised in `scopes_supported`.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Scopes clients may request but that are not advertised (reached by step-up).
    pub fn unadvertised_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.unadvertised_scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Scopes granted when an authorization request names none (default: none).
    pub fn default_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.default_scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The store (default: a [`MemoryStore`], which forgets everything on restart).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A shared store.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Who the user is (default: a [`LocalLogin`] with no users, so nobody can sign in).
    pub fn login(mut self, login: impl Login) -> Self {
        self.login = Some(Arc::new(login));
        self
    }

    /// The clock (tests use [`ManualClock`](mcp_auth_core::ManualClock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The algorithm for new signing keys (default ES256).
    pub fn signing_algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.key_policy.algorithm = algorithm;
        self
    }

    /// Key rotation policy.
    pub fn key_policy(mut self, policy: KeyPolicy) -> Self {
        self.key_policy = policy;
        self
    }

    /// Access-token lifetime (default 15 minutes; at most 24 hours).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Refresh-token inactivity lifetime for confidential clients (default 30 days).
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Refresh-token inactivity lifetime for public clients (default 14 days; AS-46).
    pub fn public_refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.public_refresh_token_ttl = ttl;
        self
    }

    /// The refresh grace window (default 30 seconds; at most 10 minutes; whole seconds count).
    ///
    /// A refresh token presented again within this time after its rotation, by its own client,
    /// for a grant still active, while none of its successors has been used yet, gets a fresh
    /// token pair in the same family instead of revoking the family: a client's two processes,
    /// or a retry after a lost response, no longer sign the user out. Any other reuse (later,
    /// after a successor was used, or from another client) revokes the family.
    /// [`Duration::ZERO`] restores strict reuse detection. See the crate README, "Security".
    ///
    /// [`build`](Self::build) fails with [`ConfigError::InvalidLifetime`] over 10 minutes.
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.refresh_grace = grace;
        self
    }

    /// Absolute lifetime of a grant, however active (default 90 days).
    pub fn grant_ttl(mut self, ttl: Duration) -> Self {
        self.grant_ttl = ttl;
        self
    }

    /// Authorization-code lifetime (default 60 s; at most 10 minutes, AS-15).
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Mount `/register` (RFC 7591; default on).
    pub fn dynamic_registration(mut self, enabled: bool) -> Self {
        self.dynamic_registration = enabled;
        self
    }

    /// DPoP (RFC 9449, default **off**): a token request with a `DPoP` proof gets a DPoP-bound
    /// access token (`token_type: DPoP`, `cnf.jkt`); a public client's refresh token is bound to
    /// the same key, and refreshing it needs a proof by that key. Requests without a proof get
    /// bearer tokens as before. The metadata lists `dpop_signing_alg_values_supported`.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = enabled;
        self
    }

    /// With [`dpop`](Self::dpop): every proof must carry a recent server nonce (RFC 9449 §8); one
    /// without gets 400 `use_dpop_nonce` and a `DPoP-Nonce` header. Default off.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn dpop_nonces(mut self, enabled: bool) -> Self {
        self.dpop_nonces = enabled;
        self
    }

    /// With [`dpop`](Self::dpop): server nonces (as [`dpop_nonces(true)`](Self::dpop_nonces)), made
    /// and checked under `secret`, so that replicas sharing a store accept each other's nonces.
    /// Give every replica the same secret, of at least 32 bytes (`openssl rand -base64 32`).
    ///
    /// Without it each process draws a secret of its own: a nonce one replica issued is refused
    /// by another, which answers `use_dpop_nonce` again (a client retries once), so behind a
    /// round-robin proxy the token endpoint would keep asking.
    ///
    /// Replicas still keep the proofs' `jti` replay cache each in its own memory: a proof sent
    /// to one replica could be replayed to another within its lifetime (60 s, plus 30 s of
    /// clock skew), for the same method, URL and key. Nonces bound that window to the nonce's.
    ///
    /// ```
    /// # use mcp_auth_core::Secret;
    /// # use mcp_auth_server::AuthorizationServer;
    /// // The same on every replica: from the environment or a secret manager.
    /// # let secret = Secret::new("0123456789abcdef0123456789abcdef");
    /// let builder = AuthorizationServer::builder("https://auth.example.com")
    ///     .dpop(true)
    ///     .dpop_nonce_secret(&secret);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn dpop_nonce_secret(mut self, secret: &Secret) -> Self {
        self.dpop_nonces = true;
        self.dpop_nonce_secret = Some(secret.clone());
        self
    }

    /// Allow the `client_credentials` grant (default **off**). Even when on, only the machine
    /// clients the operator registers ([`machine_client`](Self::machine_client),
    /// [`AuthorizationServer::register_machine_client`]) may use it, each for its own scopes:
    /// open registration and Client ID Metadata Documents never get a machine grant.
    pub fn client_credentials(mut self, enabled: bool) -> Self {
        self.client_credentials = enabled;
        self
    }

    /// Register a machine client at build time (it replaces a stored client with the same id,
    /// so a changed secret or scope list takes effect at the next start). Needs
    /// [`client_credentials(true)`](Self::client_credentials). See [`MachineClient`].
    pub fn machine_client(mut self, client: MachineClient) -> Self {
        self.machine_clients.push(client);
        self
    }

    /// Issue refresh tokens with authorization-code grants (default on).
    pub fn refresh_tokens(mut self, enabled: bool) -> Self {
        self.issue_refresh_tokens = enabled;
        self
    }

    /// Accept the OpenID Connect `offline_access` scope and list it in `scopes_supported`
    /// (default **off**).
    ///
    /// MCP 2026-07-28 (SEP-2207) lets a client add `offline_access` to its authorization and
    /// token requests only when the server lists it; clients written for OpenID Connect
    /// providers do. The scope changes nothing about refresh tokens: they go to every client
    /// registered for the `refresh_token` grant, whether it asked for `offline_access` or not,
    /// and never to one that is not. Once granted, `offline_access` appears in the token's
    /// `scope` like any other scope; do not list it in the protected resource's
    /// `scopes_supported` or challenges (refresh tokens are not a resource requirement).
    ///
    /// Off, a request naming `offline_access` is refused with `invalid_scope`, like any scope
    /// the server does not know; [`unadvertised_scopes`](Self::unadvertised_scopes) can accept
    /// it without advertising it.
    ///
    /// [`build`](Self::build) fails with [`ConfigError::Invalid`] when this is on while
    /// [`refresh_tokens`](Self::refresh_tokens) is off, and when `offline_access` is listed in
    /// [`scopes`](Self::scopes) (which are advertised) while this is off.
    ///
    /// ```
    /// use mcp_auth_server::AuthorizationServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = AuthorizationServer::builder("https://auth.example.com")
    ///     .resource("https://mcp.example.com/mcp")
    ///     .scopes(["mcp:tools"])
    ///     .offline_access(true)
    ///     .build()
    ///     .await?;
    /// assert_eq!(server.metadata().scopes_supported, ["mcp:tools", "offline_access"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn offline_access(mut self, enabled: bool) -> Self {
        self.offline_access = enabled;
        self
    }

    /// Credentials a resource server uses to call `/introspect` (Basic or form body). Without
    /// any, the endpoint is not mounted.
    pub fn introspection_client(mut self, client_id: impl Into<String>, secret: &Secret) -> Self {
        self.introspection_clients
            .push((client_id.into(), TokenHash::of(secret.expose())));
        self
    }

    /// Whether a dynamic registration of a **public** client (`token_endpoint_auth_method`
    /// `none`) whose metadata is identical to a public client registered before returns that
    /// client instead of creating another (default `true`). "Identical" is the canonical JSON of
    /// the metadata as registered (after defaults are filled in and ignored members dropped):
    /// redirect URIs (in order), name, grant and response types, software id and version,
    /// application type, scope, URIs, contacts. The answer is the same `201` a new registration
    /// gets, with the original `client_id` and `client_id_issued_at`. Such a repeat does not count
    /// against [`registrations_per_minute`](Self::registrations_per_minute): it creates nothing.
    /// Confidential registrations always create a new client (its secret is shown only once).
    pub fn reuse_public_registrations(mut self, enabled: bool) -> Self {
        self.reuse_public_registrations = enabled;
        self
    }

    /// How long a dynamically registered **public** client may go without completing an
    /// authorization (an authorization code exchanged; counted from its registration when it
    /// never did) before [`AuthorizationServer::maintain`] deletes it (default 30 days; SPEC
    /// AS-46). A client holding a grant still active is kept until the grant ends; confidential,
    /// operator-registered and metadata-document clients are never removed this way.
    /// `Duration::ZERO` keeps every client.
    pub fn unused_public_client_ttl(mut self, ttl: Duration) -> Self {
        self.unused_public_client_ttl = ttl;
        self
    }

    /// How often the server reads the store for revocations other replicas made (default
    /// 500 ms), so that a resource server in this process using
    /// [`revocations`](AuthorizationServer::revocations) refuses a token revoked on any replica
    /// within this interval plus one store round trip. Revocations made by this process apply
    /// at once. The reading runs on the Tokio runtime that builds the server, for as long as
    /// the server lives; `Duration::ZERO` turns it off (a single process needs none).
    pub fn revocation_poll_interval(mut self, interval: Duration) -> Self {
        self.revocation_poll = interval;
        self
    }

    /// At most this many dynamic registrations per minute, server-wide (default 60; AS-46).
    /// Over the limit, `/register` answers 429 with `Retry-After`.
    pub fn registrations_per_minute(mut self, limit: u32) -> Self {
        self.registrations_per_minute = limit;
        self
    }

    /// After this many failed sign-ins for one username within 15 minutes, the login form
    /// refuses that username until the window ends (default 10).
    pub fn failed_logins_per_user(mut self, limit: u32) -> Self {
        self.failed_logins_per_user = limit;
        self
    }

    /// After this many failed client authentications for one `client_id`, or from one address,
    /// within 5 minutes, `/token`, `/revoke` and `/introspect` answer 429 with `Retry-After` for
    /// that id or address until the window ends (default 20). Addresses are known when the
    /// router is served with `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn failed_client_auths(mut self, limit: u32) -> Self {
        self.failed_client_auths = limit;
        self
    }

    /// At most this many authorization requests that wait for the user (a consent or sign-in
    /// page, each kept in the store for up to 10 minutes) from one address within 10 minutes
    /// (default 100). Over the limit, `GET /authorize` answers 429 with `Retry-After` (an error
    /// page) until the window ends, and stores nothing. A request answered at once (remembered
    /// consent, a [`Login`] that approves at once) is not counted. Without this bound one address
    /// could fill the store with pending authorizations as fast as it can send requests.
    /// Addresses are known when the router is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without them nothing is counted.
    pub fn authorization_pages_per_address(mut self, limit: u32) -> Self {
        self.authorization_pages_per_address = limit;
        self
    }

    /// The largest request body any endpoint reads, in bytes (default 64 KiB; 1 KiB to 16 MiB):
    /// tower-http's `RequestBodyLimitLayer` on every route. A larger body gets 413, as the
    /// endpoint's own error (`invalid_request` JSON at the OAuth endpoints, an error page at
    /// `/authorize`); a declared `Content-Length` over the limit is refused before the body is
    /// read. `/register` keeps its own, smaller cap of 16 KiB.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The longest any request may take, from its head to the response head (default 30 s;
    /// 1 s to 10 minutes): tower-http's `TimeoutLayer` on every route. A request over it gets
    /// 503 `temporarily_unavailable` with `Retry-After` (an error page at `/authorize`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Client ID Metadata Document limits (`None` turns CIMD off; default on).
    #[cfg(feature = "cimd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cimd")))]
    pub fn client_id_metadata_documents(mut self, config: Option<CimdConfig>) -> Self {
        self.cimd = config;
        self
    }

    /// Keep the users' upstream tokens in this vault (see [`crate::vault`]): encrypted with its
    /// key, refreshed through its upstreams, deleted when a user's grant is revoked. The built
    /// server hands it out with [`AuthorizationServer::vault`].
    ///
    /// [`build`](Self::build) fails with [`ConfigError::Invalid`] when the vault has no
    /// upstream or two with the same id, and [`ConfigError::InvalidLifetime`] for a refresh
    /// margin over an hour or a refresh timeout outside 1 s to 5 minutes.
    pub fn vault(mut self, vault: VaultBuilder) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Trust `issuer`'s assertions for the JWT bearer grant (RFC 7523; repeatable): identity
    /// assertion grants from an enterprise IdP, or workload tokens from a platform. The grant
    /// (and its `grant_types_supported` entry) is on when at least one issuer is trusted. See
    /// [`crate::jwt_bearer`] for the rules; [`build`](Self::build) fails with
    /// [`ConfigError`] for an issuer without scopes, a workload issuer without clients, or an
    /// unknown scope or resource.
    #[cfg(feature = "jwt-assertions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt-assertions")))]
    pub fn jwt_bearer_issuer(mut self, issuer: crate::jwt_bearer::JwtBearerIssuer) -> Self {
        self.jwt_bearer.push(issuer);
        self
    }
}
