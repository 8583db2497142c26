//! [`DpopError`]: why a DPoP proof was refused (without the `jwt` feature too, so that code that
//! only reports DPoP failures does not need the verifier).

use std::fmt;

/// Why a DPoP proof was refused. See [`DpopError::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopError {
    kind: DpopErrorKind,
}

/// The reason a DPoP proof was refused.
///
/// Every kind but [`UseNonce`](Self::UseNonce) and [`Busy`](Self::Busy) is the error code
/// `invalid_dpop_proof` (RFC 9449 §7.1 and §5.2), with the fixed
/// [`description`](Self::description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopErrorKind {
    /// Not a well-formed proof (shape, encoding, header, a missing or mistyped claim).
    Malformed,
    /// `typ` is not `dpop+jwt`.
    TokenType,
    /// `alg` is `none`, HMAC, not allowed, or does not fit the key.
    Algorithm,
    /// The `jwk` header is missing, not a supported public key, or does not decode.
    BadKey,
    /// The `jwk` header contains private key material.
    PrivateKey,
    /// The signature does not verify with the `jwk` of the header.
    InvalidSignature,
    /// `htm` is not the request method.
    Method,
    /// `htu` is not the request URL.
    Url,
    /// `iat` is too old or too far in the future.
    IssuedAt,
    /// `ath` is missing or is not the hash of the presented access token.
    AccessTokenHash,
    /// The proof key is not the key the token is bound to (`cnf.jkt`).
    KeyMismatch,
    /// The proof's `jti` was seen before.
    Replay,
    /// The server requires a nonce and the proof has none, or an old or unknown one: answered
    /// with `use_dpop_nonce` and a fresh `DPoP-Nonce`.
    UseNonce,
    /// The replay cache is full: the proof cannot be checked now (503).
    Busy,
}

impl DpopErrorKind {
    /// The fixed, client-safe description.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The DPoP proof is malformed",
            Self::TokenType => "The DPoP proof typ is not dpop+jwt",
            Self::Algorithm => "The DPoP proof algorithm is not allowed",
            Self::BadKey => "The DPoP proof key is not a supported public key",
            Self::PrivateKey => "The DPoP proof key contains private key material",
            Self::InvalidSignature => "The DPoP proof signature is invalid",
            Self::Method => "The DPoP proof is for another HTTP method",
            Self::Url => "The DPoP proof is for another URL",
            Self::IssuedAt => "The DPoP proof is too old or issued in the future",
            Self::AccessTokenHash => "The DPoP proof does not match the access token",
            Self::KeyMismatch => "The DPoP proof key is not the key the token is bound to",
            Self::Replay => "The DPoP proof was already used",
            Self::UseNonce => "A DPoP nonce is required",
            Self::Busy => "The DPoP proof cannot be checked now",
        }
    }

    /// The OAuth error code: `use_dpop_nonce` for [`UseNonce`](Self::UseNonce),
    /// `invalid_dpop_proof` otherwise.
    #[must_use]
    pub const fn error_code(self) -> &'static str {
        match self {
            Self::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

impl DpopError {
    /// An error of this kind.
    #[must_use]
    pub const fn new(kind: DpopErrorKind) -> Self {
        Self { kind }
    }

    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> DpopErrorKind {
        self.kind
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl std::error::Error for DpopError {}

impl From<DpopErrorKind> for DpopError {
    fn from(kind: DpopErrorKind) -> Self {
        Self::new(kind)
    }
}
