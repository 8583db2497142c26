//! Why the bearer layer rejected a request: [`BearerError`] and its kinds.

use std::{fmt, time::Duration};

use http::{HeaderValue, Response, StatusCode, header};
use mcp_auth_core::error::{ErrorCode, ErrorResponse};

use crate::VerifyErrorKind;

/// Why [`BearerAuth`](super::BearerAuth) rejected a request.
///
/// The layer attaches it to the extensions of every rejection response, whichever
/// [`ResponseForBearerError`](super::ResponseForBearerError) built the response, so outer layers
/// and tests can see why the request was turned away. Match on [`kind`](Self::kind).
///
/// It also carries what the response needs: the [`challenge`](Self::challenge) for
/// `WWW-Authenticate` and, for an unavailable verifier, the [`retry_after`](Self::retry_after)
/// delay. [`to_response`](Self::to_response) builds the standard response around any body.
///
/// It never holds the token.
#[derive(Clone, Debug)]
pub struct BearerError {
    kind: BearerErrorKind,
    challenge: Option<HeaderValue>,
    retry_after: Option<Duration>,
    /// The `DPoP` challenge and nonce, when the layer accepts DPoP (boxed: rare, and the error
    /// travels in `Result`s on the hot path).
    dpop: Option<Box<DpopHeaders>>,
}

/// A second `WWW-Authenticate` field (the `DPoP` challenge) and `DPoP-Nonce`.
#[derive(Clone, Debug)]
struct DpopHeaders {
    challenge: Option<HeaderValue>,
    nonce: Option<HeaderValue>,
}

/// The category of a [`BearerError`]; see the [module docs](super) for the response to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerErrorKind {
    /// The request has no credentials: no `Authorization` header. 401 with no `error` code
    /// (RFC 6750 §3.1).
    MissingToken,
    /// The request is malformed (SPEC RS-17): 400 `invalid_request`.
    InvalidRequest(InvalidRequestKind),
    /// The token is not acceptable: its syntax is not RFC 6750 `b64token`
    /// ([`VerifyErrorKind::Malformed`]) or the verifier rejected it. 401 `invalid_token`.
    InvalidToken(VerifyErrorKind),
    /// The token lacks a scope the layer requires for every request
    /// ([`required_scopes`](super::BearerAuthLayer::required_scopes)). 403 `insufficient_scope`.
    InsufficientScope,
    /// The verifier could not decide now (key set or introspection endpoint unreachable).
    /// 503 with `Retry-After` and no challenge: the client should retry, not re-authorize.
    Unavailable,
    /// The DPoP proof or the token's DPoP binding is not acceptable (RFC 9449 §7): 401 with
    /// `invalid_dpop_proof`, `use_dpop_nonce` or `invalid_token` (see [`DpopRejection`]); 503 when
    /// the replay cache is full.
    Dpop(DpopRejection),
}

/// What is wrong with a request's DPoP proof or with the DPoP binding of its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopRejection {
    /// The proof did not pass a check of RFC 9449 §4.3 (or needs a server nonce).
    Proof(mcp_auth_jwt::DpopErrorKind),
    /// `Authorization: DPoP` without a `DPoP` header: `invalid_dpop_proof`.
    MissingProof,
    /// More than one `DPoP` header: `invalid_dpop_proof`.
    MultipleProofs,
    /// A token bound to a DPoP key (`cnf.jkt`) sent with the `Bearer` scheme: `invalid_token`
    /// (RFC 9449 §7.2).
    BoundTokenAsBearer,
    /// A token with no DPoP binding sent with the `DPoP` scheme: `invalid_token`.
    UnboundToken,
    /// A `Bearer` token at a resource that requires DPoP-bound tokens: `invalid_token`.
    BearerNotAccepted,
}

impl DpopRejection {
    /// The fixed description.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Proof(kind) => kind.description(),
            Self::MissingProof => "The request has no DPoP proof",
            Self::MultipleProofs => "The request has more than one DPoP proof",
            Self::BoundTokenAsBearer => {
                "The access token is DPoP-bound and must be sent with the DPoP scheme"
            }
            Self::UnboundToken => "The access token is not DPoP-bound",
            Self::BearerNotAccepted => "This resource requires DPoP-bound access tokens",
        }
    }

    /// The error code.
    #[must_use]
    pub const fn error_code(self) -> ErrorCode {
        match self {
            Self::Proof(mcp_auth_jwt::DpopErrorKind::UseNonce) => ErrorCode::UseDpopNonce,
            Self::Proof(mcp_auth_jwt::DpopErrorKind::Busy) => ErrorCode::TemporarilyUnavailable,
            Self::Proof(_) | Self::MissingProof | Self::MultipleProofs => {
                ErrorCode::InvalidDpopProof
            }
            Self::BoundTokenAsBearer | Self::UnboundToken | Self::BearerNotAccepted => {
                ErrorCode::InvalidToken
            }
        }
    }
}

/// What is malformed about a request: each is answered with 400 `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidRequestKind {
    /// More than one `Authorization` header.
    DuplicateAuthorization,
    /// An `access_token` query parameter (RFC 6750 §2.3). MCP forbids tokens in the query, and
    /// together with a header it is "more than one method" (RFC 6750 §3.1); the layer rejects it
    /// in both cases rather than risk a token that ended up in access logs being used.
    TokenInQuery,
    /// An `Authorization` header with a scheme other than `Bearer`, e.g. `Basic`.
    UnsupportedScheme,
    /// An empty `Authorization` header, or `Bearer` with no token after it.
    EmptyCredentials,
}

impl InvalidRequestKind {
    /// The fixed, client-safe `error_description`.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::DuplicateAuthorization => "The request has more than one Authorization header",
            Self::TokenInQuery => {
                "The access token must be sent in the Authorization header, not in the URI query"
            }
            Self::UnsupportedScheme => "Only the Bearer authorization scheme is supported",
            Self::EmptyCredentials => "The Authorization header has no bearer token",
        }
    }
}

/// The `error_description` of the JSON body of a 403 from the layer or the extractors.
pub(crate) const INSUFFICIENT_SCOPE_DESCRIPTION: &str =
    "The access token does not grant the scope this request requires";

/// The default `Retry-After` when the verifier gives none.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

impl BearerErrorKind {
    /// The HTTP status of the response.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::Unavailable
            | Self::Dpop(DpopRejection::Proof(mcp_auth_jwt::DpopErrorKind::Busy)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Dpop(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The OAuth error code, if the response carries one. A request with no credentials gets
    /// none (RFC 6750 §3.1).
    #[must_use]
    pub const fn error_code(self) -> Option<ErrorCode> {
        match self {
            Self::MissingToken => None,
            Self::InvalidRequest(_) => Some(ErrorCode::InvalidRequest),
            Self::InvalidToken(_) => Some(ErrorCode::InvalidToken),
            Self::InsufficientScope => Some(ErrorCode::InsufficientScope),
            Self::Unavailable => Some(ErrorCode::TemporarilyUnavailable),
            Self::Dpop(rejection) => Some(rejection.error_code()),
        }
    }

    /// The fixed, client-safe description (used as `error_description`).
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::MissingToken => "The request has no access token",
            Self::InvalidRequest(kind) => kind.description(),
            Self::InvalidToken(kind) => kind.description(),
            Self::InsufficientScope => INSUFFICIENT_SCOPE_DESCRIPTION,
            Self::Unavailable => VerifyErrorKind::Unavailable.description(),
            Self::Dpop(rejection) => rejection.description(),
        }
    }
}

impl BearerError {
    pub(crate) const fn new(
        kind: BearerErrorKind,
        challenge: Option<HeaderValue>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            kind,
            challenge,
            retry_after,
            dpop: None,
        }
    }

    /// Adds the `DPoP` challenge (a second `WWW-Authenticate` field) and a `DPoP-Nonce`.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    pub(crate) fn with_dpop(
        mut self,
        challenge: Option<HeaderValue>,
        nonce: Option<HeaderValue>,
    ) -> Self {
        self.dpop = Some(Box::new(DpopHeaders { challenge, nonce }));
        self
    }

    /// The `DPoP` challenge sent beside [`challenge`](Self::challenge), when the layer accepts
    /// DPoP (RFC 9449 §7.1).
    #[must_use]
    pub fn dpop_challenge(&self) -> Option<&HeaderValue> {
        self.dpop.as_ref().and_then(|d| d.challenge.as_ref())
    }

    /// The `DPoP-Nonce` sent with the rejection, when the layer requires nonces.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&HeaderValue> {
        self.dpop.as_ref().and_then(|d| d.nonce.as_ref())
    }

    /// The category of rejection.
    #[must_use]
    pub const fn kind(&self) -> BearerErrorKind {
        self.kind
    }

    /// The HTTP status of the response.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The `WWW-Authenticate` value to send; `None` for [`Unavailable`](BearerErrorKind::Unavailable).
    #[must_use]
    pub const fn challenge(&self) -> Option<&HeaderValue> {
        self.challenge.as_ref()
    }

    /// For [`Unavailable`](BearerErrorKind::Unavailable): when the client may retry (sent as
    /// `Retry-After`, in whole seconds rounded up).
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The RFC 6749 §5.2 error body, or `None` for a request without credentials (RFC 6750 §3.1:
    /// no error information at all).
    #[must_use]
    pub fn error_response(&self) -> Option<ErrorResponse> {
        self.kind
            .error_code()
            .map(|code| ErrorResponse::new(code).with_description(self.kind.description()))
    }

    /// The standard response for this error around `body`: the status, `WWW-Authenticate` (if
    /// any) and `Retry-After` (for an unavailable verifier).
    ///
    /// A custom [`ResponseForBearerError`](super::ResponseForBearerError) can use this and only
    /// choose the body.
    pub fn to_response<B>(&self, body: B) -> Response<B> {
        let mut response = Response::new(body);
        *response.status_mut() = self.status();
        if let Some(challenge) = &self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.clone());
        }
        if let Some(challenge) = self.dpop_challenge() {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, challenge.clone());
        }
        if let Some(nonce) = self.dpop_nonce() {
            response
                .headers_mut()
                .insert(http::HeaderName::from_static("dpop-nonce"), nonce.clone());
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.kind.description())
    }
}

impl std::error::Error for BearerError {}
