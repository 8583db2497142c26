//! DPoP-bound access tokens at the resource server (RFC 9449 §7): the configuration that turns
//! it on in [`BearerAuthLayer::dpop`](crate::BearerAuthLayer::dpop).
//!
//! With DPoP on, the bearer layer accepts `Authorization: DPoP <token>` with one `DPoP` proof
//! header beside `Authorization: Bearer <token>`:
//!
//! - A token bound to a key (`cnf.jkt`, from a JWT or an introspection answer) must come with the
//!   `DPoP` scheme and a valid proof signed by that key: `htm`/`htu` of this request (`htu` is the
//!   resource's origin and the request path), `iat` in the window, `ath` = the token's hash, `jti`
//!   not seen before. Presented as `Bearer`, it is refused (`invalid_token`, §7.2).
//! - A token without `cnf` is a bearer token: with the `DPoP` scheme it is refused; with
//!   `Bearer` it is accepted unless [`require_dpop`](DpopConfig::require_dpop) is set.
//! - The verified-token cache still answers for the token; the proof is checked on every request.
//! - Challenges: `WWW-Authenticate: Bearer …` and `WWW-Authenticate: DPoP algs="…", …` side by
//!   side; an error about a DPoP request (or a DPoP binding) goes in the `DPoP` challenge
//!   (`invalid_dpop_proof`, `use_dpop_nonce`, `invalid_token`).
//! - With [`nonces`](DpopConfig::nonces), a proof must carry a recent server nonce: one without
//!   gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header (§9). Every 401 carries a fresh nonce.
//!
//! Publish the same settings in the metadata with
//! [`ProtectedResourceBuilder::dpop_signing_alg_values_supported`](crate::ProtectedResourceBuilder::dpop_signing_alg_values_supported)
//! and [`dpop_bound_access_tokens_required`](crate::ProtectedResourceBuilder::dpop_bound_access_tokens_required).
//!
//! Without the `dpop` feature, the `DPoP` scheme is an unsupported scheme and a DPoP-bound token
//! is always refused.

use std::{fmt, sync::Arc};

use http::HeaderValue;
use mcp_auth_core::{Clock, SystemClock};
pub use mcp_auth_jwt::JwsAlgorithm;
pub use mcp_auth_jwt::dpop::{
    DpopError, DpopErrorKind, DpopNonces, DpopVerifier, NonceCheck, ProofCheck, VerifiedProof,
    access_token_hash, jwk_thumbprint,
};

/// How the bearer layer handles DPoP. See the [module docs](self).
///
/// ```
/// use std::sync::Arc;
///
/// use mcp_auth_core::SystemClock;
/// use mcp_auth_resource::dpop::{DpopConfig, DpopNonces};
///
/// let config = DpopConfig::new()
///     .nonces(DpopNonces::new(Arc::new(SystemClock::default()))?)
///     .require_dpop(true);
/// assert_eq!(config.algorithm_names(), "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct DpopConfig {
    pub(crate) verifier: DpopVerifier,
    pub(crate) nonces: Option<DpopNonces>,
    pub(crate) required: bool,
    pub(crate) algs: String,
}

impl fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopConfig")
            .field("verifier", &self.verifier)
            .field("nonces", &self.nonces.is_some())
            .field("required", &self.required)
            .finish()
    }
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopConfig {
    /// DPoP accepted beside Bearer, every asymmetric algorithm, no nonces, the system clock.
    pub fn new() -> Self {
        Self::with_verifier(DpopVerifier::new(
            Arc::new(SystemClock::default()) as Arc<dyn Clock>
        ))
    }

    /// DPoP with this proof verifier (its algorithms, `iat` window, replay cache and clock).
    pub fn with_verifier(verifier: DpopVerifier) -> Self {
        let algs = verifier.algorithm_names();
        Self {
            verifier,
            nonces: None,
            required: false,
            algs,
        }
    }

    /// Requires a server nonce in every proof (RFC 9449 §9).
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Refuses tokens that are not DPoP-bound (`dpop_bound_access_tokens_required`).
    pub fn require_dpop(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The `algs` of the `DPoP` challenge.
    #[must_use]
    pub fn algorithm_names(&self) -> &str {
        &self.algs
    }

    /// The current nonce as a header value, when nonces are on.
    pub(crate) fn nonce_header(&self) -> Option<HeaderValue> {
        self.nonces
            .as_ref()
            .and_then(|n| HeaderValue::try_from(n.current()).ok())
    }
}
