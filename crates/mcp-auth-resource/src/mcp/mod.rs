//! Per-tool scopes for MCP: refuse a `tools/call` with HTTP 403 and a step-up challenge before
//! the MCP server sees it (SPEC RS-16, RS-27).
//!
//! [`ToolScopesLayer`] maps tool names to the scopes their calls need. For each request, the
//! [`ToolScopes`] service applies these rules:
//!
//! 1. A request that is not `POST` passes untouched: its body is not read. (In the streamable
//!    HTTP transport tool calls only travel in `POST` bodies; the `GET` stream and `DELETE` still
//!    need the bearer layer, SPEC RS-20.) When no scope is configured at all, every request passes
//!    untouched.
//! 2. A `POST` body is read in full, whatever its `Content-Type` (a server that ignores the header
//!    must not become a way around the check), within limits: a body declared or found larger
//!    than [`max_body_size`](ToolScopesLayer::max_body_size) (default 1 MiB) gets
//!    `413 Payload Too Large`, a body that fails to read `400 Bad Request`, and one that is not
//!    complete within [`body_timeout`](ToolScopesLayer::body_timeout) (default 10 s)
//!    `408 Request Timeout`.
//! 3. The body is classified by a streaming visitor, without building a DOM. A `tools/call`
//!    needs the scopes of its tool, matched by exact name (byte for byte after JSON unescaping),
//!    or the [default scopes](ToolScopesLayer::default_scopes) for a tool that is not mapped; a
//!    tool's scopes replace the default. Other methods, notifications and responses need nothing
//!    here.
//! 4. A batch (a JSON array) needs the union of the scopes of all its calls, and passes or is
//!    refused as a whole.
//! 5. Fail closed: the [strictest set](ToolScopesLayer::strictest_scopes) (the default and every
//!    tool's scopes) is needed when the body is not exactly one JSON value (syntax error, trailing
//!    data, invalid UTF-8, nesting deeper than 128), its top level is neither an object nor an
//!    array of objects, a message has a duplicate `method` or `params` key or a `method` that is
//!    not a string, a `tools/call` has `params` that is not an object or a `name` that is missing,
//!    not a string or given twice, or any object key starts with `$serde_json::private::`
//!    (serde_json's `RawValue` and `Number` tokens, which parsers can reinterpret).
//! 6. When scopes are needed, the [`AuthInfo`](crate::AuthInfo) that the bearer layer put in the
//!    request extensions must grant all of them. With no `AuthInfo` (an
//!    [`Anonymous`](crate::bearer::Anonymous) request in the bearer layer's optional mode, or no
//!    bearer layer at all, which is also logged as a warning) the answer is `401` with
//!    [`missing_token_challenge`](crate::ProtectedResource::missing_token_challenge); with
//!    missing scopes it is `403` with
//!    [`insufficient_scope_challenge(granted, required)`](crate::ProtectedResource::insufficient_scope_challenge):
//!    `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`, where `scope` keeps
//!    the relevant granted scopes and adds the missing ones (the "recommended" strategy of SPEC
//!    RS-16), so one step-up is enough.
//! 7. An accepted request reaches the inner service with the same method, URI, headers and
//!    extensions and its body replayed byte for byte, trailers included, as a [`ToolScopesBody`].
//! 8. Every rejection is a response with an empty `ResBody::default()` body (the service is
//!    generic over the response body, so no RFC 6749 §5.2 JSON body can be built), with a
//!    [`ToolScopesRejection`] in its extensions for outer layers and tests. The service never
//!    returns an error of its own (`Error = S::Error`).
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
//!     .layer(tool_scopes)       // 403 for a tools/call the token's scopes do not cover
//!     .service(mcp_server)
//! ```
//!
//! Scopes every request needs (such as `mcp:tools`) belong to the bearer layer; this layer adds
//! what individual tools need on top.
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
//! events. Bodies, tool arguments and tokens are never logged.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode, header};
//! use http_body_util::Full;
//! use mcp_auth_resource::{AuthInfo, ProtectedResource, mcp::{ToolScopesBody, ToolScopesLayer}};
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
//!     .scopes_supported("mcp:tools")
//!     .build()?;
//!
//! let service = ServiceBuilder::new()
//!     // Stands in for BearerAuthLayer: the caller's token grants `mcp:tools` only.
//!     .map_request(|mut req: Request<Full<Bytes>>| {
//!         let info = AuthInfo::builder().scopes("mcp:tools".parse().unwrap()).build();
//!         req.extensions_mut().insert(info);
//!         req
//!     })
//!     .layer(ToolScopesLayer::new(resource).tool("admin_tool", "mcp:admin")?)
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

use std::fmt;

use http::{HeaderValue, Response, StatusCode, header};
use mcp_auth_core::ScopeSet;

mod body;
mod classify;
mod future;
mod layer;
mod service;
pub mod session;

pub use self::session::{SessionBinding, SessionBindingLayer};
pub use self::{
    body::ToolScopesBody, future::ResponseFuture, layer::ToolScopesLayer, service::ToolScopes,
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

    /// The scopes the request needed (empty for body errors).
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
}

impl ToolScopesRejectionKind {
    /// The status code answered for this kind.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyReadFailed => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// Builds a rejection response: status, challenge for 401/403, the rejection in the extensions.
///
/// `bearer` is the context of the `BearerAuthLayer` that ran outside this layer, if any: its
/// scope floor goes into the step-up challenge too.
fn rejection<B: Default>(
    config: &layer::Config,
    kind: ToolScopesRejectionKind,
    granted: Option<&ScopeSet>,
    required: ScopeSet,
    bearer: Option<&crate::bearer::LayerContext>,
) -> Response<B> {
    let challenge: Option<HeaderValue> = match kind {
        ToolScopesRejectionKind::MissingToken => {
            Some(config.resource.missing_token_challenge().clone())
        }
        ToolScopesRejectionKind::InsufficientScope => {
            let empty = ScopeSet::new();
            let granted = granted.unwrap_or(&empty);
            Some(match bearer {
                Some(ctx) => ctx.0.insufficient_scope_challenge(granted, &required),
                None => config
                    .resource
                    .insufficient_scope_challenge(granted, &required),
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
