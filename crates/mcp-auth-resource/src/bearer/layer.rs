//! [`BearerAuthLayer`]: the configuration of the bearer middleware.

use std::{any::type_name, fmt, sync::Arc, time::Duration};

use mcp_auth_core::ScopeSet;
use tower_layer::Layer;

use super::{BearerAuth, DefaultRejection, context::Config, error::DEFAULT_RETRY_AFTER};
use crate::{ProtectedResource, TokenVerifier};

/// Applies [`BearerAuth`]: authenticates every request with a bearer token.
///
/// See the [module docs](super) for the rules, the response table and an example.
#[must_use]
pub struct BearerAuthLayer<V, R = DefaultRejection> {
    verifier: Arc<V>,
    config: Arc<Config>,
    rejection: R,
}

impl<V: TokenVerifier> BearerAuthLayer<V> {
    /// A layer that checks tokens with `verifier` and names `resource` in its challenges.
    ///
    /// Every request must carry a valid token; see [`optional`](Self::optional) to let requests
    /// without credentials through.
    pub fn new(verifier: V, resource: ProtectedResource) -> Self {
        Self {
            verifier: Arc::new(verifier),
            config: Arc::new(Config {
                resource,
                optional: false,
                required_scopes: ScopeSet::new(),
                retry_after: DEFAULT_RETRY_AFTER,
                subject_extension: false,
                #[cfg(feature = "dpop")]
                dpop: None,
            }),
            rejection: DefaultRejection,
        }
    }
}

impl<V, R> BearerAuthLayer<V, R> {
    /// Lets requests **without** credentials through, marked with
    /// [`Anonymous`](super::Anonymous) in their extensions. A request that does carry credentials
    /// is still checked: a bad token is rejected exactly as in the default mode.
    ///
    /// Use this when some operations are public; the [`Auth`](crate::Auth) extractor
    /// then answers the 401 for the handlers that need a token.
    pub fn optional(mut self) -> Self {
        Arc::make_mut(&mut self.config).optional = true;
        self
    }

    /// Scopes every token must grant. A token without them gets 403 `insufficient_scope` whose
    /// `scope` follows [`ProtectedResource::step_up_scopes`]. Requests let through by
    /// [`optional`](Self::optional) are not affected. Extractors add these scopes to their own
    /// 403 challenges, so a step-up never loses them.
    pub fn required_scopes(mut self, scopes: ScopeSet) -> Self {
        Arc::make_mut(&mut self.config).required_scopes = scopes;
        self
    }

    /// The `Retry-After` sent with a 503 when the verifier is unavailable and gives no delay of
    /// its own. Default 5 seconds; at least one second is sent.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        Arc::make_mut(&mut self.config).retry_after = delay;
        self
    }

    /// Also inserts the token's `sub` alone into the request extensions, as an
    /// [`mcp_auth_core::Subject`] (shared with the [`AuthInfo`](crate::AuthInfo), not copied), for
    /// code that cannot depend on this crate: `mcp-auth-server`'s upstream token vault
    /// (`UpstreamAccess`) reads it there. Off by default: it costs a second extension (an
    /// allocation) per request, and code that depends on this crate reads the same value with
    /// [`AuthInfo::shared_subject`](crate::AuthInfo::shared_subject). Either way a `Subject`
    /// inserted before this layer never reaches the inner service.
    pub fn with_subject_extension(mut self, insert: bool) -> Self {
        Arc::make_mut(&mut self.config).subject_extension = insert;
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449): `Authorization: DPoP` with a `DPoP` proof beside
    /// `Bearer`, `DPoP` challenges, optional nonces. See [`dpop`](crate::dpop) for the rules.
    ///
    /// Without this, the `DPoP` scheme is unsupported and DPoP-bound tokens are refused.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn dpop(mut self, config: crate::DpopConfig) -> Self {
        Arc::make_mut(&mut self.config).dpop = Some(Arc::new(config));
        self
    }

    /// Replaces the builder of rejection responses (the default is
    /// [`DefaultRejection`]: an empty body). See [`ResponseForBearerError`](super::ResponseForBearerError).
    pub fn with_rejection_response<R2>(self, rejection: R2) -> BearerAuthLayer<V, R2> {
        BearerAuthLayer {
            verifier: self.verifier,
            config: self.config,
            rejection,
        }
    }

    /// The protected resource named in challenges.
    #[must_use]
    pub fn resource(&self) -> &ProtectedResource {
        &self.config.resource
    }

    /// The verifier.
    #[must_use]
    pub fn verifier(&self) -> &V {
        &self.verifier
    }
}

impl<V, R: Clone> Clone for BearerAuthLayer<V, R> {
    fn clone(&self) -> Self {
        Self {
            verifier: Arc::clone(&self.verifier),
            config: Arc::clone(&self.config),
            rejection: self.rejection.clone(),
        }
    }
}

impl<V, R> fmt::Debug for BearerAuthLayer<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("verifier", &type_name::<V>())
            .field("config", &self.config)
            .field("rejection", &type_name::<R>())
            .finish()
    }
}

impl<S, V, R: Clone> Layer<S> for BearerAuthLayer<V, R> {
    type Service = BearerAuth<S, V, R>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth::from_parts(
            inner,
            Arc::clone(&self.verifier),
            Arc::clone(&self.config),
            self.rejection.clone(),
        )
    }
}
