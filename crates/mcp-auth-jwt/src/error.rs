//! [`VerifyError`]: why a token was not accepted (shared by every verifier of the workspace).

use std::{error::Error as StdError, fmt, time::Duration};

/// What went wrong while verifying a token. See [`VerifyError::kind`].
pub struct VerifyError {
    kind: VerifyErrorKind,
    retry_after: Option<Duration>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The reason a token was not accepted.
///
/// Every kind but [`Unavailable`](Self::Unavailable) is a bad token: 401 `invalid_token`, with the
/// fixed [`description`](Self::description) as `error_description` (never library text, key ids
/// or claims: no oracle for an attacker, ANCHORS point 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// Not a well-formed token (wrong shape, bad encoding, oversized, bad header).
    Malformed,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// The signature does not verify.
    InvalidSignature,
    /// No key in the key set matches the token.
    UnknownKey,
    /// The algorithm is not allowed (`none`, HMAC without a configured secret, not in the
    /// allow-list, or not the key's algorithm).
    Algorithm,
    /// `iss` is not the trusted issuer.
    Issuer,
    /// `aud` does not name this resource.
    Audience,
    /// The `typ` header is not an access-token type.
    TokenType,
    /// A required claim is missing or has the wrong type.
    MissingClaim,
    /// The token uses a feature this resource does not support (`crit`, a `cnf` binding).
    Unsupported,
    /// The authorization server says the token is not active (RFC 7662), or it is unknown.
    Inactive,
    /// The verifier cannot decide now: a key set or an introspection endpoint is unreachable and
    /// nothing usable is cached. Answered with 503, not 401.
    Unavailable,
}

impl VerifyErrorKind {
    /// The fixed, client-safe description of this kind.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The access token is malformed",
            Self::Expired => "The access token has expired",
            Self::NotYetValid => "The access token is not valid yet",
            Self::InvalidSignature | Self::UnknownKey | Self::Algorithm => {
                "The access token signature is invalid"
            }
            Self::Issuer => "The access token was issued by an untrusted issuer",
            Self::Audience => "The access token was not issued for this resource",
            Self::TokenType => "The token is not an access token",
            Self::MissingClaim => "The access token lacks a required claim",
            Self::Unsupported => "The access token uses an unsupported feature",
            Self::Inactive => "The access token is not active",
            Self::Unavailable => "The token could not be verified now",
        }
    }
}

impl VerifyError {
    /// An error of this kind.
    #[must_use]
    pub const fn new(kind: VerifyErrorKind) -> Self {
        Self {
            kind,
            retry_after: None,
            source: None,
        }
    }

    /// An [`Unavailable`](VerifyErrorKind::Unavailable) error, with the time after which a retry may
    /// succeed (sent as `Retry-After`).
    #[must_use]
    pub const fn unavailable(retry_after: Option<Duration>) -> Self {
        Self {
            kind: VerifyErrorKind::Unavailable,
            retry_after,
            source: None,
        }
    }

    /// Attaches the underlying cause, for logs. It must not contain the token.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> VerifyErrorKind {
        self.kind
    }

    /// Whether the verifier was unavailable (503) rather than the token bad (401).
    #[must_use]
    pub const fn is_unavailable(&self) -> bool {
        matches!(self.kind, VerifyErrorKind::Unavailable)
    }

    /// When to retry, for an unavailable verifier.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl Clone for VerifyError {
    /// Clones the kind and retry hint; the source, which may not be `Clone`, is kept as its text.
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            retry_after: self.retry_after,
            source: self.source.as_ref().map(|s| s.to_string().into()),
        }
    }
}

impl fmt::Debug for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyError")
            .field("kind", &self.kind)
            .field("retry_after", &self.retry_after)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl StdError for VerifyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<VerifyErrorKind> for VerifyError {
    fn from(kind: VerifyErrorKind) -> Self {
        Self::new(kind)
    }
}
