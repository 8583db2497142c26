//! Per-tool scopes for MCP: refuse a `tools/call` with HTTP 403 and a step-up challenge before
//! the MCP server sees it (SPEC RS-16, RS-27), and refuse a request whose MCP 2026-07-28 headers
//! disagree with its body (spec N-2).
//!
//! [`ToolScopesLayer`] maps tool names to the scopes their calls need. For each request, the
//! [`ToolScopes`] service applies these rules:
//!
//! 1. A request that is not `POST` passes untouched: its body is not read. (In the streamable
//!    HTTP transport tool calls only travel in `POST` bodies; the `GET` stream and `DELETE` still
//!    need the bearer layer, SPEC RS-20.) When no scope is configured at all, every request passes
//!    untouched, and its headers are left to the MCP server to check.
//! 2. A `POST` body is read in full, whatever its `Content-Type` (a server that ignores the header
//!    must not become a way around the check), within limits: a body declared or found larger
//!    than [`max_body_size`](ToolScopesLayer::max_body_size) (default 1 MiB) gets
//!    `413 Payload Too Large`, a body that fails to read `400 Bad Request`, and one that is not
//!    complete within [`body_timeout`](ToolScopesLayer::body_timeout) (default 10 s)
//!    `408 Request Timeout`. The headers never let the body go unread: they are only trusted
//!    after they were checked against it.
//! 3. The standard request headers of MCP 2026-07-28 are checked against the body (see
//!    [Dual era](#dual-era-2026-07-28-and-2025-11-25)). A mismatch is answered
//!    `400 Bad Request` with the JSON-RPC error `-32020` (`HeaderMismatch`), **before** the scope
//!    check and without calling the inner service.
//! 4. The body is classified by a streaming visitor, without building a DOM. A `tools/call`
//!    needs the scopes of its tool, matched by exact name (byte for byte after JSON unescaping),
//!    or the [default scopes](ToolScopesLayer::default_scopes) for a tool that is not mapped; a
//!    tool's scopes replace the default. Other methods, notifications and responses need nothing
//!    here. The body, never a header, decides the scopes.
//! 5. A batch (a JSON array, 2025-11-25 and earlier) needs the union of the scopes of all its
//!    calls, and passes or is refused as a whole.
//! 6. Fail closed: the [strictest set](ToolScopesLayer::strictest_scopes) (the default and every
//!    tool's scopes) is needed when the body is not exactly one JSON value (syntax error, trailing
//!    data, invalid UTF-8, nesting deeper than 128), its top level is neither an object nor an
//!    array of objects, a message has a duplicate `method` or `params` key or a `method` that is
//!    not a string, a `tools/call` has `params` that is not an object or a `name` that is missing,
//!    not a string or given twice, or any object key starts with `$serde_json::private::`
//!    (serde_json's `RawValue` and `Number` tokens, which parsers can reinterpret).
//! 7. When scopes are needed, the [`AuthInfo`](crate::AuthInfo) that the bearer layer put in the
//!    request extensions must grant all of them. With no `AuthInfo` (an
//!    [`Anonymous`](crate::Anonymous) request in the bearer layer's optional mode, or no
//!    bearer layer at all, which is also logged as a warning) the answer is `401` with
//!    [`missing_token_challenge`](crate::ProtectedResource::missing_token_challenge); with
//!    missing scopes it is `403` with
//!    [`insufficient_scope_challenge(granted, required)`](crate::ProtectedResource::insufficient_scope_challenge):
//!    `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`, where `scope` keeps
//!    the relevant granted scopes and adds **every** scope the request needs, the bearer layer's
//!    [scope floor](crate::BearerAuthLayer::required_scopes) included (the "recommended" strategy
//!    of SPEC RS-16; MCP 2026-07-28 SEP-2350), so one step-up is enough.
//! 8. An accepted request reaches the inner service with the same method, URI, headers and
//!    extensions and its body replayed byte for byte, trailers included, as a [`ToolScopesBody`].
//! 9. Every rejection is a response with a [`ToolScopesRejection`] in its extensions for outer
//!    layers and tests. Its body is empty (`ResBody::default()`), except for the header mismatch,
//!    whose JSON-RPC error is built with [`RejectionBody::from_json`] (`Content-Type:
//!    application/json`). The service never returns an error of its own (`Error = S::Error`).
//!
//! # Dual era (2026-07-28 and 2025-11-25)
//!
//! MCP 2026-07-28 is the current revision; 2025-11-25 is still spoken by many clients, and the
//! layer serves both on one endpoint. The era of a request comes from its `MCP-Protocol-Version`
//! header: none, or one `YYYY-MM-DD` revision before `2026-07-28`, is **2025-11-25 (legacy)**;
//! `2026-07-28`, a later revision, a value that is not a date, or several headers is
//! **2026-07-28 (modern)**, the stricter treatment. An `initialize` is legacy whatever its header
//! says: it only exists before 2026-07-28, and a dual-era client may send it with the version it
//! would prefer.
//!
//! A 2026-07-28 request mirrors its body in headers: `Mcp-Method` (the JSON-RPC `method`, on every
//! request) and `Mcp-Name` (`params.name` of `tools/call` and `prompts/get`, `params.uri` of
//! `resources/read`), and its `MCP-Protocol-Version` equals the body's
//! `params._meta["io.modelcontextprotocol/protocolVersion"]`. A gateway may route, rate-limit or
//! authorize on those headers while the server executes the body, so the layer refuses with
//! `400` and `-32020` ([`HeaderMismatchKind`]):
//!
//! | Request | Kind |
//! | --- | --- |
//! | `Mcp-Method`, `Mcp-Name` or `MCP-Protocol-Version` repeated, with characters other than visible ASCII and spaces, or an `Mcp-Name` `=?base64?…?=` that does not decode | `Malformed` |
//! | a batch body | `Batch` |
//! | `_meta` names a protocol version and `MCP-Protocol-Version` is missing or differs | `ProtocolVersionMismatch` |
//! | modern, without `Mcp-Method` | `MissingMethod` |
//! | `Mcp-Method` ≠ the body's `method` (or the body has none, or is not JSON) | `MethodMismatch` |
//! | modern `tools/call`, `prompts/get` or `resources/read` with the name in the body and no `Mcp-Name` | `MissingName` |
//! | `Mcp-Name` (Base64-decoded) ≠ the member it mirrors, or that member is missing | `NameMismatch` |
//!
//! `Mcp-Name` mirrors `params.name` for `tools/call` and `prompts/get`, `params.uri` for
//! `resources/read`, `resources/subscribe` and `resources/unsubscribe`, and `params.taskId` for
//! the Tasks extension's `tasks/get`, `tasks/update` and `tasks/cancel` (as the MCP SDKs send
//! it). On any other method its source is unknown here (an extension may define one), so it is
//! left to the MCP server; so are the `Mcp-Param-*` headers, which depend on each tool's input
//! schema. Values are compared byte for byte and case-sensitively. The body is the truth: a header that
//! names a harmless tool over a body that calls a privileged one is a mismatch, the tool does not
//! run, and the scopes are still those of the body's call. The `-32020` error answers before the
//! scope check, so it tells nothing about the caller's scopes.
//!
//! A legacy request without `Mcp-Method` and `Mcp-Name`, whose body names no protocol version in
//! `_meta`, is not header-checked at all and behaves exactly as in 2025-11-25. A legacy request
//! that does carry them gets them checked the same way (a lying header is a lie in any era).
//!
//! The error echoes the request's `id` (a string or an integer; `null` otherwise) and has a fixed
//! `message`, e.g. `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Header mismatch:
//! the Mcp-Name header does not match the request body"}}`; header and body values are never
//! echoed.
//!
//! # Order
//!
//! The layer added first sees the request first (tower's `ServiceBuilder`). Put
//! [`BearerAuthLayer`](crate::BearerAuthLayer) *outside* `ToolScopesLayer` so the `AuthInfo` is in
//! place when the body is classified, and an invalid token gets its `401` before any body is
//! read; put [`OriginGuardLayer`](crate::OriginGuardLayer) outside both:
//!
//! ```text
//! ServiceBuilder::new()
//!     .layer(origin_guard)      // Origin / Host (DNS rebinding)
//!     .layer(bearer_auth)       // 401 for a missing or invalid token; inserts AuthInfo
//!     .layer(session_binding)   // 2025-11-25 sessions bound to their owner
//!     .layer(tool_scopes)       // 400 for lying headers, 403 for a tools/call the token's scopes do not cover
//!     .service(mcp_server)
//! ```
//!
//! Scopes every request needs (such as `mcp:tools`) belong to the bearer layer; this layer adds
//! what individual tools need on top, and names both in its 403. The bearer layer checks its
//! floor before any body is read, so a token that lacks the floor *and* a tool's scopes is first
//! challenged for the floor (plus its relevant grants) alone; give clients the floor up front by
//! keeping it in [`challenge_scopes`](crate::ProtectedResource::challenge_scopes).
//!
//! # Runtime
//!
//! The body timeout uses a Tokio timer, so the service must run inside a Tokio runtime with time
//! enabled (hyper and axum servers do). Outside any Tokio runtime the body is read without a
//! timer.
//!
//! # Tracing
//!
//! With the `tracing` feature, each refusal is a `DEBUG` event with the reason, the number of
//! calls, the needed scopes and whether the body was ambiguous; accepted calls are `TRACE`
//! events. Bodies, header values, tool arguments and tokens are never logged.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode, header};
//! use http_body_util::Full;
//! use mcp_auth_resource::{
//!     AuthInfo, ProtectedResource, ScopeSet, ToolScopesLayer, mcp::ToolScopesBody,
//! };
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! async fn mcp_server(_req: Request<ToolScopesBody<Full<Bytes>>>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::default()))
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported("mcp:tools".parse()?)
//!     .build()?;
//!
//! let service = ServiceBuilder::new()
//!     // Stands in for BearerAuthLayer: the caller's token grants `mcp:tools` only.
//!     .map_request(|mut req: Request<Full<Bytes>>| {
//!         let info = AuthInfo::builder().scopes("mcp:tools".parse().unwrap()).build();
//!         req.extensions_mut().insert(info);
//!         req
//!     })
//!     .layer(ToolScopesLayer::new(resource).tool("admin_tool", "mcp:admin".parse::<ScopeSet>()?))
//!     .service_fn(mcp_server);
//!
//! let call = |tool: &str| {
//!     let body = format!(
//!         r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
//!     );
//!     Request::post("/mcp")
//!         .header(header::CONTENT_TYPE, "application/json")
//!         .body(Full::from(body))
//! };
//!
//! // `admin_tool` needs `mcp:admin`: 403 with a step-up challenge, before the server runs.
//! let response = service.clone().oneshot(call("admin_tool")?).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     response.headers()[header::WWW_AUTHENTICATE],
//!     r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
//! );
//!
//! // Other tools need nothing beyond what the bearer layer checked.
//! let response = service.oneshot(call("whoami")?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! A 2026-07-28 request whose `Mcp-Name` names a harmless tool over a body that calls a
//! privileged one gets `400` and `-32020`, whatever its token grants, and the tool does not run:
//!
//! ```
//! # use std::convert::Infallible;
//! # use bytes::Bytes;
//! # use http::{Request, Response, StatusCode, header};
//! # use http_body_util::{BodyExt, Full};
//! # use mcp_auth_resource::{
//! #     AuthInfo, ProtectedResource, ScopeSet, ToolScopesLayer, mcp::ToolScopesBody,
//! # };
//! # use tower::{ServiceBuilder, ServiceExt};
//! # async fn mcp_server(_req: Request<ToolScopesBody<Full<Bytes>>>) -> Result<Response<Full<Bytes>>, Infallible> {
//! #     Ok(Response::new(Full::default()))
//! # }
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//! #     .authorization_server("https://auth.example.com")
//! #     .build()?;
//! let service = ServiceBuilder::new()
//!     // Stands in for BearerAuthLayer: this token may call every tool.
//!     .map_request(|mut req: Request<Full<Bytes>>| {
//!         let info = AuthInfo::builder().scopes("mcp:tools mcp:admin".parse().unwrap()).build();
//!         req.extensions_mut().insert(info);
//!         req
//!     })
//!     .layer(ToolScopesLayer::new(resource).tool("admin_tool", "mcp:admin".parse::<ScopeSet>()?))
//!     .service_fn(mcp_server);
//!
//! let call = |mcp_name: &str| {
//!     Request::post("/mcp")
//!         .header("mcp-protocol-version", "2026-07-28")
//!         .header("mcp-method", "tools/call")
//!         .header("mcp-name", mcp_name)
//!         .body(Full::from(
//!             r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"admin_tool"}}"#,
//!         ))
//! };
//!
//! let response = service.clone().oneshot(call("whoami")?).await?;
//! assert_eq!(response.status(), StatusCode::BAD_REQUEST);
//! assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
//! assert_eq!(
//!     response.into_body().collect().await?.to_bytes(),
//!     r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32020,"message":"Header mismatch: the Mcp-Name header does not match the request body"}}"#,
//! );
//!
//! // Headers that tell the truth pass; the body decides the scopes, as for 2025-11-25.
//! let response = service.oneshot(call("admin_tool")?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod body;
pub(crate) mod classify;
mod future;
mod headers;
#[cfg(test)]
mod json_strategy;
pub(crate) mod layer;
pub(crate) mod rejection;
mod response;
pub(crate) mod scan;
pub(crate) mod service;
pub mod session;
mod trace;

pub use self::{body::ToolScopesBody, future::ResponseFuture, response::RejectionBody};
#[cfg(doc)]
use crate::{HeaderMismatchKind, ToolScopesRejection};
// For the submodules, which name these `super::…`.
pub(crate) use self::{
    layer::ToolScopesLayer,
    rejection::{ToolScopesRejectionKind, header_mismatch, rejection},
    service::ToolScopes,
};
