//! The JWT machinery the `mcp-auth` crates share, so that there is one implementation of it:
//!
//! - [`VerifyError`] / [`VerifyErrorKind`]: why a token was refused (fixed, client-safe texts).
//! - [`JwsAlgorithm`]: the algorithm rules (never `none`; HMAC only with a configured secret,
//!   never with a public key).
//! - [`KeySet`]: a JWK Set parsed key by key (one bad key never sinks the set), size-capped.
//! - [`RemoteJwks`] (feature `remote`): a JWK Set fetched over HTTP and cached, with a
//!   cool-down on unknown `kid`s, stale keys through an outage, a background refresh, bounded
//!   bodies and timeouts.
//! - [`JwsVerifier`]: header gate, key selection and signature; returns the payload, whose
//!   claims the caller checks (`mcp-auth-resource`'s `JwtVerifier` for RFC 9068 access tokens,
//!   `mcp-auth-server`'s `OidcLogin` for OpenID Connect ID tokens).
//! - [`dpop`]: DPoP (RFC 9449) proofs, made ([`dpop::DpopKey`]) and checked
//!   ([`dpop::DpopVerifier`]: the header gate and JWK rules above, `htm`/`htu`/`iat`/`ath`,
//!   `cnf.jkt` thumbprints, a bounded `jti` replay cache, server nonces).
//!
//! `mcp-auth-resource` re-exports what its users see (`VerifyError`, `JwsAlgorithm`, the limits),
//! so depending on this crate directly is only needed to build another verifier.
//!
//! # Example
//!
//! A remote key set (nothing is fetched until it is needed):
//!
//! ```
//! use std::sync::Arc;
//!
//! use mcp_auth_core::SystemClock;
//! use mcp_auth_jwt::{HeaderPolicy, JwksLocation, JwsAlgorithm, JwsVerifier, KeySource, RemoteJwks, RemoteTiming};
//!
//! let keys = RemoteJwks::new(
//!     JwksLocation::JwksUri("https://idp.example.com/jwks".into()),
//!     RemoteTiming::default(),
//!     Arc::new(SystemClock::default()),
//! )?;
//! let verifier = JwsVerifier::new(
//!     HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), true),
//!     KeySource::Remote(keys),
//!     None,
//! );
//! assert_eq!(verifier.key_count(), 0);
//! # Ok::<(), mcp_auth_jwt::RemoteConfigError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Emits a tracing event when the `tracing` feature is on; nothing otherwise.
#[cfg(feature = "jwt")]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "mcp_auth_jwt", $($arg)+);
    }};
}

pub mod ascii;
mod dpop_error;
mod error;
mod url;

#[cfg(feature = "jwt")]
mod alg;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod dpop;
#[cfg(feature = "remote")]
mod fetch;
#[cfg(feature = "jwt")]
mod jwks;
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "jwt")]
mod token;
#[cfg(feature = "jwt")]
mod verifier;

pub use self::dpop_error::{DpopError, DpopErrorKind};
pub use self::error::{VerifyError, VerifyErrorKind};
pub use self::url::{UrlError, fetchable_url};

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use self::{
    alg::{JwsAlgorithm, UnknownAlgorithm},
    jwks::{JwksError, KeySet, MAX_JWKS_BYTES, MAX_KEYS, SkipReason},
    token::{HeaderPolicy, MAX_TOKEN_BYTES},
    verifier::{JwsVerifier, KeySource},
};

#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use self::remote::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REFRESH, DEFAULT_MIN_REFRESH, DEFAULT_REFRESH,
    DEFAULT_TIMEOUT, DEFAULT_UNKNOWN_KID_COOLDOWN, JwksLocation, RemoteConfigError, RemoteJwks,
    RemoteTiming,
};
