//! [`ToolScopesRejection`]: why [`ToolScopes`] refused a request, and the responses that carry it.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use mcp_auth_core::ScopeSet;

use super::RejectionBody;
#[cfg(doc)]
use super::ToolScopes;

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
    pub const CODE: i64 = -32020;

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

/// The `400` answer to a header mismatch: `body` is the JSON-RPC error `-32020` echoing the
/// request id (`headers::error_body`).
pub(crate) fn header_mismatch<B: RejectionBody>(
    kind: HeaderMismatchKind,
    body: Bytes,
) -> Response<B> {
    let mut response = Response::new(B::from_json(body));
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
pub(crate) fn rejection<B: Default>(
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
