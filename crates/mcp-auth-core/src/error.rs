//! OAuth error codes and the RFC 6749 §5.2 error body.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::error::{ErrorCode, ErrorResponse};
//!
//! let body = ErrorResponse::new(ErrorCode::InvalidGrant).with_description("the code has expired");
//! assert_eq!(
//!     serde_json::to_string(&body)?,
//!     r#"{"error":"invalid_grant","error_description":"the code has expired"}"#,
//! );
//! assert_eq!(ErrorCode::InvalidClient.status(), http::StatusCode::UNAUTHORIZED);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::{borrow::Cow, fmt};

use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An OAuth error code, from RFC 6749 §4.1.2.1/§5.2, RFC 6750 §3.1, RFC 7591 §3.2.2, RFC 8707 §2 and
/// RFC 7009 §2.2.1 and RFC 9449. Unknown codes are kept in [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `invalid_token` (RFC 6750)
    InvalidToken,
    /// `insufficient_scope` (RFC 6750)
    InsufficientScope,
    /// `invalid_target` (RFC 8707)
    InvalidTarget,
    /// `invalid_redirect_uri` (RFC 7591)
    InvalidRedirectUri,
    /// `invalid_client_metadata` (RFC 7591)
    InvalidClientMetadata,
    /// `unsupported_token_type` (RFC 7009)
    UnsupportedTokenType,
    /// `invalid_dpop_proof` (RFC 9449 §5.2, §7.1)
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8, §9)
    UseDpopNonce,
    /// Any other code.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::Other(s) => s,
        }
    }

    /// Parses a wire code; unknown codes become [`ErrorCode::Other`].
    #[must_use]
    pub fn from_wire(s: &str) -> Self {
        match s {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "invalid_token" => Self::InvalidToken,
            "insufficient_scope" => Self::InsufficientScope,
            "invalid_target" => Self::InvalidTarget,
            "invalid_redirect_uri" => Self::InvalidRedirectUri,
            "invalid_client_metadata" => Self::InvalidClientMetadata,
            "unsupported_token_type" => Self::UnsupportedTokenType,
            "invalid_dpop_proof" => Self::InvalidDpopProof,
            "use_dpop_nonce" => Self::UseDpopNonce,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The HTTP status this code is answered with at a token-style endpoint (RFC 6749 §5.2,
    /// RFC 6750 §3.1): 401 for `invalid_client` and `invalid_token`, 403 for `insufficient_scope`
    /// and `access_denied`, 500/503 for server faults, 400 otherwise.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::from_wire(&s))
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text for the developer. Keep it generic: never echo a token or a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<Cow<'static, str>>,
    /// A page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// A body with only the code.
    #[must_use]
    pub const fn new(error: ErrorCode) -> Self {
        Self {
            error,
            error_description: None,
            error_uri: None,
        }
    }

    /// Adds a description. Characters outside RFC 6749's `%x20-21 / %x23-5B / %x5D-7E` are replaced
    /// by `?`, so the text is also safe inside a `WWW-Authenticate` quoted string.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.error_description = Some(sanitize_description(description.into()));
        self
    }

    /// The body as JSON bytes.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"error":"server_error"}"#.to_vec())
    }
}

/// Replaces characters RFC 6749 §5.2 does not allow in `error_description` with `?`.
#[must_use]
pub fn sanitize_description(text: Cow<'static, str>) -> Cow<'static, str> {
    let ok = |c: char| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
    if text.chars().all(ok) {
        text
    } else {
        Cow::Owned(text.chars().map(|c| if ok(c) { c } else { '?' }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_round_trip() {
        let body: ErrorResponse = serde_json::from_str(r#"{"error":"slow_down","x":1}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Other("slow_down".into()));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"slow_down"}"#
        );
    }

    #[test]
    fn description_is_sanitised() {
        let body = ErrorResponse::new(ErrorCode::InvalidRequest).with_description("a \"b\" \\ é");
        assert_eq!(body.error_description.as_deref(), Some("a ?b? ? ?"));
    }

    #[test]
    fn every_named_code_round_trips_through_the_wire_form() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidClient,
            ErrorCode::InvalidGrant,
            ErrorCode::UnauthorizedClient,
            ErrorCode::UnsupportedGrantType,
            ErrorCode::InvalidScope,
            ErrorCode::AccessDenied,
            ErrorCode::UnsupportedResponseType,
            ErrorCode::ServerError,
            ErrorCode::TemporarilyUnavailable,
            ErrorCode::InvalidToken,
            ErrorCode::InsufficientScope,
            ErrorCode::InvalidTarget,
            ErrorCode::InvalidRedirectUri,
            ErrorCode::InvalidClientMetadata,
            ErrorCode::UnsupportedTokenType,
        ] {
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
    }
}
