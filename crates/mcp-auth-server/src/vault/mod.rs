//! The upstream token vault: each user's upstream tokens, encrypted at rest, refreshed when
//! they expire (one refresh in flight per user), deleted when the user's grant is revoked.
//!
//! SKELETON (interface agreed between the login and vault work; the implementation replaces
//! the bodies).

use std::fmt;

use mcp_auth_core::Secret;

use crate::upstream::UpstreamTokens;

/// Why the vault could not hand out a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The user has no upstream tokens (never signed in upstream, or they were deleted): the
    /// user must sign in again.
    #[error("no upstream tokens for this user")]
    NotFound,
}

/// The upstream token vault. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    _private: (),
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    /// Keep a user's tokens from an upstream (replacing what was kept).
    pub async fn put(
        &self,
        subject: &str,
        upstream: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), VaultError> {
        let _ = (subject, upstream, tokens);
        Err(VaultError::NotFound)
    }

    /// A fresh upstream access token for this user.
    pub async fn access_token(&self, subject: &str, upstream: &str) -> Result<Secret, VaultError> {
        let _ = (subject, upstream);
        Err(VaultError::NotFound)
    }
}
