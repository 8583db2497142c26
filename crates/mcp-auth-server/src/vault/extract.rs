//! [`UpstreamAccess`]: the vault and the request's verified subject, for a tool handler; and
//! [`VaultError`] as an HTTP response.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use mcp_auth_core::challenge::BearerChallenge;
use mcp_auth_core::error::ErrorCode;
use mcp_auth_core::{Secret, Subject};

use super::{Vault, VaultError};
use crate::error::OAuthError;

/// A handle for one request: its verified subject and the [`Vault`], so that a tool gets the
/// user's fresh upstream access token in one call, [`access_token`](Self::access_token).
///
/// As an axum extractor it needs two things in the request extensions: the
/// [`Subject`] the resource server's bearer layer inserts for every accepted token when it is
/// asked to (`BearerAuthLayer::with_subject_extension(true)`: off by default, it costs one
/// extension per request), and the
/// [`Vault`] (`axum::Extension(vault)` on the router). An rmcp tool calls
/// [`from_parts`](Self::from_parts) with the `http::request::Parts` rmcp copies into its
/// request context. Either way the MCP access token itself is never read, so it cannot be sent
/// upstream.
///
/// # Example
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use mcp_auth_core::{Secret, Subject};
/// use mcp_auth_server::AuthorizationServer;
/// use mcp_auth_server::login::LoginFuture;
/// use mcp_auth_server::upstream::{RefreshError, UpstreamClient, UpstreamTokens};
/// use mcp_auth_server::vault::{UpstreamAccess, Vault, VaultError, VaultKey};
/// use tower::ServiceExt;
///
/// #[derive(Debug)]
/// struct Idp;
/// impl UpstreamClient for Idp {
///     fn upstream_id(&self) -> &str { "https://idp.example.com" }
///     fn refresh<'a>(&'a self, _: &'a Secret) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
///         Box::pin(async { Err(RefreshError::Rejected) })
///     }
/// }
///
/// /// Calls the upstream API as the user (here: says how long the token is).
/// async fn profile(upstream: UpstreamAccess) -> Result<String, VaultError> {
///     let token = upstream.access_token("https://idp.example.com").await?;
///     Ok(format!("{} has a {}-byte upstream token", upstream.subject(), token.expose().len()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = AuthorizationServer::builder("https://mcp.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .vault(Vault::builder(VaultKey::generate()?).upstream(Idp))
///     .build()
///     .await?;
/// let vault = server.vault().expect("configured").clone();
/// vault.put("alice", "https://idp.example.com", UpstreamTokens::new("abc")).await?;
///
/// let app = Router::new().route("/profile", get(profile)).layer(Extension(vault));
/// // mcp-auth-resource's bearer layer inserts the Subject (with_subject_extension(true)); by hand here.
/// let mut request = http::Request::get("/profile").body(axum::body::Body::empty())?;
/// request.extensions_mut().insert(Subject::new("alice"));
/// assert_eq!(app.clone().oneshot(request).await?.status(), 200);
///
/// // A user without upstream tokens: 401, so the MCP client signs in again.
/// let mut request = http::Request::get("/profile").body(axum::body::Body::empty())?;
/// request.extensions_mut().insert(Subject::new("bob"));
/// assert_eq!(app.oneshot(request).await?.status(), 401);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UpstreamAccess {
    vault: Vault,
    subject: Subject,
}

impl fmt::Debug for UpstreamAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamAccess")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl UpstreamAccess {
    /// The handle for a subject (when the subject comes from elsewhere than the request).
    pub fn new(vault: Vault, subject: Subject) -> Self {
        Self { vault, subject }
    }

    /// Read the [`Subject`] and the [`Vault`] from a request's extensions.
    ///
    /// # Errors
    /// [`UpstreamAccessRejection`] saying which one is missing.
    pub fn from_parts(parts: &Parts) -> Result<Self, UpstreamAccessRejection> {
        let vault = parts
            .extensions
            .get::<Vault>()
            .ok_or(UpstreamAccessRejection::MissingVault)?;
        let subject = parts
            .extensions
            .get::<Subject>()
            .ok_or(UpstreamAccessRejection::MissingSubject)?;
        Ok(Self::new(vault.clone(), subject.clone()))
    }

    /// The subject (`sub`) of the request's access token.
    pub fn subject(&self) -> &str {
        self.subject.as_str()
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// A fresh upstream access token for this request's user. See [`Vault::access_token`].
    ///
    /// # Errors
    /// As [`Vault::access_token`].
    pub async fn access_token(&self, upstream: &str) -> Result<Secret, VaultError> {
        self.vault
            .access_token(self.subject.as_str(), upstream)
            .await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UpstreamAccess {
    type Rejection = UpstreamAccessRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)
    }
}

/// Why [`UpstreamAccess`] could not be extracted: a wiring mistake, answered 500.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamAccessRejection {
    /// No [`Subject`] in the request: the route is not behind the resource server's bearer
    /// layer, the layer was not asked to insert it (`with_subject_extension(true)`), or the
    /// request was let through anonymously (optional mode).
    #[error(
        "no verified subject in the request: put the route behind mcp-auth-resource's BearerAuthLayer with with_subject_extension(true)"
    )]
    MissingSubject,
    /// No [`Vault`] in the request extensions.
    #[error("no Vault in the request extensions: add axum::Extension(vault) to the router")]
    MissingVault,
}

impl IntoResponse for UpstreamAccessRejection {
    fn into_response(self) -> Response {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %self, "upstream access extractor misconfigured");
        OAuthError::server_error().into_response()
    }
}

/// The response a tool handler's caller gets:
///
/// | error | status | body `error` |
/// | --- | --- | --- |
/// | [`NotFound`](VaultError::NotFound), [`SignInRequired`](VaultError::SignInRequired) | 401 + `WWW-Authenticate: Bearer error="invalid_token"` | `invalid_token` |
/// | [`Unavailable`](VaultError::Unavailable), [`Store`](VaultError::Store) | 503 + `Retry-After` | `temporarily_unavailable` |
/// | [`UnknownUpstream`](VaultError::UnknownUpstream), [`Undecryptable`](VaultError::Undecryptable) | 500 | `server_error` |
///
/// The body never carries an upstream token or the upstream's own error text.
impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let error = match &self {
            Self::NotFound | Self::SignInRequired => {
                let description = "sign in again to reconnect the upstream account";
                let challenge = BearerChallenge::new()
                    .error(ErrorCode::InvalidToken)
                    .error_description(description);
                let mut error = OAuthError::new(ErrorCode::InvalidToken, description)
                    .with_status(StatusCode::UNAUTHORIZED);
                error.www_authenticate = Some(challenge.to_header_value());
                error
            }
            Self::Unavailable | Self::Store(_) => OAuthError::temporarily_unavailable(),
            Self::UnknownUpstream(_) | Self::Undecryptable => {
                #[cfg(feature = "tracing")]
                tracing::error!(error = %self, "upstream token vault");
                OAuthError::server_error()
            }
        };
        error.into_response()
    }
}
