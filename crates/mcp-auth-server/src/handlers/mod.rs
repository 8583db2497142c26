//! The endpoints, one file each, and the router that mounts them at the issuer's paths.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::well_known;

use crate::server::Inner;

pub(crate) mod authorize;
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
    router.layer(DefaultBodyLimit::max(limit)).with_state(inner)
}

/// CORS for endpoints browser-based clients call (AS-7): any origin, no credentials.
pub(crate) fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Retry-After"),
    );
    response
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

/// The media type of a request or response (`type/subtype`, lowercase, without parameters).
fn essence(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether the content type is `application/x-www-form-urlencoded` (parameters allowed).
pub(crate) fn is_form(headers: &http::HeaderMap) -> bool {
    essence(headers).is_some_and(|e| e == "application/x-www-form-urlencoded")
}

/// Whether the content type is `application/json` or `application/*+json` (parameters allowed).
pub(crate) fn is_json(headers: &http::HeaderMap) -> bool {
    essence(headers).is_some_and(|e| {
        e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
    })
}

/// A public, cacheable JSON document (metadata, JWKS) with CORS.
pub(crate) fn public_json(body: bytes::Bytes, cache_control: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    cors(response)
}

/// The JSON response every endpoint uses for success bodies that carry credentials.
pub(crate) fn no_store_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
