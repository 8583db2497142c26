//! [`OAuthLayer`]: a tower layer for outbound `http::Request`s to an MCP server.
//!
//! For every request the service:
//!
//! 1. attaches the credentials — `Authorization: Bearer <token>` on **every** request, whatever
//!    its method (SPEC C-26), or the static bearer token / API-key header. With
//!    [`Credentials::OAuth`](crate::Credentials::OAuth) the token is
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
pub(crate) mod oauth_layer;
pub(crate) mod service;

pub use self::future::ResponseFuture;
pub(crate) use self::oauth_layer::{OAuthLayer, Operation, is_insufficient_scope};
