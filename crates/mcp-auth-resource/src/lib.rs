//! Protect any tower service as an OAuth 2.1 resource server for MCP: spec revision 2026-07-28,
//! the current one, and 2025-11-25, which many clients still speak, on the same endpoint.
//!
//! An MCP server that trusts an existing authorization server (Keycloak, Auth0, Entra ID, Okta,
//! `mcp-auth-server`) needs only this crate:
//!
//! - [`ProtectedResource`]: who this resource is (its canonical URI, trusted issuers, minimal
//!   `scopes_supported`), and [`metadata_router`](ProtectedResource::metadata_router) serving the
//!   RFC 9728 document at the path-aware (and root) well-known URL.
//! - [`BearerAuthLayer`]: a tower layer that reads exactly one `Authorization: Bearer` header,
//!   verifies the token and answers RFC 6750 challenges (401 / 400 / 403, 503 when the
//!   authorization server is unreachable). See the [`bearer`] module for the response table.
//! - [`TokenVerifier`] and its implementations in [`verify`]: [`JwtVerifier`](verify::jwt::JwtVerifier)
//!   (RFC 9068 JWTs, static or remote JWKS, issuer discovery), [`IntrospectionVerifier`](verify::introspection::IntrospectionVerifier)
//!   (RFC 7662, opaque tokens), [`CachedVerifier`](verify::cache::CachedVerifier) (a repeated
//!   token costs a hash and a lookup) and [`Revocable`](verify::revocation::Revocable) (a
//!   revocation list asked on every request, cache hits included).
//! - [`extract`] (feature `axum`): `Auth`, `Option<Auth>`, `RequireScope<S>` with scopes named at
//!   the type level by [`scopes!`], and `auth.require(..)`; a missing scope answers the 403
//!   step-up challenge that asks only for the extra consent. With feature `rmcp`, `Auth` and
//!   `RequireScope<S>` are also rmcp tool parameters (`extract::rmcp`), answering a missing
//!   scope with a JSON-RPC error that names it.
//! - [`mcp`] (feature `mcp`): [`ToolScopesLayer`](mcp::ToolScopesLayer) maps MCP tools to scopes
//!   and answers `tools/call` of a tool the token may not use with the HTTP 403 step-up challenge,
//!   before the MCP server sees the call, and answers a 2026-07-28 request whose `Mcp-Method` /
//!   `Mcp-Name` headers disagree with its body with HTTP 400 and the JSON-RPC error `-32020`;
//!   [`SessionBindingLayer`](mcp::SessionBindingLayer) binds each 2025-11-25 MCP session to the
//!   token's owner (SPEC RS-32), so a session id is useless with someone else's token, and lets
//!   2026-07-28 requests, which have no sessions, through. See
//!   [Dual era](mcp#dual-era-2026-07-28-and-2025-11-25).
//! - [`origin`]: [`OriginGuardLayer`](origin::OriginGuardLayer), the MCP transport's `Origin` rule
//!   and a DNS-rebinding defence, safe by default on loopback.
//!
//! Tokens, secrets and verifiers never reach a log or a `Debug` string. Challenges and the
//! metadata document never name `offline_access` (MCP 2026-07-28, SEP-2207).
//!
//! # Order
//!
//! Outermost first: CORS (if any) → [`OriginGuardLayer`](origin::OriginGuardLayer) →
//! [`BearerAuthLayer`] → [`SessionBindingLayer`](mcp::SessionBindingLayer) →
//! [`ToolScopesLayer`](mcp::ToolScopesLayer) → the MCP service. The metadata
//! router is merged *outside* the bearer layer: discovery must work without a token.
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, http::{Request, StatusCode}, routing::post};
//! use mcp_auth_resource::{
//!     AuthInfo, BearerAuthLayer, ProtectedResource, VerifyError, VerifyErrorKind,
//!     extract::RequireScope, verify::TokenVerifier,
//! };
//! use tower::ServiceExt;
//!
//! // In production: JwtVerifier::for_resource(issuer, &resource).discover_jwks().build()?
//! #[derive(Debug, Clone)]
//! struct Demo;
//! impl TokenVerifier for Demo {
//!     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
//!         match token {
//!             "tools" => Ok(AuthInfo::builder().subject("alice").scopes("mcp:tools".parse().unwrap()).build()),
//!             _ => Err(VerifyErrorKind::Expired.into()),
//!         }
//!     }
//! }
//!
//! mcp_auth_resource::scopes!(Admin = "mcp:admin");
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported("mcp:tools".parse()?)
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/mcp", post(|_: RequireScope<Admin>| async { "done" }))
//!     .layer(BearerAuthLayer::new(Demo, resource.clone()))
//!     .merge(resource.metadata_router());
//!
//! let call = |token: Option<&str>| {
//!     let mut req = Request::post("/mcp");
//!     if let Some(t) = token {
//!         req = req.header("authorization", format!("Bearer {t}"));
//!     }
//!     app.clone().oneshot(req.body(Body::empty()).unwrap())
//! };
//!
//! let res = call(None).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#,
//! );
//!
//! let res = call(Some("expired")).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//!
//! // Granted mcp:tools, the route needs mcp:admin: ask for both, not just the new one.
//! let res = call(Some("tools")).await?;
//! assert_eq!(res.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
//! );
//!
//! let res = app
//!     .clone()
//!     .oneshot(Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty())?)
//!     .await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! # Public paths
//!
//! The types a server is assembled from are re-exported here, at the crate root, so one flat
//! path names each: the layers and their services ([`BearerAuthLayer`], [`OriginGuardLayer`],
//! `ToolScopesLayer` and `SessionBindingLayer` with feature `mcp`), the verifiers
//! (`JwtVerifier`, `IntrospectionVerifier`, [`CachedVerifier`], [`Revocable`], and
//! [`Either`] to choose one at run time), the extractors (`Auth`, `RequireScope` with feature
//! `axum`), [`AuthInfo`], [`ScopeSet`] and the errors. The modules keep the rest: futures,
//! rejection types, builders and the module docs with their rules and examples.
//!
//! Every layer is configured the same way: setters on the layer itself, `Self` for a setting
//! that cannot be wrong and `Result<Self, ConfigError>` for one that is checked, `with_*` where
//! tower-http uses that name ([`BearerAuthLayer::with_rejection_response`]); every setter that
//! takes scopes takes a [`ScopeSet`] (parse strings at the call site, `"mcp:tools".parse()?`)
//! or, for `ToolScopesLayer`, a type declared with [`scopes!`].
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `jwt` | yes | [`JwtVerifier`](verify::jwt::JwtVerifier): signatures checked with aws-lc-rs keys parsed once per JWK Set (jsonwebtoken 11 for HMAC) |
//! | `remote` | yes | remote JWK Sets (`jwks_uri`, issuer discovery) over reqwest/rustls |
//! | `introspection` | yes | [`IntrospectionVerifier`](verify::introspection::IntrospectionVerifier) |
//! | `axum` | yes | extractors and the metadata router |
//! | `mcp` | yes | the tool-scope layer and the session binding layer |
//! | `rmcp` | no | `Auth` and `RequireScope<S>` as rmcp 3 tool and prompt handler parameters |
//! | `tracing` | yes | spans and events on every decision (never a token) |
#![cfg_attr(docsrs, feature(doc_cfg))]

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose inner service is the field
/// `inner` (tower-http's `define_inner_service_accessors!`).
macro_rules! define_inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
mod auth_info;
pub mod bearer;
mod challenge;
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub mod dpop;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp;
#[cfg(feature = "axum")]
mod metadata_router;
pub mod origin;
mod protected_resource;
mod token_syntax;
pub mod verify;

#[cfg(feature = "axum")]
pub use self::extract::{Auth, RequireScope};
#[cfg(feature = "mcp")]
pub use self::mcp::{SessionBinding, SessionBindingLayer, ToolScopes, ToolScopesLayer};
#[cfg(feature = "introspection")]
pub use self::verify::introspection::IntrospectionVerifier;
#[cfg(feature = "jwt")]
pub use self::verify::jwt::JwtVerifier;
pub use self::{
    auth_info::{AuthInfo, AuthInfoBuilder},
    bearer::{
        Anonymous, BearerAuth, BearerAuthLayer, BearerError, BearerErrorKind, DefaultRejection,
        JsonRejection, ResponseForBearerError,
    },
    error::ConfigError,
    origin::{OriginGuard, OriginGuardLayer},
    protected_resource::{ProtectedResource, ProtectedResourceBuilder, ROOT_METADATA_PATH},
    verify::{
        Either, TokenVerifier, VerifyError, VerifyErrorKind, cache::CachedVerifier,
        revocation::Revocable,
    },
};
/// The set of scopes every scope setter of this crate takes (re-exported from `mcp-auth-core`).
pub use mcp_auth_core::ScopeSet;
