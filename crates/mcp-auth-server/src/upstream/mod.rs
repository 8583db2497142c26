//! The upstream identity provider as an OAuth client sees it: the tokens it hands out for a
//! user ([`UpstreamTokens`]) and how to refresh them ([`UpstreamClient`]).
//!
//! The redirect logins (`OidcLogin`, `OAuth2Login`) receive these tokens at their callback and
//! implement [`UpstreamClient`]; the [`Vault`](crate::vault::Vault) keeps them per user,
//! encrypted, and refreshes them through the same [`UpstreamClient`].

use std::fmt;

use mcp_auth_core::Secret;

use crate::login::LoginFuture;

/// The tokens an upstream provider issued for one user.
#[derive(Clone)]
#[non_exhaustive]
pub struct UpstreamTokens {
    /// The upstream access token (sent only to the upstream API, never to an MCP client).
    pub access_token: Secret,
    /// The upstream refresh token, when the provider issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires, in UNIX seconds, when the provider said.
    pub expires_at: Option<u64>,
    /// The scopes the provider granted, space-separated, when it said.
    pub scope: Option<String>,
}

impl UpstreamTokens {
    /// Tokens with this access token and nothing else.
    pub fn new(access_token: impl Into<String>) -> Self {
        Self {
            access_token: Secret::new(access_token),
            refresh_token: None,
            expires_at: None,
            scope: None,
        }
    }

    /// Set the refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(Secret::new(refresh_token));
        self
    }

    /// Set the expiry (UNIX seconds).
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: u64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Set the granted scopes.
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why an upstream refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`): the user must sign in again.
    #[error("the upstream provider refused the refresh token")]
    Rejected,
    /// The provider could not be reached or answered badly; the tokens are kept.
    #[error("the upstream provider is unavailable: {0}")]
    Unavailable(String),
}

/// An upstream provider's token endpoint, as the vault needs it.
pub trait UpstreamClient: Send + Sync + fmt::Debug + 'static {
    /// A stable name for this upstream (its issuer URL, for example); the vault keys a user's
    /// tokens by it.
    fn upstream_id(&self) -> &str;

    /// Exchange a refresh token for new tokens. When the provider does not rotate refresh
    /// tokens, the returned tokens carry no refresh token and the vault keeps the old one.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>>;
}
