//! The gateway's settings: a TOML file ([`Config::from_toml`]), with flags and environment
//! variables on top for the common case ([`Overrides`]).
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! # public_url = "https://mcp.example.com"    # behind a TLS proxy; default http://<listen>
//! # path = "/mcp"
//!
//! [upstream]
//! url = "http://127.0.0.1:8000/mcp"
//! # identity = "headers"                    # "headers" (loopback only), "jwt" or "none"
//! # audience = "http://127.0.0.1:8000/mcp"  # the identity JWT's `aud`; default: the upstream URL
//!
//! [auth]
//! mode = "embedded"                          # or "external"
//! db = "mcp-auth-gateway.db"
//! [[auth.users]]
//! username = "alice"
//! password_env = "ALICE_PASSWORD"
//!
//! [scopes]
//! supported = ["mcp:tools"]
//! default = "mcp:tools"
//! hide_unauthorized_tools = true
//! [scopes.tools]
//! delete_everything = "admin"
//! ```
//!
//! Every duration is in whole seconds. Secrets (passwords, client secrets) are best given by the
//! name of an environment variable (`*_env`); `Debug` never prints them.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf};

use mcp_auth_server::store::Database;
use serde::Deserialize;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse or has an unknown key.
    #[error("the configuration does not parse: {0}")]
    Toml(String),
    /// A setting is missing or invalid.
    #[error("{0}")]
    Invalid(String),
    /// The configuration file cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// Everything the gateway needs. Start from [`Config::for_upstream`] or [`Config::from_toml`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL clients use, without a path (`https://mcp.example.com`): the issuer of the embedded
    /// authorization server and the origin of the protected resource. Default `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The path of the MCP endpoint at the gateway. Default `/mcp`.
    #[serde(default = "default_path")]
    pub path: String,
    /// The MCP server behind the gateway.
    pub upstream: UpstreamConfig,
    /// Who issues the tokens.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Which scopes tools need.
    #[serde(default)]
    pub scopes: ScopesConfig,
    /// Rate and size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How long open requests and streams may run on after a shutdown signal before they are
    /// cut. Default 10.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
}

/// How the upstream learns who the caller is. The client's own token is never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IdentityMode {
    /// Plain headers `X-MCP-Subject`, `X-MCP-Client-Id`, `X-MCP-Scopes`: only for an upstream on
    /// a loopback address or a unix socket (nothing else can reach it to forge them).
    Headers,
    /// `Authorization: Bearer <JWT>`, a short-lived RFC 9068 token signed by the gateway for the
    /// upstream's audience; the keys are published at `/.well-known/mcp-gateway/jwks.json`.
    Jwt,
    /// Nothing: the upstream does not learn who calls.
    None,
}

/// The MCP server behind the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// Its Streamable HTTP endpoint, e.g. `http://127.0.0.1:8000/mcp`.
    pub url: String,
    /// Connect through this unix socket instead of TCP (`url` then only gives the path and the
    /// `Host`).
    #[serde(default)]
    pub unix_socket: Option<PathBuf>,
    /// How the upstream learns who calls. Default: `headers` for a loopback or unix-socket
    /// upstream, `jwt` otherwise.
    #[serde(default)]
    pub identity: Option<IdentityMode>,
    /// The `aud` of the identity JWT. Default: `url`.
    #[serde(default)]
    pub audience: Option<String>,
    /// The identity JWT's lifetime. Default 60.
    #[serde(default = "default_identity_ttl")]
    pub identity_ttl_secs: u64,
    /// The time allowed to connect. Default 5.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// The time allowed until the upstream's response head arrives (for a JSON answer: until
    /// the tool finished). Default 120.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// The longest silence within a response body (an SSE stream without events or
    /// keep-alives). Default 300.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
}

/// Who issues the access tokens the gateway accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuthConfig {
    /// The embedded authorization server (`mcp-auth-server`) at the gateway's own origin.
    Embedded(EmbeddedAuth),
    /// An external authorization server (Keycloak, Auth0, Entra ID, ...).
    External(ExternalAuth),
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self::Embedded(EmbeddedAuth::default())
    }
}

/// The embedded authorization server.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EmbeddedAuth {
    /// Where the clients, refresh tokens, consents, signing keys and browser flows are kept: a
    /// SQLite file, `":memory:"` (nothing kept), or a `postgres://` URL, which several gateway
    /// replicas behind one load balancer may share (see
    /// [`Database`](mcp_auth_server::store::Database)). Default `mcp-auth-gateway.db`. `Debug`
    /// shows no password.
    #[serde(default)]
    pub db: Option<String>,
    /// With a PostgreSQL `db`: the schema for the tables (created if missing).
    #[serde(default)]
    pub db_schema: Option<String>,
    /// Local users with passwords (the login page).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// No login page: approve every authorization request as this user. Loopback only; for
    /// demos and tests.
    #[serde(default)]
    pub auto_approve: Option<String>,
    /// Sign users in at an OpenID Connect provider instead.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// The access tokens' lifetime. Default: the server's (15 minutes).
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
}

impl fmt::Debug for EmbeddedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedAuth")
            .field("db", &ShownDb(&self.db))
            .field("db_schema", &self.db_schema)
            .field("users", &self.users)
            .field("auto_approve", &self.auto_approve)
            .field("oidc", &self.oidc)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .finish()
    }
}

/// A `db` setting as `Debug` shows it: a PostgreSQL URL without its password.
struct ShownDb<'a>(&'a Option<String>);

impl fmt::Debug for ShownDb<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref().map(|db| Database::parse(db, None)) {
            Some(Ok(db @ Database::Postgres(_))) => write!(f, "Some({db:?})"),
            _ => fmt::Debug::fmt(self.0, f),
        }
    }
}

/// A local user of the embedded authorization server.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserConfig {
    /// The user name: the tokens' `sub`.
    pub username: String,
    /// The name shown on the consent page. Default: `username`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The password itself (prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl UserConfig {
    /// A user with a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            display_name: None,
            password: Some(password.into()),
            password_env: None,
        }
    }
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("password_env", &self.password_env)
            .finish_non_exhaustive()
    }
}

/// Sign-in at an upstream OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The provider's issuer.
    pub issuer: String,
    /// The client id registered there.
    pub client_id: String,
    /// The environment variable with the client secret (unset: a public client, PKCE only).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The scopes asked of the provider. Default `openid email profile`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The provider's name on the consent page.
    #[serde(default)]
    pub provider_name: Option<String>,
}

/// An external authorization server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExternalAuth {
    /// Its issuer identifier; JWT keys are found through its metadata.
    pub issuer: String,
    /// When set, tokens are opaque and checked by RFC 7662 introspection here.
    #[serde(default)]
    pub introspection_url: Option<String>,
    /// The gateway's client id at the introspection endpoint.
    #[serde(default)]
    pub introspection_client_id: Option<String>,
    /// The environment variable with its secret.
    #[serde(default)]
    pub introspection_secret_env: Option<String>,
    /// Also accept JWTs with `typ: JWT` (Keycloak, Auth0, Entra ID).
    #[serde(default)]
    pub accept_jwt_typ: bool,
    /// One more `aud` value to accept (Entra ID's API client id).
    #[serde(default)]
    pub accept_audience: Option<String>,
}

/// Scopes: which are advertised, which each tool needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScopesConfig {
    /// The scopes advertised in `scopes_supported` and asked for by default: keep it minimal,
    /// the others are reached by step-up. Default `["mcp:tools"]`.
    #[serde(default = "default_supported")]
    pub supported: Vec<String>,
    /// What every request to the MCP endpoint needs (checked before the body is read), space
    /// delimited. Default: none beyond a valid token.
    #[serde(default)]
    pub required: String,
    /// What a `tools/call` of a tool not in `tools` needs. Default `mcp:tools`.
    #[serde(default = "default_tool_scope")]
    pub default: String,
    /// Tool name → the space-delimited scopes its calls need (replacing `default`).
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    /// Leave the tools the caller's token may not call out of `tools/list`.
    #[serde(default)]
    pub hide_unauthorized_tools: bool,
}

impl Default for ScopesConfig {
    fn default() -> Self {
        Self {
            supported: default_supported(),
            required: String::new(),
            default: default_tool_scope(),
            tools: BTreeMap::new(),
            hide_unauthorized_tools: false,
        }
    }
}

/// Rate and size limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Requests per minute from one client address, on every route; 0: no limit. Default 1200.
    #[serde(default = "default_per_ip")]
    pub per_ip_per_minute: u32,
    /// MCP requests per minute with the tokens of one client (its `client_id`, else its
    /// subject); 0: no limit. Default 600.
    #[serde(default = "default_per_client")]
    pub per_client_per_minute: u32,
    /// The largest MCP request body, in bytes. Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: default_per_ip(),
            per_client_per_minute: default_per_client(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_path() -> String {
    "/mcp".to_owned()
}
fn default_grace() -> u64 {
    10
}
fn default_identity_ttl() -> u64 {
    60
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_response_timeout() -> u64 {
    120
}
fn default_idle_timeout() -> u64 {
    300
}
fn default_supported() -> Vec<String> {
    vec!["mcp:tools".to_owned()]
}
fn default_tool_scope() -> String {
    "mcp:tools".to_owned()
}
fn default_per_ip() -> u32 {
    1200
}
fn default_per_client() -> u32 {
    600
}
fn default_max_body() -> usize {
    1024 * 1024
}

impl Config {
    /// The defaults, in front of the MCP server at `url`.
    ///
    /// ```
    /// let config = mcp_auth_gateway::Config::for_upstream("http://127.0.0.1:8000/mcp");
    /// assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    /// assert_eq!(config.path, "/mcp");
    /// ```
    pub fn for_upstream(url: impl Into<String>) -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            path: default_path(),
            upstream: UpstreamConfig {
                url: url.into(),
                unix_socket: None,
                identity: None,
                audience: None,
                identity_ttl_secs: default_identity_ttl(),
                connect_timeout_secs: default_connect_timeout(),
                response_timeout_secs: default_response_timeout(),
                idle_timeout_secs: default_idle_timeout(),
            },
            auth: AuthConfig::default(),
            scopes: ScopesConfig::default(),
            limits: LimitsConfig::default(),
            shutdown_grace_secs: default_grace(),
        }
    }

    /// Parses a TOML document.
    ///
    /// ```
    /// let config = mcp_auth_gateway::Config::from_toml(r#"
    ///     [upstream]
    ///     url = "http://127.0.0.1:8000/mcp"
    ///     [scopes.tools]
    ///     delete_all = "admin"
    /// "#)?;
    /// assert_eq!(config.scopes.tools["delete_all"], "admin");
    /// # Ok::<(), mcp_auth_gateway::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for invalid TOML or an unknown key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Toml`].
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
            path: path.clone(),
            error,
        })?;
        Self::from_toml(&text)
    }
}

/// Settings given on the command line or in the environment, applied over a file's
/// ([`apply`](Self::apply)). Each `None` leaves the setting alone.
#[derive(Clone, Default)]
pub struct Overrides {
    /// `--upstream URL` / `MCP_GATEWAY_UPSTREAM`.
    pub upstream: Option<String>,
    /// `--listen ADDR` / `MCP_GATEWAY_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--public-url URL` / `MCP_GATEWAY_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `--db FILE|URL` / `MCP_GATEWAY_DB` (embedded authorization server).
    pub db: Option<String>,
    /// `--db-schema NAME` / `MCP_GATEWAY_DB_SCHEMA` (with a PostgreSQL `db`).
    pub db_schema: Option<String>,
    /// `--issuer URL` / `MCP_GATEWAY_ISSUER`: an external authorization server.
    pub issuer: Option<String>,
    /// `--auto-approve USER` / `MCP_GATEWAY_AUTO_APPROVE` (loopback only).
    pub auto_approve: Option<String>,
    /// `--identity headers|jwt|none` / `MCP_GATEWAY_IDENTITY`.
    pub identity: Option<IdentityMode>,
    /// `--tool NAME=SCOPES`, repeatable.
    pub tools: Vec<(String, String)>,
    /// `--hide-unauthorized-tools`.
    pub hide_unauthorized_tools: bool,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("upstream", &self.upstream)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("db", &ShownDb(&self.db))
            .field("db_schema", &self.db_schema)
            .field("issuer", &self.issuer)
            .field("auto_approve", &self.auto_approve)
            .field("identity", &self.identity)
            .field("tools", &self.tools)
            .field("hide_unauthorized_tools", &self.hide_unauthorized_tools)
            .finish()
    }
}

impl Overrides {
    /// Applies these settings over `config` (a file's, or [`Config::for_upstream`]'s when there is
    /// no file, which needs [`upstream`](Self::upstream)).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when there is neither a file nor an upstream.
    pub fn apply(self, config: Option<Config>) -> Result<Config, ConfigError> {
        let mut config = match (config, &self.upstream) {
            (Some(config), _) => config,
            (None, Some(url)) => Config::for_upstream(url.clone()),
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "no upstream: give --upstream URL (or MCP_GATEWAY_UPSTREAM) or --config FILE"
                        .to_owned(),
                ));
            }
        };
        if let Some(url) = self.upstream {
            config.upstream.url = url;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(url) = self.public_url {
            config.public_url = Some(url);
        }
        if let Some(identity) = self.identity {
            config.upstream.identity = Some(identity);
        }
        if let Some(issuer) = self.issuer {
            config.auth = AuthConfig::External(ExternalAuth {
                issuer,
                introspection_url: None,
                introspection_client_id: None,
                introspection_secret_env: None,
                accept_jwt_typ: false,
                accept_audience: None,
            });
        }
        if self.db.is_some() || self.db_schema.is_some() || self.auto_approve.is_some() {
            let AuthConfig::Embedded(embedded) = &mut config.auth else {
                return Err(ConfigError::Invalid(
                    "--db, --db-schema and --auto-approve are settings of the embedded authorization server, \
                     not of an external issuer"
                        .to_owned(),
                ));
            };
            if let Some(db) = self.db {
                embedded.db = Some(db);
            }
            if let Some(schema) = self.db_schema {
                embedded.db_schema = Some(schema);
            }
            if let Some(user) = self.auto_approve {
                embedded.auto_approve = Some(user);
            }
        }
        for (tool, scopes) in self.tools {
            config.scopes.tools.insert(tool, scopes);
        }
        if self.hide_unauthorized_tools {
            config.scopes.hide_unauthorized_tools = true;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_unknown_keys_are_refused() {
        let config = Config::from_toml(
            r#"
            listen = "127.0.0.1:9999"
            public_url = "https://mcp.example.com"
            [upstream]
            url = "http://10.0.0.5:8000/mcp"
            identity = "jwt"
            audience = "urn:notes"
            [auth]
            mode = "external"
            issuer = "https://idp.example.com"
            accept_jwt_typ = true
            [scopes]
            supported = ["mcp:tools", "notes:read"]
            hide_unauthorized_tools = true
            [scopes.tools]
            add_note = "notes:write"
            [limits]
            per_ip_per_minute = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.upstream.identity, Some(IdentityMode::Jwt));
        assert!(matches!(config.auth, AuthConfig::External(ref e) if e.accept_jwt_typ));
        assert_eq!(config.limits.per_ip_per_minute, 5);
        assert_eq!(config.limits.per_client_per_minute, 600);
        assert!(Config::from_toml("[upstream]\nurl = \"x\"\nbogus = 1").is_err());
    }

    #[test]
    fn flags_override_the_file_and_a_password_never_shows_in_debug() {
        let mut file = Config::for_upstream("http://127.0.0.1:1/mcp");
        if let AuthConfig::Embedded(e) = &mut file.auth {
            e.users.push(UserConfig::new("alice", "hunter2-hunter2"));
        }
        let config = Overrides {
            upstream: Some("http://127.0.0.1:2/mcp".to_owned()),
            tools: vec![("x".to_owned(), "admin".to_owned())],
            ..Overrides::default()
        }
        .apply(Some(file))
        .unwrap();
        assert_eq!(config.upstream.url, "http://127.0.0.1:2/mcp");
        assert_eq!(config.scopes.tools["x"], "admin");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(Overrides::default().apply(None).is_err());
    }

    #[test]
    fn a_postgres_db_and_its_schema_come_from_flags_and_never_show_a_password() {
        let config = Overrides {
            upstream: Some("http://127.0.0.1:2/mcp".to_owned()),
            db: Some("postgres://gw:s3cret-pw@127.0.0.1:5432/auth".to_owned()),
            db_schema: Some("gateway".to_owned()),
            ..Overrides::default()
        };
        assert!(!format!("{config:?}").contains("s3cret-pw"));
        let config = config.apply(None).unwrap();
        let AuthConfig::Embedded(embedded) = &config.auth else {
            panic!("embedded by default")
        };
        assert_eq!(embedded.db_schema.as_deref(), Some("gateway"));
        let shown = format!("{config:?}");
        assert!(
            shown.contains("127.0.0.1") && !shown.contains("s3cret-pw"),
            "{shown}"
        );

        let from_file = Config::from_toml(
            r#"
            [upstream]
            url = "http://127.0.0.1:8000/mcp"
            [auth]
            mode = "embedded"
            db = "postgresql://127.0.0.1/auth"
            db_schema = "gw"
            auto_approve = "alice"
            "#,
        )
        .unwrap();
        let AuthConfig::Embedded(embedded) = &from_file.auth else {
            panic!("embedded by default")
        };
        assert_eq!(embedded.db_schema.as_deref(), Some("gw"));
    }
}
