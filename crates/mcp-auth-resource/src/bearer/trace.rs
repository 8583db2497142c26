//! [`RequestSpan`]: the bearer layer's span, one per request, that costs nothing when its level
//! is off.
//!
//! With feature `tracing`, every request the layer sees gets a `DEBUG` span named `mcp_auth.bearer`
//! (target `mcp_auth_resource::bearer::trace`); the layer's own events and the inner service's
//! work run inside it. Its fields are stable:
//!
//! | field | value |
//! | --- | --- |
//! | `decision` | `allow` (the inner service was called, anonymous requests included), `challenge` (401 or 403 with a `WWW-Authenticate` challenge: the client can sign in or step up), `deny` (any other refusal: 400 malformed request, 503 verifier unavailable) |
//! | `cache` | `hit` (a token cache answered) or `miss` (the verifier ran); absent without a token |
//! | `verify_us` | on a miss, the verifier's latency in microseconds |
//! | `client_id` | the token's client id |
//! | `sub_hash` | [`AuthInfo::subject_hash`]: a short hash of the subject, computed once per verified token; never the subject or the token |
//!
//! The span is built, and its fields computed and recorded, only when a subscriber wants it: with
//! the level off (or no subscriber) the hot path pays one check of the level filter, and no span
//! is created, cloned, entered or dropped.

use std::time::Duration;

use super::BearerError;
use crate::AuthInfo;

/// The bearer layer's per-request span (a no-op without feature `tracing`).
#[derive(Debug, Clone)]
pub(super) struct RequestSpan {
    /// `None` when no subscriber wants the span. Boxed: 8 bytes instead of 40 in every future
    /// of the stack that holds it (each layer's future is copied as the next one wraps it), and
    /// a span that is recorded allocates anyway.
    #[cfg(feature = "tracing")]
    span: Option<Box<tracing::Span>>,
}

impl RequestSpan {
    /// A new `mcp_auth.bearer` span, disabled unless a subscriber wants `DEBUG` here.
    #[inline]
    pub(super) fn new() -> Self {
        #[cfg(feature = "tracing")]
        {
            use tracing::{Level, level_filters::LevelFilter};
            // The level check first: a disabled span would still be created, cloned and
            // dropped (and, with tracing's `log` feature, logged about) on every request.
            let wanted = Level::DEBUG <= tracing::level_filters::STATIC_MAX_LEVEL
                && Level::DEBUG <= LevelFilter::current();
            let span = wanted
                .then(|| {
                    tracing::debug_span!(
                        "mcp_auth.bearer",
                        decision = tracing::field::Empty,
                        cache = tracing::field::Empty,
                        verify_us = tracing::field::Empty,
                        client_id = tracing::field::Empty,
                        sub_hash = tracing::field::Empty,
                    )
                })
                .filter(|span| !span.is_disabled())
                .map(Box::new);
            Self { span }
        }
        #[cfg(not(feature = "tracing"))]
        Self {}
    }

    /// Whether a subscriber records this span: only then are fields computed.
    #[inline]
    pub(super) fn is_enabled(&self) -> bool {
        #[cfg(feature = "tracing")]
        return self.span.is_some();
        #[cfg(not(feature = "tracing"))]
        false
    }

    /// Enters the span (if there is one) until the guard is dropped.
    #[inline]
    pub(super) fn enter(&self) -> impl Sized + '_ {
        #[cfg(feature = "tracing")]
        return self.span.as_deref().map(tracing::Span::enter);
        #[cfg(not(feature = "tracing"))]
        ()
    }

    /// The layer's own hot-path field: whether a cache answered, and the verifier's latency on a
    /// miss.
    #[inline]
    pub(super) fn record_cache(&self, hit: bool, verify: Option<Duration>) {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            span.record("cache", if hit { "hit" } else { "miss" });
            if let Some(elapsed) = verify {
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                span.record("verify_us", micros);
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (hit, verify);
    }

    /// The request goes on to the inner service, as `info` (or anonymous, `None`).
    #[inline]
    pub(super) fn record_allow(&self, info: Option<&AuthInfo>) {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            span.record("decision", "allow");
            if let Some(info) = info {
                record_caller(span, info);
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = info;
    }

    /// The layer answers itself with `error`.
    #[inline]
    pub(super) fn record_refusal(&self, error: &BearerError, info: Option<&AuthInfo>) {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            let status = error.status();
            let challenged = (status == http::StatusCode::UNAUTHORIZED
                || status == http::StatusCode::FORBIDDEN)
                && (error.challenge().is_some() || error.dpop_challenge().is_some());
            span.record("decision", if challenged { "challenge" } else { "deny" });
            if let Some(info) = info {
                record_caller(span, info);
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (error, info);
    }

    /// Whether the last [`TokenVerifier::verify_cached`](crate::TokenVerifier::verify_cached)
    /// on this thread was answered by a token cache (cleared by reading it).
    #[inline]
    pub(super) fn take_cache_hit(&self) -> bool {
        #[cfg(feature = "tracing")]
        if self.is_enabled() {
            return crate::verify::cache::take_hit();
        }
        false
    }
}

/// `client_id` and `sub_hash` of the token.
#[cfg(feature = "tracing")]
fn record_caller(span: &tracing::Span, info: &AuthInfo) {
    if let Some(client_id) = info.client_id() {
        span.record("client_id", client_id);
    }
    if let Some(sub_hash) = info.subject_hash() {
        span.record("sub_hash", sub_hash);
    }
}
