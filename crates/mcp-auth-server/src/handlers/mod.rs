//! The endpoints, one file each, and the router that mounts them at the issuer's paths.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::well_known;

use crate::state::Inner;

pub(crate) mod authorize;
pub(crate) mod callback;
pub(crate) mod introspect;
pub(crate) mod jwks;
pub(crate) mod metadata;
pub(crate) mod register;
pub(crate) mod revoke;
pub(crate) mod token;

/// State of every handler.
pub(crate) type State = axum::extract::State<Arc<Inner>>;

/// Build the router. Paths: the three metadata URLs (AS-3), then the endpoints under the
/// issuer's path.
pub(crate) fn router<S>(inner: Arc<Inner>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let c = &inner.config;
    let mut router = Router::new();

    // Exactly the URLs clients try (core's X-6 builder): RFC 8414 inserted, OIDC inserted and,
    // for an issuer with a path, OIDC appended.
    let rfc8414 = format!("/.well-known/{}", well_known::OAUTH_AUTHORIZATION_SERVER);
    for url in well_known::authorization_server_metadata_urls(&c.issuer) {
        let Ok(url) = url::Url::parse(&url) else {
            continue;
        };
        let document = if url.path().starts_with(&rfc8414) {
            get(metadata::oauth)
        } else {
            get(metadata::openid)
        };
        router = router.route(url.path(), document.options(preflight));
    }

    router = router
        .route(
            &c.path("/authorize"),
            get(authorize::get).post(authorize::post),
        )
        .route(&c.path("/token"), post(token::handle).options(preflight))
        .route(&c.path("/revoke"), post(revoke::handle).options(preflight))
        .route(&c.path("/jwks.json"), get(jwks::handle).options(preflight));
    if inner.login.redirect().is_some() {
        router = router.route(&c.path(authorize::CALLBACK_PATH), get(callback::get));
    }
    if c.dynamic_registration {
        router = router.route(
            &c.path("/register"),
            post(register::handle).options(preflight),
        );
    }
    if !c.introspection_clients.is_empty() {
        router = router.route(&c.path("/introspect"), post(introspect::handle));
    }

    let limit = c.max_body_bytes;
    let router = router.layer(DefaultBodyLimit::max(limit));
    let router = if c.loopback {
        router.layer(axum::middleware::from_fn(loopback_host_guard))
    } else {
        router
    };
    router.with_state(inner)
}

/// On a loopback issuer, a request that names a host (in `Host` or its target) must name a
/// loopback one (`localhost`, 127.0.0.0/8, `[::1]`, any port): a page on another site that made its own
/// name resolve to 127.0.0.1 (DNS rebinding) still sends that name, and is refused with 403
/// before it can drive a headless or signed-in local authorization server. The same rule as
/// `mcp-auth-resource`'s `OriginGuardLayer` for `/mcp`.
async fn loopback_host_guard(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if crate::http::names_loopback_host(request.uri(), request.headers()) {
        return next.run(request).await;
    }
    #[cfg(feature = "tracing")]
    tracing::warn!(host = ?request.headers().get(header::HOST), "request refused: the Host is not a loopback host (DNS rebinding?)");
    let mut error = crate::error::OAuthError::invalid_request(
        "this authorization server runs on loopback: the request must name a loopback host",
    );
    error.status = StatusCode::FORBIDDEN;
    error.into_response()
}

/// Answer a CORS preflight.
async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, MCP-Protocol-Version"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}
