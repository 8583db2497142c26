//! [`Error`]: why the gateway cannot start.

use crate::config::ConfigError;

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The configuration file is invalid.
    #[error(transparent)]
    File(#[from] ConfigError),
    /// The resource-server configuration is invalid.
    #[error(transparent)]
    Resource(#[from] mcp_auth_resource::ConfigError),
    /// The authorization-server configuration is invalid.
    #[error(transparent)]
    Server(#[from] mcp_auth_server::ConfigError),
    /// The database cannot be opened.
    #[error(transparent)]
    Store(#[from] mcp_auth_server::store::StoreError),
    /// The identity signing keys cannot be made.
    #[error(transparent)]
    Keys(#[from] mcp_auth_server::keys::KeyError),
}

/// `error` and its causes, outermost first (the one walk of an error's `source` chain that the
/// body limit, the upstream's timeouts and the log lines use).
pub(crate) fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}
