//! The gateway's own middleware: per-address and per-client rate limits ([`RateLimits`]) and
//! the access log ([`access_log`]).

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::{Clock, SystemClock, limit::Limiter};
use mcp_auth_resource::AuthInfo;

use crate::proxy::{REQUEST_TOO_LARGE, rpc_error};

/// Requests per minute, per client address and per OAuth client (GCRA on `governor`, see
/// [`mcp_auth_core::limit`]: a burst of the limit, then one request every `60 / limit` s).
/// Cloning is cheap.
#[derive(Debug, Clone)]
pub struct RateLimits(Arc<LimitsInner>);

#[derive(Debug)]
struct LimitsInner {
    per_ip: Option<Limiter>,
    per_client: Option<Limiter>,
}

impl RateLimits {
    /// `per_ip` requests a minute from one address, `per_client` MCP requests a minute with the
    /// tokens of one client; 0 turns a limit off.
    #[must_use]
    pub fn new(per_ip: u32, per_client: u32) -> Self {
        Self::with_clock(per_ip, per_client, Arc::new(SystemClock::default()))
    }

    /// The same on `clock`.
    #[must_use]
    pub fn with_clock(per_ip: u32, per_client: u32, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(LimitsInner {
            per_ip: (per_ip > 0).then(|| Limiter::with_clock(per_ip, 60, Arc::clone(&clock))),
            per_client: (per_client > 0).then(|| Limiter::with_clock(per_client, 60, clock)),
        }))
    }
}

/// `429 Too Many Requests` with `Retry-After` and a JSON-RPC error body.
fn too_many(retry_after: u64) -> Response {
    let mut response = rpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        -32029,
        &format!("Too many requests: retry after {retry_after} s"),
        serde_json::Value::Null,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// Middleware (`axum::middleware::from_fn_with_state`): the per-address limit, on the peer
/// address of the connection (`ConnectInfo<SocketAddr>`; never a forwarded header). Without
/// connection info the request passes.
pub async fn per_ip(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    match refuse_ip(&limits, &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// The per-address limit's `429`, when `req`'s peer is over it.
fn refuse_ip(limits: &RateLimits, req: &Request) -> Option<Response> {
    if let (Some(limiter), Some(ConnectInfo(peer))) = (
        &limits.0.per_ip,
        req.extensions().get::<ConnectInfo<SocketAddr>>(),
    ) {
        let key = peer.ip().to_canonical().to_string();
        if let Err(retry_after) = limiter.hit(&key) {
            tracing::info!(target: "mcp_auth_gateway::access", peer = %key, "rate limited (address)");
            return Some(too_many(retry_after));
        }
    }
    None
}

/// Middleware: the per-client limit, after the bearer layer (keyed on the token's `client_id`,
/// else its subject).
pub async fn per_client(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    if let (Some(limiter), Some(info)) = (&limits.0.per_client, req.extensions().get::<AuthInfo>())
    {
        let key = match (info.client_id(), info.subject()) {
            (Some(client), _) => format!("c:{client}"),
            (None, Some(sub)) => format!("s:{sub}"),
            (None, None) => String::from("-"),
        };
        if let Err(retry_after) = limiter.hit(&key) {
            tracing::info!(target: "mcp_auth_gateway::access", client = %key, "rate limited (client)");
            return too_many(retry_after);
        }
    }
    next.run(req).await
}

/// Middleware: one `INFO` span `mcp_auth.gateway` around each request (fields `method`, `path`,
/// `mcp_method`, `status`, `client_id`, `sub_hash`, `decision`: `allow` for a 2xx/3xx,
/// `challenge` for a 401, `deny` otherwise; every event of the request, the embedded
/// authorization server's spans included, is inside it), and one structured `INFO` event per
/// request on target `mcp_auth_gateway::access`, with the peer address, method, path (never the
/// query: it can hold codes), status, time to the response head, and for proxied MCP requests
/// the caller's subject and client id. Never a token, header value or body.
pub async fn access_log(req: Request, next: Next) -> Response {
    logged(None, req, next).await
}

/// Middleware: [`access_log`] around [`per_ip`], in one middleware (the gateway's own stack:
/// one boxed service and future per request fewer).
pub(crate) async fn access_log_per_ip(
    State(limits): State<RateLimits>,
    req: Request,
    next: Next,
) -> Response {
    logged(Some(&limits), req, next).await
}

/// [`access_log`], with the per-address limit inside when `limits` is given.
async fn logged(limits: Option<&RateLimits>, req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_canonical());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mcp_method = req
        .headers()
        .get("mcp-method")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64)
        .map(str::to_owned);
    let span = tracing::info_span!(
        "mcp_auth.gateway",
        %method,
        path = %path,
        mcp_method = mcp_method.as_deref(),
        status = tracing::field::Empty,
        client_id = tracing::field::Empty,
        sub_hash = tracing::field::Empty,
        decision = tracing::field::Empty,
    );
    let refused = limits.and_then(|limits| span.in_scope(|| refuse_ip(limits, &req)));
    let response = match refused {
        Some(refused) => refused,
        None => next.run(req).instrument(span.clone()).await,
    };
    // The proxy leaves the verified token in the response; an answer given before it (a
    // challenge, a refusal) has none.
    let caller = response.extensions().get::<AuthInfo>();
    if !span.is_disabled() {
        let status = response.status();
        span.record("status", status.as_u16());
        let decision = match status.as_u16() {
            200..=399 => "allow",
            401 => "challenge",
            _ => "deny",
        };
        span.record("decision", decision);
        if let Some(client_id) = caller.and_then(AuthInfo::client_id) {
            span.record("client_id", client_id);
        }
        // Hashed once per verified token (`AuthInfo` caches it), not once per request.
        if let Some(sub_hash) = caller.and_then(AuthInfo::subject_hash) {
            span.record("sub_hash", sub_hash);
        }
    }
    tracing::info!(
        target: "mcp_auth_gateway::access",
        peer = peer.map(tracing::field::display),
        %method,
        path = %path,
        mcp_method = mcp_method.as_deref(),
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        subject = caller.and_then(AuthInfo::subject),
        client_id = caller.and_then(AuthInfo::client_id),
    );
    response
}

/// The time [`read_body`] allows for receiving a whole request body; a slower one gets `408`.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// A JSON-RPC error answer with a fixed message.
fn refuse(status: StatusCode, message: &str) -> Response {
    rpc_error(status, REQUEST_TOO_LARGE, message, serde_json::Value::Null)
}

/// Middleware: reads the request body in full (within [`BodyTimeout`]) before any layer
/// answers.
///
/// An answer given before the body was read (the bearer layer's `401`) would leave the body's
/// bytes unread on a kept-alive connection, and the server would then close that connection
/// while the client may already be sending its next request on it ("server disconnected
/// without sending a response", seen with the Python SDK's client). The body is one JSON-RPC
/// message, which the tool-scope layer and the proxy read in full anyway.
///
/// Its size is bounded outside, by `tower_http::limit::RequestBodyLimitLayer`: a declared
/// `Content-Length` over the limit is refused before a byte is read (tower-http's plain `413`,
/// which [`json_rpc_rejection`] reshapes), and a body that grows past it fails here with `413`.
pub async fn read_body(State(timeout): State<BodyTimeout>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt as _;
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout.0, body.collect()).await {
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the request body came too slowly",
            );
        }
        Ok(Err(error)) => {
            return if over_limit(&error) {
                refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            } else {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            };
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether a body error is (or was caused by) the body limit.
fn over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::causes(error).any(|e| e.is::<http_body_util::LengthLimitError>())
}

/// Middleware (`axum::middleware::from_fn`): tower-http's bare `413` (plain text, from a
/// `RequestBodyLimitLayer` inside) as the JSON-RPC error MCP clients show; every other response
/// passes unchanged (the gateway's own errors always carry a JSON `Content-Type`).
pub async fn json_rpc_rejection(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if bare && response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    } else {
        response
    }
}
