//! One `INFO` span per request at every endpoint (`mcp_auth.token`, `mcp_auth.authorize`, …;
//! the table is in the README), with fields recorded as the request is decided: `client_id`,
//! `sub_hash` (never the subject itself), `grant_type`, `decision`, `error` (the OAuth error
//! code). Never a token, code, secret or verifier.
//!
//! Without the `tracing` feature every call here compiles to nothing; with it, a span that no
//! subscriber wants costs one interest check, and [`Trace::record_subject`] hashes only for an
//! enabled span.

use mcp_auth_core::error::ErrorCode;

/// A request's span (a no-op without the `tracing` feature).
#[derive(Debug, Clone)]
pub(crate) struct Trace(#[cfg(feature = "tracing")] pub(crate) tracing::Span);

/// `request_span!("mcp_auth.token", grant_type, client_id)`: an `INFO` span with these fields
/// (and `error`) empty, to be recorded later.
macro_rules! request_span {
    ($name:literal $(, $field:ident)* $(,)?) => {{
        #[cfg(feature = "tracing")]
        let trace = $crate::trace::Trace(::tracing::info_span!(
            $name,
            $($field = ::tracing::field::Empty,)*
            error = ::tracing::field::Empty,
        ));
        #[cfg(not(feature = "tracing"))]
        let trace = $crate::trace::Trace();
        trace
    }};
}
pub(crate) use request_span;

impl Trace {
    /// The span the current request runs in.
    pub(crate) fn current() -> Self {
        Self(
            #[cfg(feature = "tracing")]
            tracing::Span::current(),
        )
    }

    /// Run `future` inside the span.
    pub(crate) async fn instrument<F: Future>(&self, future: F) -> F::Output {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(future, self.0.clone()).await
        }
        #[cfg(not(feature = "tracing"))]
        {
            future.await
        }
    }

    /// Record a field (ignored when the span has no such field).
    #[allow(clippy::unused_self)]
    pub(crate) fn record(&self, _field: &'static str, _value: &str) {
        #[cfg(feature = "tracing")]
        self.0.record(_field, _value);
    }

    /// Record `error` as the OAuth error code.
    pub(crate) fn record_error(&self, code: &ErrorCode) {
        self.record("error", code.as_str());
    }

    /// Record `sub_hash`, the subject's [`SubjectHash`](mcp_auth_core::SubjectHash) (computed
    /// only when the span is enabled).
    #[allow(clippy::unused_self)]
    pub(crate) fn record_subject(&self, _subject: &str) {
        #[cfg(feature = "tracing")]
        if !self.0.is_disabled() {
            self.0.record(
                "sub_hash",
                tracing::field::display(mcp_auth_core::SubjectHash::of(_subject)),
            );
        }
    }
}
