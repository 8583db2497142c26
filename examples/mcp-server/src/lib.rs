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
//! [`build`] assembles it; [`serve`] runs it with the store maintenance task and a graceful
//! shutdown. `src/main.rs` is the command line; `tests/e2e.rs` drives it with `mcp-auth-client`.

pub mod notes;
pub mod scopes;
pub mod tools;

use std::{fmt, future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use axum::Router;
use mcp_auth_core::{Secret, host::Host};
use mcp_auth_resource::{
    BearerAuthLayer, ProtectedResource,
    mcp::SessionBindingLayer,
    origin::OriginGuardLayer,
    verify::{cache::CachedVerifier, jwt::JwtVerifier, revocation::Revocable},
};
use mcp_auth_server::{
    AuthorizationServer,
    cimd::CimdConfig,
    login::{HeadlessLogin, LocalLogin},
    store::{MemoryStore, SqliteStore, StoreError},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tower::ServiceBuilder;

use crate::{notes::Notes, tools::Tools};

/// The operator-arranged machine client type of [`Config::machine_clients`].
pub use mcp_auth_server::MachineClient;

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
        }
    }
}

/// The demo's settings: [`Config::new`], then set the fields that differ from the defaults.
///
/// ```
/// use example_mcp_server::{Config, Login};
///
/// let mut config = Config::new(
///     "127.0.0.1:8080".parse().unwrap(),
///     Login::AutoApprove { subject: "alice".to_owned() },
/// );
/// config.db = Some("demo.db".into());
/// // Another MCP server on this machine may use this authorization server as its IdP:
/// config.extra_resources.push("http://127.0.0.1:8081/mcp".to_owned());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (a loopback address: the demo serves plain http).
    pub addr: SocketAddr,
    /// The SQLite file for clients, refresh tokens, consents and signing keys; `None` keeps them
    /// in memory (tests). Default `None`.
    pub db: Option<PathBuf>,
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
}

impl Config {
    /// The defaults: no database (memory), no extra resources, no introspection.
    pub fn new(addr: SocketAddr, login: Login) -> Self {
        Self {
            addr,
            db: None,
            login,
            extra_resources: Vec::new(),
            introspection_client: None,
            cimd_allow_loopback: false,
            machine_clients: Vec::new(),
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
}

/// The assembled demo, ready for [`serve`].
#[derive(Debug)]
pub struct Demo {
    /// Every route: the authorization server, the resource metadata and `/mcp`.
    pub router: Router,
    /// The embedded authorization server.
    pub server: AuthorizationServer,
    /// The MCP endpoint's URL (the resource identifier), e.g. `http://127.0.0.1:8080/mcp`.
    pub mcp_url: String,
    /// The same endpoint as most guides and clients spell it, e.g. `http://localhost:8080/mcp`:
    /// the demo answers to every loopback name of its address (the metadata and challenges use
    /// the client's spelling; tokens are issued for [`mcp_url`](Self::mcp_url) either way).
    pub local_url: String,
    /// The SQLite store, closed by [`serve`] on shutdown.
    sqlite: Option<SqliteStore>,
}

/// Builds the demo for a listener bound to `bound` (the issuer is `http://<bound>`, the MCP
/// endpoint `http://<bound>/mcp`).
///
/// # Errors
/// [`Error::NotLoopback`] for a non-loopback address, [`Error::Store`] when the database cannot be
/// opened, a configuration error otherwise.
pub async fn build(config: &Config, bound: SocketAddr) -> Result<Demo, Error> {
    if !bound.ip().is_loopback() {
        return Err(Error::NotLoopback(bound));
    }
    let issuer = format!("http://{bound}");
    let mcp_url = format!("{issuer}/mcp");

    // The authorization server: advertises the minimal scopes, accepts the step-up ones.
    let mut builder = AuthorizationServer::builder(&issuer)
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
    if config.cimd_allow_loopback {
        let mut cimd = CimdConfig::default();
        cimd.allow_loopback = true;
        builder = builder.client_id_metadata_documents(Some(cimd));
    }
    let sqlite = match &config.db {
        Some(path) => {
            let store = SqliteStore::open(path).await?;
            builder = builder.store(store.clone());
            Some(store)
        }
        None => {
            builder = builder.store(MemoryStore::new());
            None
        }
    };
    builder = match &config.login {
        Login::Local { username, password } => {
            builder.login(LocalLogin::new().with_user_named(username, "Demo User", password))
        }
        Login::AutoApprove { subject } => {
            builder.login(HeadlessLogin::for_bind_addr(subject.as_str(), bound)?)
        }
    };
    let server = builder.build().await?;

    // The resource side trusts the embedded server like any other: keys by discovery, over
    // loopback HTTP, so key rotation (`maintain`) is picked up with no extra wiring. Revocations
    // come straight from the embedded server, checked on every request (cache hits included):
    // a revoked token, or one whose grant was revoked, is refused at once, not at its `exp`.
    let resource = ProtectedResource::builder(&mcp_url)
        .authorization_server(&issuer)
        .scopes_supported(scopes::advertised_scopes())
        .resource_name("mcp-auth demo notes server")
        .build()?;
    let verifier = Revocable::new(
        CachedVerifier::new(
            JwtVerifier::for_resource(&issuer, &resource)
                .discover_jwks()
                .build()?,
        ),
        server.revocations(),
    );

    // rmcp's own Host check is off (empty list): the OriginGuardLayer does it.
    let notes = Notes::new();
    let mcp = StreamableHttpService::new(
        move || Ok(Tools::new(notes.clone())),
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
        .layer(BearerAuthLayer::new(verifier, resource.clone()))
        .layer(SessionBindingLayer::new())
        .layer(scopes::tool_scopes_layer(resource.clone())?)
        .service(mcp);

    let router = Router::new()
        .merge(server.router())
        .merge(resource.metadata_router())
        .route_service("/mcp", protected);
    let local_url = resource
        .resource()
        .loopback_alias(&Host::Name("localhost".into()))
        .map_or_else(|| mcp_url.clone(), |alias| alias.as_str().to_owned());
    Ok(Demo {
        router,
        server,
        mcp_url,
        local_url,
        sqlite,
    })
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
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    maintenance.abort();
    if let Some(store) = &demo.sqlite {
        store.close().await;
    }
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
