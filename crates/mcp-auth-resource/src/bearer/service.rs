//! [`BearerAuth`]: the bearer middleware service, and the parsing of the request's credentials.

use std::{
    any::type_name,
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response, header::AUTHORIZATION};
use mcp_auth_core::ScopeSet;
use tower_service::Service;
use zeroize::Zeroizing;

use super::{
    Anonymous, BearerAuthLayer, BearerError, BearerErrorKind, DefaultRejection, DpopRejection,
    InvalidRequestKind, ResponseForBearerError,
    future::{Pending, ResponseFuture},
    layer::{Config, LayerContext},
    trace::RequestSpan,
};
use crate::{AuthInfo, ProtectedResource, TokenVerifier, VerifyError, VerifyErrorKind};

/// The longest token the layer passes to a verifier; longer ones are `invalid_token` at once.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

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

        // The hot path: a verifier that already knows the answer, no future, no allocation
        // beyond the extensions map.
        let started = span.is_enabled().then(|| {
            span.take_cache_hit();
            Instant::now()
        });
        if let Some(result) = self.verifier.verify_cached(token) {
            let hit = span.take_cache_hit();
            span.record_cache(hit, started.filter(|_| !hit).map(|s| s.elapsed()));
            return match admit(config, &mut req, result, &binding, &span) {
                Ok(()) => ResponseFuture::called(self.inner.call(req), span.clone()),
                Err((error, info)) => {
                    let response = reject(&mut self.rejection, &req, error, &span, info.as_ref());
                    ResponseFuture::rejected(response, span.clone())
                }
            };
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

/// Applies a verifier's answer to the request: on success, checks the layer's scope floor and
/// inserts the [`AuthInfo`], its [`Subject`](mcp_auth_core::Subject) and the layer context into
/// the extensions. A refusal comes back with the token's `AuthInfo` when it was valid (for the
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
            // The subject also goes in alone, for code that must not depend on this crate
            // (mcp-auth-server's upstream token vault).
            // Shared with the `AuthInfo`: no copy of the string.
            match info.subject_handle() {
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

/// How the request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP` (only when the layer accepts DPoP).
    Dpop,
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

/// Finds the access token of a request and its scheme: `Ok(None)` when it has no credentials at
/// all. `accept_dpop`: the `DPoP` scheme is accepted besides `Bearer`.
///
/// Allocates nothing: the token borrows from the header.
pub(crate) fn credentials<B>(
    req: &Request<B>,
    accept_dpop: bool,
) -> Result<Option<(&str, Scheme)>, BearerErrorKind> {
    if req.uri().query().is_some_and(has_access_token_param) {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::TokenInQuery,
        ));
    }
    let mut values = req.headers().get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::DuplicateAuthorization,
        ));
    }
    parse_authorization(value.as_bytes(), accept_dpop).map(Some)
}

/// Parses one `Authorization` value as `Bearer <b64token>`.
///
/// The scheme is case-insensitive (RFC 9110 §11.1); any run of spaces or tabs may separate it
/// from the token, and surrounding whitespace is ignored.
fn parse_authorization(value: &[u8], accept_dpop: bool) -> Result<(&str, Scheme), BearerErrorKind> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
    }
    let (scheme, rest) = match value.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => value.split_at(i),
        None => (value, &[][..]),
    };
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if accept_dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::UnsupportedScheme,
        ));
    };
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
    }
    if token.len() > MAX_TOKEN_LEN || !is_b64token(token) {
        return Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed));
    }
    std::str::from_utf8(token)
        .map(|token| (token, scheme))
        .map_err(|_| BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Vectorised through [`all_bytes`](mcp_auth_jwt::ascii::all_bytes): this runs on every request.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    if body.is_empty() {
        return false;
    }
    mcp_auth_jwt::ascii::all_bytes(body, b'A', is_b64_char)
}

/// `+`, `-./0-9` (one range), `A-Z`/`a-z` (folded by `| 0x20`, which maps nothing else onto
/// `a..=z`), `_` and `~`.
///
/// Signed comparisons, which SSE2 has (`pcmpgtb`), so the vectorised scan needs no unsigned
/// emulation; bytes from `0x80` are negative and fail every range.
#[inline]
#[allow(clippy::cast_possible_wrap)]
const fn is_b64_char(b: u8) -> bool {
    let x = b as i8;
    let folded = (b | 0x20) as i8;
    ((x > 0x2C) & (x < 0x3A))
        | ((folded > 0x60) & (folded < 0x7B))
        | (x == 0x2B)
        | (x == 0x5F)
        | (x == 0x7E)
}

/// Whether the query has a parameter named `access_token` (RFC 6750 §2.3), percent-encoded or
/// not, with or without a value.
fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        is_access_token_name(name.as_bytes())
    })
}

fn is_access_token_name(name: &[u8]) -> bool {
    const NAME: &[u8] = b"access_token";
    if name == NAME {
        return true;
    }
    if !name.contains(&b'%') {
        return false;
    }
    // Decode %XX on the fly and compare.
    let mut decoded = NAME.iter();
    let mut i = 0;
    while i < name.len() {
        let byte = match name[i] {
            b'%' => match (hex(name.get(i + 1)), hex(name.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    i += 3;
                    hi << 4 | lo
                }
                _ => {
                    i += 1;
                    b'%'
                }
            },
            b => {
                i += 1;
                b
            }
        };
        if decoded.next() != Some(&byte) {
            return false;
        }
    }
    decoded.next().is_none()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(value: &str) -> Result<&str, BearerErrorKind> {
        parse_authorization(value.as_bytes(), false).map(|(token, _)| token)
    }

    #[test]
    fn the_dpop_scheme_only_when_accepted() {
        assert_eq!(
            parse_authorization(b"DPoP abc", true),
            Ok(("abc", Scheme::Dpop))
        );
        assert_eq!(
            parse_authorization(b"dpop abc", true),
            Ok(("abc", Scheme::Dpop))
        );
        assert_eq!(
            parse_authorization(b"Bearer abc", true),
            Ok(("abc", Scheme::Bearer))
        );
        assert_eq!(
            parse_authorization(b"DPoP abc", false),
            Err(BearerErrorKind::InvalidRequest(
                InvalidRequestKind::UnsupportedScheme
            ))
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_runs_are_tolerated() {
        assert_eq!(kind("Bearer abc"), Ok("abc"));
        assert_eq!(kind("bearer abc"), Ok("abc"));
        assert_eq!(kind("BEARER abc"), Ok("abc"));
        assert_eq!(kind("Bearer \t  abc  "), Ok("abc"));
        assert_eq!(kind("  Bearer abc"), Ok("abc"));
    }

    #[test]
    fn b64token_allows_its_alphabet_and_trailing_padding_only() {
        assert_eq!(kind("Bearer aZ09-._~+/=="), Ok("aZ09-._~+/=="));
        let long = "a".repeat(100) + "/" + &"B".repeat(100);
        assert_eq!(kind(&format!("Bearer {long}")), Ok(long.as_str()));
        for bad in [
            "Bearer a b",
            "Bearer a=b",
            "Bearer ===",
            "Bearer a,b",
            "Bearer \"abc\"",
            "Bearer a@b",
            "Bearer a[b",
            "Bearer a{b",
            "Bearer a`b",
        ] {
            assert_eq!(
                kind(bad),
                Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed)),
                "{bad}"
            );
        }
        assert_eq!(
            parse_authorization(b"Bearer a\xC3\xA9b", false).map(|(t, _)| t),
            Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
        );
        // A bad byte deep inside a long token (past the first vector chunk) is found too.
        let mut long = "a".repeat(70);
        long.push('!');
        assert!(kind(&format!("Bearer {long}")).is_err());
    }

    /// The block check (full blocks and the padded last block) against the grammar, byte by byte.
    #[test]
    fn b64token_matches_the_grammar_for_every_byte_and_position() {
        let reference = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        for b in 0..=255u8 {
            for len in [1usize, 2, 63, 64, 65, 127, 128, 129, 200] {
                for at in [0, 1, len / 2, len.saturating_sub(2), len - 1] {
                    if at >= len {
                        continue;
                    }
                    let mut token = vec![b'x'; len];
                    token[at] = b;
                    let want = reference(b) || (b == b'=' && at == len - 1 && len > 1);
                    assert_eq!(is_b64token(&token), want, "{b:#04x} at {at}/{len}");
                    token.extend_from_slice(b"==");
                    let want = reference(b) || (b == b'=' && at == len - 1 && len > 1);
                    assert_eq!(is_b64token(&token), want, "{b:#04x} at {at}/{len} + ==");
                }
            }
        }
    }

    #[test]
    fn b64_alphabet_matches_rfc6750_for_every_byte() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64_char(b), expected, "{b:#04x}");
        }
    }

    #[test]
    fn oversized_tokens_are_malformed_without_reaching_the_verifier() {
        let token = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            kind(&format!("Bearer {token}")),
            Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
        );
    }

    #[test]
    fn empty_credentials_and_other_schemes_are_invalid_requests() {
        let empty = Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
        assert_eq!(kind(""), empty);
        assert_eq!(kind("Bearer"), empty);
        assert_eq!(kind("Bearer   "), empty);
        let scheme = Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::UnsupportedScheme,
        ));
        assert_eq!(kind("Basic dXNlcjpwYXNz"), scheme);
        assert_eq!(kind("Bearerabc"), scheme);
        assert_eq!(kind("Bearer:abc"), scheme);
        assert_eq!(kind("DPoP abc"), scheme);
    }

    #[test]
    fn access_token_query_parameter_is_found_in_any_position_and_encoding() {
        for q in [
            "access_token=x",
            "a=1&access_token=x",
            "access_token",
            "access_token=",
            "a=1&access%5Ftoken=x",
            "%61ccess_token=x",
            "access_toke%6E=x",
        ] {
            assert!(has_access_token_param(q), "{q}");
        }
        for q in [
            "",
            "a=access_token",
            "access_tokens=x",
            "xaccess_token=x",
            "access+token=x",
            "access%5",
            "access_token%",
            "%",
        ] {
            assert!(!has_access_token_param(q), "{q}");
        }
    }
}
