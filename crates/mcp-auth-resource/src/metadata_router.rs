//! Serving the RFC 9728 metadata document with axum: [`ProtectedResource::metadata_router`].
//!
//! The document must stay unauthenticated (SPEC RS-9): clients fetch it *because* they have no
//! token yet. So the router is merged **outside** the bearer layer, and CORS goes outside both,
//! so browser preflights to the MCP endpoint are answered instead of getting a 401:
//!
//! ```text
//! Router::new()
//!     .route("/mcp", post(mcp))            // the protected routes …
//!     .layer(BearerAuthLayer::new(..))     // … authenticated: `layer` wraps the routes added so far
//!     .merge(resource.metadata_router())   // the metadata: added after, so not authenticated
//!     .layer(cors)                         // outermost: sees every request first
//! ```

use axum::{
    Router,
    body::Body,
    response::Response,
    routing::{MethodRouter, get},
};
use http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{Any, CorsLayer};

use crate::{ProtectedResource, ROOT_METADATA_PATH};

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(86_400);

impl ProtectedResource {
    /// An axum router that serves the metadata document at
    /// [`metadata_path`](Self::metadata_path) and, when
    /// [`serves_root_metadata`](Self::serves_root_metadata), at `/.well-known/oauth-protected-resource`
    /// too (clients fall back to it, SPEC C-5).
    ///
    /// | Request | Response |
    /// | --- | --- |
    /// | `GET`, `HEAD` | 200, the precomputed [`metadata_json`](Self::metadata_json) (no body for `HEAD`), `Content-Type: application/json`, `Cache-Control` from [`cache_control`](Self::cache_control), `Access-Control-Allow-Origin: *` |
    /// | `OPTIONS` (CORS preflight) | 200, empty body, `Access-Control-Allow-Origin: *`, `Access-Control-Allow-Methods: GET,HEAD,OPTIONS`, `Access-Control-Allow-Headers: mcp-protocol-version`, `Access-Control-Max-Age: 86400` |
    /// | any other method | 405 with `Allow: GET,HEAD,OPTIONS` |
    ///
    /// The preflight answer is 200, not 204: axum adds `Content-Length: 0` to every response, and
    /// RFC 9110 §8.6 forbids that header on a 204; the Fetch standard accepts any 2xx.
    ///
    /// The router is generic over the state `S`, so it merges into any app. Merge it **outside**
    /// the [`BearerAuthLayer`](crate::BearerAuthLayer) (after the `.layer(..)` call): the document
    /// must be reachable without a token. CORS goes outside both (the last `.layer(..)`), so
    /// browser preflights to the MCP endpoint are answered instead of getting a 401:
    ///
    /// ```text
    /// Router::new()
    ///     .route("/mcp", post(mcp))            // the protected routes …
    ///     .layer(BearerAuthLayer::new(..))     // … authenticated: `layer` wraps the routes added so far
    ///     .merge(resource.metadata_router())   // the metadata: added after, so not authenticated
    ///     .layer(cors)                         // outermost: sees every request first
    /// ```
    ///
    /// # Example
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::post};
    /// use http::{Request, StatusCode};
    /// use mcp_auth_resource::{AuthInfo, BearerAuthLayer, ProtectedResource, TokenVerifier, VerifyError, VerifyErrorKind};
    /// use tower::ServiceExt;
    ///
    /// #[derive(Debug)]
    /// struct RejectAll;
    /// impl TokenVerifier for RejectAll {
    ///     async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
    ///         Err(VerifyErrorKind::Inactive.into())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
    ///     .authorization_server("https://auth.example.com")
    ///     .build()?;
    /// let app = Router::new()
    ///     .route("/mcp", post(|| async { "tool result" }))
    ///     .layer(BearerAuthLayer::new(RejectAll, resource.clone()))
    ///     .merge(resource.metadata_router());
    ///     // A CORS layer would go here, last: `.layer(cors)`.
    ///
    /// let request = Request::post("/mcp").body(Body::empty())?;
    /// assert_eq!(app.clone().oneshot(request).await?.status(), StatusCode::UNAUTHORIZED);
    ///
    /// let request = Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), StatusCode::OK);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// assert_eq!(response.headers()["access-control-allow-origin"], "*");
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let method_router = metadata_method_router(self.clone());
        // The path comes from a URL, so it holds no `{`/`}` (percent-encoded), but escape them
        // anyway, and skip axum's checks for segments starting with `:` or `*`: this path is
        // literal, never a pattern.
        let router = Router::new()
            .without_v07_checks()
            .route(&escape_route(self.metadata_path()), method_router.clone());
        if self.serves_root_metadata() {
            router.route(ROOT_METADATA_PATH, method_router)
        } else {
            router
        }
    }
}

fn metadata_method_router<S>(resource: ProtectedResource) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    // `get` also answers HEAD, without the body; other methods get axum's 405 with `Allow`.
    // A loopback resource describes itself in the loopback spelling the request used.
    get(move |request: http::request::Parts| {
        let seen = resource.as_addressed(&request.uri, &request.headers);
        let json = seen.metadata_json().clone();
        let cache_control = seen.cache_control().clone();
        async move {
            let mut response = Response::new(Body::from(json));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, cache_control);
            response
        }
    })
    // Listed so that a 405's `Allow` names OPTIONS; never reached: the CORS layer answers
    // every OPTIONS request itself.
    .options(|| async {})
    .layer(cors())
}

/// The document's CORS (tower-http): any origin, no credentials, preflights answered with 200
/// (axum adds `Content-Length: 0`, which RFC 9110 §8.6 forbids on a 204; Fetch accepts any
/// 2xx), no `Vary` (the answer does not depend on the origin).
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([HeaderName::from_static("mcp-protocol-version")])
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([])
}

/// Escapes a literal path for axum's router syntax (`{` and `}` are doubled).
fn escape_route(path: &str) -> String {
    path.replace('{', "{{").replace('}', "}}")
}
