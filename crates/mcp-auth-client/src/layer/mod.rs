//! [`OAuthLayer`]: a tower layer for outbound `http::Request`s to an MCP server.
//!
//! For every request the service:
//!
//! 1. attaches the credentials — `Authorization: Bearer <token>` on **every** request, whatever
//!    its method (SPEC C-26), or the static bearer token / API-key header. With
//!    [`Credentials::OAuth`] the token is
//!    [`cached_token`](crate::TokenManager::cached_token) (refreshed ahead of expiry, never a
//!    browser), so before the first authorization the request goes out without one and the
//!    server's 401 challenge decides the scopes (SPEC C-20);
//! 2. on **401**: [`on_unauthorized`](crate::TokenManager::on_unauthorized) (adopt, refresh, or
//!    authorize with the challenge's scopes), then retries **once**;
//! 3. on **403** with a Bearer `insufficient_scope` challenge (or a Bearer challenge with a
//!    `scope` and no `error`, which some servers send): [`on_insufficient_scope`](crate::TokenManager::on_insufficient_scope)
//!    (a new authorization for granted ∪ challenged scopes), then retries — at most
//!    [`max_authorization_attempts`](crate::TokenManagerBuilder::max_authorization_attempts)
//!    authorizations per operation until one succeeds (SPEC C-29, C-30);
//! 4. when it gives up, it returns the server's 401/403 response as is, with the
//!    [`AuthError`](crate::AuthError) in its extensions: `type Error = S::Error`, the layer never
//!    invents an error of its own.
//!
//! The **operation** whose attempts are counted is the request's [`Operation`] extension if set
//! (e.g. `tools/call admin_tool`), else `METHOD path`. The **principal** is the request's
//! [`Principal`](crate::Principal) extension if set (an agent serving several users), else the
//! manager's own: one principal's tokens never go out on another's request.
//!
//! # Request bodies
//!
//! A retry sends the request again, so the body type must be `Clone`: use a buffered body such as
//! `String`, `Bytes`, `Vec<u8>` or `http_body_util::Full<Bytes>` (MCP messages are small JSON
//! documents). A streaming body must be collected first.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use mcp_auth_client::{Credentials, OAuthLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Stands in for an HTTP client service sending to the MCP server.
//! let server = tower::service_fn(|req: Request<String>| async move {
//!     let ok = req.headers().get("authorization").is_some_and(|v| v == "Bearer t0k3n");
//!     let status = if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
//!     let mut res = Response::new(String::new());
//!     *res.status_mut() = status;
//!     Ok::<_, std::convert::Infallible>(res)
//! });
//! let client = ServiceBuilder::new()
//!     .layer(OAuthLayer::new(Credentials::bearer("t0k3n")))
//!     .service(server);
//! let res = client
//!     .oneshot(Request::post("https://mcp.example.com/mcp").body(r#"{"jsonrpc":"2.0"}"#.to_owned())?)
//!     .await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod future;
mod service;

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use mcp_auth_core::error::ErrorCode;
use tower_layer::Layer;

pub use self::{future::ResponseFuture, service::OAuth};
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
