//! Errors: configuration errors (public) and the OAuth error responses every endpoint sends.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::error::{ErrorCode, ErrorResponse};

/// A mistake in the [`AuthorizationServerBuilder`](crate::AuthorizationServerBuilder)
/// configuration, found when it is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is not an absolute `https` URL (or `http` on a loopback host), or it has a
    /// query or fragment (RFC 8414 §2).
    #[error(
        "invalid issuer {0:?}: it must be https (http only on loopback), without query or fragment"
    )]
    InvalidIssuer(String),
    /// A resource identifier is not an absolute URI without fragment (RFC 8707 §2).
    #[error("invalid resource {0:?}: it must be an absolute URI without a fragment")]
    InvalidResource(String),
    /// No resource was configured: the server must know which audiences it issues for.
    #[error("no resource configured: call .resource(..) at least once")]
    NoResource,
    /// A scope is not an RFC 6749 §3.3 scope token.
    #[error("invalid scope {0:?}")]
    InvalidScope(String),
    /// A lifetime is zero or out of the allowed range.
    #[error("invalid lifetime for {0}")]
    InvalidLifetime(&'static str),
    /// The headless login was configured on a server that is not on loopback.
    #[error(
        "the headless login approves every request; it refuses to run on a non-loopback issuer or bind address ({0})"
    )]
    HeadlessNotLoopback(String),
    /// Loading or creating the signing keys failed.
    #[error("signing keys: {0}")]
    Keys(#[source] crate::keys::KeyError),
    /// The store failed while the server was being built.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Another setting is invalid.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
}

/// An OAuth error answered as RFC 6749 §5.2 JSON, with `Cache-Control: no-store`.
///
/// Crate-private: handlers return it, tests see only the wire form.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) code: ErrorCode,
    pub(crate) description: Cow<'static, str>,
    pub(crate) status: StatusCode,
    /// Set when the client authenticated with the `Authorization` header (RFC 6749 §5.2: 401 +
    /// `WWW-Authenticate` matching the scheme used).
    pub(crate) www_authenticate: Option<HeaderValue>,
    pub(crate) retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with the code's usual status.
    pub(crate) fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let status = code.status();
        Self {
            code,
            description: description.into(),
            status,
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub(crate) fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub(crate) fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the authorization server could not complete the request",
        )
    }

    /// 503 + `Retry-After` (storage or key outage).
    pub(crate) fn temporarily_unavailable() -> Self {
        let mut e = Self::new(ErrorCode::TemporarilyUnavailable, "try again shortly");
        e.status = StatusCode::SERVICE_UNAVAILABLE;
        e.retry_after = Some(5);
        e
    }

    /// 413 `invalid_request`: a body over the limit (the layer's, met while reading).
    pub(crate) fn too_large() -> Self {
        Self::invalid_request("the request body is too large")
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    #[must_use]
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `invalid_client` after `Authorization: Basic` was used: 401 + `WWW-Authenticate: Basic`.
    #[must_use]
    pub(crate) fn with_basic_challenge(mut self) -> Self {
        self.status = StatusCode::UNAUTHORIZED;
        self.www_authenticate = Some(HeaderValue::from_static("Basic realm=\"oauth\""));
        self
    }
}

impl From<crate::random::RandomUnavailable> for OAuthError {
    fn from(_: crate::random::RandomUnavailable) -> Self {
        Self::server_error()
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(_error: crate::store::StoreError) -> Self {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_error, "store failure");
        Self::temporarily_unavailable()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorResponse::new(self.code)
            .with_description(self.description)
            .to_json();
        let mut response = crate::http::no_store_json(self.status, body);
        let headers = response.headers_mut();
        if let Some(value) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
