//! The key policy: which algorithm signs, and when keys rotate and go.

use std::fmt;
use std::time::Duration;

/// The JWS algorithm access tokens are signed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (the default).
    #[default]
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses a JWS `alg` name (exactly, as JWS names are case-sensitive); `None` for any other
    /// algorithm, `none` included.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When keys are created, rotated and dropped.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyPolicy {
    /// Algorithm for new keys.
    pub algorithm: SigningAlgorithm,
    /// A new key is published in the JWKS this long before it signs anything.
    pub publish_ahead: Duration,
    /// Rotate when the active key is older than this (`None`: only on [`KeySet::rotate`](super::KeySet::rotate)).
    pub rotate_after: Option<Duration>,
    /// A retired key stays published this long (at least the longest access-token lifetime).
    pub keep_after_retire: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::Es256,
            publish_ahead: Duration::from_secs(3600),
            rotate_after: Some(Duration::from_secs(30 * 24 * 3600)),
            keep_after_retire: Duration::from_secs(24 * 3600),
        }
    }
}

impl KeyPolicy {
    /// Set the algorithm for new keys.
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Set how long a new key is published before it signs.
    #[must_use]
    pub fn with_publish_ahead(mut self, publish_ahead: Duration) -> Self {
        self.publish_ahead = publish_ahead;
        self
    }

    /// Set the key age that triggers a rotation in [`KeySet::maintain`](super::KeySet::maintain) (`None`: never).
    #[must_use]
    pub fn with_rotate_after(mut self, rotate_after: Option<Duration>) -> Self {
        self.rotate_after = rotate_after;
        self
    }

    /// Set how long a retired key stays published.
    #[must_use]
    pub fn with_keep_after_retire(mut self, keep_after_retire: Duration) -> Self {
        self.keep_after_retire = keep_after_retire;
        self
    }
}
