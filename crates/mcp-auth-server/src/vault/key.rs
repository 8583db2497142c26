//! [`VaultKey`]: the AES-256-GCM key the deployment supplies, and the sealing and opening of
//! one user's tokens with it.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use mcp_auth_core::Secret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The environment variable the demo and the documentation use for the vault key.
pub const VAULT_KEY_ENV: &str = "MCP_AUTH_VAULT_KEY";

/// Why a vault key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultKeyError {
    /// The text is not base64 (standard or URL-safe, padded or not).
    #[error("the vault key is not base64")]
    NotBase64,
    /// The key is not 32 bytes long (AES-256).
    #[error("the vault key must be 32 bytes (base64 of 32 random bytes), not {0}")]
    WrongLength(usize),
    /// The environment variable is not set (or not Unicode).
    #[error("the environment variable {0} is not set")]
    NotSet(String),
    /// The system's random generator or the cipher failed.
    #[error("the vault key could not be set up")]
    Crypto,
}

/// A 256-bit key that encrypts upstream tokens at rest (AES-256-GCM).
///
/// The deployment supplies it as base64 of 32 random bytes (`openssl rand -base64 32`), in its
/// configuration or in [`VAULT_KEY_ENV`]. Its [`id`](Self::id) (derived from the key by a
/// one-way hash) is stored with every ciphertext, so that after a rotation the vault opens old
/// records with the old key. It has no `Display`; its `Debug` shows the id only, and the key
/// bytes are zeroed when it is dropped.
///
/// # Example
///
/// ```
/// use mcp_auth_server::vault::VaultKey;
///
/// let key: VaultKey = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=".parse()?;
/// assert_eq!(key.id().len(), 16);
/// assert!(!format!("{key:?}").contains("q83v"));
/// assert!("too short".parse::<VaultKey>().is_err());
/// # Ok::<(), mcp_auth_server::vault::VaultKeyError>(())
/// ```
pub struct VaultKey {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
    cipher: RandomizedNonceKey,
}

impl VaultKey {
    /// Parse base64 (standard or URL-safe alphabet, with or without padding; surrounding
    /// whitespace ignored) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, VaultKeyError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or(VaultKeyError::NotBase64)?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| VaultKeyError::WrongLength(decoded.len()))?;
        Self::from_bytes(bytes)
    }

    /// The key in the environment variable `name` (for example [`VAULT_KEY_ENV`]).
    pub fn from_env(name: &str) -> Result<Self, VaultKeyError> {
        let value = Zeroizing::new(
            std::env::var(name).map_err(|_| VaultKeyError::NotSet(name.to_owned()))?,
        );
        Self::from_base64(&value)
    }

    /// A new random key (for a development server; a deployment keeps its key, or every
    /// stored upstream token becomes unreadable).
    pub fn generate() -> Result<Self, VaultKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice()).map_err(|_| VaultKeyError::Crypto)?;
        Self::from_bytes(*bytes)
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Result<Self, VaultKeyError> {
        let bytes = Zeroizing::new(bytes);
        let cipher = RandomizedNonceKey::new(&AES_256_GCM, bytes.as_slice())
            .map_err(|_| VaultKeyError::Crypto)?;
        let digest = Sha256::new()
            .chain_update(b"mcp-auth vault key id\0")
            .chain_update(bytes.as_slice())
            .finalize();
        let id = URL_SAFE_NO_PAD.encode(&digest[..12]);
        Ok(Self { id, bytes, cipher })
    }

    /// The key's id: 16 characters derived from the key by a one-way hash, stored with every
    /// ciphertext it made.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64 (standard alphabet, padded), to print once or save: the only way the
    /// key bytes leave it.
    pub fn to_base64(&self) -> Secret {
        Secret::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// Encrypt `plaintext` in place (it becomes ciphertext + tag) with a fresh random nonce,
    /// bound to `aad`.
    pub(crate) fn seal(&self, aad: &[u8], in_out: &mut Vec<u8>) -> Option<[u8; NONCE_LEN]> {
        let nonce = self
            .cipher
            .seal_in_place_append_tag(Aad::from(aad), in_out)
            .ok()?;
        Some(*nonce.as_ref())
    }

    /// Decrypt ciphertext + tag in place; `None` when the tag does not match (another key,
    /// another subject or upstream, or altered bytes).
    pub(crate) fn open<'a>(
        &self,
        nonce: &[u8],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        self.cipher
            .open_in_place(nonce, Aad::from(aad), in_out)
            .ok()
    }
}

impl FromStr for VaultKey {
    type Err = VaultKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The additional authenticated data of a record: the format version, the subject and the
/// upstream, length-prefixed so that no two pairs give the same bytes.
pub(super) fn aad(subject: &str, upstream: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + subject.len() + upstream.len());
    aad.extend_from_slice(b"mcp-auth vault v1\0");
    for part in [subject, upstream] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

    #[test]
    fn every_base64_form_of_the_same_key_gives_the_same_id_and_bad_keys_are_refused() {
        let padded = VaultKey::from_base64(KEY).unwrap();
        let url = KEY.replace('+', "-").replace('/', "_");
        let unpadded =
            VaultKey::from_base64(&format!("  {}\n", url.trim_end_matches('='))).unwrap();
        assert_eq!(padded.id(), unpadded.id());
        assert_eq!(padded.to_base64().expose(), KEY);
        assert_eq!(
            VaultKey::from_base64("AAAA").unwrap_err(),
            VaultKeyError::WrongLength(3)
        );
        assert_eq!(
            VaultKey::from_base64("not base64 at all!").unwrap_err(),
            VaultKeyError::NotBase64
        );
        assert_eq!(
            VaultKey::from_env("MCP_AUTH_VAULT_KEY_SURELY_UNSET_42").unwrap_err(),
            VaultKeyError::NotSet("MCP_AUTH_VAULT_KEY_SURELY_UNSET_42".into())
        );
        let other = VaultKey::generate().unwrap();
        assert_ne!(other.id(), padded.id());
    }

    #[test]
    fn debug_shows_the_id_and_never_the_key() {
        let key = VaultKey::from_base64(KEY).unwrap();
        let shown = format!("{key:?} {:?}", key.to_base64());
        assert!(shown.contains(key.id()), "{shown}");
        assert!(!shown.contains("q83v"), "{shown}");
        assert!(!shown.contains("ab cd"), "{shown}");
    }

    #[test]
    fn a_sealed_record_opens_only_with_its_key_subject_and_upstream_and_nonces_differ() {
        let key = VaultKey::from_base64(KEY).unwrap();
        let other = VaultKey::generate().unwrap();
        let mut first = b"the tokens".to_vec();
        let nonce = key.seal(&aad("alice", "https://idp"), &mut first).unwrap();
        let mut second = b"the tokens".to_vec();
        let nonce2 = key.seal(&aad("alice", "https://idp"), &mut second).unwrap();
        assert_ne!(nonce, nonce2, "random nonces");
        assert_ne!(first, second);
        assert_eq!(first.len(), "the tokens".len() + 16);

        let attempt = |key: &VaultKey, subject: &str, upstream: &str, bytes: &[u8]| {
            let mut buffer = bytes.to_vec();
            key.open(&nonce, &aad(subject, upstream), &mut buffer)
                .map(|plain| plain.to_vec())
        };
        assert_eq!(
            attempt(&key, "alice", "https://idp", &first).as_deref(),
            Some(b"the tokens".as_slice())
        );
        assert_eq!(attempt(&other, "alice", "https://idp", &first), None);
        assert_eq!(attempt(&key, "mallory", "https://idp", &first), None);
        assert_eq!(attempt(&key, "alice", "https://other", &first), None);
        // Length prefixes: moving bytes between subject and upstream changes the AAD.
        assert_eq!(attempt(&key, "alicehttps://", "idp", &first), None);
        let mut flipped = first.clone();
        flipped[0] ^= 1;
        assert_eq!(attempt(&key, "alice", "https://idp", &flipped), None);
        let mut short = b"x".to_vec();
        assert!(key.open(&[0u8; 5], &aad("a", "b"), &mut short).is_none());
    }
}
