//! The one rule for URLs the workspace fetches from: absolute http(s), https unless loopback.

use mcp_auth_core::is_loopback_host;
use url::Url;

/// Why a URL may not be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not an absolute `http` or `https` URL.
    #[error("invalid URL")]
    Invalid,
    /// Plain `http` on a host that is not loopback.
    #[error("the URL must use https (plain http is allowed only on loopback)")]
    Insecure,
}

/// Parses a URL to fetch from: absolute `https`, or plain `http` on a loopback host
/// (`localhost`, `127.0.0.0/8`, `[::1]`).
///
/// ```
/// use mcp_auth_jwt::{UrlError, fetchable_url};
///
/// assert!(fetchable_url("https://idp.example.com/jwks").is_ok());
/// assert!(fetchable_url("http://127.0.0.1:8080/jwks").is_ok());
/// assert_eq!(fetchable_url("http://idp.example.com/jwks"), Err(UrlError::Insecure));
/// assert_eq!(fetchable_url("ftp://idp.example.com/"), Err(UrlError::Invalid));
/// ```
pub fn fetchable_url(raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|_| UrlError::Invalid)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(url),
        "http" => Err(UrlError::Insecure),
        _ => Err(UrlError::Invalid),
    }
}
