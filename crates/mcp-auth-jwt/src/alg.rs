//! JWS signature algorithms (RFC 7518 §3) the verifier knows.

use std::{fmt, str::FromStr};

use aws_lc_rs::signature::{self as sig, RsaParameters, VerificationAlgorithm};
use jsonwebtoken::Algorithm;

/// A JWS signature algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
///
/// `none` is not a variant: an unsigned token is never accepted. The HMAC algorithms
/// (`HS256`/`HS384`/`HS512`) are usable only with a secret configured through
/// `JwtVerifierBuilder::hmac_secret` (mcp-auth-resource) or the secret of a [`JwsVerifier`](crate::JwsVerifier); they never verify
/// with a key from a JWK Set.
///
/// # Example
///
/// ```
/// use mcp_auth_jwt::JwsAlgorithm;
///
/// let alg: JwsAlgorithm = "ES256".parse()?;
/// assert_eq!(alg, JwsAlgorithm::ES256);
/// assert!(!alg.is_hmac());
/// assert!("none".parse::<JwsAlgorithm>().is_err());
/// # Ok::<(), mcp_auth_jwt::UnknownAlgorithm>(())
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519.
    EdDSA,
    /// HMAC with SHA-256 (only with an explicitly configured secret).
    HS256,
    /// HMAC with SHA-384 (only with an explicitly configured secret).
    HS384,
    /// HMAC with SHA-512 (only with an explicitly configured secret).
    HS512,
}

/// The error for an algorithm name this crate does not accept (including `none`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown or unsupported JWS algorithm")]
pub struct UnknownAlgorithm(());

impl JwsAlgorithm {
    /// The default allow-list: every asymmetric algorithm (RS*, PS*, ES256, ES384, EdDSA).
    pub const ASYMMETRIC: [Self; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The HMAC algorithms.
    pub const HMAC: [Self; 3] = [Self::HS256, Self::HS384, Self::HS512];

    /// The RSA algorithms.
    pub(crate) const RSA: [Self; 6] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
    ];

    /// The `alg` value, e.g. `"ES256"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    /// Whether this is an HMAC (shared-secret) algorithm.
    #[must_use]
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The matching `jsonwebtoken` algorithm.
    pub(crate) const fn to_jwt(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
            Self::HS256 => Algorithm::HS256,
            Self::HS384 => Algorithm::HS384,
            Self::HS512 => Algorithm::HS512,
        }
    }

    /// The aws-lc RSA verification parameters (2048 to 8192-bit moduli), for the RSA algorithms.
    pub(crate) fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        Some(match self {
            Self::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// The aws-lc verification algorithm of an asymmetric algorithm (ECDSA with fixed-size
    /// `r || s` signatures, RFC 7518 §3.4); `None` for HMAC.
    pub(crate) fn verification_algorithm(self) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match self {
            Self::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Self::EdDSA => &sig::ED25519,
            _ => {
                return self
                    .rsa_parameters()
                    .map(|p| p as &dyn VerificationAlgorithm);
            }
        })
    }

    /// Parses an `alg` value exactly (JWS algorithm names are case-sensitive, RFC 7515 §4.1.1).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            _ => return None,
        })
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwsAlgorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownAlgorithm(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_not_an_algorithm() {
        for alg in JwsAlgorithm::ASYMMETRIC
            .into_iter()
            .chain(JwsAlgorithm::HMAC)
        {
            assert_eq!(alg.as_str().parse::<JwsAlgorithm>().unwrap(), alg);
        }
        for bad in ["none", "None", "NONE", "es256", "RSA-OAEP", "ES512", ""] {
            assert!(bad.parse::<JwsAlgorithm>().is_err(), "{bad}");
        }
    }
}
