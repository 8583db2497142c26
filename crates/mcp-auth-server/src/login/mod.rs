//! Who the user is: the [`Login`] trait, and the built-in [`LocalLogin`] (a server-rendered
//! login and consent page) and [`HeadlessLogin`] (approves as a fixed user, loopback only).
//!
//! The authorization endpoint asks the [`Login`] who is behind a browser request. If nobody is
//! known yet, it shows the login and consent page; the password form is checked with
//! [`Login::verify_password`]. Consent is the server's business, not the login's: it is asked
//! once per user, client, resource and scope set and then remembered in the
//! [`Store`](crate::store::Store).
//!
//! # Example
//!
//! ```
//! use mcp_auth_server::login::{Login, LocalLogin};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let login = LocalLogin::new().with_user("alice", "correct horse battery staple");
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
pub(crate) mod page;

pub use self::headless::HeadlessLogin;
pub use self::local::LocalLogin;

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
}
