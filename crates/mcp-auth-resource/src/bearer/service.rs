//! [`BearerAuth`]: the bearer middleware service, and the parsing of the request's credentials.

use std::{
    any::type_name,
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use mcp_auth_core::ScopeSet;
use tower_service::Service;
use zeroize::Zeroizing;

use super::{
    Anonymous, BearerAuthLayer, BearerError, BearerErrorKind, DefaultRejection, DpopRejection,
    ResponseForBearerError,
    future::{Pending, ResponseFuture},
    header::{self, Scheme, credentials},
    layer::{Config, LayerContext},
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
    verifier: Arc<V>,
    config: Arc<Config>,
    rejection: R,
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
    pub(super) const fn from_parts(
        inner: S,
        verifier: Arc<V>,
        config: Arc<Config>,
        rejection: R,
    ) -> Self {
        Self {
            inner,
            verifier,
            config,
            rejection,
        }
    }

    define_inner_service_accessors!();
}

impl<S: Clone, V, R: Clone> Clone for BearerAuth<S, V, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verifier: Arc::clone(&self.verifier),
            config: Arc::clone(&self.config),
            rejection: self.rejection.clone(),
        }
    }
}

impl<S: fmt::Debug, V, R> fmt::Debug for BearerAuth<S, V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .field("verifier", &type_name::<V>())
            .field("config", &self.config)
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
        let addressed = self.config.addressed(req.uri(), req.headers());
        let config = addressed.as_ref().unwrap_or(&self.config);
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
                let error = error_for(config, BearerErrorKind::MissingToken, false);
                let response = reject(&mut self.rejection, &req, error, &span, None);
                return ResponseFuture::rejected(response, span.clone());
            }
            Err(kind) => {
                let error = error_for(config, kind, false);
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
            if let Some(result) = self.verifier.recall(token) {
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
                let error = error_for(config, kind, false);
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
                    let error = error_for(config, BearerErrorKind::Dpop(rejection), true);
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
        if let Some(result) = self.verifier.verify_cached(token) {
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
        let verifier = Arc::clone(&self.verifier);
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
    match admit(config, &mut req, result, binding, span) {
        Ok(()) => ResponseFuture::called(inner.call(req), span.clone()),
        Err((error, info)) => {
            let response = reject(rejection, &req, error, span, info.as_ref());
            ResponseFuture::rejected(response, span.clone())
        }
    }
}

/// Applies a verifier's answer to the request: on success, checks the layer's scope floor and
/// inserts the [`AuthInfo`] (which carries the layer context) and, when the layer asks for it,
/// its [`Subject`](mcp_auth_core::Subject) into the extensions. A refusal comes back with the token's `AuthInfo` when it was valid (for the
/// span).
pub(super) fn admit<B>(
    config: &Arc<Config>,
    req: &mut Request<B>,
    result: Result<AuthInfo, VerifyError>,
    binding: &Binding,
    span: &RequestSpan,
) -> Result<(), (BearerError, Option<AuthInfo>)> {
    let used_dpop = !matches!(binding, Binding::Bearer);
    match result {
        Ok(info) => {
            if let Err(rejection) = check_binding(config, binding, &info) {
                let error = error_for(config, BearerErrorKind::Dpop(rejection), used_dpop);
                return Err((error, Some(info)));
            }
            if !config.required_scopes.is_empty()
                && !info.scopes().contains_all(&config.required_scopes)
            {
                #[cfg(feature = "tracing")]
                tracing::debug!(
                    sub = info.subject(),
                    client_id = info.client_id(),
                    jti = info.jwt_id(),
                    "bearer token lacks a required scope",
                );
                let challenge =
                    config.insufficient_scope_challenge(info.scopes(), &ScopeSet::new());
                let error = with_dpop_challenge(
                    config,
                    BearerError::new(BearerErrorKind::InsufficientScope, Some(challenge), None),
                    used_dpop,
                );
                return Err((error, Some(info)));
            }
            #[cfg(feature = "tracing")]
            tracing::trace!(
                sub = info.subject(),
                client_id = info.client_id(),
                jti = info.jwt_id(),
                "bearer token accepted",
            );
            span.record_allow(Some(&info));
            let ext = req.extensions_mut();
            // The subject goes in alone only when asked (mcp-auth-server's upstream token vault,
            // which must not depend on this crate): shared with the `AuthInfo`, no copy of the
            // string. Otherwise one planted before the layer goes (cheap on the empty extensions
            // of a bare request).
            match info.shared_subject().filter(|_| config.subject_extension) {
                Some(sub) => ext.insert(sub.clone()),
                None => ext.remove::<mcp_auth_core::Subject>(),
            };
            // The layer context rides in the `AuthInfo`: one extension box, not two.
            ext.insert(info.admitted_by(config));
            Ok(())
        }
        Err(err) if err.is_unavailable() => {
            #[cfg(feature = "tracing")]
            tracing::error!(error = ?err, "token verifier unavailable: answering 503");
            let retry_after = err.retry_after().unwrap_or(config.retry_after);
            let error = BearerError::new(BearerErrorKind::Unavailable, None, Some(retry_after));
            Err((error, None))
        }
        Err(err) => {
            let error = error_for(config, BearerErrorKind::InvalidToken(err.kind()), used_dpop);
            Err((error, None))
        }
    }
}

/// The error, with its challenges, for a rejection decided before or without the verifier.
/// `used_dpop`: the request came with the `DPoP` scheme.
pub(super) fn error_for(config: &Config, kind: BearerErrorKind, used_dpop: bool) -> BearerError {
    let resource = &config.resource;
    let challenge = match kind {
        BearerErrorKind::MissingToken => Some(resource.missing_token_challenge().clone()),
        BearerErrorKind::InvalidRequest(k) => {
            Some(resource.invalid_request_challenge(k.description()))
        }
        BearerErrorKind::InvalidToken(k) => Some(resource.invalid_token_challenge(k)),
        BearerErrorKind::InsufficientScope => {
            Some(config.insufficient_scope_challenge(&ScopeSet::new(), &ScopeSet::new()))
        }
        BearerErrorKind::Dpop(rejection) if kind.status().as_u16() == 401 => {
            Some(resource.dpop_rejection_challenge(rejection))
        }
        BearerErrorKind::Unavailable | BearerErrorKind::Dpop(_) => None,
    };
    let retry_after =
        (kind.status() == http::StatusCode::SERVICE_UNAVAILABLE).then_some(config.retry_after);
    with_dpop_challenge(
        config,
        BearerError::new(kind, challenge, retry_after),
        used_dpop,
    )
}

/// What the request proved about the token's key.
#[derive(Debug, Clone)]
pub(crate) enum Binding {
    /// Nothing: a bearer request.
    Bearer,
    /// A valid DPoP proof by the key with this thumbprint.
    #[cfg(feature = "dpop")]
    Dpop(String),
}

/// The token's binding (`cnf.jkt`) against what the request proved (RFC 9449 §7.1, §7.2).
fn check_binding(config: &Config, binding: &Binding, info: &AuthInfo) -> Result<(), DpopRejection> {
    if matches!(binding, Binding::Bearer) {
        // The hot path: one remembered flag, not a claims lookup per request.
        return if info.is_dpop_bound() {
            Err(DpopRejection::BoundTokenAsBearer)
        } else if config.dpop_required() {
            Err(DpopRejection::BearerNotAccepted)
        } else {
            Ok(())
        };
    }
    match (binding, info.dpop_jkt()) {
        (Binding::Bearer, _) => Ok(()),
        #[cfg(feature = "dpop")]
        (Binding::Dpop(_), None) => Err(DpopRejection::UnboundToken),
        #[cfg(feature = "dpop")]
        (Binding::Dpop(proved), Some(bound)) => {
            if subtle::ConstantTimeEq::ct_eq(proved.as_bytes(), bound.as_bytes()).into() {
                Ok(())
            } else {
                Err(DpopRejection::Proof(
                    mcp_auth_jwt::DpopErrorKind::KeyMismatch,
                ))
            }
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

/// Adds the `DPoP` challenge (and a fresh `DPoP-Nonce` to a 401) when the layer accepts DPoP.
///
/// An error about a DPoP request or a DPoP binding, and every error when DPoP is required, is
/// told in the `DPoP` challenge (the parameters of the `Bearer` one, plus `algs`); the `Bearer`
/// challenge then stays bare (`resource_metadata`, `scope`), or is left out when DPoP is
/// required. Otherwise the `Bearer` challenge is unchanged and the `DPoP` one only says `algs`.
#[cfg(feature = "dpop")]
fn with_dpop_challenge(config: &Config, error: BearerError, used_dpop: bool) -> BearerError {
    use mcp_auth_core::challenge::{self, Challenge};

    let Some(dpop) = &config.dpop else {
        return error;
    };
    let status = error.status();
    if status == http::StatusCode::SERVICE_UNAVAILABLE {
        return error;
    }
    let kind = error.kind();
    let carry = used_dpop || dpop.required || matches!(kind, BearerErrorKind::Dpop(_));
    let mut dpop_challenge = Challenge::new("DPoP");
    if carry
        && let Some(bearer) = error
            .challenge()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| challenge::parse(v).ok())
            .and_then(|mut all| all.pop())
    {
        for (name, value) in bearer.params() {
            dpop_challenge.set_param(name.as_str(), value.as_str());
        }
    } else {
        dpop_challenge.set_param("resource_metadata", config.resource.metadata_url());
    }
    dpop_challenge.set_param("algs", dpop.algs.as_str());
    let bearer = if dpop.required {
        None
    } else if carry && kind != BearerErrorKind::MissingToken {
        Some(config.resource.missing_token_challenge().clone())
    } else {
        error.challenge().cloned()
    };
    let nonce = if status == http::StatusCode::UNAUTHORIZED {
        dpop.nonce_header()
    } else {
        None
    };
    BearerError::new(kind, bearer, error.retry_after()).with_dpop(
        http::HeaderValue::try_from(dpop_challenge.to_string()).ok(),
        nonce,
    )
}

#[cfg(not(feature = "dpop"))]
fn with_dpop_challenge(_: &Config, error: BearerError, _: bool) -> BearerError {
    error
}

/// Builds the rejection response, attaches the error to it and records the decision in the span
/// (with the token's `info` when it was valid).
pub(super) fn reject<B, ResBody, R: ResponseForBearerError<ResBody>>(
    rejection: &mut R,
    req: &Request<B>,
    error: BearerError,
    span: &RequestSpan,
    info: Option<&AuthInfo>,
) -> Response<ResBody> {
    span.record_refusal(&error, info);
    #[cfg(feature = "tracing")]
    tracing::debug!(
        path = req.uri().path(),
        kind = ?error.kind(),
        status = error.status().as_u16(),
        "bearer: request rejected",
    );
    let _ = req;
    let mut response = rejection.response_for_bearer_error(&error);
    response.extensions_mut().insert(error);
    response
}
