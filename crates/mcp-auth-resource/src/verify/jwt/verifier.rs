//! [`JwtVerifier`]; the checks and the defaults are in the [module docs](super).

use std::{fmt, sync::Arc};

use mcp_auth_core::{Clock, ResourceId};
use mcp_auth_jwt::JwsVerifier;

use super::claims::ClaimPolicy;
#[cfg(doc)]
use crate::VerifyErrorKind;
use crate::{
    AuthInfo, JwsAlgorithm, JwtVerifierBuilder, ProtectedResource, TokenVerifier, VerifyError,
};

/// Verifies JWT access tokens (RFC 9068) for one issuer and one resource.
///
/// Build it with [`JwtVerifier::builder`]; it implements [`TokenVerifier`], so it plugs into the
/// bearer layer. Cloning is cheap and clones share the key cache. See the
/// [module docs](super) for the checks, the defaults and an example.
#[derive(Clone)]
pub struct JwtVerifier(pub(super) Arc<Inner>);

pub(super) struct Inner {
    /// Header gate, keys and signature: the workspace's one JWS implementation.
    pub(super) jws: JwsVerifier,
    pub(super) claims: ClaimPolicy,
    pub(super) clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        f.debug_struct("JwtVerifier")
            .field("issuer", &inner.claims.issuer)
            .field("audience", &inner.claims.audience)
            .field("leeway_secs", &inner.claims.leeway_secs)
            .field("required_claims", &inner.claims.required)
            .field("jws", &inner.jws)
            .field("clock", &inner.clock)
            .finish()
    }
}

impl JwtVerifier {
    /// Starts a verifier for tokens issued by `issuer` (compared byte for byte with `iss`) for
    /// the resource `audience` (its canonical URI must be in `aud`).
    pub fn builder(issuer: impl Into<String>, audience: &ResourceId) -> JwtVerifierBuilder {
        JwtVerifierBuilder::new(issuer.into(), audience.clone())
    }

    /// [`builder`](Self::builder) with the audience of a [`ProtectedResource`].
    pub fn for_resource(
        issuer: impl Into<String>,
        resource: &ProtectedResource,
    ) -> JwtVerifierBuilder {
        Self::builder(issuer, resource.resource())
    }

    /// The trusted issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.0.claims.issuer
    }

    /// The audience tokens must name.
    #[must_use]
    pub fn audience(&self) -> &ResourceId {
        &self.0.claims.audience
    }

    /// The algorithms tokens may be signed with.
    #[must_use]
    pub fn algorithms(&self) -> &[JwsAlgorithm] {
        self.0.jws.header_policy().algorithms()
    }

    /// How many usable keys are cached now (for health checks). The HMAC secret is not counted.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.0.jws.key_count()
    }

    /// Fetches a remote key set now, ignoring the cool-down (joining a fetch already running),
    /// and waits for it: call it at startup to fail fast or to warm the cache. Static keys
    /// answer `Ok` at once.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](crate::VerifyErrorKind::Unavailable) when the key set could not be fetched (the
    /// cause is in [`source`](std::error::Error::source)); cached keys, if any, stay in use.
    pub async fn refresh_keys(&self) -> Result<(), VerifyError> {
        self.0.jws.refresh_keys().await
    }

    fn check_claims(
        &self,
        claims: Result<serde_json::Map<String, serde_json::Value>, VerifyError>,
    ) -> Result<AuthInfo, VerifyError> {
        super::claims::check(&self.0.claims, self.0.clock.unix_seconds(), claims?)
    }
}

fn log_outcome(result: &Result<AuthInfo, VerifyError>) {
    if let Err(_error) = result {
        event!(debug, kind = ?_error.kind(), "JWT access token refused");
    }
}

impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let result = self.check_claims(self.0.jws.verify(token).await);
        log_outcome(&result);
        result
    }

    /// Answers without a future whenever no key set fetch is needed (the token's key is cached,
    /// or the token is refused before any key lookup).
    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        let result = self.check_claims(self.0.jws.verify_cached(token)?);
        log_outcome(&result);
        Some(result)
    }
}
