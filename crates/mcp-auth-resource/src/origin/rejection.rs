//! [`OriginRejection`]: why [`OriginGuard`] refused a request.

use std::fmt;

use http::{Response, StatusCode};

#[cfg(doc)]
use crate::OriginGuard;

/// Why [`OriginGuard`] refused a request. Every rejection response carries one in its
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRejection {
    kind: OriginRejectionKind,
}

impl OriginRejection {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> OriginRejectionKind {
        self.kind
    }

    /// The status code of the rejection: always `403 Forbidden`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

impl fmt::Display for OriginRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self.kind {
            OriginRejectionKind::MissingHost => "the request names no host",
            OriginRejectionKind::MultipleHosts => "the request has more than one Host header",
            OriginRejectionKind::InvalidHost => "the request host is malformed",
            OriginRejectionKind::HostNotAllowed => "the request host is not allowed",
            OriginRejectionKind::MultipleOrigins => "the request has more than one Origin header",
            OriginRejectionKind::NullOrigin => "the request origin is null",
            OriginRejectionKind::InvalidOrigin => "the request origin is malformed",
            OriginRejectionKind::OriginNotAllowed => "the request origin is not allowed",
        })
    }
}

impl std::error::Error for OriginRejection {}

/// The kinds of [`OriginRejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OriginRejectionKind {
    /// Neither a `Host` header nor a request-target authority.
    MissingHost,
    /// More than one `Host` header.
    MultipleHosts,
    /// A `Host` or authority that is not `host[:port]`.
    InvalidHost,
    /// A host that is not in the allow-list.
    HostNotAllowed,
    /// More than one `Origin` header.
    MultipleOrigins,
    /// `Origin: null`.
    NullOrigin,
    /// An `Origin` that is not a serialised origin.
    InvalidOrigin,
    /// An origin that is not in the allow-list.
    OriginNotAllowed,
}

pub(crate) fn rejection<B: Default>(kind: OriginRejectionKind) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.extensions_mut().insert(OriginRejection { kind });
    response
}
