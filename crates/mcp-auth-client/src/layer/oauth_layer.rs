//! The layer, the operation name it reads and the step-up test; re-exported at the crate root.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use mcp_auth_core::error::ErrorCode;
use tower_layer::Layer;

use super::service::OAuth;
use crate::{credentials::Credentials, manager::bearer_challenge};

/// Names the operation a request performs, for the step-up attempt limit (SPEC C-30). Put it in
/// the request's extensions; without it the layer uses `METHOD path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation(Arc<str>);

impl Operation {
    /// An operation name, e.g. `tools/call admin_tool`.
    #[must_use]
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a response asks for step-up: a 403 with a Bearer challenge whose `error` is
/// `insufficient_scope`, or that names a `scope` without an `error`.
#[must_use]
pub fn is_insufficient_scope(status: StatusCode, headers: &HeaderMap) -> bool {
    if status != StatusCode::FORBIDDEN {
        return false;
    }
    bearer_challenge(headers).is_some_and(|c| match c.error_code() {
        Some(code) => code == ErrorCode::InsufficientScope,
        None => c.scopes().is_some(),
    })
}

/// Attaches credentials to outbound requests, refreshing on 401 and stepping up on 403. See the
/// [module docs](crate::layer).
#[derive(Debug, Clone)]
#[must_use]
pub struct OAuthLayer {
    credentials: Credentials,
}

impl OAuthLayer {
    /// A layer sending `credentials` (a [`TokenManager`](crate::TokenManager) converts).
    pub fn new(credentials: impl Into<Credentials>) -> Self {
        Self {
            credentials: credentials.into(),
        }
    }
}

impl<S> Layer<S> for OAuthLayer {
    type Service = OAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OAuth::new(inner, self.credentials.clone())
    }
}
