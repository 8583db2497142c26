//! Put the whole MCP authorization stack in front of any MCP server, in any language.
//!
//! `mcp-auth-gateway` is a reverse proxy for the MCP Streamable HTTP transport (both protocol
//! eras, 2025-11-25 and 2026-07-28) that does all of the OAuth work the MCP specification asks
//! of a server, so that Claude Code, VS Code or the MCP Inspector connect with only its URL:
//!
//! ```text
//! http://127.0.0.1:8080                                    (the gateway)
//! ├── /.well-known/oauth-protected-resource/mcp            RFC 9728 metadata (public)
//! ├── /.well-known/oauth-authorization-server, /register,  the embedded authorization server
//! │   /authorize, /token, /revoke, /jwks.json, login page  (mode "embedded")
//! ├── /.well-known/mcp-gateway/jwks.json                   keys of the identity JWTs (identity "jwt")
//! └── /mcp   body read (bounded) → OriginGuardLayer → BearerAuthLayer → per-client rate limit → SessionBindingLayer
//!            → ToolScopesLayer (403 step-up) → McpProxy → http://127.0.0.1:8000/mcp (the upstream)
//! ```
//!
//! Every route is behind the per-address rate limit and the access log.
//!
//! The pieces are the workspace's own: [`mcp_auth_resource`]'s layers and verifiers,
//! [`mcp_auth_server`]'s authorization server (local users, the upstream OpenID Connect sign-in,
//! SQLite), and three small pieces of this crate that any tower stack can reuse:
//! [`proxy::McpProxy`] (the streaming proxy), [`identity::Identity`] (what the upstream learns of
//! the caller) and [`middleware`] (rate limits, access log).
//!
//! [`build`] assembles a [`Gateway`] from a [`Config`]; [`serve`] runs it with a graceful
//! shutdown. The `mcp-auth-gateway` binary is the command line around them.
//!
//! # Example
//!
//! ```no_run
//! use mcp_auth_gateway::{Config, build, serve};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::for_upstream("http://127.0.0.1:8000/mcp");
//! config.scopes.tools.insert("delete_everything".into(), "admin".into());
//! config.scopes.hide_unauthorized_tools = true;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let gateway = build(&config, listener.local_addr()?).await?;
//! println!("connect MCP clients to {}", gateway.mcp_url);
//! serve(listener, gateway, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
mod error;
pub mod filter;
pub mod identity;
pub mod middleware;
pub mod proxy;
mod upstream;

use std::{fmt, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    middleware::{from_fn, from_fn_with_state},
    routing::get,
};
use http::{HeaderValue, header};
use mcp_auth_core::{Clock, Secret, SystemClock, is_loopback_host};
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, ClientAuth, Either, IntrospectionVerifier, JwtVerifier,
    OriginGuardLayer, ProtectedResource, Revocable, SessionBindingLayer, ToolScopesLayer,
};
use mcp_auth_server::{
    AuthorizationServer, Revocations,
    keys::{KeyPolicy, KeySet},
    login::{HeadlessLogin, LocalLogin, OidcLogin},
    store::{Database, MemoryStore, OpenStore},
};
use tower::ServiceBuilder;
use tower_http::{limit::RequestBodyLimitLayer, map_request_body::MapRequestBodyLayer};

pub use self::config::{
    AuthConfig, Config, ConfigError, EmbeddedAuth, ExternalAuth, IdentityMode, LimitsConfig,
    OidcConfig, Overrides, ScopesConfig, UpstreamConfig, UserConfig,
};
pub use self::error::Error;
use self::{
    filter::ToolVisibility,
    identity::{Identity, JWKS_PATH, JwtIdentity},
    middleware::RateLimits,
    proxy::McpProxy,
};

/// The assembled gateway, ready for [`serve`].
pub struct Gateway {
    /// Every route.
    pub router: Router,
    /// The MCP endpoint clients connect to (the resource identifier), e.g.
    /// `http://127.0.0.1:8080/mcp`.
    pub mcp_url: String,
    /// The authorization server tokens come from (the embedded one's issuer is the public URL).
    pub issuer: String,
    /// The embedded authorization server, in mode `embedded`.
    pub server: Option<AuthorizationServer>,
    /// The identity JWT signer, with identity `jwt`.
    pub identity_jwt: Option<JwtIdentity>,
    store: Option<OpenStore>,
    shutdown_grace: Duration,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("mcp_url", &self.mcp_url)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The token verifiers the gateway can use: the embedded server's JWTs with its revocations
/// checked on every request, an external issuer's JWTs, or opaque tokens by introspection.
type Verifier = Either<
    Revocable<CachedVerifier<JwtVerifier>, Revocations>,
    Either<CachedVerifier<JwtVerifier>, IntrospectionVerifier>,
>;

fn env_secret(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Config(format!("the environment variable {name} is not set")))
}

/// The loopback address to reach a listener bound to `bound` from this process.
fn loopback_of(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        let ip: std::net::IpAddr = if bound.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, bound.port())
    } else {
        bound
    }
}

/// Builds the gateway for a listener bound to `bound`.
///
/// # Errors
/// [`Error`] for an invalid configuration, or a database that cannot be opened.
pub async fn build(config: &Config, bound: SocketAddr) -> Result<Gateway, Error> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let public = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let public = public.trim_end_matches('/').to_owned();
    if !config.path.starts_with('/') || config.path.starts_with("/.well-known") {
        return Err(Error::Config(format!(
            "path {:?} must start with / and not be under /.well-known",
            config.path
        )));
    }
    let mcp_url = format!("{public}{}", config.path);

    // The upstream, and what it may learn of the caller.
    let upstream = &config.upstream;
    let upstream_url = url::Url::parse(&upstream.url)
        .map_err(|e| Error::Config(format!("upstream URL {:?}: {e}", upstream.url)))?;
    let private = upstream.unix_socket.is_some()
        || upstream_url
            .host_str()
            .is_some_and(|h| is_loopback_host(h.trim_start_matches('[').trim_end_matches(']')));
    let mode = upstream.identity.unwrap_or(if private {
        IdentityMode::Headers
    } else {
        IdentityMode::Jwt
    });
    if mode == IdentityMode::Headers && !private {
        return Err(Error::Config(format!(
            "identity \"headers\" needs an upstream on a loopback address or a unix socket, \
             not {}: anyone who can reach it could forge them; use identity \"jwt\"",
            upstream.url
        )));
    }

    // Scopes: the advertised minimum, and every tool scope the server must accept.
    let supported = config.scopes.supported.join(" ");
    let mut all_scopes: Vec<String> = config.scopes.supported.clone();
    let more = config
        .scopes
        .tools
        .values()
        .chain([&config.scopes.default, &config.scopes.required]);
    for scope in more.flat_map(|s| s.split_whitespace()) {
        if !all_scopes.iter().any(|s| s == scope) {
            all_scopes.push(scope.to_owned());
        }
    }
    let unadvertised: Vec<String> = all_scopes
        .iter()
        .filter(|s| !config.scopes.supported.contains(s))
        .cloned()
        .collect();

    let mut opened = None;
    let mut server = None;
    let (issuer, verifier) = match &config.auth {
        AuthConfig::Embedded(embedded) => {
            let mut builder = AuthorizationServer::builder(&public)
                .clock(Arc::clone(&clock))
                .resource(&mcp_url)
                .scopes(config.scopes.supported.iter().cloned())
                .unadvertised_scopes(unadvertised.iter().cloned());
            if let Some(ttl) = embedded.access_token_ttl_secs {
                builder = builder.access_token_ttl(Duration::from_secs(ttl));
            }
            let database = Database::parse(
                embedded.db.as_deref().unwrap_or("mcp-auth-gateway.db"),
                embedded.db_schema.clone(),
            )
            .map_err(|e| Error::Config(format!("auth.db: {e}")))?;
            let store = database.open().await?;
            builder = builder.shared_store(store.store());
            opened = Some(store);
            let ways = usize::from(!embedded.users.is_empty())
                + usize::from(embedded.auto_approve.is_some())
                + usize::from(embedded.oidc.is_some());
            if ways != 1 {
                return Err(Error::Config(
                    "the embedded authorization server needs exactly one way to sign in: \
                     [[auth.users]], auth.auto_approve or [auth.oidc]"
                        .to_owned(),
                ));
            }
            if let Some(subject) = &embedded.auto_approve {
                builder = builder.login(HeadlessLogin::for_bind_addr(subject.as_str(), bound)?);
            } else if let Some(oidc) = &embedded.oidc {
                let mut login =
                    OidcLogin::builder(&oidc.issuer, &oidc.client_id).clock(Arc::clone(&clock));
                if !oidc.scopes.is_empty() {
                    login = login.scopes(oidc.scopes.iter().cloned());
                }
                if let Some(name) = &oidc.client_secret_env {
                    login = login.client_secret(env_secret(name)?);
                }
                if let Some(name) = &oidc.provider_name {
                    login = login.provider_name(name);
                }
                builder = builder.login(login.build()?);
            } else {
                let mut login = LocalLogin::new();
                for user in &embedded.users {
                    let password = match (&user.password, &user.password_env) {
                        (Some(p), None) => Secret::new(p.clone()),
                        (None, Some(name)) => Secret::new(env_secret(name)?),
                        _ => {
                            return Err(Error::Config(format!(
                                "user {:?}: give exactly one of password and password_env",
                                user.username
                            )));
                        }
                    };
                    let display = user.display_name.as_deref().unwrap_or(&user.username);
                    login = login.user_named(&user.username, display, password.expose());
                }
                builder = builder.login(login);
            }
            let built = builder.build().await?;
            server = Some(built);
            (public.clone(), None)
        }
        AuthConfig::External(external) => (external.issuer.clone(), Some(external)),
    };

    let resource = ProtectedResource::builder(&mcp_url)
        .authorization_server(&issuer)
        .scopes_supported(
            supported
                .parse()
                .map_err(mcp_auth_resource::ConfigError::from)?,
        )
        .resource_name("MCP server (mcp-auth-gateway)")
        .build()?;

    let verifier: Verifier = match (&server, verifier) {
        (Some(server), _) => {
            // The embedded server's keys, fetched over loopback from this very listener (so
            // rotation is picked up), and its revocations on every request.
            let jwks = format!("http://{}/jwks.json", loopback_of(bound));
            Either::Left(Revocable::new(
                CachedVerifier::builder(
                    JwtVerifier::for_resource(&issuer, &resource)
                        .jwks_uri(jwks)
                        .clock(Arc::clone(&clock))
                        .build()?,
                )
                .clock(Arc::clone(&clock))
                .build(),
                server.revocations(),
            ))
        }
        (None, Some(external)) => match &external.introspection_url {
            Some(url) => {
                let auth = match (
                    &external.introspection_client_id,
                    &external.introspection_secret_env,
                ) {
                    (Some(id), Some(env)) => {
                        ClientAuth::client_secret_basic(id, env_secret(env)?.as_str())
                    }
                    (None, None) => ClientAuth::none(),
                    _ => {
                        return Err(Error::Config(
                            "introspection_client_id and introspection_secret_env go together"
                                .to_owned(),
                        ));
                    }
                };
                Either::Right(Either::Right(
                    IntrospectionVerifier::builder(url, resource.resource().clone(), auth)
                        .issuer(&external.issuer)
                        .build()?,
                ))
            }
            None => {
                let mut builder = JwtVerifier::for_resource(&external.issuer, &resource)
                    .discover_jwks()
                    .clock(Arc::clone(&clock));
                if external.accept_jwt_typ {
                    builder = builder.accept_jwt_typ();
                }
                if let Some(audience) = &external.accept_audience {
                    builder = builder.accept_audience(audience);
                }
                Either::Right(Either::Left(CachedVerifier::new(builder.build()?)))
            }
        },
        (None, None) => return Err(Error::Config("no authorization configured".to_owned())),
    };

    // The identity the upstream gets.
    let mut identity_jwt = None;
    let identity = match mode {
        IdentityMode::None => Identity::None,
        IdentityMode::Headers => Identity::Headers,
        IdentityMode::Jwt => {
            let keys = match &server {
                Some(server) => server.keys().clone(),
                None => {
                    KeySet::load_or_create(
                        &MemoryStore::new(),
                        KeyPolicy::default(),
                        clock.unix_seconds(),
                    )
                    .await?
                }
            };
            let audience = upstream
                .audience
                .clone()
                .unwrap_or_else(|| upstream.url.clone());
            let jwt = JwtIdentity::new(
                keys,
                &public,
                audience,
                Duration::from_secs(upstream.identity_ttl_secs),
                Arc::clone(&clock),
            );
            identity_jwt = Some(jwt.clone());
            Identity::Jwt(jwt)
        }
    };

    // Per-tool scopes: one table for the 403 and for hiding.
    let default_scopes =
        config.scopes.default.parse().map_err(|e| {
            Error::Config(format!("scopes.default {:?}: {e}", config.scopes.default))
        })?;
    let mut visibility = ToolVisibility::new(mcp_auth_resource::ScopeSet::clone(&default_scopes));
    let max_body = config.limits.max_body_bytes.clamp(
        ToolScopesLayer::MIN_MAX_BODY_SIZE,
        ToolScopesLayer::MAX_MAX_BODY_SIZE,
    );
    let mut tool_scopes = ToolScopesLayer::new(resource.clone())
        .default_scopes(default_scopes)
        .max_body_size(max_body)?;
    for (tool, scopes) in &config.scopes.tools {
        let parsed: mcp_auth_resource::ScopeSet = scopes
            .parse()
            .map_err(|e| Error::Config(format!("scopes.tools.{tool} {scopes:?}: {e}")))?;
        tool_scopes = tool_scopes.tool(tool, parsed.clone());
        visibility = visibility.tool(tool, parsed);
    }

    let mut proxy = McpProxy::builder(&upstream.url)
        .identity(identity)
        .connect_timeout(Duration::from_secs(upstream.connect_timeout_secs.max(1)))
        .response_timeout(Duration::from_secs(upstream.response_timeout_secs.max(1)))
        .idle_timeout(Duration::from_secs(upstream.idle_timeout_secs.max(1)))
        .max_body_bytes(max_body);
    if let Some(path) = &upstream.unix_socket {
        proxy = proxy.unix_socket(path);
    }
    if config.scopes.hide_unauthorized_tools {
        proxy = proxy.hide_tools(visibility);
    }
    let proxy = proxy.build()?;

    let guard = OriginGuardLayer::for_bind_addr(bound)
        .allow_host(resource.resource().authority())?
        .allow_origin(resource.resource().origin())?
        .build()?;
    let mut bearer = BearerAuthLayer::new(verifier, resource.clone());
    if !config.scopes.required.trim().is_empty() {
        let required = config.scopes.required.parse().map_err(|e| {
            Error::Config(format!("scopes.required {:?}: {e}", config.scopes.required))
        })?;
        bearer = bearer.required_scopes(required);
    }
    let limits = RateLimits::new(
        config.limits.per_ip_per_minute,
        config.limits.per_client_per_minute,
    );
    let protected = ServiceBuilder::new()
        .layer(from_fn(middleware::json_rpc_rejection))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(MapRequestBodyLayer::new(axum::body::Body::new))
        .layer(from_fn_with_state(
            middleware::BodyTimeout(ToolScopesLayer::DEFAULT_BODY_TIMEOUT),
            middleware::read_body,
        ))
        .layer(guard)
        .layer(bearer)
        // No per-client middleware at all when that limit is off.
        .option_layer(
            (config.limits.per_client_per_minute > 0)
                .then(|| from_fn_with_state(limits.clone(), middleware::per_client)),
        )
        .layer(SessionBindingLayer::new())
        .layer(tool_scopes)
        .service(proxy);

    let mut router = Router::new()
        .merge(resource.metadata_router())
        .route_service(&config.path, protected);
    if let Some(server) = &server {
        router = router.merge(server.router());
    }
    if let Some(jwt) = &identity_jwt {
        let jwt = jwt.clone();
        router = router.route(
            JWKS_PATH,
            get(move || {
                let jwks = jwt.jwks_json();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        jwks,
                    )
                }
            }),
        );
    }
    // `middleware::per_ip` inside `middleware::access_log`, as one middleware.
    let router = router.layer(from_fn_with_state(limits, middleware::access_log_per_ip));

    Ok(Gateway {
        router,
        mcp_url,
        issuer,
        server,
        identity_jwt,
        store: opened,
        shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
    })
}

/// The response of [`serve`]'s routes with a body that ends with an error once `cut` is set.
fn cut_after_grace(
    response: axum::response::Response,
    cut: &tokio::sync::watch::Receiver<bool>,
) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let body = CutBody {
        inner: body,
        cut: cut.clone(),
        waiting: None,
    };
    axum::response::Response::from_parts(parts, axum::body::Body::new(body))
}

pin_project_lite::pin_project! {
    /// A body that ends with an error once the shutdown grace period is over. It waits for the
    /// cut (a boxed future) only once it has to wait for its own next frame: a body that is
    /// there at once (most JSON answers) costs no future.
    struct CutBody {
        #[pin]
        inner: axum::body::Body,
        cut: tokio::sync::watch::Receiver<bool>,
        waiting: Option<futures_util::future::BoxFuture<'static, ()>>,
    }
}

impl http_body::Body for CutBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let cut_error = || {
            std::task::Poll::Ready(Some(Err(axum::Error::new(
                "cut at the end of the shutdown grace period",
            ))))
        };
        let cut = match this.waiting {
            Some(waiting) => waiting.as_mut().poll(cx).is_ready(),
            None => *this.cut.borrow(),
        };
        if cut {
            return cut_error();
        }
        let frame = this.inner.poll_frame(cx);
        if frame.is_pending() && this.waiting.is_none() {
            let mut cut = this.cut.clone();
            let waiting = this.waiting.insert(Box::pin(async move {
                let _ = cut.wait_for(|c| *c).await;
            }));
            if waiting.as_mut().poll(cx).is_ready() {
                return cut_error();
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// How often [`serve`] runs the embedded server's maintenance (key rotation, expired grants).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `gateway` on `listener` until `shutdown` completes; then lets open requests and
/// streams finish for the configured grace period (`shutdown_grace_secs`), cuts what is still
/// open, and closes the database.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let maintenance = gateway.server.clone().map(|server| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = server.maintain().await {
                    tracing::warn!(%error, "maintenance failed; retrying in a minute");
                }
            }
        })
    });
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let (cutting, cut) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    // Every response body ends when the grace period is over, so that open streams (an SSE
    // answer, a GET stream) are cut and their connections close.
    let app = gateway
        .router
        .layer(tower::util::MapResponseLayer::new(
            move |response: axum::response::Response| cut_after_grace(response, &cut),
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY on every accepted connection: an SSE answer is forwarded event by event, and
    // without it the last small write of each answer waits for the client's delayed ACK (about
    // 40 ms per call on a kept-alive connection, measured with bench-gateway).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let served = axum::serve(listener, app).with_graceful_shutdown(signal);
    let grace = gateway.shutdown_grace;
    let mut served = std::pin::pin!(std::future::IntoFuture::into_future(served));
    let result = tokio::select! {
        result = &mut served => result,
        () = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "open requests and streams cut after the shutdown grace period");
            let _ = cutting.send(true);
            // The cut bodies end their connections; what still waits for an upstream's answer
            // is bounded by the response timeout.
            match tokio::time::timeout(Duration::from_secs(1), &mut served).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Some(task) = maintenance {
        task.abort();
    }
    if let Some(store) = &gateway.store {
        store.close().await;
    }
    result
}
