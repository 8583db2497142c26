//! An MCP server (rmcp, Streamable HTTP at `/mcp`) protected by `mcp-auth-resource` alone, trusting
//! an external authorization server. Run it with `cargo run -p example-resource-server`.
//!
//! See [`Config::from_env`] for the settings and the crate README for Keycloak, Auth0 and Entra ID.

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, ClientAuth, ConfigError, Either, IntrospectionVerifier,
    JwtVerifier, OriginGuardLayer, ProtectedResource, ScopeSet, SessionBindingLayer,
    ToolScopesLayer,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tower::ServiceBuilder;

mod tools;

/// The scope every tool call needs; the only one advertised in `scopes_supported` (SPEC RS-6).
pub const TOOLS_SCOPE: &str = "mcp:tools";
/// The extra scope `admin_tool` needs; clients get it by step-up after a 403.
pub const ADMIN_SCOPE: &str = "mcp:admin";

/// The example's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MCP_AUTH_ADDR`: where to listen. Default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// `MCP_AUTH_RESOURCE`: the canonical URI clients use. Default `http://<addr>/mcp`.
    pub resource: String,
    /// `MCP_AUTH_ISSUER`: the trusted authorization server's issuer identifier. JWT keys are found
    /// through its RFC 8414 / OpenID Connect metadata. Default `http://127.0.0.1:9000`.
    pub issuer: String,
    /// `MCP_AUTH_INTROSPECTION_URL`: when set, tokens are opaque and checked by RFC 7662
    /// introspection at this URL instead of as JWTs.
    pub introspection_url: Option<String>,
    /// `MCP_AUTH_INTROSPECTION_CLIENT_ID` / `MCP_AUTH_INTROSPECTION_CLIENT_SECRET`: this resource
    /// server's credentials at the introspection endpoint (HTTP Basic).
    pub introspection_client: Option<(String, String)>,
    /// `MCP_AUTH_INTROSPECTION_CACHE_SECS`: how long an introspected active token is cached, in
    /// seconds; this bounds how long a revoked token keeps working here. `0` turns the cache off
    /// (one introspection per request). Default `None`: the verifier's default (60 s).
    pub introspection_cache_ttl: Option<Duration>,
    /// `MCP_AUTH_ACCEPT_JWT_TYP=1`: also accept JWTs with `typ: JWT` (Keycloak, Auth0 and Entra ID
    /// send that instead of RFC 9068's `at+jwt`).
    pub accept_jwt_typ: bool,
    /// `MCP_AUTH_ACCEPT_AUDIENCE`: one more `aud` value to accept, by exact string (Microsoft
    /// Entra ID v2.0 access tokens carry the API's client ID there). Name only this resource.
    pub accept_audience: Option<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable does not parse.
    #[error("{0} is not valid: {1}")]
    Env(&'static str, String),
    /// The auth configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Config {
    /// Reads the settings from the environment.
    ///
    /// # Errors
    /// [`Error::Env`] when a variable does not parse.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let addr: SocketAddr = var("MCP_AUTH_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .map_err(|e| Error::Env("MCP_AUTH_ADDR", format!("{e}")))?;
        let resource = var("MCP_AUTH_RESOURCE").unwrap_or_else(|| format!("http://{addr}/mcp"));
        let issuer = var("MCP_AUTH_ISSUER").unwrap_or_else(|| "http://127.0.0.1:9000".to_owned());
        let introspection_client = match (
            var("MCP_AUTH_INTROSPECTION_CLIENT_ID"),
            var("MCP_AUTH_INTROSPECTION_CLIENT_SECRET"),
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            _ => {
                return Err(Error::Env(
                    "MCP_AUTH_INTROSPECTION_CLIENT_ID/_SECRET",
                    "set both or neither".to_owned(),
                ));
            }
        };
        let introspection_cache_ttl = var("MCP_AUTH_INTROSPECTION_CACHE_SECS")
            .map(|v| {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|e| Error::Env("MCP_AUTH_INTROSPECTION_CACHE_SECS", format!("{e}")))
            })
            .transpose()?;
        Ok(Self {
            addr,
            resource,
            issuer,
            introspection_url: var("MCP_AUTH_INTROSPECTION_URL"),
            introspection_client,
            introspection_cache_ttl,
            accept_jwt_typ: var("MCP_AUTH_ACCEPT_JWT_TYP").is_some_and(|v| v == "1" || v == "true"),
            accept_audience: var("MCP_AUTH_ACCEPT_AUDIENCE"),
        })
    }
}

/// The two ways this example checks tokens, chosen at run time: JWTs (keys from the issuer's
/// metadata, with the verified-token cache in front) or opaque tokens by introspection (it
/// caches on its own).
pub type Verifier = Either<CachedVerifier<JwtVerifier>, IntrospectionVerifier>;

/// The protected resource of this configuration.
///
/// # Errors
/// [`Error::Config`] for an invalid resource URI or issuer.
pub fn protected_resource(config: &Config) -> Result<ProtectedResource, Error> {
    Ok(ProtectedResource::builder(&config.resource)
        .authorization_server(&config.issuer)
        .scopes_supported(TOOLS_SCOPE.parse().map_err(ConfigError::from)?)
        .resource_name("mcp-auth example resource server")
        .build()?)
}

/// The verifier of this configuration.
///
/// # Errors
/// [`Error::Config`] for an invalid issuer or introspection URL.
pub fn verifier(config: &Config, resource: &ProtectedResource) -> Result<Verifier, Error> {
    if let Some(url) = &config.introspection_url {
        let auth = match &config.introspection_client {
            Some((id, secret)) => ClientAuth::client_secret_basic(id, secret.as_str()),
            None => ClientAuth::none(),
        };
        let mut builder = IntrospectionVerifier::builder(url, resource.resource().clone(), auth)
            .issuer(&config.issuer);
        if let Some(ttl) = config.introspection_cache_ttl {
            builder = builder.cache_ttl(ttl);
        }
        let v = builder.build()?;
        return Ok(Either::Right(v));
    }
    let mut builder = JwtVerifier::for_resource(&config.issuer, resource).discover_jwks();
    if config.accept_jwt_typ {
        builder = builder.accept_jwt_typ();
    }
    if let Some(audience) = &config.accept_audience {
        builder = builder.accept_audience(audience);
    }
    Ok(Either::Left(CachedVerifier::new(builder.build()?)))
}

/// The whole application: the RFC 9728 metadata (public) and `/mcp` behind the Origin/Host guard,
/// the bearer layer, the session binding (a session is usable only by the user who created it)
/// and the tool-scope layer.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration.
pub fn app(config: &Config) -> Result<Router, Error> {
    let resource = protected_resource(config)?;
    let verifier = verifier(config, &resource)?;

    // rmcp's own Host check is turned off (empty list): the OriginGuardLayer below does it, with
    // the resource's host allowed as well as loopback names on a loopback bind.
    let mcp = StreamableHttpService::new(
        || Ok(tools::Tools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(Vec::<String>::new())
            .with_sse_keep_alive(Some(Duration::from_secs(15))),
    );

    let mut guard = OriginGuardLayer::for_bind_addr(config.addr);
    let authority = resource.resource().authority();
    guard = guard
        .allow_host(authority)?
        .allow_origin(resource.resource().origin())?;
    let guard = guard.build()?;

    let tool_scopes = ToolScopesLayer::new(resource.clone())
        .tool(
            "whoami",
            TOOLS_SCOPE.parse::<ScopeSet>().map_err(ConfigError::from)?,
        )
        .tool(
            "admin_tool",
            ADMIN_SCOPE.parse::<ScopeSet>().map_err(ConfigError::from)?,
        );

    let protected = ServiceBuilder::new()
        .layer(guard)
        .layer(BearerAuthLayer::new(verifier, resource.clone()))
        .layer(SessionBindingLayer::new())
        .layer(tool_scopes)
        .service(mcp);

    Ok(Router::new()
        .route_service("/mcp", protected)
        .merge(resource.metadata_router()))
}
