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
//!    [`Anonymous`](crate::bearer::Anonymous) request in the bearer layer's optional mode, or no
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
//! read; put [`OriginGuardLayer`](crate::origin::OriginGuardLayer) outside both:
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
//! use mcp_auth_resource::{AuthInfo, ProtectedResource, ScopeSet, mcp::{ToolScopesBody, ToolScopesLayer}};
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
//! # use mcp_auth_resource::{AuthInfo, ProtectedResource, ScopeSet, mcp::{ToolScopesBody, ToolScopesLayer}};
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

use std::fmt;

use http::{HeaderValue, Response, StatusCode, header};
use mcp_auth_core::ScopeSet;
use serde_json::Value;

mod body;
pub(crate) mod classify;
mod future;
mod headers;
mod layer;
mod response;
mod service;
pub mod session;
mod trace;

pub use self::session::{SessionBinding, SessionBindingLayer};
pub use self::{
    body::ToolScopesBody, future::ResponseFuture, layer::ToolScopesLayer, response::RejectionBody,
    service::ToolScopes,
};

/// Why [`ToolScopes`] refused a request. Every rejection response carries one in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolScopesRejection {
    kind: ToolScopesRejectionKind,
    required: ScopeSet,
}

impl ToolScopesRejection {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ToolScopesRejectionKind {
        self.kind
    }

    /// The scopes the request needed (empty for body errors and header mismatches).
    #[must_use]
    pub fn required_scopes(&self) -> &ScopeSet {
        &self.required
    }

    /// The status code of the rejection.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl fmt::Display for ToolScopesRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self.kind {
            ToolScopesRejectionKind::MissingToken => {
                "a tool call needs scopes but the request carries no token"
            }
            ToolScopesRejectionKind::InsufficientScope => {
                "the token lacks scopes a tool call needs"
            }
            ToolScopesRejectionKind::BodyTooLarge => "the request body is larger than the limit",
            ToolScopesRejectionKind::BodyReadFailed => "the request body could not be read",
            ToolScopesRejectionKind::BodyTimeout => "the request body did not arrive in time",
            ToolScopesRejectionKind::HeaderMismatch(kind) => kind.message(),
        })
    }
}

impl std::error::Error for ToolScopesRejection {}

/// The kinds of [`ToolScopesRejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolScopesRejectionKind {
    /// Scopes are needed and the request has no [`AuthInfo`](crate::AuthInfo): `401`.
    MissingToken,
    /// The token does not grant every needed scope: `403` `insufficient_scope`.
    InsufficientScope,
    /// The body is larger than the limit: `413`.
    BodyTooLarge,
    /// The body failed to read: `400`.
    BodyReadFailed,
    /// The body was not complete before the timeout: `408`.
    BodyTimeout,
    /// The MCP 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`)
    /// disagree with the body, or are missing or malformed: `400` with the JSON-RPC error
    /// `-32020`. See [Dual era](crate::mcp#dual-era-2026-07-28-and-2025-11-25).
    HeaderMismatch(HeaderMismatchKind),
}

impl ToolScopesRejectionKind {
    /// The status code answered for this kind.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyReadFailed | Self::HeaderMismatch(_) => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// What is wrong with the MCP 2026-07-28 request headers of a request: each is answered `400 Bad
/// Request` with the JSON-RPC error `-32020` (`HeaderMismatch`) and the fixed
/// [`message`](Self::message).
///
/// See [Dual era](crate::mcp#dual-era-2026-07-28-and-2025-11-25) for when each applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderMismatchKind {
    /// `Mcp-Method`, `Mcp-Name` or `MCP-Protocol-Version` is repeated, holds characters other
    /// than visible ASCII and spaces, or is an `Mcp-Name` in the Base64 form that does not decode.
    Malformed,
    /// The body is a batch: a 2026-07-28 body is one message, and a batch cannot match the
    /// headers.
    Batch,
    /// The body's `params._meta["io.modelcontextprotocol/protocolVersion"]` is not the
    /// `MCP-Protocol-Version` header.
    ProtocolVersionMismatch,
    /// A 2026-07-28 request without `Mcp-Method`.
    MissingMethod,
    /// `Mcp-Method` is not the body's `method`.
    MethodMismatch,
    /// A 2026-07-28 `tools/call`, `prompts/get` or `resources/read` without `Mcp-Name`.
    MissingName,
    /// `Mcp-Name` is not the body's `params.name` or `params.uri`.
    NameMismatch,
}

impl HeaderMismatchKind {
    /// The JSON-RPC error code of every header mismatch: `-32020` (`HeaderMismatch`).
    pub const CODE: i64 = headers::HEADER_MISMATCH_CODE;

    /// The fixed JSON-RPC error `message`. It never echoes a header or body value.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Malformed => {
                "Header mismatch: an Mcp-Method, Mcp-Name or MCP-Protocol-Version header is \
                 repeated or malformed"
            }
            Self::Batch => {
                "Header mismatch: the request body must be a single JSON-RPC message, not a batch"
            }
            Self::ProtocolVersionMismatch => {
                "Header mismatch: the MCP-Protocol-Version header does not match the request body"
            }
            Self::MissingMethod => "Header mismatch: the Mcp-Method header is required",
            Self::MethodMismatch => {
                "Header mismatch: the Mcp-Method header does not match the request body"
            }
            Self::MissingName => "Header mismatch: the Mcp-Name header is required for this method",
            Self::NameMismatch => {
                "Header mismatch: the Mcp-Name header does not match the request body"
            }
        }
    }
}

impl fmt::Display for HeaderMismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.message())
    }
}

/// The `400` answer to a header mismatch: the JSON-RPC error `-32020`, echoing the request id.
fn header_mismatch<B: RejectionBody>(kind: HeaderMismatchKind, id: &Value) -> Response<B> {
    let mut response = Response::new(B::from_json(headers::error_body(kind, id)));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(ToolScopesRejection {
        kind: ToolScopesRejectionKind::HeaderMismatch(kind),
        required: ScopeSet::new(),
    });
    response
}

/// Builds a rejection response: status, challenge for 401/403, the rejection in the extensions.
///
/// `bearer` is the context of the `BearerAuthLayer` that ran outside this layer, if any: its
/// scope floor goes into the step-up challenge too. `resource` is the layer's resource as the
/// request addressed it ([`ProtectedResource::as_addressed`](crate::ProtectedResource::as_addressed)).
fn rejection<B: Default>(
    resource: &crate::ProtectedResource,
    kind: ToolScopesRejectionKind,
    granted: Option<&ScopeSet>,
    required: ScopeSet,
    bearer: Option<&std::sync::Arc<crate::bearer::Config>>,
) -> Response<B> {
    let challenge: Option<HeaderValue> = match kind {
        ToolScopesRejectionKind::MissingToken => Some(resource.missing_token_challenge().clone()),
        ToolScopesRejectionKind::InsufficientScope => {
            let empty = ScopeSet::new();
            let granted = granted.unwrap_or(&empty);
            Some(match bearer {
                Some(ctx) => ctx.insufficient_scope_challenge(granted, &required),
                None => resource.insufficient_scope_challenge(granted, &required),
            })
        }
        _ => None,
    };
    let mut response = Response::new(B::default());
    *response.status_mut() = kind.status();
    if let Some(challenge) = challenge {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
        .extensions_mut()
        .insert(ToolScopesRejection { kind, required });
    response
}
