//! [`TokenVerifier`], the trait every verifier implements.

use std::{future::Future, sync::Arc};

use crate::{AuthInfo, VerifyError};

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
    /// ([`CachedVerifier`](crate::CachedVerifier), the introspection cache) or a JWT whose key is
    /// already loaded ([`JwtVerifier`](crate::JwtVerifier)). `None` means "I need to wait for
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
    /// now, for an expired answer: `None`). [`CachedVerifier`](crate::CachedVerifier) does, for
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
