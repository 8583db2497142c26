//! A string that never prints, and [`secret_opt`], the serde adapter for an optional one.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret string: a token, a client secret, a code or a PKCE verifier.
///
/// Its `Debug` prints `[REDACTED]`, it has no `Display`, equality is constant-time and the memory is
/// zeroed on drop.
///
/// # Example
///
/// ```
/// use mcp_auth_core::Secret;
///
/// let secret = Secret::new("s3cr3t");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose(), "s3cr3t");
/// assert_eq!(secret, Secret::new("s3cr3t"));
/// ```
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call this only where the value must leave the process (a header, a form).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// The serde adapter for an `Option<Secret>` field: `#[serde(with = "mcp_auth_core::secret_opt")]`.
///
/// [`Secret`] has no `Serialize`/`Deserialize` of its own, so that a secret never ends up in a
/// serialized document by accident: a field says it with this adapter. The value is written as a
/// plain string (or `null`) and read back from one.
///
/// # Example
///
/// ```
/// use mcp_auth_core::Secret;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Stored {
///     #[serde(default, skip_serializing_if = "Option::is_none", with = "mcp_auth_core::secret_opt")]
///     refresh_token: Option<Secret>,
/// }
///
/// let stored: Stored = serde_json::from_str(r#"{"refresh_token":"r-1"}"#)?;
/// assert_eq!(stored.refresh_token.as_ref().map(Secret::expose), Some("r-1"));
/// assert_eq!(serde_json::to_string(&stored)?, r#"{"refresh_token":"r-1"}"#);
/// let empty: Stored = serde_json::from_str("{}")?;
/// assert!(empty.refresh_token.is_none());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod secret_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Secret;

    /// Writes the secret as a string, `None` as `null` (pair it with
    /// `skip_serializing_if = "Option::is_none"` to leave the field out).
    ///
    /// # Errors
    /// Whatever the serializer reports.
    #[allow(clippy::ref_option)] // the signature serde's `with` expects
    pub fn serialize<S: Serializer>(
        value: &Option<Secret>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(secret) => serializer.serialize_str(secret.expose()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a string (or `null`) into an optional secret.
    ///
    /// # Errors
    /// When the value is neither a string nor `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(Secret::from))
    }
}
