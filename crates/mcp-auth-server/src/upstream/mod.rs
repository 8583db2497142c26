//! The upstream identity provider as an OAuth client sees it: the tokens it hands out for a
//! user ([`UpstreamTokens`]) and how to refresh them ([`UpstreamClient`]).
//!
//! The redirect logins ([`OidcLogin`](crate::login::OidcLogin),
//! [`OAuth2Login`](crate::login::OAuth2Login)) receive these tokens at their callback and
//! implement [`UpstreamClient`]; the [`Vault`](crate::vault::Vault) keeps them per user,
//! encrypted, and refreshes them through the same [`UpstreamClient`].
//!
//! Also here: what one upstream sign-in carries between the redirect and the callback
//! ([`UpstreamRequest`]), its outcome ([`UpstreamSignIn`]) and its errors ([`UpstreamError`]).
//!
//! # Example
//!
//! ```
//! use mcp_auth_server::upstream::{UpstreamRequest, UpstreamTokens};
//!
//! let request = UpstreamRequest::generate("https://mcp.example.com/login/callback").unwrap();
//! assert_eq!(request.state().len(), 43);
//! assert_ne!(request.state(), request.nonce());
//! assert_eq!(request.code_challenge().len(), 43);
//!
//! let tokens = UpstreamTokens::new("gho_secret").with_expires_at(1_700_000_000);
//! assert!(!format!("{tokens:?}").contains("gho_secret"));
//! ```

use std::fmt;

use mcp_auth_core::Secret;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};

use crate::login::{LoginFuture, User};

#[cfg(feature = "upstream")]
pub(crate) mod http;

/// What one upstream sign-in carries from the redirect to the callback: a fresh `state`,
/// `nonce` and PKCE verifier (each 256 random bits) and the callback URL. The server makes one
/// per sign-in, keeps it server-side, and uses it once.
#[derive(Clone)]
pub struct UpstreamRequest {
    state: Secret,
    nonce: Secret,
    code_verifier: Secret,
    redirect_uri: String,
}

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl UpstreamRequest {
    /// A fresh request for the callback `redirect_uri`. `None` when the system random number
    /// generator fails.
    pub fn generate(redirect_uri: impl Into<String>) -> Option<Self> {
        let random = || crate::random::random_secret().ok().map(Secret::new);
        Some(Self {
            state: random()?,
            nonce: random()?,
            code_verifier: random()?,
            redirect_uri: redirect_uri.into(),
        })
    }

    /// A request read back from the server's flow store.
    pub(crate) fn from_parts(
        state: String,
        nonce: String,
        code_verifier: String,
        redirect_uri: String,
    ) -> Self {
        Self {
            state: Secret::new(state),
            nonce: Secret::new(nonce),
            code_verifier: Secret::new(code_verifier),
            redirect_uri,
        }
    }

    /// The `state` sent to the provider.
    pub fn state(&self) -> &str {
        self.state.expose()
    }

    /// The OpenID Connect `nonce` sent to the provider (and required in the ID token).
    pub fn nonce(&self) -> &str {
        self.nonce.expose()
    }

    /// The PKCE verifier (sent with the code to the token endpoint).
    pub fn code_verifier(&self) -> &str {
        self.code_verifier.expose()
    }

    /// The PKCE S256 challenge of [`code_verifier`](Self::code_verifier).
    pub fn code_challenge(&self) -> String {
        CodeVerifier::new(self.code_verifier.expose())
            .map(|v| CodeChallenge::s256(&v).as_str().to_owned())
            .unwrap_or_default()
    }

    /// The callback URL (`redirect_uri` at the provider).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

/// A finished upstream sign-in: who the user is, and the provider's tokens for them.
#[derive(Debug)]
#[non_exhaustive]
pub struct UpstreamSignIn {
    /// The user; the subject is namespaced by the provider (`{upstream_id}#{id}`).
    pub user: User,
    /// The provider's tokens (kept in the vault, never sent to an MCP client).
    pub tokens: UpstreamTokens,
}

impl UpstreamSignIn {
    /// A sign-in of `user` with `tokens`.
    pub fn new(user: User, tokens: UpstreamTokens) -> Self {
        Self { user, tokens }
    }
}

/// Why an upstream sign-in failed. The texts are shown to the user: they never contain a
/// token, a code or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The provider cannot be reached, timed out, or answered with a server error (503 page).
    #[error("the sign-in provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer is not acceptable: an ID token that does not verify, a malformed or
    /// oversized response, a refused code (502 page).
    #[error("the sign-in provider's answer was refused: {0}")]
    Invalid(String),
    /// The user signed in but an admission rule refuses them (403 page that says why).
    #[error("{0}")]
    Refused(String),
}

/// How the server authenticates to a provider's token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (`client_secret_basic`, the
    /// default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`; GitHub).
    ClientSecretPost,
}

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
