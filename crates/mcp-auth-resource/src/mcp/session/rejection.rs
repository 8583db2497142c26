//! [`SessionBindingRejection`]: why [`SessionBinding`] refused a request.

use std::fmt;

use http::{Response, StatusCode};

#[cfg(doc)]
use super::SessionBinding;

/// Why [`SessionBinding`] refused a request. Every rejection response carries one in its
/// extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionBindingRejection {
    kind: SessionBindingRejectionKind,
}

impl SessionBindingRejection {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> SessionBindingRejectionKind {
        self.kind
    }

    /// The status code of the rejection.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl fmt::Display for SessionBindingRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self.kind {
            SessionBindingRejectionKind::OwnerMismatch => "the MCP session belongs to another user",
            SessionBindingRejectionKind::Anonymous => {
                "the MCP session belongs to a user and the request has none"
            }
            SessionBindingRejectionKind::MultipleSessionIds => {
                "the request carries more than one Mcp-Session-Id"
            }
        })
    }
}

impl std::error::Error for SessionBindingRejection {}

/// The kinds of [`SessionBindingRejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionBindingRejectionKind {
    /// The session is bound to another owner: `404`.
    OwnerMismatch,
    /// The session is bound and the request has no owner (anonymous): `404`.
    Anonymous,
    /// More than one `Mcp-Session-Id` header: `400`.
    MultipleSessionIds,
}

impl SessionBindingRejectionKind {
    /// The status code answered for this kind.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::OwnerMismatch | Self::Anonymous => StatusCode::NOT_FOUND,
            Self::MultipleSessionIds => StatusCode::BAD_REQUEST,
        }
    }
}

pub(crate) fn rejection<B: Default>(kind: SessionBindingRejectionKind) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = kind.status();
    response
        .extensions_mut()
        .insert(SessionBindingRejection { kind });
    response
}
