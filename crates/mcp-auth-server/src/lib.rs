//! An embeddable OAuth 2.1 authorization server for MCP.
//!
//! `mcp-auth-server` is the authorization server an MCP server mounts beside its `/mcp`
//! endpoint, so that any spec-compliant MCP client connects with nothing but the server's URL:
//!
//! | endpoint | spec |
//! |---|---|
//! | `/.well-known/oauth-authorization-server[/path]`, `/.well-known/openid-configuration[/path]`, `[/path]/.well-known/openid-configuration` | RFC 8414, OIDC Discovery |
//! | `/register` | RFC 7591 dynamic client registration |
//! | `/authorize` (+ the login and consent page) | OAuth 2.1 §4.1, PKCE S256 only, RFC 8707 `resource`, RFC 9207 `iss` |
//! | `/token` | `authorization_code`, `refresh_token` (rotated, reuse revokes the family), `client_credentials` (off by default; operator-arranged [`MachineClient`]s only), the RFC 7523 JWT bearer grant for identity assertion grants and workload tokens from trusted issuers (off by default; `jwt_bearer`); clients authenticate with a secret or with `private_key_jwt` |
//! | `/revoke` | RFC 7009 |
//! | `/introspect` | RFC 7662 (authenticated) |
//! | `/jwks.json` | the public signing keys |
//! | `/login/callback` | with a redirect login ([`OidcLogin`](login::OidcLogin), [`OAuth2Login`](login::OAuth2Login)): the upstream provider's answer ([`upstream_redirect_uri`](AuthorizationServer::upstream_redirect_uri)) |
//!
//! Client ID Metadata Documents (an `https` `client_id` naming the client's metadata) are
//! fetched with SSRF guards, a 5 KiB cap and HTTP caching. Access tokens are RFC 9068 JWTs
//! (`typ: at+jwt`, `aud` = the requested resource), signed ES256 by default, so
//! `mcp-auth-resource`'s `JwtVerifier` validates them with no extra configuration.
//!
//! Persistence goes through the [`Store`](store::Store) trait: [`MemoryStore`](store::MemoryStore)
//! for tests, `SqliteStore` (feature `sqlite`, on by default) for a server that keeps its
//! clients, refresh tokens, consents and signing keys across restarts, `PostgresStore` (feature
//! `postgres`) for replicas sharing one database (see [`store`] on choosing).
//!
//! When users sign in through another provider, the [`vault`] keeps the tokens that provider
//! issued, per user and encrypted (AES-256-GCM under a key the deployment supplies), refreshes
//! them when they expire, and hands tools a fresh upstream access token
//! ([`vault::UpstreamAccess`]); the MCP client's token is never sent upstream.
//!
//! # Security rules
//!
//! 1. Machine grants are arranged, never self-served: `client_credentials` is off until
//!    [`client_credentials(true)`](AuthorizationServerBuilder::client_credentials), and then only
//!    for [`MachineClient`]s the operator registers, each for its own scope list. Open
//!    registration refuses the grant type; metadata documents never get it.
//! 2. Scopes are bounded everywhere: known scopes only, user grants by the user's approval,
//!    refreshes only narrow, machine grants by their list, an operator-registered client by its
//!    registered `scope`; more is `invalid_scope`.
//! 3. One resource per token, among the server's (and a restricted client's): `invalid_target`.
//! 4. Every revocation reaches [`Revocations`] at once, for resource servers in the process.
//! 5. Failed client authentications are throttled per `client_id` and per address;
//!    authorization requests that wait for the user, per address.
//! 6. On a loopback issuer, a request naming a non-loopback `Host` is refused (DNS rebinding).
//! 7. JWT assertions (`private_key_jwt` client assertions, JWT bearer grants) are signed with an
//!    asymmetric algorithm (never `none` or HMAC), addressed to this server, short-lived, and
//!    single use: their `jti`s are remembered in the store until they expire, so replicas
//!    sharing a store accept each assertion once (failing closed when the store cannot
//!    remember one). The `jwks_uri` of a
//!    client that registered itself is fetched with the metadata-document SSRF guards.
//!
//! # Paths and configuration
//!
//! Each public type has one path: the crate root for the server and what its builder takes
//! directly ([`AuthorizationServer`], [`AuthorizationServerBuilder`], [`MachineClient`],
//! [`Revocations`], [`ConfigError`]), otherwise the module of its concern ([`login`],
//! [`store`], [`keys`], [`vault`], [`upstream`], `cimd`, `jwt_bearer`). Builders and logins
//! ([`AuthorizationServerBuilder`], [`vault::VaultBuilder`], [`login::LocalLogin`],
//! `OidcLogin::builder`, `JwtBearerIssuer`, `PostgresOptions`) name their setters after what
//! they set, without `with_`, return `Self`, and are checked when built. Value types with
//! public fields ([`keys::KeyPolicy`], [`login::User`], [`store::ClientRecord`]) take `with_*`,
//! as do alternative constructors ([`MachineClient::with_jwks`]).
//!
//! # When to use a dedicated identity provider instead
//!
//! If your organisation already runs Keycloak, Auth0, Entra ID or Okta, point
//! `mcp-auth-resource` at it and skip this crate. `mcp-auth-server` is for MCP servers that
//! must stand alone: one binary, its own users (or a fixed headless user for demos), and every
//! MCP client able to connect by URL.
//!
//! # Example
//!
//! ```
//! use mcp_auth_server::{AuthorizationServer, login::LocalLogin, store::MemoryStore};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthorizationServer::builder("https://mcp.example.com")
//!     .resource("https://mcp.example.com/mcp")
//!     .scopes(["mcp:tools"])
//!     .store(MemoryStore::new())
//!     .login(LocalLogin::new().user("alice", "correct horse battery staple"))
//!     .build()
//!     .await?;
//! let app: axum::Router = server.router();
//!
//! let response = app
//!     .oneshot(
//!         http::Request::get("/.well-known/oauth-authorization-server")
//!             .body(axum::body::Body::empty())?,
//!     )
//!     .await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
#[cfg(feature = "jwt-assertions")]
mod assertion;
#[cfg(feature = "cimd")]
#[cfg_attr(docsrs, doc(cfg(feature = "cimd")))]
pub mod cimd;
mod client_auth;
mod clients;
mod config;
mod error;
mod flow;
mod form;
mod handlers;
mod http;
#[cfg(feature = "jwt-assertions")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt-assertions")))]
pub mod jwt_bearer;
pub mod keys;
mod limit;
pub mod login;
mod metadata;
mod mint;
mod policy;
mod random;
mod redirect;
#[cfg(feature = "jwt-assertions")]
mod replay;
mod revocation;
mod server;
mod state;
pub mod store;
mod trace;
pub mod upstream;
pub mod vault;

pub use self::clients::MachineClient;
pub use self::error::ConfigError;
pub use self::revocation::Revocations;
pub use self::server::{
    AuthorizationServer, AuthorizationServerBuilder, DEFAULT_MAX_BODY_SIZE, DEFAULT_REQUEST_TIMEOUT,
};
