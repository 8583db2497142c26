//! Token verification: the [`TokenVerifier`] trait and its implementations.
//!
//! - [`JwtVerifier`](crate::JwtVerifier) (feature `jwt`): RFC 9068 JWT access tokens,
//!   keys from a static or remote JWK Set.
//! - [`IntrospectionVerifier`](crate::IntrospectionVerifier)
//!   (feature `introspection`): opaque tokens, RFC 7662.
//! - [`CachedVerifier`]: a verified-token cache in front of any
//!   verifier, so a repeated token costs a hash and a lookup.
//! - [`Revocable`](crate::Revocable): asks a
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
//! use mcp_auth_resource::{AuthInfo, TokenVerifier, VerifyError, VerifyErrorKind};
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

#[cfg(doc)]
use crate::{AuthInfo, CachedVerifier, Either};

pub mod cache;
mod claims;
pub(crate) mod either;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;
pub(crate) mod revocation;
pub(crate) mod token_verifier;

pub(crate) use self::token_verifier::TokenVerifier;
pub(crate) use mcp_auth_jwt::{VerifyError, VerifyErrorKind};
