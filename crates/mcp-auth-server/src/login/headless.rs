//! [`HeadlessLogin`]: approve everything as one fixed user. Tests and demos only.

use std::net::SocketAddr;

use super::{Login, LoginFuture, User};
use crate::ConfigError;

/// Approves every authorization request as one fixed user, without showing a page.
///
/// **For automated tests and demos only.** Anyone who can reach the authorization endpoint
/// gets tokens for this user, so the server refuses to build with it unless the issuer is on
/// loopback ([`requires_loopback`](Login::requires_loopback) is `true`), and
/// [`for_bind_addr`](Self::for_bind_addr) refuses a non-loopback listening address. Never
/// use it in production: use [`LocalLogin`](super::LocalLogin) or your own [`Login`].
///
/// # Example
///
/// ```
/// use mcp_auth_server::login::{HeadlessLogin, Login};
///
/// let login = HeadlessLogin::for_bind_addr("demo-user", "127.0.0.1:9000".parse().unwrap()).unwrap();
/// assert!(login.auto_approve() && login.requires_loopback());
/// assert!(HeadlessLogin::for_bind_addr("demo-user", "0.0.0.0:9000".parse().unwrap()).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct HeadlessLogin {
    user: User,
}

impl HeadlessLogin {
    /// Approve as `subject`. Warns loudly (with the `tracing` feature).
    pub fn new(subject: impl Into<String>) -> Self {
        let user = User::new(subject);
        #[cfg(feature = "tracing")]
        tracing::warn!(
            subject = %user.subject,
            "HEADLESS LOGIN: every authorization request is approved as this user without asking; \
             for tests and demos on loopback only"
        );
        Self { user }
    }

    /// Approve as `subject`, for a server listening on `addr`: refuses
    /// ([`ConfigError::HeadlessNotLoopback`]) unless `addr` is a loopback address (`127.0.0.0/8`,
    /// `::1`). `0.0.0.0` and `::` are refused: they listen on every interface.
    pub fn for_bind_addr(
        subject: impl Into<String>,
        addr: SocketAddr,
    ) -> Result<Self, ConfigError> {
        if !addr.ip().is_loopback() {
            return Err(ConfigError::HeadlessNotLoopback(addr.to_string()));
        }
        Ok(Self::new(subject))
    }

    /// Show this name on pages and in `User::display_name`.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.user = self.user.with_display_name(name);
        self
    }

    /// The user every request is approved as.
    pub fn user(&self) -> &User {
        &self.user
    }
}

impl Login for HeadlessLogin {
    fn current_user<'a>(
        &'a self,
        _request: &'a http::request::Parts,
    ) -> LoginFuture<'a, Option<User>> {
        let user = self.user.clone();
        Box::pin(async move { Some(user) })
    }

    fn has_password_form(&self) -> bool {
        false
    }

    fn auto_approve(&self) -> bool {
        true
    }

    fn requires_loopback(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_bind_addresses_only() {
        for ok in ["127.0.0.1:0", "127.10.0.1:9000", "[::1]:8080"] {
            assert!(
                HeadlessLogin::for_bind_addr("u", ok.parse().unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "0.0.0.0:9000",
            "[::]:9000",
            "192.168.1.5:80",
            "10.0.0.1:9000",
            "[2001:db8::1]:443",
        ] {
            let error = HeadlessLogin::for_bind_addr("u", bad.parse().unwrap()).unwrap_err();
            assert!(
                matches!(error, ConfigError::HeadlessNotLoopback(ref a) if *a == bad),
                "{bad}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn approves_everything_as_the_fixed_user_without_a_form() {
        let login = HeadlessLogin::new("demo").display_name("Demo User");
        assert!(login.auto_approve());
        assert!(login.requires_loopback());
        assert!(!login.has_password_form());
        let (parts, ()) = http::Request::new(()).into_parts();
        let user = login.current_user(&parts).await.unwrap();
        assert_eq!(user, User::new("demo").with_display_name("Demo User"));
        assert_eq!(login.user().subject, "demo");
        // The password form is not used; the default refuses every password.
        assert!(login.verify_password("demo", "").await.is_none());
    }
}
