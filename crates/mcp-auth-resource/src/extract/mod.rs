//! axum extractors for the verified token (feature `axum`).
//!
//! The [`BearerAuthLayer`](crate::BearerAuthLayer) verifies the token; these extractors read
//! what it left in the request extensions. They implement `FromRequestParts`, so they can appear
//! in any position among a handler's arguments.
//!
//! - [`Auth`]: the token's [`AuthInfo`](crate::AuthInfo); `Option<Auth>` for handlers that also
//!   serve anonymous requests (layer in [`optional`](crate::BearerAuthLayer::optional) mode).
//! - [`RequireScope<S>`](RequireScope): `Auth` plus every scope of `S`, a type made with
//!   [`scopes!`](crate::scopes) whose scope tokens are checked at compile time.
//! - [`Auth::require`]: the same scope check at run time.
//!
//! # Rules
//!
//! 1. The layer inserts a marker into every request it lets through: the `AuthInfo`, or
//!    [`Anonymous`](crate::Anonymous) in optional mode, together with what the
//!    extractors need to build challenges. No app state is needed.
//! 2. No marker at all means the layer did not run for this route. That is a programming error:
//!    every extractor answers **500**, never 401 (which would send the client to re-authorize
//!    for nothing).
//! 3. An anonymous request gets the layer's own 401 from `Auth`, and `None` from `Option<Auth>`.
//! 4. A missing scope gets 403 `insufficient_scope`, whose `scope` is the step-up set of
//!    [`ProtectedResource::step_up_scopes`](crate::ProtectedResource::step_up_scopes): the
//!    granted scopes still relevant here, then what this operation requires (including the
//!    layer's [`required_scopes`](crate::BearerAuthLayer::required_scopes)).
//!
//! # Rejections
//!
//! `R` is the metadata URL, `S` the challenge scopes.
//!
//! | Rejection | Status | `WWW-Authenticate` | Body |
//! | --- | --- | --- | --- |
//! | [`MissingToken`] | 401 | `Bearer resource_metadata="R", scope="S"` | empty (RFC 6750 §3.1) |
//! | [`InsufficientScope`] | 403 | `Bearer error="insufficient_scope", scope="<step-up>", resource_metadata="R"` | `{"error":"insufficient_scope","error_description":"The access token does not grant the scope this request requires"}` |
//! | [`MissingBearerLayer`] | 500 | none | ``"`BearerAuthLayer` was not found in the request extensions. Perhaps you forgot to add it?"`` (`text/plain`) |
//!
//! Each rejection implements `Display`, `Error` and `IntoResponse`; [`AuthRejection`] and
//! [`RequireScopeRejection`] wrap them, and reach the leaf through `Error::source`. With feature
//! `tracing` they are logged under target `mcp_auth_resource::rejection` (TRACE, or ERROR for the
//! missing layer).
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode, header::{AUTHORIZATION, WWW_AUTHENTICATE}};
//! use mcp_auth_resource::{
//!     Auth, AuthInfo, BearerAuthLayer, ProtectedResource, RequireScope, TokenVerifier,
//!     VerifyError, VerifyErrorKind, scopes,
//! };
//! use tower::ServiceExt;
//!
//! scopes!(pub Admin = "mcp:admin");
//!
//! /// One token, granting only `mcp:tools`.
//! #[derive(Debug)]
//! struct Fixed;
//!
//! impl TokenVerifier for Fixed {
//!     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
//!         match token {
//!             "tools" => Ok(AuthInfo::builder().subject("alice").scopes("mcp:tools".parse().unwrap()).build()),
//!             _ => Err(VerifyErrorKind::InvalidSignature.into()),
//!         }
//!     }
//! }
//!
//! async fn whoami(auth: Auth) -> String {
//!     auth.subject().unwrap_or("?").to_owned()
//! }
//!
//! async fn greeting(auth: Option<Auth>) -> String {
//!     match auth {
//!         Some(auth) => format!("hello {}", auth.subject().unwrap_or("?")),
//!         None => "hello guest".to_owned(),
//!     }
//! }
//!
//! async fn admin(_: RequireScope<Admin>) -> &'static str {
//!     "done"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported("mcp:tools".parse()?)
//!     .build()?;
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/greeting", get(greeting))
//!     .route("/admin", get(admin))
//!     .layer(BearerAuthLayer::new(Fixed, resource).optional());
//!
//! let request = |path: &str, token: Option<&str>| {
//!     let mut request = Request::builder().uri(path);
//!     if let Some(token) = token {
//!         request = request.header(AUTHORIZATION, format!("Bearer {token}"));
//!     }
//!     request.body(Body::empty()).unwrap()
//! };
//!
//! // `Option<Auth>` serves anonymous requests; `Auth` answers them with the 401 challenge.
//! let response = app.clone().oneshot(request("/greeting", None)).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let response = app.clone().oneshot(request("/whoami", None)).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()[WWW_AUTHENTICATE],
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#,
//! );
//! let response = app.clone().oneshot(request("/whoami", Some("tools"))).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // A missing scope: 403 with the step-up set (what the client has and still needs, plus what
//! // it lacks).
//! let response = app.clone().oneshot(request("/admin", Some("tools"))).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     response.headers()[WWW_AUTHENTICATE],
//!     r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
//! );
//!
//! // Without the layer, the extractor reports the programming error.
//! let unprotected = Router::new().route("/whoami", get(whoami));
//! let response = unprotected.oneshot(request("/whoami", Some("tools"))).await?;
//! assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! # Ok(())
//! # }
//! ```

pub(crate) mod auth;
pub(crate) mod rejection;
pub(crate) mod require_scope;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub mod rmcp;

pub(crate) use self::auth::Auth;
#[doc(hidden)]
pub use self::require_scope::{__all_scope_tokens, __is_scope_token};
#[cfg(doc)]
use crate::{
    AuthRejection, InsufficientScope, MissingBearerLayer, MissingToken, RequireScope,
    RequireScopeRejection, ScopeList,
};
