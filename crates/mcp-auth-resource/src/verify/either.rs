//! [`Either`]: one of two verifiers, chosen at run time.

use std::future::Future;

use super::{TokenVerifier, VerifyError};
use crate::AuthInfo;

/// One of two [`TokenVerifier`]s, chosen at run time (for example from configuration: JWTs or
/// introspection), behind one layer type. Every method goes to the chosen verifier, so its token
/// cache and fast paths work as they would alone. Nest it for more than two
/// (`Either<A, Either<B, C>>`).
///
/// ```
/// use mcp_auth_resource::{AuthInfo, Either, TokenVerifier, VerifyError, VerifyErrorKind};
///
/// #[derive(Debug, Clone)]
/// struct Accept;
/// impl TokenVerifier for Accept {
///     async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
///         Ok(AuthInfo::builder().subject("alice").build())
///     }
/// }
/// #[derive(Debug, Clone)]
/// struct Reject;
/// impl TokenVerifier for Reject {
///     async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
///         Err(VerifyErrorKind::Expired.into())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let strict = std::env::var("STRICT").is_ok();
/// let verifier: Either<Reject, Accept> = if strict { Either::Left(Reject) } else { Either::Right(Accept) };
/// assert_eq!(verifier.verify("t").await.is_ok(), !strict);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first verifier.
    Left(A),
    /// The second verifier.
    Right(B),
}

impl<A: TokenVerifier, B: TokenVerifier> TokenVerifier for Either<A, B> {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        match self {
            Self::Left(a) => futures_util::future::Either::Left(a.verify(token)),
            Self::Right(b) => futures_util::future::Either::Right(b.verify(token)),
        }
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        match self {
            Self::Left(a) => a.verify_cached(token),
            Self::Right(b) => b.verify_cached(token),
        }
    }

    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        match self {
            Self::Left(a) => a.recall(token),
            Self::Right(b) => b.recall(token),
        }
    }
}
