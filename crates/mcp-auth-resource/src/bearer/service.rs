//! [`BearerAuth`]: the bearer middleware service, and the parsing of the request's credentials.

use std::{
    any::type_name,
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use tower_service::Service;
use zeroize::Zeroizing;

use super::{
    Anonymous, BearerAuthLayer, BearerErrorKind, DefaultRejection, DpopRejection,
    ResponseForBearerError,
    context::{Binding, Config, LayerContext, reject},
    future::{Pending, ResponseFuture},
    header::{self, Scheme, credentials},
    trace::RequestSpan,
};
use crate::{AuthInfo, ProtectedResource, TokenVerifier, VerifyError};

/// Middleware that authenticates every request with a bearer token.
///
/// See the [module docs](super) for the rules, the response table and an example.
///
/// # Be careful when cloning inner services
///
/// When a token is not answered by [`TokenVerifier::verify_cached`], verification is
/// asynchronous and the inner service is called only after it. As the tower docs advise, the
/// service keeps a clone and moves the instance that [`poll_ready`](Service::poll_ready)
/// reserved into the response future, so the inner service must be `Clone`.
#[must_use]
pub struct BearerAuth<S, V, R = DefaultRejection> {
    inner: S,
    /// The verifier and the configuration behind one `Arc`: a router that clones the service
    /// for every request (axum's `route_service`) pays one reference count, not two.
    shared: Arc<Shared<V>>,
    rejection: R,
}

/// What every service of one layer shares.
struct Shared<V> {
    verifier: Arc<V>,
    config: Arc<Config>,
}

impl<S, V: TokenVerifier> BearerAuth<S, V> {
    /// Wraps `inner`; the same as `BearerAuthLayer::new(verifier, resource).layer(inner)`.
    pub fn new(inner: S, verifier: V, resource: ProtectedResource) -> Self {
        tower_layer::Layer::layer(&BearerAuthLayer::new(verifier, resource), inner)
    }
}

impl<V: TokenVerifier> BearerAuth<(), V> {
    /// A [`BearerAuthLayer`] with this verifier and resource (`BearerAuth::layer(..)`).
    pub fn layer(verifier: V, resource: ProtectedResource) -> BearerAuthLayer<V> {
        BearerAuthLayer::new(verifier, resource)
    }
}

impl<S, V, R> BearerAuth<S, V, R> {
    pub(super) fn from_parts(
        inner: S,
        verifier: Arc<V>,
        config: Arc<Config>,
        rejection: R,
    ) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared { verifier, config }),
            rejection,
        }
    }

    define_inner_service_accessors!();
}

impl<S: Clone, V, R: Clone> Clone for BearerAuth<S, V, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            rejection: self.rejection.clone(),
        }
    }
}

impl<S: fmt::Debug, V, R> fmt::Debug for BearerAuth<S, V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .field("verifier", &type_name::<V>())
            .field("config", &self.shared.config)
            .field("rejection", &type_name::<R>())
            .finish()
    }
}

impl<S, V, R, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S, V, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    V: TokenVerifier,
    R: ResponseForBearerError<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let span = RequestSpan::new();
        let _entered = span.enter();
        // A loopback resource answers in the loopback spelling the client used.
        let shared = &*self.shared;
        let addressed = shared.config.addressed(req.uri(), req.headers());
        let config = addressed.as_ref().unwrap_or(&shared.config);
        let (token, scheme) = match credentials(&req, config.dpop_enabled()) {
            Ok(Some(found)) => found,
            Ok(None) if config.optional => {
                #[cfg(feature = "tracing")]
                tracing::trace!(
                    path = req.uri().path(),
                    "no credentials: passing as anonymous"
                );
                span.record_allow(None);
                let ext = req.extensions_mut();
                ext.remove::<AuthInfo>();
                ext.remove::<mcp_auth_core::Subject>();
                ext.insert(Anonymous);
                ext.insert(LayerContext(Arc::clone(config)));
                return ResponseFuture::called(self.inner.call(req), span.clone());
            }
            Ok(None) => {
                let error = config.error_for(BearerErrorKind::MissingToken, false);
                let response = reject(&mut self.rejection, &req, error, &span, None);
                return ResponseFuture::rejected(response, span.clone());
            }
            Err(kind) => {
                let error = config.error_for(kind, false);
                let response = reject(&mut self.rejection, &req, error, &span, None);
                return ResponseFuture::rejected(response, span.clone());
            }
        };
        // The hot path: a token the verifier has already answered, recognised from the header's
        // bytes (it passed the syntax check of rule 4 when it was remembered, so the scan is not
        // repeated), with no future and no allocation beyond the extensions.
        if scheme == Scheme::Bearer {
            let started = span.is_enabled().then(|| {
                span.take_cache_hit();
                Instant::now()
            });
            if let Some(result) = shared.verifier.recall(token) {
                let hit = span.take_cache_hit();
                span.record_cache(hit, started.filter(|_| !hit).map(|s| s.elapsed()));
                return answer(
                    (&mut self.inner, &mut self.rejection),
                    config,
                    req,
                    result,
                    &Binding::Bearer,
                    &span,
                );
            }
        }
        let token = match header::checked(token) {
            Ok(token) => token,
            Err(kind) => {
                let error = config.error_for(kind, false);
                let response = reject(&mut self.rejection, &req, error, &span, None);
                return ResponseFuture::rejected(response, span.clone());
            }
        };
        // A DPoP proof is checked on every request, before (and whatever) the token cache says.
        let binding = match scheme {
            Scheme::Bearer => Binding::Bearer,
            Scheme::Dpop => match check_proof(config, &req, token) {
                Ok(binding) => binding,
                Err(rejection) => {
                    let error = config.error_for(BearerErrorKind::Dpop(rejection), true);
                    let response = reject(&mut self.rejection, &req, error, &span, None);
                    return ResponseFuture::rejected(response, span.clone());
                }
            },
        };

        // A verifier that knows the answer without waiting: no future.
        let started = span.is_enabled().then(|| {
            span.take_cache_hit();
            Instant::now()
        });
        if let Some(result) = shared.verifier.verify_cached(token) {
            let hit = span.take_cache_hit();
            span.record_cache(hit, started.filter(|_| !hit).map(|s| s.elapsed()));
            return answer(
                (&mut self.inner, &mut self.rejection),
                config,
                req,
                result,
                &binding,
                &span,
            );
        }

        let token = Zeroizing::new(token.to_owned());
        let verifier = Arc::clone(&shared.verifier);
        let timed = span.clone();
        let verify = async move {
            let started = timed.is_enabled().then(Instant::now);
            let answer = verifier.verify(&token).await;
            timed.record_cache(false, started.map(|s| s.elapsed()));
            answer
        };
        // Keep a clone here and move the instance `poll_ready` reserved into the future.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture::verifying(
            Box::pin(verify),
            Pending {
                inner,
                request: req,
                config: Arc::clone(config),
                rejection: self.rejection.clone(),
                binding,
            },
            span.clone(),
        )
    }
}

/// Answers at once with the verifier's synchronous `result`: calls `inner` with the request
/// admitted, or rejects it.
fn answer<S, R, ReqBody, ResBody>(
    (inner, rejection): (&mut S, &mut R),
    config: &Arc<Config>,
    mut req: Request<ReqBody>,
    result: Result<AuthInfo, VerifyError>,
    binding: &Binding,
    span: &RequestSpan,
) -> ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: ResponseForBearerError<ResBody>,
{
    match config.admit(&mut req, result, binding, span) {
        Ok(()) => ResponseFuture::called(inner.call(req), span.clone()),
        Err((error, info)) => {
            let response = reject(rejection, &req, error, span, info.as_ref());
            ResponseFuture::rejected(response, span.clone())
        }
    }
}

/// Checks the request's one `DPoP` proof for `token` (RFC 9449 §4.3): `htm` is the request
/// method, `htu` the resource's origin and the request path.
#[cfg(feature = "dpop")]
fn check_proof<B>(
    config: &Config,
    req: &Request<B>,
    token: &str,
) -> Result<Binding, DpopRejection> {
    use mcp_auth_jwt::dpop::ProofCheck;

    let Some(dpop) = &config.dpop else {
        return Err(DpopRejection::MissingProof);
    };
    let mut proofs = req.headers().get_all("dpop").iter();
    let proof = proofs.next().ok_or(DpopRejection::MissingProof)?;
    if proofs.next().is_some() {
        return Err(DpopRejection::MultipleProofs);
    }
    let proof = proof
        .to_str()
        .map_err(|_| DpopRejection::Proof(mcp_auth_jwt::DpopErrorKind::Malformed))?;
    let origin = config.resource.resource().origin();
    let path = req.uri().path();
    let mut htu = String::with_capacity(origin.len() + path.len());
    htu.push_str(origin);
    htu.push_str(path);
    let mut check = ProofCheck::new(req.method().as_str(), &htu).access_token(token);
    if let Some(nonces) = &dpop.nonces {
        check = check.nonce(nonces);
    }
    dpop.verifier
        .verify(proof, &check)
        .map(|proved| Binding::Dpop(proved.jkt().to_owned()))
        .map_err(|e| DpopRejection::Proof(e.kind()))
}

#[cfg(not(feature = "dpop"))]
fn check_proof<B>(_: &Config, _: &Request<B>, _: &str) -> Result<Binding, DpopRejection> {
    Err(DpopRejection::MissingProof)
}
