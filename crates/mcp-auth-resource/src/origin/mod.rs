//! `Origin` and `Host` checks for the MCP streamable HTTP transport: a present but invalid
//! `Origin` gets `403` (SPEC RS-33), and a `Host` outside the allow-list gets `403`, which stops
//! DNS rebinding.
//!
//! DNS rebinding lets a web page at `evil.example` point its own name at `127.0.0.1` and then
//! talk to a local MCP server as if it were same-origin. The browser still sends
//! `Host: evil.example`, so a server that only answers for the names it knows is safe. Unlike
//! guards that accept any host when none is configured, an [`OriginGuardLayer`] cannot be built
//! without a host allow-list: [`OriginGuardLayer::loopback`] gives one for loopback binds, and
//! [`OriginGuardLayer::builder`] requires at least one [`allow_host`](OriginGuardBuilder::allow_host).
//!
//! This is the one layer of the crate configured through a separate builder rather than setters
//! on the layer (the crate's convention, after tower-http): with setters on the layer, a layer
//! with no allowed host would exist between two calls, and a caller could install it. The
//! builder makes that state unrepresentable; its setters follow the convention (fallible ones
//! return `Result<Self, ConfigError>`, infallible ones `Self`).
//!
//! [`OriginGuard`] applies these rules, in this order, without reading the body:
//!
//! 1. `Host`: the `Host` header and the request-target authority (HTTP/2 `:authority`, or an
//!    absolute-form request line) are each checked when present, and both must be allowed. None
//!    at all, more than one `Host` header, or a value that is not `host[:port]` (user info, a bare
//!    IPv6 address, an empty port) is refused. Names compare case-insensitively and IP addresses
//!    by value; an allowed host without a port allows any port.
//! 2. No `Origin` header: allowed. Non-browser MCP clients do not send one.
//! 3. More than one `Origin` header: refused.
//! 4. `Origin: null` (sandboxed frames, `file:` pages, some redirects): refused.
//! 5. Any other `Origin` must be a serialised origin, `scheme://host[:port]` with no path, that
//!    equals an allowed one: same scheme, same host (case-insensitive), same port, with the
//!    default ports of `http` (80) and `https` (443) filled in. Loopback origins allow any port.
//! 6. Every refusal is `403 Forbidden` with an empty `ResBody::default()` body and an
//!    [`OriginRejection`] in the response extensions. `403` is what MCP requires for a bad
//!    `Origin`, and is used for a bad `Host` too, as the MCP TypeScript SDK's host validation
//!    does (`421 Misdirected Request` would also fit, but clients read it as "retry on another
//!    connection").
//!
//! # Deployment
//!
//! - Behind a reverse proxy the guard sees the `Host` the proxy sends. `X-Forwarded-Host` and
//!   `Forwarded` are ignored on purpose (any client can set them): allow the name the proxy
//!   forwards, or make the proxy keep the original `Host`.
//! - Browsers send `Origin` on same-origin `POST`s too: if a page served by this host calls the
//!   MCP endpoint, allow its origin.
//! - A local server should bind to `127.0.0.1` (SPEC RS-33) or use stdio (RS-34). The guard is
//!   defence in depth, next to the bearer token, not a replacement for it.
//!
//! # Order
//!
//! Put `OriginGuardLayer` outermost, before [`BearerAuthLayer`](crate::BearerAuthLayer) (the
//! layer added first sees the request first), so a rebinding request is refused before any
//! token work; the `ToolScopesLayer` of [`mcp`](crate::mcp) goes inside both. A CORS layer can go
//! on either side; keep its allowed origins in step with the guard's.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode, header};
//! use http_body_util::Full;
//! use mcp_auth_resource::OriginGuardLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! async fn mcp_server(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::default()))
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server bound to 127.0.0.1.
//! let service = ServiceBuilder::new()
//!     .layer(OriginGuardLayer::loopback())
//!     .service_fn(mcp_server);
//!
//! let request = |host: &str, origin: Option<&str>| {
//!     let mut request = Request::post("/mcp").header(header::HOST, host);
//!     if let Some(origin) = origin {
//!         request = request.header(header::ORIGIN, origin);
//!     }
//!     request.body(Full::<Bytes>::default())
//! };
//!
//! // A local client (no Origin) and a local web page are served.
//! let response = service.clone().oneshot(request("127.0.0.1:8080", None)?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let response = service.clone().oneshot(request("localhost:8080", Some("http://localhost:5173"))?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // DNS rebinding: evil.example now resolves to 127.0.0.1, but the Host header gives it away.
//! let response = service.clone().oneshot(request("evil.example:8080", None)?).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//!
//! // A cross-site page calling the loopback address directly.
//! let response = service.oneshot(request("127.0.0.1:8080", Some("https://evil.example"))?).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! # Ok(())
//! # }
//! ```
//!
//! A public deployment lists its names:
//!
//! ```
//! use mcp_auth_resource::OriginGuardLayer;
//!
//! let guard = OriginGuardLayer::builder()
//!     .allow_host("mcp.example.com")?
//!     .allow_origin("https://app.example.com")?
//!     .build()?;
//!
//! // Forgetting the hosts is an error, not an open door.
//! assert!(OriginGuardLayer::builder().allow_origin("https://app.example.com")?.build().is_err());
//! # Ok::<(), mcp_auth_resource::ConfigError>(())
//! ```

mod future;
pub(crate) mod layer;
pub(crate) mod rejection;
mod rules;
pub(crate) mod service;

pub use self::future::ResponseFuture;
#[cfg(doc)]
use crate::{OriginGuardBuilder, OriginRejection};
// For the submodules, which name these `super::…`.
pub(crate) use self::{
    layer::OriginGuardLayer,
    rejection::{OriginRejectionKind, rejection},
    service::OriginGuard,
};
