//! [`BearerAuthLayer`]: the configuration of the bearer middleware.

use std::{any::type_name, fmt, sync::Arc, time::Duration};

use mcp_auth_core::ScopeSet;
use tower_layer::Layer;

use super::{BearerAuth, DefaultRejection, error::DEFAULT_RETRY_AFTER};
use crate::{ProtectedResource, TokenVerifier};

/// What every [`BearerAuth`] built from one layer shares. The layer also puts it (one `Arc`) into
/// the request extensions, so the extractors can build challenges without app state.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) resource: ProtectedResource,
    pub(crate) optional: bool,
    pub(crate) required_scopes: ScopeSet,
    pub(crate) retry_after: Duration,
    /// Whether an admitted request also gets the token's `sub` alone, as an
    /// [`mcp_auth_core::Subject`] extension.
    pub(crate) subject_extension: bool,
    /// DPoP (RFC 9449), when turned on.
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<Arc<crate::dpop::DpopConfig>>,
}

impl Config {
    /// Whether the `DPoP` scheme is accepted.
    #[allow(clippy::unused_self)]
    pub(crate) fn dpop_enabled(&self) -> bool {
        #[cfg(feature = "dpop")]
        return self.dpop.is_some();
        #[cfg(not(feature = "dpop"))]
        false
    }

    /// Whether tokens that are not DPoP-bound are refused.
    #[allow(clippy::unused_self)]
    pub(crate) fn dpop_required(&self) -> bool {
        #[cfg(feature = "dpop")]
        return self.dpop.as_ref().is_some_and(|d| d.required);
        #[cfg(not(feature = "dpop"))]
        false
    }

    /// This configuration as the request addressed the resource
    /// ([`ProtectedResource::as_addressed`]): `Some` only for a loopback resource reached through
    /// another loopback name, so the hot path of every other deployment pays one length check.
    pub(crate) fn addressed(
        &self,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Option<Arc<Self>> {
        if !self.resource.has_loopback_views() {
            return None;
        }
        let view = self.resource.as_addressed(uri, headers);
        (!view.is_same(&self.resource)).then(|| {
            Arc::new(Self {
                resource: view.clone(),
                ..self.clone()
            })
        })
    }

    /// The 403 `insufficient_scope` challenge for a request that needs `required`, as seen from
    /// behind this layer: the layer's scope floor is added to `required`, so a client that
    /// re-authorizes for exactly the challenged scopes keeps what every request here needs and
    /// cannot loop between this layer and an inner one (an extractor, the tool-scope layer).
    pub(crate) fn insufficient_scope_challenge(
        &self,
        granted: &ScopeSet,
        required: &ScopeSet,
    ) -> http::HeaderValue {
        if self.required_scopes.is_empty() {
            self.resource
                .insufficient_scope_challenge(granted, required)
        } else {
            self.resource
                .insufficient_scope_challenge(granted, &self.required_scopes.union(required))
        }
    }
}

/// What the layer inserts into the request extensions next to the `Anonymous` marker: proof
/// that the layer ran, and what the extractors need for their challenges. An admitted request
/// carries the same in its `AuthInfo` ([`AuthInfo::layer`](crate::AuthInfo)) instead.
#[derive(Debug, Clone)]
#[cfg_attr(not(any(feature = "axum", feature = "mcp")), allow(dead_code))]
pub(crate) struct LayerContext(pub(crate) Arc<Config>);

impl LayerContext {
    /// The context of the bearer layer that ran for this request: the one its `AuthInfo`
    /// carries, else the one beside its `Anonymous` marker.
    #[cfg_attr(not(any(feature = "axum", feature = "mcp")), allow(dead_code))]
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&Arc<Config>> {
        extensions
            .get::<crate::AuthInfo>()
            .and_then(crate::AuthInfo::layer)
            .or_else(|| extensions.get::<Self>().map(|context| &context.0))
    }
}

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
    /// Use this when some operations are public; the [`Auth`](crate::extract::Auth) extractor
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
    pub fn dpop(mut self, config: crate::dpop::DpopConfig) -> Self {
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
