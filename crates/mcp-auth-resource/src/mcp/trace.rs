//! [`ScopeSpan`]: the tool-scope layer's span, one per request, that costs nothing when its level
//! is off.
//!
//! With feature `tracing`, every request the layer sees gets a `DEBUG` span named `mcp_auth.tool_scopes`
//! (target `mcp_auth_resource::mcp::trace`), entered while the layer reads the body and while the
//! inner service runs. Its fields:
//!
//! | field | value |
//! | --- | --- |
//! | `decision` | `allow` (passed on), `challenge` (401 or 403 with a `WWW-Authenticate` step-up challenge), `deny` (400 header mismatch or unreadable body, 408, 413) |
//! | `calls` | the number of `tools/call` messages in the body (absent when it was not read) |
//! | `required` | the scopes the body needed (absent when none or not read) |
//!
//! Like the bearer layer's `mcp_auth.bearer` span, it is built only when a subscriber wants it.

use mcp_auth_core::ScopeSet;

/// The tool-scope layer's per-request span (a no-op without feature `tracing`).
#[derive(Debug)]
pub(super) struct ScopeSpan {
    /// `None` when no subscriber wants the span. Boxed: 8 bytes instead of 40 in every future
    /// of the stack that holds it (each layer's future is copied as the next one wraps it), and
    /// a span that is recorded allocates anyway.
    #[cfg(feature = "tracing")]
    span: Option<Box<tracing::Span>>,
}

impl ScopeSpan {
    /// A new `mcp_auth.tool_scopes` span if a subscriber wants `DEBUG` here.
    #[inline]
    pub(super) fn new() -> Self {
        #[cfg(feature = "tracing")]
        {
            use tracing::{Level, level_filters::LevelFilter};
            let wanted = Level::DEBUG <= tracing::level_filters::STATIC_MAX_LEVEL
                && Level::DEBUG <= LevelFilter::current();
            let span = wanted
                .then(|| {
                    tracing::debug_span!(
                        "mcp_auth.tool_scopes",
                        decision = tracing::field::Empty,
                        calls = tracing::field::Empty,
                        required = tracing::field::Empty,
                    )
                })
                .filter(|span| !span.is_disabled())
                .map(Box::new);
            Self { span }
        }
        #[cfg(not(feature = "tracing"))]
        Self {}
    }

    /// Enters the span (if there is one) until the guard is dropped.
    #[inline]
    pub(super) fn enter(&self) -> impl Sized + '_ {
        #[cfg(feature = "tracing")]
        return self.span.as_deref().map(tracing::Span::enter);
        #[cfg(not(feature = "tracing"))]
        ()
    }

    /// Records the decision, and what the body asked for when it was read.
    #[inline]
    pub(super) fn record(&self, decision: &'static str, body: Option<(usize, &ScopeSet)>) {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            span.record("decision", decision);
            if let Some((calls, required)) = body {
                span.record("calls", calls);
                if !required.is_empty() {
                    span.record("required", tracing::field::display(required));
                }
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (decision, body);
    }
}
