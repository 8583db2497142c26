//! [`Credentials`], the enum the layer takes (documented on the type).

use std::fmt;

use http::{HeaderName, HeaderValue};
use mcp_auth_core::Secret;

use crate::{error::ConfigError, manager::TokenManager, token::AccessToken};

/// What the [`OAuthLayer`](crate::OAuthLayer) attaches to each request: OAuth tokens, or
/// credentials beyond OAuth (a static bearer token, an API-key header).
///
/// # Example
///
/// ```
/// use mcp_auth_client::{Credentials, OAuthLayer};
/// use http::{Request, Response, StatusCode};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = tower::service_fn(|req: Request<String>| async move {
///     let key = req.headers().get("x-api-key").cloned();
///     let status = if key.as_ref().is_some_and(|k| k == "k-123") { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
///     let mut res = Response::new(String::new());
///     *res.status_mut() = status;
///     Ok::<_, std::convert::Infallible>(res)
/// });
/// let client = ServiceBuilder::new()
///     .layer(OAuthLayer::new(Credentials::api_key("x-api-key", "k-123")?))
///     .service(echo);
/// let res = client.oneshot(Request::post("https://mcp.example.com/mcp").body(String::new())?).await?;
/// assert_eq!(res.status(), StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// OAuth tokens from a [`TokenManager`]: refreshed, stepped up, per principal.
    OAuth(TokenManager),
    /// A static bearer token (`Authorization: Bearer …`), e.g. from an environment variable.
    Bearer(AccessToken),
    /// A static API key in a header of the server's choosing.
    ApiKey {
        /// The header name.
        header: HeaderName,
        /// The value (marked sensitive).
        value: HeaderValue,
    },
}

impl Credentials {
    /// A static bearer token.
    #[must_use]
    pub fn bearer(token: impl Into<Secret>) -> Self {
        Self::Bearer(AccessToken::new(token))
    }

    /// A static API key sent as `header: key`.
    ///
    /// # Errors
    /// [`ConfigError::Header`] when the name or value cannot be a header.
    pub fn api_key(header: &str, key: impl Into<Secret>) -> Result<Self, ConfigError> {
        let header = HeaderName::try_from(header).map_err(|_| ConfigError::Header)?;
        let key = key.into();
        let mut value = HeaderValue::try_from(key.expose()).map_err(|_| ConfigError::Header)?;
        value.set_sensitive(true);
        Ok(Self::ApiKey { header, value })
    }
}

impl From<TokenManager> for Credentials {
    fn from(manager: TokenManager) -> Self {
        Self::OAuth(manager)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth(manager) => f.debug_tuple("OAuth").field(manager).finish(),
            Self::Bearer(_) => f.write_str("Bearer([REDACTED])"),
            Self::ApiKey { header, .. } => f
                .debug_struct("ApiKey")
                .field("header", header)
                .field("value", &"[REDACTED]")
                .finish(),
        }
    }
}
