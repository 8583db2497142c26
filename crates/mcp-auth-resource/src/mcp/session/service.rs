//! [`SessionBinding`]: the service.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Method, Request, Response};
use tower_service::Service;

use super::future::After;
use super::{
    MCP_SESSION_ID, ResponseFuture, SessionBindingLayer, SessionBindingRejectionKind, owner_of,
    rejection, session_id,
    store::{Check, Shared},
};
use crate::mcp::headers::{Era, McpHeaders};

/// Checks that the caller of an MCP session is the user who created it.
///
/// Built by [`SessionBindingLayer`]. A request on a session bound to someone else gets
/// `404 Not Found` with an empty `ResBody::default()` body and is never passed to the inner
/// service; rejections are responses, never errors: `Error = S::Error`. `poll_ready` delegates to
/// the inner service. An MCP 2026-07-28 request has no session: it passes, and any
/// `Mcp-Session-Id` it carries is removed, never checked nor passed on (see the
/// [module docs](crate::mcp::session#mcp-2026-07-28-no-sessions)).
///
/// See the [module docs](crate::mcp::session) for the rules and an example.
#[derive(Debug, Clone)]
pub struct SessionBinding<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SessionBinding<S> {
    /// A [`SessionBindingLayer`] with the default settings; same as [`SessionBindingLayer::new`].
    pub fn layer() -> SessionBindingLayer {
        SessionBindingLayer::new()
    }

    pub(super) fn from_layer(inner: S, layer: &SessionBindingLayer) -> Self {
        Self {
            inner,
            shared: Arc::clone(&layer.shared),
        }
    }

    /// How many sessions are bound right now, in the store shared with the layer.
    #[must_use]
    pub fn bound_sessions(&self) -> usize {
        self.shared.bound_sessions()
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBinding<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let owner = owner_of(req.extensions());
        // One pass over the headers for the era and the session id.
        let found = McpHeaders::of(req.headers());
        let session = match found.era() {
            Era::Legacy => Some(session_id(found.session)),
            Era::Modern => None,
        };
        let Some(session) = session else {
            // Rule 7: no sessions in 2026-07-28. A stale session id is neither a credential nor
            // an error; removing it keeps a dual-era server from reading it as one.
            if req.headers_mut().remove(MCP_SESSION_ID).is_some() {
                #[cfg(feature = "tracing")]
                tracing::debug!("Mcp-Session-Id on a 2026-07-28 request ignored and removed");
            }
            let after = After {
                shared: Arc::clone(&self.shared),
                owner,
                session: None,
                delete: req.method() == Method::DELETE,
            };
            return ResponseFuture::future(self.inner.call(req), after);
        };
        let Ok(session) = session else {
            #[cfg(feature = "tracing")]
            tracing::warn!("request refused: more than one Mcp-Session-Id header");
            return ResponseFuture::rejected(rejection(
                SessionBindingRejectionKind::MultipleSessionIds,
            ));
        };

        let mut unknown = false;
        if let Some(session) = &session {
            let settings = &self.shared.settings;
            let now = settings.clock.now_upper_bound();
            let check = self
                .shared
                .with_store(|store| store.check(session, owner.as_ref(), now, settings.idle_ttl));
            if check == Check::Refused {
                let kind = if owner.is_some() {
                    SessionBindingRejectionKind::OwnerMismatch
                } else {
                    SessionBindingRejectionKind::Anonymous
                };
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    reason = ?kind,
                    caller = %super::log_prefix(super::caller_name(req.extensions())),
                    session = %super::log_prefix(
                        req.headers()
                            .get(MCP_SESSION_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("<non-ascii>")
                    ),
                    "MCP session used by someone other than its owner; answered 404"
                );
                return ResponseFuture::rejected(rejection(kind));
            }
            unknown = check == Check::Unknown;
        }

        let after = After {
            shared: Arc::clone(&self.shared),
            owner,
            session: session.map(|key| (key, unknown)),
            delete: req.method() == Method::DELETE,
        };
        ResponseFuture::future(self.inner.call(req), after)
    }
}
