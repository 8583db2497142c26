//! The full-stack demo: an MCP server (rmcp, Streamable HTTP at `/mcp`) with its own
//! authorization server (`mcp-auth-server`) at the same origin, and `mcp-auth-resource` in front
//! of `/mcp`. Any spec-compliant MCP client connects with nothing but the URL.
//!
//! ```text
//! http://127.0.0.1:8080
//! ├── /.well-known/oauth-protected-resource/mcp   RFC 9728 metadata (public)
//! ├── /.well-known/oauth-authorization-server     RFC 8414 metadata (public)
//! ├── /register /authorize /token /revoke /jwks.json and the login page
//! └── /mcp   OriginGuardLayer → BearerAuthLayer → SessionBindingLayer → ToolScopesLayer → rmcp
//! ```
//!
//! The bearer layer's verifier is `Revocable(CachedVerifier(JwtVerifier))` with the embedded
//! server's [`Revocations`](mcp_auth_server::Revocations): what the server revokes is refused at
//! `/mcp` on the next request. The authorization server's own endpoints refuse a non-loopback
//! `Host` (DNS rebinding), as the `OriginGuardLayer` does for `/mcp`.
//!
//! With [`Login::Upstream`] (`--upstream-oidc ISSUER`) users sign in at an OpenID Connect
//! provider instead of the demo's own password page. The provider's tokens for each user are kept
//! in the server's upstream token [`Vault`] (AES-256-GCM under [`UpstreamOidc::vault_key`]),
//! refreshed when they expire, and the `upstream_profile` tool calls the provider's userinfo
//! endpoint with them; the vault is in `/mcp`'s request extensions for the tools
//! ([`UpstreamAccess`](mcp_auth_server::vault::UpstreamAccess)).
//!
//! [`build`] assembles it; [`serve`] runs it with the store maintenance task and a graceful
//! shutdown. `src/main.rs` is the command line; `tests/e2e.rs` drives it with `mcp-auth-client`.

pub mod notes;
pub mod scopes;
pub mod tools;

use std::{fmt, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Extension, Router};
use mcp_auth_core::{Clock, Secret, SystemClock, host::Host};
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, JwtVerifier, OriginGuardLayer, ProtectedResource, Revocable,
    SessionBindingLayer,
};
use mcp_auth_server::{
    AuthorizationServer,
    cimd::CimdConfig,
    login::{HeadlessLogin, LocalLogin, OidcLogin},
    store::{OpenStore, StoreError},
    vault::{Vault, VaultKeyError},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tower::ServiceBuilder;

use crate::{
    notes::Notes,
    tools::{Tools, Upstream},
};

/// The operator-arranged machine client type of [`Config::machine_clients`].
pub use mcp_auth_server::MachineClient;
pub use mcp_auth_server::jwt_bearer::JwtBearerIssuer;
pub use mcp_auth_server::store::Database;
/// The key of [`UpstreamOidc::vault_key`]: base64 of 32 bytes; [`VaultKey::generate`] makes one.
pub use mcp_auth_server::vault::{VAULT_KEY_ENV, VaultKey};

/// The environment variable with the client id registered at the upstream provider
/// (`--upstream-oidc`).
pub const UPSTREAM_CLIENT_ID_ENV: &str = "MCP_AUTH_UPSTREAM_CLIENT_ID";
/// The environment variable with the client secret registered at the upstream provider
/// (`--upstream-oidc`; unset: a public client, PKCE only).
pub const UPSTREAM_CLIENT_SECRET_ENV: &str = "MCP_AUTH_UPSTREAM_CLIENT_SECRET";

/// How often [`serve`] runs [`AuthorizationServer::maintain`].
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The demo user's name with [`Login::Local`] (the `sub` of its tokens).
pub const DEMO_USER: &str = "demo";

/// Who signs in.
#[derive(Clone)]
pub enum Login {
    /// The login and consent page, with one user.
    Local {
        /// The username (the token's `sub`).
        username: String,
        /// The password. Never printed by `Debug`.
        password: String,
    },
    /// `--auto-approve`: every authorization request is approved as `subject` without a page.
    /// Loopback only ([`HeadlessLogin`]).
    AutoApprove {
        /// The user every request is approved as.
        subject: String,
    },
    /// `--upstream-oidc ISSUER`: users sign in at that OpenID Connect provider (the consent page
    /// names it, then the browser goes there and comes back to
    /// [`AuthorizationServer::upstream_redirect_uri`]); their provider tokens are kept in the
    /// vault for the `upstream_profile` tool. Each user's subject is `{issuer}#{sub}`.
    Upstream(UpstreamOidc),
}

/// The upstream OpenID Connect provider of [`Login::Upstream`].
///
/// ```
/// use example_mcp_server::{UpstreamOidc, VaultKey};
///
/// let key = VaultKey::generate().unwrap().to_base64();
/// let mut upstream = UpstreamOidc::new("https://accounts.google.com", "1234.apps.googleusercontent.com", key);
/// upstream.client_secret = Some("GOCSPX-secret".into());
/// assert!(!format!("{upstream:?}").contains("GOCSPX"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct UpstreamOidc {
    /// The provider's issuer URL (https; plain http only on loopback), exactly as its
    /// `/.well-known/openid-configuration` names it.
    pub issuer: String,
    /// The client id registered at the provider (`MCP_AUTH_UPSTREAM_CLIENT_ID`).
    pub client_id: String,
    /// The client secret registered at the provider (`MCP_AUTH_UPSTREAM_CLIENT_SECRET`); `None`
    /// for a public client (PKCE only). Never printed by `Debug`.
    pub client_secret: Option<Secret>,
    /// The vault key, base64 of 32 bytes (`MCP_AUTH_VAULT_KEY`): the users' upstream tokens are
    /// encrypted with it at rest. A new key makes the stored tokens unreadable (the users then
    /// sign in again). Never printed by `Debug`.
    pub vault_key: Secret,
    /// The scopes asked of the provider (`--upstream-scope`). Default `openid email profile`;
    /// add `offline_access` where the provider issues refresh tokens only for it.
    pub scopes: Vec<String>,
    /// The provider's name on the consent page. Default: the issuer's host.
    pub provider_name: Option<String>,
}

impl UpstreamOidc {
    /// The provider `issuer`, as the client `client_id`, with the vault key `vault_key`
    /// (base64); no client secret, the default scopes.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>, vault_key: Secret) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            vault_key,
            scopes: ["openid", "email", "profile"].map(String::from).to_vec(),
            provider_name: None,
        }
    }
}

impl fmt::Debug for UpstreamOidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamOidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("vault_key", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { username, .. } => f
                .debug_struct("Local")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
            Self::AutoApprove { subject } => f
                .debug_struct("AutoApprove")
                .field("subject", subject)
                .finish(),
            Self::Upstream(upstream) => f.debug_tuple("Upstream").field(upstream).finish(),
        }
    }
}

/// The demo's settings: [`Config::new`], then set the fields that differ from the defaults.
///
/// ```
/// use example_mcp_server::{Config, Database, Login};
///
/// let mut config = Config::new(
///     "127.0.0.1:8080".parse().unwrap(),
///     Login::AutoApprove { subject: "alice".to_owned() },
/// );
/// config.db = Some(Database::parse("demo.db", None).expect("a SQLite path"));
/// // Another MCP server on this machine may use this authorization server as its IdP:
/// config.extra_resources.push("http://127.0.0.1:8081/mcp".to_owned());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (a loopback address: the demo serves plain http).
    pub addr: SocketAddr,
    /// The loopback address clients reach this server at, when that is not where it listens:
    /// a proxy or load balancer in front of several replicas (`--public-url`). The issuer is
    /// `http://<public_addr>` and the MCP endpoint `http://<public_addr>/mcp`. Default `None`:
    /// the address the listener is bound to.
    pub public_addr: Option<SocketAddr>,
    /// The SQLite file or PostgreSQL database for clients, refresh tokens, consents and signing
    /// keys; `None` keeps them in memory (tests). Default `None`.
    pub db: Option<Database>,
    /// Who signs in.
    pub login: Login,
    /// More resources (RFC 8707) the embedded authorization server issues tokens for, besides
    /// this demo's own `/mcp`: other MCP servers that trust it as their authorization server
    /// (`--resource`). Default none.
    pub extra_resources: Vec<String>,
    /// The client id and secret a resource server uses at `/introspect` (RFC 7662)
    /// (`--introspection-client`, secret in `MCP_AUTH_INTROSPECTION_SECRET`). Default `None`:
    /// the endpoint is not mounted.
    pub introspection_client: Option<(String, Secret)>,
    /// Accept Client ID Metadata Documents served over plain http from loopback addresses.
    /// Tests only: it lets the server fetch from this machine. Default `false`.
    pub cimd_allow_loopback: bool,
    /// Machine clients the operator arranges (`--machine-client`): each may obtain tokens with
    /// the `client_credentials` grant for exactly its scopes. Default none, and then the grant
    /// is off: no machine grant unless the operator arranges one.
    pub machine_clients: Vec<MachineClient>,
    /// Issuers whose assertions the JWT bearer grant (RFC 7523) accepts: an enterprise IdP's
    /// identity assertion grants (`--id-jag-issuer`), a platform's workload tokens
    /// (`--workload-issuer`). Default none, and then the grant is off.
    pub jwt_bearer_issuers: Vec<JwtBearerIssuer>,
    /// Where time comes from for the authorization server, its vault, the upstream login and
    /// the token verifier of `/mcp`. Default [`SystemClock`]; tests share a
    /// [`ManualClock`](mcp_auth_core::ManualClock) to let tokens expire without waiting.
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// The defaults: no database (memory), no extra resources, no introspection.
    pub fn new(addr: SocketAddr, login: Login) -> Self {
        Self {
            addr,
            public_addr: None,
            db: None,
            login,
            extra_resources: Vec::new(),
            introspection_client: None,
            cimd_allow_loopback: false,
            machine_clients: Vec::new(),
            jwt_bearer_issuers: Vec::new(),
            clock: Arc::new(SystemClock::default()),
        }
    }
}

/// Why the demo cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is not loopback: the issuer would be plain http on a network interface.
    #[error(
        "{0} is not a loopback address: this demo serves plain http, so it listens on 127.0.0.1 or [::1] only"
    )]
    NotLoopback(SocketAddr),
    /// The resource-server configuration is invalid.
    #[error(transparent)]
    Resource(#[from] mcp_auth_resource::ConfigError),
    /// The authorization-server configuration is invalid.
    #[error(transparent)]
    Server(#[from] mcp_auth_server::ConfigError),
    /// The database cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// [`UpstreamOidc::vault_key`] is not base64 of 32 bytes.
    #[error("{VAULT_KEY_ENV}: {0}")]
    VaultKey(#[from] VaultKeyError),
}

/// The assembled demo, ready for [`serve`].
#[derive(Debug)]
pub struct Demo {
    /// Every route: the authorization server, the resource metadata and `/mcp`.
    pub router: Router,
    /// The embedded authorization server.
    pub server: AuthorizationServer,
    /// With [`Login::Upstream`], the callback URL to register at the provider as the redirect
    /// URI (`{issuer}/login/callback`); `None` otherwise.
    pub upstream_redirect_uri: Option<String>,
    /// The MCP endpoint's URL (the resource identifier), e.g. `http://127.0.0.1:8080/mcp`.
    pub mcp_url: String,
    /// The same endpoint as most guides and clients spell it, e.g. `http://localhost:8080/mcp`:
    /// the demo answers to every loopback name of its address (the metadata and challenges use
    /// the client's spelling; tokens are issued for [`mcp_url`](Self::mcp_url) either way).
    pub local_url: String,
    /// Where the state is kept, for people: the SQLite path, the PostgreSQL host, database and
    /// schema (never a password), or `memory`.
    pub database: String,
    /// The store, closed by [`serve`] on shutdown.
    opened: OpenStore,
}

/// Builds the demo for a listener bound to `bound` (the issuer is `http://<bound>`, the MCP
/// endpoint `http://<bound>/mcp`; with [`Config::public_addr`], that address instead of `bound`).
///
/// # Errors
/// [`Error::NotLoopback`] for a non-loopback address, [`Error::Store`] when the database cannot be
/// opened, a configuration error otherwise.
pub async fn build(config: &Config, bound: SocketAddr) -> Result<Demo, Error> {
    let public = config.public_addr.unwrap_or(bound);
    for addr in [bound, public] {
        if !addr.ip().is_loopback() {
            return Err(Error::NotLoopback(addr));
        }
    }
    let issuer = format!("http://{public}");
    let mcp_url = format!("{issuer}/mcp");

    // The authorization server: advertises the minimal scopes, accepts the step-up ones.
    let mut builder = AuthorizationServer::builder(&issuer)
        .clock(Arc::clone(&config.clock))
        .resource(&mcp_url)
        .scopes(scopes::ADVERTISED.concat())
        .unadvertised_scopes(scopes::unadvertised_scopes());
    for resource in &config.extra_resources {
        builder = builder.resource(resource);
    }
    if let Some((client_id, secret)) = &config.introspection_client {
        builder = builder.introspection_client(client_id, secret);
    }
    if !config.machine_clients.is_empty() {
        builder = builder.client_credentials(true);
        for client in &config.machine_clients {
            builder = builder.machine_client(client.clone());
        }
    }
    for issuer in &config.jwt_bearer_issuers {
        builder = builder.jwt_bearer_issuer(issuer.clone());
    }
    if config.cimd_allow_loopback {
        let mut cimd = CimdConfig::default();
        cimd.allow_loopback = true;
        builder = builder.client_id_metadata_documents(Some(cimd));
    }
    let opened = config.db.clone().unwrap_or(Database::Memory).open().await?;
    builder = builder.shared_store(opened.store());
    let database = opened.location().to_owned();
    let mut upstream_login = None;
    builder = match &config.login {
        Login::Local { username, password } => {
            builder.login(LocalLogin::new().user_named(username, "Demo User", password))
        }
        Login::AutoApprove { subject } => {
            builder.login(HeadlessLogin::for_bind_addr(subject.as_str(), bound)?)
        }
        Login::Upstream(upstream) => {
            let key = VaultKey::from_base64(upstream.vault_key.expose())?;
            let login = upstream_login_for(upstream, &config.clock)?;
            upstream_login = Some(login.clone());
            // The same login signs users in and refreshes their tokens for the vault.
            builder
                .login(login.clone())
                .vault(Vault::builder(key).upstream(login))
        }
    };
    let server = builder.build().await?;

    // The resource side trusts the embedded server like any other: keys by discovery, over
    // loopback HTTP, so key rotation (`maintain`) is picked up with no extra wiring. Revocations
    // come straight from the embedded server, checked on every request (cache hits included):
    // a revoked token, or one whose grant was revoked, is refused at once, not at its `exp`.
    let resource = ProtectedResource::builder(&mcp_url)
        .authorization_server(&issuer)
        .scopes_supported(scopes::advertised_scope_set())
        .resource_name("mcp-auth demo notes server")
        .build()?;
    let verifier = Revocable::new(
        CachedVerifier::builder(
            JwtVerifier::for_resource(&issuer, &resource)
                .discover_jwks()
                .clock(Arc::clone(&config.clock))
                .build()?,
        )
        .clock(Arc::clone(&config.clock))
        .build(),
        server.revocations(),
    );

    // rmcp's own Host check is off (empty list): the OriginGuardLayer does it.
    let notes = Notes::new();
    let upstream = upstream_login.map(|login| Upstream::new(login, server.clone()));
    let vault = server.vault().cloned();
    let mcp = StreamableHttpService::new(
        move || {
            let tools = Tools::new(notes.clone());
            Ok(match &upstream {
                Some(upstream) => tools.with_upstream(upstream.clone()),
                None => tools,
            })
        },
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(Vec::<String>::new())
            .with_sse_keep_alive(Some(Duration::from_secs(15))),
    );
    let guard = OriginGuardLayer::for_bind_addr(bound)
        .allow_host(resource.resource().authority())?
        .allow_origin(resource.resource().origin())?
        .build()?;
    let protected = ServiceBuilder::new()
        .layer(guard)
        // The vault's `UpstreamAccess` (in the tools) reads the token's `Subject`.
        .layer(BearerAuthLayer::new(verifier, resource.clone()).with_subject_extension(true))
        .layer(SessionBindingLayer::new())
        .layer(scopes::tool_scopes_layer(resource.clone()))
        // The vault, for `UpstreamAccess::from_parts` in the tools (rmcp copies the request's
        // parts, extensions included, into the tool's context).
        .option_layer(vault.map(Extension))
        .service(mcp);

    let router = Router::new()
        .merge(server.router())
        .merge(resource.metadata_router())
        .route_service("/mcp", protected);
    let local_url = resource
        .resource()
        .loopback_alias(&Host::Name("localhost".into()))
        .map_or_else(|| mcp_url.clone(), |alias| alias.as_str().to_owned());
    let upstream_redirect_uri = server.upstream_redirect_uri();
    Ok(Demo {
        router,
        upstream_redirect_uri,
        server,
        mcp_url,
        local_url,
        database,
        opened,
    })
}

/// The [`OidcLogin`] of `upstream`, on `clock`.
fn upstream_login_for(
    upstream: &UpstreamOidc,
    clock: &Arc<dyn Clock>,
) -> Result<OidcLogin, mcp_auth_server::ConfigError> {
    let mut login = OidcLogin::builder(&upstream.issuer, &upstream.client_id)
        .scopes(upstream.scopes.iter().cloned())
        .clock(Arc::clone(clock));
    if let Some(secret) = &upstream.client_secret {
        login = login.client_secret(secret.expose());
    }
    if let Some(name) = &upstream.provider_name {
        login = login.provider_name(name);
    }
    login.build()
}

/// Serves `demo` on `listener` until `shutdown` completes, running
/// [`AuthorizationServer::maintain`] every [`MAINTENANCE_INTERVAL`]; then lets open requests
/// finish and closes the database.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    demo: Demo,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = demo.server.clone();
    let maintenance = tokio::spawn(async move {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = server.maintain().await {
                tracing::warn!(%error, "maintenance failed; retrying in a minute");
            }
        }
    });
    // With the peer address: the authorization server throttles failed client authentications
    // per address as well as per client id.
    let app = demo
        .router
        .into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY: rmcp answers in SSE, and without it the last small write of each answer
    // waits for the client's delayed ACK (about 40 ms per call on a kept-alive connection).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    maintenance.abort();
    demo.opened.close().await;
    served
}

/// A random password for the demo user: 20 characters from a 32-character alphabet without
/// `l`, `o`, `0` and `1` (100 bits), in dash-separated groups of five.
///
/// # Errors
/// When the operating system's random source fails.
pub fn random_password() -> std::io::Result<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("the random source failed: {e}")))?;
    let mut out = String::with_capacity(23);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32: no modulo bias.
        out.push(char::from(ALPHABET[usize::from(*b) % 32]));
    }
    Ok(out)
}
