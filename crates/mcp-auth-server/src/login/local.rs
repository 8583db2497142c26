//! [`LocalLogin`]: users with passwords, kept in memory as PBKDF2 hashes.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use aws_lc_rs::pbkdf2;
use zeroize::Zeroizing;

use super::{Login, LoginFuture, User};

/// PBKDF2-HMAC-SHA256 iterations (OWASP's 2023 recommendation for this PRF).
const ITERATIONS: NonZeroU32 = match NonZeroU32::new(600_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};
const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A user's stored credential. Never printed.
#[derive(Clone)]
struct Credential {
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
    display_name: Option<String>,
}

/// What an unknown username is checked against, so that it costs one PBKDF2 like a known one
/// (no user enumeration by timing). No password derives to it in practice.
const DUMMY: Credential = Credential {
    salt: [0x5a; SALT_LEN],
    hash: [0; HASH_LEN],
    display_name: None,
};

/// Local users with passwords, checked by the built-in login and consent page.
///
/// Passwords are kept only as PBKDF2-HMAC-SHA256 hashes (600,000 iterations, a random 16-byte
/// salt per user) and checked in constant time, on tokio's blocking pool. An unknown username
/// costs the same PBKDF2 as a wrong password, so response times do not reveal which usernames
/// exist. The username is the token's `sub`.
///
/// Hashing is deliberately slow (a few hundred milliseconds per user when the server is
/// configured and per sign-in attempt).
///
/// # Example
///
/// ```
/// use mcp_auth_server::login::{Login, LocalLogin};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let login = LocalLogin::new()
///     .user("alice", "correct horse battery staple")
///     .user_named("bob", "Bob Builder", "another long passphrase");
/// let bob = login.verify_password("bob", "another long passphrase").await.unwrap();
/// assert_eq!(bob.subject, "bob");
/// assert_eq!(bob.display_name.as_deref(), Some("Bob Builder"));
/// assert!(login.verify_password("mallory", "anything").await.is_none());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct LocalLogin {
    users: Arc<BTreeMap<String, Credential>>,
}

impl fmt::Debug for LocalLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLogin")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LocalLogin {
    /// No users yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a user whose `sub` is `username`, replacing any user of that name. Hashes the
    /// password now (slow on purpose).
    #[must_use]
    pub fn user(self, username: &str, password: &str) -> Self {
        self.insert(username, None, password)
    }

    /// Add a user whose `sub` is `username`, shown on the consent page as `display_name`.
    #[must_use]
    pub fn user_named(self, username: &str, display_name: &str, password: &str) -> Self {
        self.insert(username, Some(display_name.to_owned()), password)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (nobody can sign in).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn insert(mut self, username: &str, display_name: Option<String>, password: &str) -> Self {
        let mut salt = [0u8; SALT_LEN];
        if aws_lc_rs::rand::fill(&mut salt).is_err() {
            // Fail closed: a user without a random salt is not added, so cannot sign in.
            #[cfg(feature = "tracing")]
            tracing::error!(
                username,
                "the system random number generator failed; user not added"
            );
            return self;
        }
        let mut hash = [0u8; HASH_LEN];
        pbkdf2::derive(ALGORITHM, ITERATIONS, &salt, password.as_bytes(), &mut hash);
        Arc::make_mut(&mut self.users).insert(
            username.to_owned(),
            Credential {
                salt,
                hash,
                display_name,
            },
        );
        self
    }
}

/// One PBKDF2 and a constant-time comparison.
fn matches(credential: &Credential, password: &[u8]) -> bool {
    pbkdf2::verify(
        ALGORITHM,
        ITERATIONS,
        &credential.salt,
        password,
        &credential.hash,
    )
    .is_ok()
}

impl Login for LocalLogin {
    fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> LoginFuture<'a, Option<User>> {
        let known = self.users.get(username).cloned();
        let username = username.to_owned();
        let password = Zeroizing::new(password.as_bytes().to_vec());
        Box::pin(async move {
            let check = move || {
                let ok = matches(known.as_ref().unwrap_or(&DUMMY), &password);
                match known {
                    Some(credential) if ok => {
                        let user = User::new(username);
                        Some(match credential.display_name {
                            Some(name) => user.with_display_name(name),
                            None => user,
                        })
                    }
                    _ => None,
                }
            };
            // Off the async workers when there is a runtime; inline otherwise (never panics).
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.spawn_blocking(check).await.ok().flatten(),
                Err(_) => check(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_only() {
        let login = LocalLogin::new()
            .user("alice", "pw-a")
            .user_named("bob", "Bob B.", "pw-b");
        assert_eq!(login.len(), 2);
        let alice = login.verify_password("alice", "pw-a").await.unwrap();
        assert_eq!(alice, User::new("alice"));
        let bob = login.verify_password("bob", "pw-b").await.unwrap();
        assert_eq!(bob, User::new("bob").with_display_name("Bob B."));
        assert!(login.verify_password("alice", "pw-b").await.is_none());
        assert!(login.verify_password("alice", "").await.is_none());
        assert!(login.verify_password("bob", "pw-a").await.is_none());
        assert!(login.verify_password("carol", "pw-a").await.is_none());
        assert!(login.verify_password("", "").await.is_none());
    }

    #[test]
    fn salts_are_random_and_debug_prints_no_hash() {
        let login = LocalLogin::new().user("a", "same").user("b", "same");
        let (a, b) = (&login.users["a"], &login.users["b"]);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        let debug = format!("{login:?}");
        assert_eq!(debug, r#"LocalLogin { users: ["a", "b"] }"#);
    }

    #[test]
    fn works_without_a_runtime_and_replaces_a_user() {
        let login = LocalLogin::new().user("a", "old").user("a", "new");
        assert_eq!(login.len(), 1);
        let poll = |f: LoginFuture<'_, Option<User>>| {
            // No runtime: the check runs inline, so the future is ready on first poll.
            let waker = std::task::Waker::noop();
            let mut f = f;
            match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
                std::task::Poll::Ready(v) => v,
                std::task::Poll::Pending => panic!("pending without a runtime"),
            }
        };
        assert!(poll(login.verify_password("a", "old")).is_none());
        assert!(poll(login.verify_password("a", "new")).is_some());
    }

    #[test]
    fn empty_login_knows_nobody() {
        let login = LocalLogin::new();
        assert!(login.is_empty());
        assert_eq!(format!("{login:?}"), "LocalLogin { users: [] }");
    }
}
