//! Configuration errors.

use mcp_auth_core::{InvalidResourceId, InvalidScope};

/// A mistake in configuration, found when the configuration is built (never on the request path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The resource identifier is not a valid canonical URI.
    #[error("invalid resource identifier: {0}")]
    Resource(#[from] InvalidResourceId),
    /// MCP requires at least one authorization server in the metadata (SPEC RS-2).
    #[error("at least one authorization server is required")]
    NoAuthorizationServer,
    /// A URL does not parse or is not absolute http(s).
    #[error("invalid {what} URL")]
    InvalidUrl {
        /// Which setting.
        what: &'static str,
    },
    /// A URL uses plain http on a host that is not loopback.
    #[error("the {what} URL must use https (plain http is allowed only on loopback)")]
    InsecureUrl {
        /// Which setting.
        what: &'static str,
    },
    /// A scope token is invalid.
    #[error(transparent)]
    Scope(#[from] InvalidScope),
    /// An algorithm setting is unusable (empty allow-list, HMAC without a secret, `none`).
    #[error("invalid algorithm configuration: {what}")]
    Algorithm {
        /// What is wrong.
        what: &'static str,
    },
    /// A key could not be used.
    #[error("invalid key: {what}")]
    Key {
        /// What is wrong.
        what: &'static str,
    },
    /// A number is out of its allowed range.
    #[error("{what} is out of range")]
    OutOfRange {
        /// Which setting.
        what: &'static str,
    },
    /// An origin or host in an allow-list is invalid.
    #[error("invalid origin or host: {what}")]
    Origin {
        /// What is wrong.
        what: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    HttpClient,
}

/// Parses a URL the crate will fetch: absolute http(s), https unless the host is loopback.
#[cfg_attr(
    not(any(feature = "remote", feature = "introspection")),
    allow(dead_code)
)]
pub(crate) fn fetch_url(raw: &str, what: &'static str) -> Result<url::Url, ConfigError> {
    mcp_auth_jwt::fetchable_url(raw).map_err(|e| match e {
        mcp_auth_jwt::UrlError::Insecure => ConfigError::InsecureUrl { what },
        _ => ConfigError::InvalidUrl { what },
    })
}
