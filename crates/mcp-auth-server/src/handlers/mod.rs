//! The endpoints, one file each, and the router that mounts them at the issuer's paths.
//!
//! Every route has the same tower-http guards, one `ServiceBuilder` stack, innermost first:
//! `TimeoutLayer` ([`request_timeout`](crate::AuthorizationServerBuilder::request_timeout)),
//! `RequestBodyLimitLayer`
//! ([`max_body_size`](crate::AuthorizationServerBuilder::max_body_size)), then their bare
//! rejections rewritten in the endpoint's own shape (OAuth JSON, or an error page at
//! `/authorize`), then, on the endpoints browsers call (metadata, JWKS, `/token`, `/register`,
//! `/revoke`; AS-7), `CorsLayer`: any origin, no credentials, preflights answered with 200, and
//! outermost, on a loopback issuer, the DNS-rebinding guard (403 for a non-loopback `Host`).
//! One layer per route, so a request pays one boxed route, not one per guard.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use futures_util::future::Either;
use http::{HeaderName, Method, StatusCode, header};
use mcp_auth_core::well_known;
use tower::ServiceBuilder;
use tower::layer::layer_fn;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};
use tower_http::timeout::TimeoutLayer;

use crate::error::OAuthError;
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

/// How an endpoint answers, and so how its guards' rejections are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Called by browser-based clients: OAuth JSON errors and CORS.
    Public,
    /// Server to server (`/introspect`): OAuth JSON errors, no CORS.
    Private,
    /// Pages a person sees (`/authorize`, the sign-in callback): HTML errors, no CORS.
    Page,
}

/// Build the router. Paths: the three metadata URLs (AS-3), then the endpoints under the
/// issuer's path.
pub(crate) fn router<S>(inner: Arc<Inner>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let c = &inner.config;
    let limit = c.max_body_bytes;
    let timeout = c.request_timeout;
    let loopback = c.loopback;
    let guard =
        |route: MethodRouter<Arc<Inner>>, kind: Kind| guard(route, kind, limit, timeout, loopback);
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
        router = router.route(url.path(), guard(document.options(cors_only), Kind::Public));
    }

    router = router
        .route(
            &c.path("/authorize"),
            guard(get(authorize::get).post(authorize::post), Kind::Page),
        )
        .route(
            &c.path("/token"),
            guard(post(token::handle).options(cors_only), Kind::Public),
        )
        .route(
            &c.path("/revoke"),
            guard(post(revoke::handle).options(cors_only), Kind::Public),
        )
        .route(
            &c.path("/jwks.json"),
            guard(get(jwks::handle).options(cors_only), Kind::Public),
        );
    if inner.login.redirect().is_some() {
        router = router.route(
            &c.path(authorize::CALLBACK_PATH),
            guard(get(callback::get), Kind::Page),
        );
    }
    if c.dynamic_registration {
        // Registration documents are small: a cap of its own inside the router's.
        let route = post(register::handle)
            .options(cors_only)
            .layer::<_, Infallible>(RequestBodyLimitLayer::new(
                limit.min(register::MAX_BODY_BYTES),
            ));
        router = router.route(&c.path("/register"), guard(route, Kind::Public));
    }
    if !c.introspection_clients.is_empty() {
        router = router.route(
            &c.path("/introspect"),
            guard(post(introspect::handle), Kind::Private),
        );
    }

    router.with_state(inner)
}

/// The tower-http guards of one route (see the module docs for the order), as one layer: one
/// boxed route per endpoint, not one per guard, and the rejection shaper a plain function, not
/// a boxed future.
fn guard(
    route: MethodRouter<Arc<Inner>>,
    kind: Kind,
    limit: usize,
    timeout: Duration,
    loopback: bool,
) -> MethodRouter<Arc<Inner>> {
    route.layer::<_, Infallible>(
        ServiceBuilder::new()
            .option_layer(loopback.then_some(layer_fn(LoopbackHostGuard)))
            .option_layer((kind == Kind::Public).then(public_cors))
            .map_response(move |response: http::Response<ResponseBody<Body>>| {
                shape_rejection(kind, response.map(Body::new))
            })
            .layer(RequestBodyLimitLayer::new(limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                timeout,
            )),
    )
}

/// CORS for the endpoints browser-based clients call (AS-7): any origin, no credentials, the
/// methods and request headers they use, `WWW-Authenticate` and `Retry-After` readable by the
/// page; preflights cached for a day. No `Vary`: the answer does not depend on the origin.
fn public_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400))
        .vary([])
}

/// `OPTIONS` is routed (so a 405's `Allow` lists it) but never reaches here: the CORS layer
/// answers every preflight itself.
async fn cors_only() -> StatusCode {
    StatusCode::OK
}

/// A guard's bare rejection (tower-http's plain-text 413, or the timeout's empty 503) in the
/// endpoint's shape; every other response passes unchanged. An endpoint's own errors always
/// carry a `Content-Type`.
fn shape_rejection(kind: Kind, response: Response) -> Response {
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !bare {
        return response;
    }
    match (response.status(), kind) {
        (StatusCode::PAYLOAD_TOO_LARGE, Kind::Page) => authorize::error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Bad request",
            "The form was too large.",
        ),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => OAuthError::too_large().into_response(),
        (StatusCode::SERVICE_UNAVAILABLE, Kind::Page) => authorize::unavailable_page(),
        (StatusCode::SERVICE_UNAVAILABLE, _) => {
            #[cfg(feature = "tracing")]
            tracing::warn!("request timed out");
            OAuthError::temporarily_unavailable().into_response()
        }
        _ => response,
    }
}

/// On a loopback issuer, a request that names a host (in `Host` or its target) must name a
/// loopback one (`localhost`, 127.0.0.0/8, `[::1]`, any port): a page on another site that made its own
/// name resolve to 127.0.0.1 (DNS rebinding) still sends that name, and is refused with 403
/// before it can drive a headless or signed-in local authorization server. The same rule as
/// `mcp-auth-resource`'s `OriginGuardLayer` for `/mcp`. Outermost on every route (a path no
/// route serves answers 404 whatever the host: there is nothing behind it to drive).
#[derive(Clone)]
struct LoopbackHostGuard<S>(S);

impl<S, B> tower::Service<http::Request<B>> for LoopbackHostGuard<S>
where
    S: tower::Service<http::Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if crate::http::names_loopback_host(request.uri(), request.headers()) {
            return Either::Left(self.0.call(request));
        }
        #[cfg(feature = "tracing")]
        tracing::warn!(host = ?request.headers().get(header::HOST), "request refused: the Host is not a loopback host (DNS rebinding?)");
        let mut error = crate::error::OAuthError::invalid_request(
            "this authorization server runs on loopback: the request must name a loopback host",
        );
        error.status = StatusCode::FORBIDDEN;
        Either::Right(ready(Ok(error.into_response())))
    }
}
