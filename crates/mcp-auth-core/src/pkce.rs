//! PKCE with S256 (RFC 7636; OAuth 2.1 §4.1.1).
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
//!
//! let verifier = CodeVerifier::generate();
//! let challenge = CodeChallenge::s256(&verifier);
//! assert_eq!(challenge.as_str().len(), 43);
//! assert!(challenge.verify(&verifier));
//! assert!(!challenge.verify(&CodeVerifier::generate()));
//! assert_eq!(format!("{verifier:?}"), "CodeVerifier([REDACTED])");
//! ```

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// The only method mcp-auth uses and accepts: `S256`.
pub const S256: &str = "S256";

/// Why a string is not a valid verifier or challenge: 43 to 128 characters from
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a PKCE verifier or challenge is 43 to 128 unreserved characters")]
pub struct InvalidPkce(());

fn is_unreserved_43_128(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A PKCE code verifier. A secret: `Debug` is redacted and the memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// A fresh verifier: 32 random bytes (256 bits) from the OS, base64url-encoded (43 characters).
    ///
    /// # Panics
    /// Only if the operating system has no random source, which a program cannot recover from.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let v = URL_SAFE_NO_PAD.encode(bytes);
        bytes.zeroize();
        Self(v)
    }

    /// Checks and wraps a verifier received from elsewhere.
    ///
    /// # Errors
    /// [`InvalidPkce`] when it is not 43 to 128 unreserved characters.
    pub fn new(verifier: impl Into<String>) -> Result<Self, InvalidPkce> {
        let v = verifier.into();
        if is_unreserved_43_128(&v) {
            Ok(Self(v))
        } else {
            Err(InvalidPkce(()))
        }
    }

    /// The verifier, to send in the token request.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([REDACTED])")
    }
}

impl Drop for CodeVerifier {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An S256 code challenge: `BASE64URL(SHA256(verifier))`.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The S256 challenge of a verifier.
    #[must_use]
    pub fn s256(verifier: &CodeVerifier) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes())))
    }

    /// Checks and wraps a challenge received in an authorization request.
    ///
    /// # Errors
    /// [`InvalidPkce`] when it is not 43 to 128 unreserved characters.
    pub fn new(challenge: impl Into<String>) -> Result<Self, InvalidPkce> {
        let c = challenge.into();
        if is_unreserved_43_128(&c) {
            Ok(Self(c))
        } else {
            Err(InvalidPkce(()))
        }
    }

    /// The challenge string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is the one this challenge was made from, compared in constant time.
    #[must_use]
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        Self::s256(verifier)
            .0
            .as_bytes()
            .ct_eq(self.0.as_bytes())
            .into()
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodeChallenge").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_vector() {
        let v = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            CodeChallenge::s256(&v).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn length_and_charset_are_checked() {
        assert!(CodeVerifier::new("a".repeat(42)).is_err());
        assert!(CodeVerifier::new("a".repeat(129)).is_err());
        assert!(CodeVerifier::new(format!("{}+", "a".repeat(42))).is_err());
        assert!(CodeChallenge::new("a".repeat(43)).is_ok());
    }

    #[test]
    fn generated_verifiers_differ() {
        assert_ne!(CodeVerifier::generate(), CodeVerifier::generate());
    }
}
