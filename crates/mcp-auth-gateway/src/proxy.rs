//! [`McpProxy`]: a tower service that forwards MCP Streamable HTTP requests to one upstream MCP
//! server, usable behind any tower stack (the gateway puts the resource layers in front of it).
//!
//! # What it does with a request
//!
//! 1. The body is read, up to [`max_body_bytes`](ProxyBuilder::max_body_bytes) (a JSON-RPC
//!    message; a larger one gets `413` with a JSON-RPC error). `GET` and `DELETE` have none.
//! 2. Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and the headers it names, `Keep-Alive`,
//!    `TE`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`), `Host`, `Cookie`, `Origin`,
//!    `Accept-Encoding`, the client's `Authorization` and any `X-MCP-Subject` / `X-MCP-Client-Id`
//!    / `X-MCP-Scopes` are dropped; the [`Identity`] of the caller (the
//!    [`AuthInfo`] the bearer layer left in the extensions) is added. Everything else (`Accept`,
//!    `Content-Type`, `Mcp-Session-Id`, `MCP-Protocol-Version`, `Mcp-Method`, `Last-Event-ID`,
//!    ...) goes through, with the query string.
//! 3. The upstream's response head must arrive within
//!    [`response_timeout`](ProxyBuilder::response_timeout); the body then streams through chunk
//!    by chunk (an SSE stream event by event, never buffered whole), each chunk within the
//!    [`idle_timeout`](ProxyBuilder::idle_timeout).
//!
//! # Errors the client can show
//!
//! Whatever goes wrong upstream, the client gets a JSON-RPC error body (`id` echoed when the
//! request had one) with a fixed message, and the gateway keeps serving:
//!
//! | upstream | answer |
//! |---|---|
//! | down (connection refused, DNS, reset before the head) | `502`, `-32002` "the upstream MCP server is unreachable" |
//! | no response head within the timeout | `504`, `-32003` "the upstream MCP server did not answer in time" |
//! | a `2xx` to a `POST` that is neither JSON nor SSE, a `200` to a `GET` that is not SSE, a `5xx` that is not JSON | `502`, `-32004` "the upstream MCP server sent an invalid response" |
//! | `401` or `403` (it refused the gateway's identity) | `502`, `-32005` "the upstream MCP server refused the gateway" |
//!
//! Its `WWW-Authenticate` and `Set-Cookie` are never passed on: they are about the gateway, not
//! the client.

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use futures_util::{TryStreamExt, future::BoxFuture};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use mcp_auth_resource::AuthInfo;
use serde_json::{Value, json};
use tower::Service;

use crate::{
    filter::{ByteStream, MAX_FILTERED_BYTES, ToolVisibility},
    identity::Identity,
    upstream::{Failure, Settings, Upstream},
};

/// JSON-RPC error code: the upstream is unreachable.
pub const UPSTREAM_UNREACHABLE: i64 = -32002;
/// JSON-RPC error code: the upstream did not answer in time.
pub const UPSTREAM_TIMEOUT: i64 = -32003;
/// JSON-RPC error code: the upstream's answer is not an MCP answer.
pub const UPSTREAM_INVALID: i64 = -32004;
/// JSON-RPC error code: the upstream refused the gateway (401/403).
pub const UPSTREAM_REFUSED: i64 = -32005;
/// JSON-RPC error code: the request body is too large.
pub const REQUEST_TOO_LARGE: i64 = -32600;

/// Forwards requests to the upstream MCP server. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct McpProxy(Arc<Inner>);

struct Inner {
    upstream: Upstream,
    /// The upstream's URL, for `Debug`.
    upstream_url: String,
    identity: Identity,
    response_timeout: Duration,
    max_body_bytes: usize,
    visibility: Option<Arc<ToolVisibility>>,
}

impl fmt::Debug for McpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpProxy")
            .field("upstream", &self.0.upstream_url)
            .field("identity", &self.0.identity)
            .field("response_timeout", &self.0.response_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds an [`McpProxy`].
#[derive(Debug)]
#[must_use]
pub struct ProxyBuilder {
    upstream: String,
    unix_socket: Option<std::path::PathBuf>,
    identity: Identity,
    connect_timeout: Duration,
    response_timeout: Duration,
    idle_timeout: Duration,
    max_body_bytes: usize,
    visibility: Option<ToolVisibility>,
}

impl McpProxy {
    /// A proxy to the MCP endpoint `upstream` (an `http` or `https` URL).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_auth_gateway::{identity::Identity, proxy::McpProxy};
    ///
    /// let proxy = McpProxy::builder("http://127.0.0.1:8000/mcp")
    ///     .identity(Identity::Headers)
    ///     .response_timeout(Duration::from_secs(30))
    ///     .build()?;
    /// # Ok::<(), mcp_auth_gateway::Error>(())
    /// ```
    pub fn builder(upstream: impl Into<String>) -> ProxyBuilder {
        ProxyBuilder {
            upstream: upstream.into(),
            unix_socket: None,
            identity: Identity::None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(300),
            max_body_bytes: 1024 * 1024,
            visibility: None,
        }
    }
}

impl ProxyBuilder {
    /// Connect through this unix socket.
    pub fn unix_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// How the upstream learns who calls. Default [`Identity::None`].
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The time allowed to connect. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time allowed until the response head arrives. Default 120 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The longest silence within a response body. Default 300 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The largest request body. Default 1 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Hide from `tools/list` the tools the caller may not call.
    pub fn hide_tools(mut self, visibility: ToolVisibility) -> Self {
        self.visibility = Some(visibility);
        self
    }

    /// The proxy.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the URL is not `http(s)`, or the HTTP client
    /// cannot be built.
    pub fn build(self) -> Result<McpProxy, crate::error::Error> {
        let upstream = url::Url::parse(&self.upstream)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                crate::error::Error::Config(format!(
                    "the upstream {:?} is not an http(s) URL",
                    self.upstream
                ))
            })?;
        let client = Upstream::new(
            &upstream,
            Settings {
                unix_socket: self.unix_socket,
                connect_timeout: self.connect_timeout,
                idle_timeout: self.idle_timeout,
            },
        )?;
        Ok(McpProxy(Arc::new(Inner {
            upstream: client,
            upstream_url: upstream.to_string(),
            identity: self.identity,
            response_timeout: self.response_timeout,
            max_body_bytes: self.max_body_bytes,
            visibility: self.visibility.map(Arc::new),
        })))
    }
}

impl<B> Service<Request<B>> for McpProxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { Ok(inner.forward(req).await) })
    }
}

/// The `id` and `method` of a single JSON-RPC message (`None`s for anything else).
fn peek(body: &[u8]) -> (Value, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        method: Option<String>,
    }
    match serde_json::from_slice::<Peek>(body) {
        Ok(p) => (
            if p.id.is_string() || p.id.is_number() {
                p.id
            } else {
                Value::Null
            },
            p.method,
        ),
        Err(_) => (Value::Null, None),
    }
}

/// A JSON-RPC error answer.
/// A JSON-RPC error answer (`application/json`): the one shape of every error the gateway
/// itself gives on `/mcp`.
pub(crate) fn rpc_error(status: StatusCode, code: i64, message: &str, id: Value) -> Response<Body> {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Headers never forwarded upstream, besides those `Connection` names.
const REQUEST_DROP: [HeaderName; 12] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::HOST,
    header::COOKIE,
    header::ORIGIN,
    header::ACCEPT_ENCODING,
    header::CONTENT_LENGTH,
];

/// Headers never passed back to the client, besides those `Connection` names.
const RESPONSE_DROP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::WWW_AUTHENTICATE,
    header::SET_COOKIE,
];

/// Removes the hop-by-hop headers (those `Connection` names first) and `drop`.
fn strip(headers: &mut HeaderMap, drop: &[HeaderName]) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(drop) {
        headers.remove(name);
    }
    let proxy_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_headers {
        headers.remove(name);
    }
}

fn is_media(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

impl Inner {
    async fn forward<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = req.into_parts();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                let too_large = error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                return if too_large {
                    rpc_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        REQUEST_TOO_LARGE,
                        "the request body is too large",
                        Value::Null,
                    )
                } else {
                    rpc_error(
                        StatusCode::BAD_REQUEST,
                        REQUEST_TOO_LARGE,
                        "the request body could not be read",
                        Value::Null,
                    )
                };
            }
        };
        let caller = parts.extensions.remove::<AuthInfo>();
        let is_post = parts.method == Method::POST;
        // Filtering needs the method; errors need the id. Both are read only when needed.
        let filter = match (&self.visibility, &caller) {
            (Some(visibility), Some(caller)) if is_post => {
                let (_, method) = peek(&body);
                (method.as_deref() == Some("tools/list"))
                    .then(|| (Arc::clone(visibility), caller.scopes().clone()))
            }
            _ => None,
        };

        strip(&mut parts.headers, &REQUEST_DROP);
        self.identity.apply(&mut parts.headers, caller.as_ref());
        let headers = std::mem::take(&mut parts.headers);
        let sent = tokio::time::timeout(
            self.response_timeout,
            self.upstream.send(
                parts.method.clone(),
                headers,
                parts.uri.query(),
                body.clone(),
            ),
        )
        .await;
        let mut response = match sent {
            Err(_) => {
                tracing::warn!(timeout = ?self.response_timeout, "the upstream did not answer in time");
                return rpc_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    UPSTREAM_TIMEOUT,
                    "Gateway timeout: the upstream MCP server did not answer in time",
                    peek(&body).0,
                );
            }
            Ok(Err(failure)) => {
                let (code, status, message) = if failure == Failure::Timeout {
                    (
                        UPSTREAM_TIMEOUT,
                        StatusCode::GATEWAY_TIMEOUT,
                        "Gateway timeout: the upstream MCP server did not answer in time",
                    )
                } else {
                    (
                        UPSTREAM_UNREACHABLE,
                        StatusCode::BAD_GATEWAY,
                        "Bad gateway: the upstream MCP server is unreachable",
                    )
                };
                return rpc_error(status, code, message, peek(&body).0);
            }
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        let headers = response.headers();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            tracing::warn!(%status, "the upstream MCP server refused the gateway's request");
            return rpc_error(
                StatusCode::BAD_GATEWAY,
                UPSTREAM_REFUSED,
                "Bad gateway: the upstream MCP server refused the gateway",
                peek(&body).0,
            );
        }
        let json = is_media(headers, "application/json");
        let sse = is_media(headers, "text/event-stream");
        let has_body = !matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT);
        let invalid = (is_post && status.is_success() && has_body && !json && !sse)
            || (parts.method == Method::GET && status == StatusCode::OK && !sse)
            || (status.is_server_error() && !json);
        if invalid {
            tracing::warn!(%status, "the upstream MCP server sent an invalid response");
            return rpc_error(
                StatusCode::BAD_GATEWAY,
                UPSTREAM_INVALID,
                "Bad gateway: the upstream MCP server sent an invalid response",
                peek(&body).0,
            );
        }

        strip(response.headers_mut(), &RESPONSE_DROP);
        let (mut head, upstream_body) = response.into_parts();
        let out = match filter {
            Some((visibility, granted)) if sse => {
                head.headers.remove(header::CONTENT_LENGTH);
                let stream: ByteStream = Box::pin(TryStreamExt::map_err(
                    upstream_body.into_data_stream(),
                    |e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>,
                ));
                Body::from_stream(visibility.filter_sse(granted, stream))
            }
            Some((visibility, granted)) if json => {
                let limited = Limited::new(upstream_body, MAX_FILTERED_BYTES);
                match limited.collect().await {
                    Ok(collected) => {
                        head.headers.remove(header::CONTENT_LENGTH);
                        Body::from(visibility.filter_json(collected.to_bytes(), &granted))
                    }
                    Err(_) => {
                        return rpc_error(
                            StatusCode::BAD_GATEWAY,
                            UPSTREAM_INVALID,
                            "Bad gateway: the upstream MCP server sent an invalid response",
                            peek(&body).0,
                        );
                    }
                }
            }
            // The upstream's body as it comes: no stream, no copy.
            _ => upstream_body,
        };
        let mut response = Response::from_parts(head, out);
        if let Some(caller) = caller {
            // The verified token itself (one `Arc`, no string copied) for the access log: the
            // caller's subject and client id, and the `sub_hash` computed once per token.
            response.extensions_mut().insert(caller);
        }
        response
    }
}
