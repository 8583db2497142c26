//! Rejections of the extractors. Each one is its own type with `Display`, `Error`, `status()` and
//! an `IntoResponse` that sends the RFC 6750 challenge and, where RFC 6750 allows error
//! information, an RFC 6749 §5.2 JSON body.

use std::fmt;

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::{
    ScopeSet,
    error::{ErrorCode, ErrorResponse},
};

use crate::{
    BearerError, JsonRejection, ResponseForBearerError, bearer::INSUFFICIENT_SCOPE_DESCRIPTION,
};

/// The text of [`MissingBearerLayer`].
const MISSING_LAYER_MESSAGE: &str =
    "`BearerAuthLayer` was not found in the request extensions. Perhaps you forgot to add it?";

macro_rules! log_rejection {
    ($rejection:expr, $level:ident) => {
        #[cfg(feature = "tracing")]
        tracing::$level!(
            target: "mcp_auth_resource::rejection",
            status = $rejection.status().as_u16(),
            rejection = %$rejection,
            "rejecting request",
        );
    };
}

/// Rejection: the request has no access token. The bearer layer let it through because it runs
/// in [`optional`](crate::BearerAuthLayer::optional) mode, but this handler needs a token.
///
/// Answered like the layer's own 401: `WWW-Authenticate: Bearer resource_metadata="…",
/// scope="…"`, no `error` code and an empty body (RFC 6750 §3.1: no error information for a
/// request that carried no credentials).
#[derive(Debug, Clone)]
pub struct MissingToken {
    challenge: HeaderValue,
}

impl MissingToken {
    pub(crate) const fn new(challenge: HeaderValue) -> Self {
        Self { challenge }
    }

    /// The `WWW-Authenticate` value.
    #[must_use]
    pub const fn challenge(&self) -> &HeaderValue {
        &self.challenge
    }

    /// `401 Unauthorized`.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

impl fmt::Display for MissingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("The request has no access token")
    }
}

impl std::error::Error for MissingToken {}

impl IntoResponse for MissingToken {
    fn into_response(self) -> Response {
        log_rejection!(self, trace);
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge);
        response
    }
}

/// Rejection: the extractor found neither an `AuthInfo` nor an `Anonymous` marker, so the
/// [`BearerAuthLayer`](crate::BearerAuthLayer) did not run for this route.
///
/// This is a programming error, not the client's: answered `500 Internal Server Error` with a
/// plain-text message, like axum's missing `Extension` (a 401 would send the client to
/// re-authorize for nothing). Logged at ERROR with feature `tracing`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingBearerLayer;

impl MissingBearerLayer {
    /// `500 Internal Server Error`.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The response body.
    #[must_use]
    pub const fn body_text(&self) -> &'static str {
        MISSING_LAYER_MESSAGE
    }
}

impl fmt::Display for MissingBearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(MISSING_LAYER_MESSAGE)
    }
}

impl std::error::Error for MissingBearerLayer {}

impl IntoResponse for MissingBearerLayer {
    fn into_response(self) -> Response {
        log_rejection!(self, error);
        let mut response = Response::new(Body::from(MISSING_LAYER_MESSAGE));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Rejection: the token does not grant a scope this operation requires.
///
/// Answered `403 Forbidden` with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…", resource_metadata="…"` (SPEC RS-16), where `scope` is the step-up set of
/// [`ProtectedResource::step_up_scopes`](crate::ProtectedResource::step_up_scopes), and the JSON
/// body `{"error":"insufficient_scope","error_description":"…"}`.
#[derive(Debug, Clone)]
pub struct InsufficientScope {
    challenge: HeaderValue,
    required: ScopeSet,
}

impl InsufficientScope {
    pub(crate) const fn new(challenge: HeaderValue, required: ScopeSet) -> Self {
        Self {
            challenge,
            required,
        }
    }

    /// The `WWW-Authenticate` value.
    #[must_use]
    pub const fn challenge(&self) -> &HeaderValue {
        &self.challenge
    }

    /// The scopes the operation requires (the challenge's `scope` may name more: the granted
    /// scopes the client should keep).
    #[must_use]
    pub const fn required(&self) -> &ScopeSet {
        &self.required
    }

    /// `403 Forbidden`.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

impl fmt::Display for InsufficientScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(INSUFFICIENT_SCOPE_DESCRIPTION)
    }
}

impl std::error::Error for InsufficientScope {}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        log_rejection!(self, trace);
        let body = ErrorResponse::new(ErrorCode::InsufficientScope)
            .with_description(INSUFFICIENT_SCOPE_DESCRIPTION)
            .to_json();
        let mut response = Response::new(Body::from(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, self.challenge);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Defines an enum over leaf rejections with `From` impls, `status()`, `Display`, `Error`
/// (`source()` is the leaf) and `IntoResponse`.
macro_rules! composite_rejection {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant($variant), )+
        }

        impl $name {
            /// The HTTP status of the response.
            #[must_use]
            pub const fn status(&self) -> StatusCode {
                match self { $( Self::$variant(inner) => inner.status(), )+ }
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(inner: $variant) -> Self {
                    Self::$variant(inner)
                }
            }
        )+

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Self::$variant(inner) => fmt::Display::fmt(inner, f), )+ }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self { $( Self::$variant(inner) => Some(inner), )+ }
            }
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                match self { $( Self::$variant(inner) => inner.into_response(), )+ }
            }
        }
    };
}

composite_rejection! {
    /// Rejection of [`Auth`](super::Auth).
    pub enum AuthRejection {
        /// 401: the request has no token (the layer runs in optional mode).
        MissingToken,
        /// 500: the bearer layer did not run.
        MissingBearerLayer,
    }
}

composite_rejection! {
    /// Rejection of [`RequireScope`](super::RequireScope).
    pub enum RequireScopeRejection {
        /// 401: the request has no token (the layer runs in optional mode).
        MissingToken,
        /// 500: the bearer layer did not run.
        MissingBearerLayer,
        /// 403: the token lacks a required scope.
        InsufficientScope,
    }
}

impl From<AuthRejection> for RequireScopeRejection {
    fn from(rejection: AuthRejection) -> Self {
        match rejection {
            AuthRejection::MissingToken(inner) => Self::MissingToken(inner),
            AuthRejection::MissingBearerLayer(inner) => Self::MissingBearerLayer(inner),
        }
    }
}

/// The layer's error as an axum response: the same status and headers as the layer sends, with
/// the [`JsonRejection`] body. Handy in a custom
/// [`ResponseForBearerError`] or in an outer layer that re-renders rejections.
impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let mut response: Response = JsonRejection.response_for_bearer_error(&self);
        response.extensions_mut().insert(self);
        response
    }
}
