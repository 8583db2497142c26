//! Bearer-token authentication for any tower service (RFC 6750, OAuth 2.1 §5, MCP 2025-11-25).
//!
//! [`BearerAuthLayer`] reads the access token from the `Authorization` header, checks it with a
//! [`TokenVerifier`](crate::TokenVerifier) and either calls the inner service, with the token's
//! [`AuthInfo`](crate::AuthInfo) in the request extensions, or answers itself with the RFC 6750
//! challenge the MCP authorization spec asks for. Every challenge names the resource's metadata
//! document (`resource_metadata`, RFC 9728 §5.1), so a client can discover the authorization
//! server from any rejection.
//!
//! # Rules
//!
//! Checks run in this order; the first that fails decides the response.
//!
//! 1. A query parameter named `access_token` is refused (RFC 6750 §2.3 method; MCP requires the
//!    header, and a token in the query leaks into logs). This holds even if a header is present
//!    too: that is "more than one method" (RFC 6750 §3.1). Form-body tokens are never read.
//! 2. No `Authorization` header: no credentials. More than one: malformed.
//! 3. The scheme must be `Bearer` (or `DPoP` when the layer accepts DPoP, see
//!    [`BearerAuthLayer::dpop`] and [`crate::dpop`]), in any case (`bearer`, `BEARER`; RFC 9110 §11.1), followed
//!    by one run of spaces or tabs and the token; surrounding whitespace is ignored. Another
//!    scheme (`Basic …`), an empty header and `Bearer` without a token are malformed requests.
//! 4. The token must be an RFC 6750 §2.1 `b64token` of at most 16 KiB; otherwise it is an
//!    invalid token and never reaches the verifier (SPEC RS-17 recommends 401 here, not 400).
//!    A `Bearer` token the verifier [recalls](crate::TokenVerifier::recall) (a
//!    [`CachedVerifier`](crate::CachedVerifier) hit on a token that passed this check when it
//!    was stored) is known to pass it and is not scanned again.
//! 5. [`TokenVerifier::verify_cached`](crate::TokenVerifier::verify_cached) is asked first; on a
//!    hit (or a recall) the inner service is called directly, with no boxed future (the hot
//!    path). Otherwise
//!    [`verify`](crate::TokenVerifier::verify) runs. A verifier that cannot decide
//!    ([`Unavailable`](crate::VerifyErrorKind::Unavailable)) gives 503, not 401: the token may be
//!    fine, and a 401 would push the client into a pointless re-authorization.
//! 6. If the layer has [`required_scopes`](BearerAuthLayer::required_scopes), the token must
//!    grant all of them.
//! 7. A token bound to a DPoP key (`cnf.jkt`) needs the `DPoP` scheme and a valid proof by that
//!    key (checked on every request, before the token); presented as `Bearer` it is refused
//!    ([`DpopRejection`]).
//! 8. The [`AuthInfo`](crate::AuthInfo) goes into the request extensions and the inner service
//!    is called. With [`with_subject_extension`](BearerAuthLayer::with_subject_extension), its
//!    `sub` also goes in alone as an [`mcp_auth_core::Subject`] (for code that does not depend on
//!    this crate, such as `mcp-auth-server`'s upstream token vault); without it, a `Subject`
//!    already in the extensions is removed.
//!
//! In [`optional`](BearerAuthLayer::optional) mode, a request with **no** credentials (rule 2)
//! is let through with an [`Anonymous`] marker in its extensions instead of the 401; every other
//! rule applies unchanged, so a bad token is still rejected.
//!
//! # Responses
//!
//! `R` is the resource's [`metadata_url`](crate::ProtectedResource::metadata_url), `S` its
//! [`challenge_scopes`](crate::ProtectedResource::challenge_scopes) (the `scope` parameter is
//! left out when there are none). Descriptions are fixed texts: never library errors, key ids or
//! claims, so responses are no oracle (ANCHORS point 9).
//!
//! | Request | Status | `WWW-Authenticate` | [`BearerErrorKind`] |
//! | --- | --- | --- | --- |
//! | No `Authorization` header | 401 | `Bearer resource_metadata="R", scope="S"` (no `error`, RFC 6750 §3.1) | `MissingToken` |
//! | `access_token` in the query | 400 | `Bearer error="invalid_request", error_description="The access token must be sent in the Authorization header, not in the URI query", resource_metadata="R"` | `InvalidRequest(TokenInQuery)` |
//! | Two or more `Authorization` headers | 400 | `Bearer error="invalid_request", error_description="The request has more than one Authorization header", resource_metadata="R"` | `InvalidRequest(DuplicateAuthorization)` |
//! | Another scheme, e.g. `Basic xyz` | 400 | `Bearer error="invalid_request", error_description="Only the Bearer authorization scheme is supported", resource_metadata="R"` | `InvalidRequest(UnsupportedScheme)` |
//! | Empty header, `Bearer`, `Bearer ␠` | 400 | `Bearer error="invalid_request", error_description="The Authorization header has no bearer token", resource_metadata="R"` | `InvalidRequest(EmptyCredentials)` |
//! | Token is not a `b64token` (or > 16 KiB) | 401 | `Bearer error="invalid_token", error_description="The access token is malformed", resource_metadata="R"` | `InvalidToken(Malformed)` |
//! | Verifier rejects the token (expired, wrong audience or issuer, bad signature, …) | 401 | `Bearer error="invalid_token", error_description="<the kind's fixed description>", resource_metadata="R"` | `InvalidToken(kind)` |
//! | Token lacks the layer's required scopes | 403 | `Bearer error="insufficient_scope", scope="<step-up scopes>", resource_metadata="R"` | `InsufficientScope` |
//! | Verifier unavailable | 503, `Retry-After: <secs>` (the verifier's hint, else 5) | none | `Unavailable` |
//! | Valid token | the inner service's response, [`AuthInfo`](crate::AuthInfo) in the request extensions | — | — |
//!
//! The step-up scopes of a 403 follow [`ProtectedResource::step_up_scopes`](crate::ProtectedResource::step_up_scopes)
//! (SPEC RS-16 "recommended": the granted scopes still relevant here, then the missing ones).
//!
//! Why 400 for another scheme: issue #3 and RFC 6750 §3.1 (`invalid_request` covers an
//! "unsupported parameter value"). The client did send credentials, so a 401 without an error
//! code would wrongly say it sent none; the 400 still carries the `Bearer` challenge with
//! `resource_metadata`, so the client learns what to use.
//!
//! The rejection is built by a [`ResponseForBearerError`]; the default, [`DefaultRejection`], sends
//! an empty body, and [`JsonRejection`] an RFC 6749 §5.2 JSON body. Either way the layer attaches
//! the [`BearerError`] to the response extensions (as tower-http's `csrf` does), so outer layers
//! and tests can see why. No `Cache-Control` is added: 400/401/403/503 are not heuristically
//! cacheable (RFC 9110 §15.1) and shared caches do not store answers to requests with
//! `Authorization` (RFC 9111 §3.5).
//!
//! # Where it belongs
//!
//! As the tower [`ServiceBuilder`](https://docs.rs/tower/latest/tower/struct.ServiceBuilder.html)
//! `# Order` section says, the layer added first sees the request first:
//!
//! - CORS goes **outside** (before) this layer, so browser preflights (which carry no token) are
//!   answered instead of getting a 401.
//! - The metadata document ([`ProtectedResource::metadata_router`](crate::ProtectedResource::metadata_router),
//!   feature `axum`) must stay unauthenticated: merge it outside this layer.
//! - Per-operation scopes are not checked here: use the [`extract`](crate::extract) extractors or
//!   the MCP tool-scope layer, which answer 403 with a step-up challenge.
//!
//! With feature `tracing`, every request runs in one `DEBUG` span, `mcp_auth.bearer`, with the fields
//! `decision` (`allow` / `challenge` / `deny`), `cache` (`hit` / `miss`), `verify_us`,
//! `client_id` and `sub_hash` (a short hash of the subject, never the token), recorded only when
//! the span is enabled: with the level off it costs one level check. Every decision is also
//! logged (target `mcp_auth_resource::bearer::service`): acceptances at TRACE with `sub`,
//! `client_id` and `jti`, rejections at DEBUG with their kind, an unavailable verifier at ERROR.
//! The token is never logged.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode, header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE}};
//! use http_body_util::Full;
//! use mcp_auth_resource::{
//!     AuthInfo, BearerAuthLayer, BearerError, BearerErrorKind, ProtectedResource, TokenVerifier,
//!     VerifyError, VerifyErrorKind,
//! };
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
//!
//! /// A verifier of our own: one good token, one token whose verifier is down.
//! #[derive(Debug)]
//! struct Fixed;
//!
//! impl TokenVerifier for Fixed {
//!     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
//!         match token {
//!             "good" => Ok(AuthInfo::builder().subject("alice").build()),
//!             "outage" => Err(VerifyError::unavailable(None)),
//!             _ => Err(VerifyErrorKind::Expired.into()),
//!         }
//!     }
//! }
//!
//! async fn handle(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, BoxError> {
//!     let info = req.extensions().get::<AuthInfo>().expect("the layer inserted it");
//!     Ok(Response::new(Full::from(format!("hello {}", info.subject().unwrap_or("?")))))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported("mcp:tools".parse()?)
//!     .build()?;
//! let mut service = ServiceBuilder::new()
//!     .layer(BearerAuthLayer::new(Fixed, resource))
//!     .service_fn(handle);
//!
//! // No credentials: 401, and where to find the metadata. No `error` code.
//! let request = Request::builder().uri("/mcp").body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()[WWW_AUTHENTICATE],
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#,
//! );
//! assert_eq!(
//!     response.extensions().get::<BearerError>().map(BearerError::kind),
//!     Some(BearerErrorKind::MissingToken),
//! );
//!
//! // An expired token: 401 `invalid_token` with a fixed description.
//! let request = Request::builder()
//!     .uri("/mcp")
//!     .header(AUTHORIZATION, "Bearer stale")
//!     .body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()[WWW_AUTHENTICATE],
//!     r#"Bearer error="invalid_token", error_description="The access token has expired", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
//! );
//!
//! // Another scheme: 400 `invalid_request`.
//! let request = Request::builder()
//!     .uri("/mcp")
//!     .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
//!     .body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::BAD_REQUEST);
//!
//! // The verifier cannot decide: 503, retry later, no challenge.
//! let request = Request::builder()
//!     .uri("/mcp")
//!     .header(AUTHORIZATION, "Bearer outage")
//!     .body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(response.headers()[RETRY_AFTER], "5");
//! assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
//!
//! // A good token (the scheme is case-insensitive): the handler runs and sees who called.
//! let request = Request::builder()
//!     .uri("/mcp")
//!     .header(AUTHORIZATION, "bearer good")
//!     .body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! Optional mode lets a request without credentials through, marked [`Anonymous`]:
//!
//! ```
//! # use bytes::Bytes;
//! # use http::{Request, Response, StatusCode, header::AUTHORIZATION};
//! # use http_body_util::Full;
//! # use mcp_auth_resource::{AuthInfo, BearerAuthLayer, ProtectedResource, TokenVerifier, VerifyError, VerifyErrorKind};
//! use mcp_auth_resource::Anonymous;
//! # use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
//! # #[derive(Debug)]
//! # struct Fixed;
//! # impl TokenVerifier for Fixed {
//! #     async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
//! #         Err(VerifyErrorKind::Expired.into())
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! # let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//! #     .authorization_server("https://auth.example.com")
//! #     .build()?;
//! let service = ServiceBuilder::new()
//!     .layer(BearerAuthLayer::new(Fixed, resource).optional())
//!     .service_fn(|req: Request<Full<Bytes>>| async move {
//!         let anonymous = req.extensions().get::<Anonymous>().is_some();
//!         let body = if anonymous { "guest" } else { "member" };
//!         Ok::<_, BoxError>(Response::new(Full::<Bytes>::from(body)))
//!     });
//!
//! let request = Request::builder().uri("/mcp").body(Full::default())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // A bad token is still rejected.
//! let request = Request::builder()
//!     .uri("/mcp")
//!     .header(AUTHORIZATION, "Bearer stale")
//!     .body(Full::default())?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

pub(crate) mod context;
pub(crate) mod error;
mod future;
mod header;
pub(crate) mod layer;
pub(crate) mod response;
pub(crate) mod service;
mod trace;

// For the extractors, and for the tool-scope layer, which needs the layer's scope floor.
pub(crate) use self::context::Config;
#[cfg(any(feature = "axum", feature = "mcp"))]
pub(crate) use self::context::LayerContext;
#[cfg(feature = "axum")]
pub(crate) use self::error::INSUFFICIENT_SCOPE_DESCRIPTION;
pub use self::future::ResponseFuture;
pub(crate) use self::{
    context::Anonymous,
    error::{BearerError, BearerErrorKind, DpopRejection, InvalidRequestKind},
    layer::BearerAuthLayer,
    response::{DefaultRejection, ResponseForBearerError},
    service::BearerAuth,
};
#[cfg(doc)]
use crate::JsonRejection;
