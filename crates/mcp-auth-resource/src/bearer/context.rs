//! The bearer layer's authentication context: its [`Config`] (what every service of one layer
//! shares), the [`LayerContext`] and [`Anonymous`] markers it leaves in the request extensions,
//! and its decisions as methods of the `Config` (as tower-http's `Csrf` has them on its
//! service): [`admit`](Config::admit) applies a verifier's answer to the request,
//! [`error_for`](Config::error_for) builds the rejection (with its challenges) for a request
//! refused before or without the verifier. The service and its future both stand on this module.

use std::{sync::Arc, time::Duration};

use http::{Request, Response};
use mcp_auth_core::{ScopeSet, error::ErrorCode};

use super::{
    BearerError, BearerErrorKind, DpopRejection, ResponseForBearerError, trace::RequestSpan,
};
use crate::{AuthInfo, ProtectedResource, VerifyError, challenge};

/// What every [`BearerAuth`](super::BearerAuth) built from one layer shares. The layer also puts it (one `Arc`) into
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
    pub(crate) dpop: Option<Arc<crate::DpopConfig>>,
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

impl Config {
    /// Applies a verifier's answer to the request: on success, checks the layer's scope floor and
    /// inserts the [`AuthInfo`] (which carries the layer context) and, when the layer asks for it,
    /// its [`Subject`](mcp_auth_core::Subject) into the extensions. A refusal comes back with the token's `AuthInfo` when it was valid (for the
    /// span).
    pub(super) fn admit<B>(
        self: &Arc<Self>,
        req: &mut Request<B>,
        result: Result<AuthInfo, VerifyError>,
        binding: &Binding,
        span: &RequestSpan,
    ) -> Result<(), (BearerError, Option<AuthInfo>)> {
        let config = self;
        let used_dpop = !matches!(binding, Binding::Bearer);
        match result {
            Ok(info) => {
                if let Err(rejection) = check_binding(config, binding, &info) {
                    let error = config.error_for(BearerErrorKind::Dpop(rejection), used_dpop);
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
                let error = config.error_for(BearerErrorKind::InvalidToken(err.kind()), used_dpop);
                Err((error, None))
            }
        }
    }

    /// The error, with its challenges, for a rejection decided before or without the verifier.
    /// `used_dpop`: the request came with the `DPoP` scheme.
    pub(super) fn error_for(&self, kind: BearerErrorKind, used_dpop: bool) -> BearerError {
        let config = self;
        let resource = &config.resource;
        let challenge = match kind {
            BearerErrorKind::MissingToken => Some(resource.missing_token_challenge().clone()),
            BearerErrorKind::InvalidRequest(k) => Some(challenge::error(
                resource.metadata_url(),
                ErrorCode::InvalidRequest,
                k.description(),
            )),
            BearerErrorKind::InvalidToken(k) => Some(challenge::error(
                resource.metadata_url(),
                ErrorCode::InvalidToken,
                k.description(),
            )),
            BearerErrorKind::InsufficientScope => {
                Some(config.insufficient_scope_challenge(&ScopeSet::new(), &ScopeSet::new()))
            }
            BearerErrorKind::Dpop(rejection) if kind.status().as_u16() == 401 => {
                Some(challenge::error(
                    resource.metadata_url(),
                    rejection.error_code(),
                    rejection.description(),
                ))
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

/// Adds the `DPoP` challenge (and a fresh `DPoP-Nonce` to a 401) when the layer accepts DPoP.
///
/// An error about a DPoP request or a DPoP binding, and every error when DPoP is required, is
/// told in the `DPoP` challenge (the parameters of the `Bearer` one, plus `algs`); the `Bearer`
/// challenge then stays bare (`resource_metadata`, `scope`), or is left out when DPoP is
/// required. Otherwise the `Bearer` challenge is unchanged and the `DPoP` one only says `algs`.
#[cfg(feature = "dpop")]
fn with_dpop_challenge(config: &Config, error: BearerError, used_dpop: bool) -> BearerError {
    let Some(dpop) = &config.dpop else {
        return error;
    };
    let status = error.status();
    if status == http::StatusCode::SERVICE_UNAVAILABLE {
        return error;
    }
    let kind = error.kind();
    let carry = used_dpop || dpop.required || matches!(kind, BearerErrorKind::Dpop(_));
    let dpop_challenge = challenge::dpop(
        error.challenge(),
        carry,
        config.resource.metadata_url(),
        dpop.algs.as_str(),
    );
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
    BearerError::new(kind, bearer, error.retry_after()).with_dpop(dpop_challenge, nonce)
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

/// Marks a request without credentials that an [`optional`](crate::BearerAuthLayer::optional) layer let
/// through. The layer inserts it into the request extensions instead of an
/// [`AuthInfo`](crate::AuthInfo).
///
/// Read it with `request.extensions().get::<Anonymous>()`, or with `Option<Auth>` (feature `axum`),
/// which gives `None` for such a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Anonymous;
