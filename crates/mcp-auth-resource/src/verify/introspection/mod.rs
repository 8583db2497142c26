//! Opaque access tokens, checked with the authorization server: [`IntrospectionVerifier`]
//! (RFC 7662 token introspection).
//!
//! For each new token the verifier POSTs `token=<token>&token_type_hint=access_token` to the
//! introspection endpoint, authenticated as this resource server ([`ClientAuth`]), and reads the
//! JSON answer.
//!
//! # Rules
//!
//! 1. `active` must be `true`. `false`, a missing `active` or anything else is
//!    [`Inactive`](VerifyErrorKind::Inactive) (401).
//! 2. `exp`, when present, must be in the future, and `nbf` and `iat`, when present, must not be
//!    ([`NotYetValid`](VerifyErrorKind::NotYetValid)), all within the leeway (default 60 s), by
//!    the injected [`Clock`]; the same rules as [`JwtVerifier`](crate::JwtVerifier).
//!    A non-numeric value is [`MissingClaim`](VerifyErrorKind::MissingClaim).
//! 3. If an issuer is configured, a present `iss` must equal it exactly (SPEC X-5). A response
//!    without `iss` is accepted: it came from the configured endpoint.
//! 4. `aud` (a string or an array of strings) must name this resource, compared with
//!    [`ResourceId::matches`] (so `https://mcp.example.com/` matches `https://mcp.example.com`, but
//!    `/mcp/` does not match `/mcp`). A response **without** `aud` is refused, because nothing then
//!    says the token was issued for this server (SPEC RS-22). Some authorization servers never
//!    return `aud` from introspection; for them, and only if every token they issue is meant for
//!    this resource, call [`allow_missing_audience`](IntrospectionVerifierBuilder::allow_missing_audience).
//!    An empty array counts as present and not matching.
//! 5. `scope` (a space-separated string, or tolerated as an array of strings) becomes
//!    [`AuthInfo::scopes`]; tokens that are not valid scope tokens are dropped (never granted).
//!    `sub`, `client_id` (else `azp`), `iss`, `aud`, `exp`, `iat` and `jti` fill the matching
//!    [`AuthInfo`] fields, and every member of the response (`username`, `token_type`, ...) is
//!    available in [`AuthInfo::claims`].
//! 6. **Fail closed, but not with 401.** An unreachable endpoint, a timeout (default 5 s), a
//!    redirect (never followed), a non-2xx status, a body that is not a JSON object or is larger
//!    than the limit (default 64 KiB): all are [`Unavailable`](VerifyErrorKind::Unavailable), which
//!    the bearer layer answers with 503 and `Retry-After`, so clients retry instead of
//!    re-authorizing. A 401 or 403 from the endpoint means the resource server's own credentials
//!    are wrong; that too is `Unavailable`, logged at `error` (feature `tracing`).
//! 7. **Cached.** Answers go into the same cache as [`CachedVerifier`]
//!    (same keyed-hash and constant-time full-token comparison). An active token is cached for the
//!    cache TTL (default 60 s) and never past its `exp`; a token without `exp` for the cache TTL.
//!    Inactive and other bad-token answers are cached for the negative TTL (default 10 s, `0`
//!    disables). Outages are never cached. Capacity defaults to 10 000 entries. Hits are answered
//!    synchronously through [`TokenVerifier::verify_cached`]. A token revoked at the authorization
//!    server stays accepted until its entry expires: the cache TTL bounds that delay, unless the
//!    verifier is wrapped in a [`Revocable`](crate::Revocable). Concurrent
//!    requests with the same new token share one introspection call.
//!
//! The token is sent only in the POST body, never logged, and kept in the cache only as described in
//! the [cache module](crate::verify::cache). The client secret is held as a [`Secret`].
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::ResourceId;
//! use mcp_auth_resource::{ClientAuth, IntrospectionVerifier, TokenVerifier, VerifyErrorKind};
//! # use axum::{Json, Router, routing::post};
//! #
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A tiny authorization server: one active token.
//! # let app = Router::new().route("/introspect", post(|body: String| async move {
//! #     Json(if body.starts_with("token=good-token&") {
//! #         serde_json::json!({
//! #             "active": true, "aud": "https://mcp.example.com", "scope": "mcp:tools",
//! #             "sub": "alice", "client_id": "client-1",
//! #         })
//! #     } else {
//! #         serde_json::json!({ "active": false })
//! #     })
//! # }));
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let issuer = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! // Usually `protected_resource.resource().clone()`.
//! let resource = ResourceId::parse("https://mcp.example.com")?;
//! let verifier = IntrospectionVerifier::builder(
//!     format!("{issuer}/introspect"),
//!     resource,
//!     ClientAuth::client_secret_basic("my-resource-server", "s3cret"),
//! )
//! .build()?;
//!
//! let info = verifier.verify("good-token").await?;
//! assert_eq!(info.subject(), Some("alice"));
//! assert!(info.has_scope("mcp:tools"));
//!
//! let err = verifier.verify("revoked-token").await.unwrap_err();
//! assert_eq!(err.kind(), VerifyErrorKind::Inactive);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub(crate) mod verifier;

#[cfg(doc)]
use mcp_auth_core::{Clock, ResourceId, Secret};

#[cfg(doc)]
use crate::{
    AuthInfo, CachedVerifier, ClientAuth, IntrospectionVerifier, IntrospectionVerifierBuilder,
    TokenVerifier, VerifyErrorKind,
};

/// Default introspection request timeout (connect to end of body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest introspection response body read.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 64 * 1024;
/// Default time an active token stays cached (never past its `exp`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
