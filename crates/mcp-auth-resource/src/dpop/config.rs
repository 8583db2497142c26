//! [`DpopConfig`]: how the bearer layer handles DPoP; the rules are in the [module docs](super).

use std::{fmt, sync::Arc};

use crate::{DpopNonces, DpopVerifier};
use http::HeaderValue;
use mcp_auth_core::{Clock, SystemClock};

/// How the bearer layer handles DPoP. See the [module docs](crate::dpop).
///
/// ```
/// use std::sync::Arc;
///
/// use mcp_auth_core::SystemClock;
/// use mcp_auth_resource::{DpopConfig, DpopNonces};
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
