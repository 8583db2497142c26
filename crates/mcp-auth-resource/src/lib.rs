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
//! - [`TokenVerifier`] and its implementations (rules in [`verify`]): [`JwtVerifier`] (RFC 9068
//!   JWTs, static or remote JWKS, issuer discovery), [`IntrospectionVerifier`] (RFC 7662, opaque
//!   tokens), [`CachedVerifier`] (a repeated token costs a hash and a lookup) and [`Revocable`]
//!   (a revocation list asked on every request, cache hits included).
//! - [`extract`] (feature `axum`): [`Auth`], `Option<Auth>`, [`RequireScope<S>`](RequireScope)
//!   with scopes named at the type level by [`scopes!`], and `auth.require(..)`; a missing scope
//!   answers the 403 step-up challenge that asks only for the extra consent. With feature `rmcp`,
//!   `Auth` and `RequireScope<S>` are also rmcp tool parameters (`extract::rmcp`), answering a
//!   missing scope with a JSON-RPC error that names it.
//! - [`mcp`] (feature `mcp`): [`ToolScopesLayer`] maps MCP tools to scopes and answers
//!   `tools/call` of a tool the token may not use with the HTTP 403 step-up challenge, before the
//!   MCP server sees the call, and answers a 2026-07-28 request whose `Mcp-Method` / `Mcp-Name`
//!   headers disagree with its body with HTTP 400 and the JSON-RPC error `-32020`;
//!   [`SessionBindingLayer`] binds each 2025-11-25 MCP session to the token's owner (SPEC
//!   RS-32), so a session id is useless with someone else's token, and lets 2026-07-28 requests,
//!   which have no sessions, through. See [Dual era](mcp#dual-era-2026-07-28-and-2025-11-25).
//! - [`origin`]: [`OriginGuardLayer`], the MCP transport's `Origin` rule and a DNS-rebinding
//!   defence, safe by default on loopback.
//!
//! Tokens, secrets and verifiers never reach a log or a `Debug` string. Challenges and the
//! metadata document never name `offline_access` (MCP 2026-07-28, SEP-2207).
//!
//! # Order
//!
//! Outermost first: CORS (if any) → [`OriginGuardLayer`] →
//! [`BearerAuthLayer`] → [`SessionBindingLayer`] →
//! [`ToolScopesLayer`] → the MCP service. The metadata
//! router is merged *outside* the bearer layer: discovery must work without a token.
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, http::{Request, StatusCode}, routing::post};
//! use mcp_auth_resource::{
//!     AuthInfo, BearerAuthLayer, ProtectedResource, RequireScope, TokenVerifier, VerifyError,
//!     VerifyErrorKind,
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
//! Every public type has exactly one path. The types a server is assembled from live here, at
//! the crate root; a module is public only for its docs (rules, response tables, examples) and
//! for the few items that are not re-exported here: each middleware's `ResponseFuture`
//! ([`bearer::ResponseFuture`], [`origin::ResponseFuture`], [`mcp::ResponseFuture`],
//! [`mcp::session::ResponseFuture`]), [`mcp::RejectionBody`] and [`mcp::ToolScopesBody`], the
//! defaults of each verifier ([`verify::cache`], [`verify::jwt`], [`verify::introspection`]) and
//! the DPoP proof helpers in [`dpop`].
//!
//! | | types at the crate root |
//! |---|---|
//! | layers and services | [`BearerAuthLayer`] / [`BearerAuth`] (with [`ResponseForBearerError`], [`DefaultRejection`], [`JsonRejection`], [`Anonymous`]); [`OriginGuardLayer`] / [`OriginGuard`] ([`OriginGuardBuilder`]); [`ToolScopesLayer`] / [`ToolScopes`] and [`SessionBindingLayer`] / [`SessionBinding`] (feature `mcp`) |
//! | verifiers | [`TokenVerifier`], [`Either`], [`CachedVerifier`] / [`CachedVerifierBuilder`], [`Revocable`]; [`JwtVerifier`] / [`JwtVerifierBuilder`] with [`JwsAlgorithm`] and [`UnknownAlgorithm`] (feature `jwt`); [`IntrospectionVerifier`] / [`IntrospectionVerifierBuilder`] / [`ClientAuth`] (feature `introspection`); [`DpopConfig`], [`DpopVerifier`], [`DpopNonces`] (feature `dpop`) |
//! | extractors (feature `axum`) | [`Auth`], [`RequireScope`], [`ScopeList`] and [`scopes!`] |
//! | metadata and identity | [`ProtectedResource`] / [`ProtectedResourceBuilder`], [`ROOT_METADATA_PATH`], [`AuthInfo`] / [`AuthInfoBuilder`], [`ScopeSet`] |
//! | errors and their kinds | [`ConfigError`]; [`VerifyError`] / [`VerifyErrorKind`]; [`BearerError`] / [`BearerErrorKind`], [`DpopRejection`], [`InvalidRequestKind`]; [`OriginRejection`] / [`OriginRejectionKind`]; [`ToolScopesRejection`] / [`ToolScopesRejectionKind`], [`HeaderMismatchKind`], [`SessionBindingRejection`] / [`SessionBindingRejectionKind`] (feature `mcp`); [`AuthRejection`], [`MissingToken`], [`MissingBearerLayer`], [`InsufficientScope`], [`RequireScopeRejection`] (feature `axum`); [`DpopError`] / [`DpopErrorKind`] (feature `dpop`) |
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
//! | `jwt` | yes | [`JwtVerifier`]: signatures checked with aws-lc-rs keys parsed once per JWK Set (jsonwebtoken 11 for HMAC) |
//! | `remote` | yes | remote JWK Sets (`jwks_uri`, issuer discovery) over reqwest/rustls |
//! | `introspection` | yes | [`IntrospectionVerifier`] |
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
mod ct;
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

/// The set of scopes every scope setter of this crate takes (re-exported from `mcp-auth-core`).
pub use mcp_auth_core::ScopeSet;
/// DPoP proof checking (re-exported from `mcp-auth-jwt`).
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub use mcp_auth_jwt::dpop::{DpopError, DpopErrorKind, DpopNonces, DpopVerifier};
/// The JWS algorithms [`JwtVerifier`] and DPoP proofs accept (re-exported from `mcp-auth-jwt`).
#[cfg(feature = "jwt")]
pub use mcp_auth_jwt::{JwsAlgorithm, UnknownAlgorithm};
/// The errors of [`TokenVerifier`] and its kinds (re-exported from `mcp-auth-jwt`).
pub use mcp_auth_jwt::{VerifyError, VerifyErrorKind};

#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub use self::dpop::config::DpopConfig;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::extract::{
    auth::Auth,
    rejection::{
        AuthRejection, InsufficientScope, MissingBearerLayer, MissingToken, RequireScopeRejection,
    },
    require_scope::{RequireScope, ScopeList},
};
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub use self::mcp::{
    layer::ToolScopesLayer,
    rejection::{HeaderMismatchKind, ToolScopesRejection, ToolScopesRejectionKind},
    service::ToolScopes,
    session::{
        layer::SessionBindingLayer,
        rejection::{SessionBindingRejection, SessionBindingRejectionKind},
        service::SessionBinding,
    },
};
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use self::verify::introspection::verifier::{
    ClientAuth, IntrospectionVerifier, IntrospectionVerifierBuilder,
};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use self::verify::jwt::{builder::JwtVerifierBuilder, verifier::JwtVerifier};
pub use self::{
    auth_info::{AuthInfo, AuthInfoBuilder},
    bearer::{
        context::Anonymous,
        error::{BearerError, BearerErrorKind, DpopRejection, InvalidRequestKind},
        layer::BearerAuthLayer,
        response::{DefaultRejection, JsonRejection, ResponseForBearerError},
        service::BearerAuth,
    },
    error::ConfigError,
    origin::{
        layer::{OriginGuardBuilder, OriginGuardLayer},
        rejection::{OriginRejection, OriginRejectionKind},
        service::OriginGuard,
    },
    protected_resource::{ProtectedResource, ProtectedResourceBuilder, ROOT_METADATA_PATH},
    verify::{
        cache::verifier::{CachedVerifier, CachedVerifierBuilder},
        either::Either,
        revocation::Revocable,
        token_verifier::TokenVerifier,
    },
};
