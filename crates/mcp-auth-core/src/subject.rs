//! [`Subject`]: who a verified access token speaks for, as the resource server's bearer layer
//! leaves it in the request extensions.
//!
//! The resource-server crate inserts it next to its own `AuthInfo` whenever it accepts a token
//! that has a `sub`; code that must not depend on the resource-server crate (the authorization
//! server's upstream token vault, for one) reads it from there.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::Subject;
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Subject::new("alice"));
//! let subject = request.extensions().get::<Subject>().map(Subject::as_str);
//! assert_eq!(subject, Some("alice"));
//! ```

use std::fmt;
use std::sync::Arc;

/// The `sub` of an access token the resource server verified (cheap to clone).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject(Arc<str>);

impl Subject {
    /// The subject `sub`.
    pub fn new(sub: impl Into<Arc<str>>) -> Self {
        Self(sub.into())
    }

    /// The subject as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A subject is an identifier, not a secret: logs name it.
        f.debug_tuple("Subject").field(&&*self.0).finish()
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
