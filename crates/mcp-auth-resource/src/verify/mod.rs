//! Token verification: the [`TokenVerifier`] trait and its implementations.
//!
//! - [`JwtVerifier`](crate::verify::jwt::JwtVerifier) (feature `jwt`): RFC 9068 JWT access tokens,
//!   keys from a static or remote JWK Set.
//! - [`IntrospectionVerifier`](crate::verify::introspection::IntrospectionVerifier)
//!   (feature `introspection`): opaque tokens, RFC 7662.
//! - [`CachedVerifier`](crate::verify::cache::CachedVerifier): a verified-token cache in front of any
//!   verifier, so a repeated token costs a hash and a lookup.
//! - [`Revocable`](crate::verify::revocation::Revocable): asks a
//!   [`RevocationList`](mcp_auth_core::revocation::RevocationList) about every token another
//!   verifier accepts, cache hits included, so a revoked token is refused on the next request.
//!   It goes outside the cache: `Revocable::new(CachedVerifier::new(jwt), list)`.
//!
//! A verifier answers with an [`AuthInfo`] or a [`VerifyError`]. The error says whether the token is
//! bad (the client gets 401 `invalid_token`) or the verifier could not decide because a key set or
//! an introspection endpoint is unreachable (the client gets 503 and should retry, not re-authorize).
//!
//! # Example
//!
//! A verifier of your own: a fixed table of opaque tokens.
//!
//! ```
//! use mcp_auth_resource::{AuthInfo, verify::{TokenVerifier, VerifyError, VerifyErrorKind}};
//!
//! #[derive(Debug)]
//! struct Fixed;
//!
//! impl TokenVerifier for Fixed {
//!     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
//!         match token {
//!             "let-me-in" => Ok(AuthInfo::builder().subject("alice").scopes("mcp:tools".parse().unwrap()).build()),
//!             _ => Err(VerifyError::new(VerifyErrorKind::Inactive)),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let info = Fixed.verify("let-me-in").await.unwrap();
//! assert_eq!(info.subject(), Some("alice"));
//! let err = Fixed.verify("nope").await.unwrap_err();
//! assert!(!err.is_unavailable());
//! # }
//! ```

use std::{future::Future, sync::Arc};

use crate::AuthInfo;

pub mod cache;
mod claims;
mod either;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;
pub mod revocation;

/// Checks an access token and says who and what it authorizes.
///
/// Implementations must check everything SPEC RS-21..RS-26 asks: signature or introspection,
/// expiry, issuer and audience (the canonical resource URI, RFC 8707). Scope is **not** checked here:
/// the layer and the extractors compare the granted scopes with what each request needs.
///
/// The token passed in is a secret: never log it or put it into an error.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token`.
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send;

    /// Answers at once, without a future, when the verifier can decide without I/O: a cache hit
    /// ([`CachedVerifier`](cache::CachedVerifier), the introspection cache) or a JWT whose key is
    /// already loaded ([`JwtVerifier`](jwt::JwtVerifier)). `None` means "I need to wait for
    /// something"; the bearer layer then calls [`verify`](Self::verify). The bearer layer calls
    /// this first; the default is `None`.
    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        let _ = token;
        None
    }

    /// Recognises a token this verifier has already answered, from the raw bytes of the
    /// `Authorization` header, **before** the bearer layer has checked its syntax: the hot
    /// path of a repeated token, which then skips the syntax scan. The bearer layer asks this
    /// first for `Bearer` requests; the default is `None`, and the layer goes on with its checks,
    /// [`verify_cached`](Self::verify_cached) and [`verify`](Self::verify).
    ///
    /// An implementation must answer only for bytes equal to a token it was given through
    /// `verify` or `verify_cached` **and** that is well-formed (an RFC 6750 `b64token` of at most
    /// 16 KiB, the check the layer would have made), and answer as it did then (or as it would
    /// now, for an expired answer: `None`). [`CachedVerifier`](cache::CachedVerifier) does, for
    /// its positive entries; wrappers forward it.
    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        let _ = token;
        None
    }
}

impl<V: TokenVerifier + ?Sized> TokenVerifier for Arc<V> {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        (**self).verify(token)
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        (**self).verify_cached(token)
    }

    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        (**self).recall(token)
    }
}

pub use self::either::Either;
pub use mcp_auth_jwt::{VerifyError, VerifyErrorKind};
