//! [`Subject`]: who a verified access token speaks for, as the resource server's bearer layer
//! leaves it in the request extensions.
//!
//! The resource-server crate inserts it next to its own `AuthInfo` when it accepts a token that
//! has a `sub` and its bearer layer was asked to (`BearerAuthLayer::with_subject_extension(true)`;
//! off by default, since it costs an extension per request); code that must not depend on the
//! resource-server crate (the authorization server's upstream token vault, for one) reads it
//! from there.
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

/// A short, stable hash of a subject for traces and logs: the first 8 bytes of its SHA-256, as
/// 16 lowercase hex digits (the `sub_hash` field of every mcp-auth span). Operators can follow
/// one user across requests without the spans carrying the identifier itself.
///
/// ```
/// use mcp_auth_core::SubjectHash;
///
/// let hash = SubjectHash::of("alice").to_string();
/// assert_eq!(hash.len(), 16);
/// assert_eq!(hash, SubjectHash::of("alice").to_string(), "stable");
/// assert_ne!(hash, SubjectHash::of("bob").to_string());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectHash([u8; 8]);

impl SubjectHash {
    /// The hash of `sub`.
    #[must_use]
    pub fn of(sub: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(sub.as_bytes());
        let mut short = [0; 8];
        short.copy_from_slice(&digest[..8]);
        Self(short)
    }

    /// The 16 lowercase hex digits `Display` prints, as ASCII bytes, without allocating.
    ///
    /// ```
    /// use mcp_auth_core::SubjectHash;
    ///
    /// let hash = SubjectHash::of("alice");
    /// assert_eq!(hash.hex_digits().as_slice(), hash.to_string().as_bytes());
    /// ```
    #[must_use]
    pub fn hex_digits(&self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0; 16];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        hex
    }
}

impl fmt::Display for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectHash({self})")
    }
}
