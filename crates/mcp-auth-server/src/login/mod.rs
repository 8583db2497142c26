//! Who the user is: the [`Login`] trait, and the built-in logins:
//!
//! | login | how the user signs in |
//! |---|---|
//! | [`LocalLogin`] | a username and password on the server's own login and consent page |
//! | [`HeadlessLogin`] | not at all: every request is approved as one fixed user (loopback only) |
//! | [`OidcLogin`] (feature `upstream`) | at any OpenID Connect provider, by redirect |
//! | [`OAuth2Login`] (feature `upstream`) | at a plain OAuth 2.0 provider (GitHub-style), by redirect |
//!
//! The authorization endpoint asks the [`Login`] who is behind a browser request. If nobody is
//! known yet, it shows the login and consent page; the password form is checked with
//! [`Login::verify_password`]. Consent is the server's business, not the login's: it is asked
//! once per user, client, resource and scope set and then remembered in the
//! [`Store`](crate::store::Store).
//!
//! # Redirect logins
//!
//! A login whose [`redirect`](Login::redirect) is a [`RedirectLogin`] signs the user in at
//! another site. The flow, with the confused-deputy rules of the MCP security best practices
//! (SPEC AS-47..AS-52):
//!
//! 1. `GET /authorize` validates the request (exact redirect URI match). A user the server
//!    already knows (session cookie) whose consent covers the request gets a code at once.
//! 2. Otherwise the consent page names the client, its redirect host and the provider the user
//!    will sign in with, **before** the browser goes anywhere. Nothing is stored and no cookie
//!    but the transaction's browser binding is set until the user approves (CSRF-checked form).
//! 3. On approval the server makes a fresh `state`, `nonce` and PKCE verifier
//!    ([`UpstreamRequest`]), keeps them server-side for ten minutes bound to a random
//!    `HttpOnly; SameSite=Lax` cookie (`Secure` and `__Host-` on https) set on that very
//!    redirect, and sends the browser to the provider.
//! 4. The provider sends the browser back to the callback the server mounts at
//!    [`AuthorizationServer::upstream_redirect_uri`](crate::AuthorizationServer::upstream_redirect_uri)
//!    (`{issuer}/login/callback`). The `state` is taken (single use: a replay, a wrong or an
//!    expired one gets an error page), the cookie must match, then
//!    [`RedirectLogin::finish`] exchanges the code and says who the user is. An
//!    `error=access_denied` from the provider goes back to the MCP client as `access_denied`
//!    with the client's own `state` and this server's `iss`.
//! 5. The consent is recorded for that user and client, the upstream tokens go to the
//!    [`Vault`](crate::vault::Vault) when one is configured, and the MCP client gets its code.
//!
//! A provider that is down answers a 503 page (the transaction is kept when the provider was
//! unreachable before the redirect, so the user can try again), a provider answer that does not
//! verify a 502 page, an admission rule that refuses the user a 403 page saying why; no code is
//! issued in any of these cases, and other users are not affected.
//!
//! # Example
//!
//! ```
//! use mcp_auth_server::login::{Login, LocalLogin};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let login = LocalLogin::new().user("alice", "correct horse battery staple");
//! let user = login.verify_password("alice", "correct horse battery staple").await;
//! assert_eq!(user.map(|u| u.subject), Some("alice".to_owned()));
//! assert!(login.verify_password("alice", "wrong").await.is_none());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

mod headless;
mod local;
#[cfg(feature = "upstream")]
mod oauth2;
#[cfg(feature = "upstream")]
mod oidc;
pub(crate) mod page;
#[cfg(feature = "upstream")]
mod redirect;

pub use self::headless::HeadlessLogin;
pub use self::local::LocalLogin;
#[cfg(feature = "upstream")]
#[cfg_attr(docsrs, doc(cfg(feature = "upstream")))]
pub use self::oauth2::{OAuth2Login, OAuth2LoginBuilder};
#[cfg(feature = "upstream")]
#[cfg_attr(docsrs, doc(cfg(feature = "upstream")))]
pub use self::oidc::{OidcLogin, OidcLoginBuilder};
pub use crate::upstream::{ClientAuthMethod, UpstreamError, UpstreamRequest, UpstreamSignIn};

/// The boxed future [`Login`] methods return (the trait is object safe).
pub type LoginFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An authenticated user.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The stable identifier put in tokens' `sub`.
    pub subject: String,
    /// A name to show on the consent page.
    pub display_name: Option<String>,
}

impl User {
    /// A user with this subject.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            display_name: None,
        }
    }

    /// Set the display name.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Decides who the user is.
pub trait Login: Send + Sync + fmt::Debug + 'static {
    /// The user behind this browser request, if known without asking (an application session
    /// cookie, a fixed user). The default knows nobody.
    fn current_user<'a>(
        &'a self,
        request: &'a http::request::Parts,
    ) -> LoginFuture<'a, Option<User>> {
        let _ = request;
        Box::pin(async { None })
    }

    /// Check a username and password from the login form. The default accepts none.
    fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> LoginFuture<'a, Option<User>> {
        let _ = (username, password);
        Box::pin(async { None })
    }

    /// Whether the login page shows a username and password form.
    fn has_password_form(&self) -> bool {
        true
    }

    /// Approve every request without showing the consent page (headless mode).
    fn auto_approve(&self) -> bool {
        false
    }

    /// Whether this login may only run on a loopback issuer (the server refuses to build
    /// otherwise).
    fn requires_loopback(&self) -> bool {
        false
    }

    /// The redirect login behind this login, if the user signs in at another site
    /// ([`OidcLogin`], [`OAuth2Login`]). The default is `None`: the user signs in on the
    /// server's own page (or not at all).
    fn redirect(&self) -> Option<&dyn RedirectLogin> {
        None
    }
}

/// A login at another site: the server redirects the browser there and takes it back at its
/// callback. See the [module docs](self#redirect-logins) for the whole flow.
///
/// Implementations are object safe and keep no per-request state: everything a sign-in needs
/// between [`authorization_url`](Self::authorization_url) and [`finish`](Self::finish) is in
/// the [`UpstreamRequest`], which the server keeps.
pub trait RedirectLogin: Send + Sync + fmt::Debug + 'static {
    /// The provider's name as the consent page shows it ("Sign in with …").
    fn provider_name(&self) -> &str;

    /// A stable identifier of the provider (its issuer URL): the prefix of every subject it
    /// signs in, and the key of the user's tokens in the [`Vault`](crate::vault::Vault).
    fn upstream_id(&self) -> &str;

    /// The scopes asked of the provider, space-separated (shown on the consent page).
    fn upstream_scope(&self) -> &str;

    /// Where to send the browser: the provider's authorization URL with `state`, PKCE and (for
    /// OpenID Connect) `nonce` from `request`.
    ///
    /// # Errors
    /// [`UpstreamError::Unavailable`] when the provider cannot be reached (its discovery
    /// document, for example).
    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<String, UpstreamError>>;

    /// Finish a sign-in: exchange `code` (the callback's) with `request`'s PKCE verifier, check
    /// what the provider says (ID token, user info) and the admission rules, and say who the user
    /// is.
    ///
    /// # Errors
    /// [`UpstreamError`]: the provider is unreachable, its answer does not verify, or the user is
    /// not admitted.
    fn finish<'a>(
        &'a self,
        code: &'a str,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<UpstreamSignIn, UpstreamError>>;
}
