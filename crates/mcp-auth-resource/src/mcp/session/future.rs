//! [`ResponseFuture`]: the inner service's future, then the bookkeeping on its response.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{
    response_session_id,
    store::{Bind, Digest, SessionKey, Shared},
};

pin_project! {
    /// Response future of [`SessionBinding`](super::SessionBinding): a ready `404` (or `400`)
    /// rejection, or the inner service's future, whose successful response then records or
    /// forgets the session's binding.
    pub struct ResponseFuture<F, B> {
        // Beside `then` rather than in an enum with it: the inner future (often large) is then
        // written straight into this one instead of being built aside and copied.
        #[pin]
        future: Option<F>,
        then: Then<B>,
    }
}

/// What follows the inner future, or stands for it.
enum Then<B> {
    /// The bookkeeping on the inner service's response.
    Record(After),
    /// A rejection, without an inner future.
    Reject(Response<B>),
    /// Done.
    Done,
}

/// What to record once the inner service has answered.
pub(super) struct After {
    pub(super) shared: Arc<Shared>,
    /// The caller; `None` when anonymous.
    pub(super) owner: Option<Digest>,
    /// The request's session, and whether it was unknown to the store (trust on first use).
    pub(super) session: Option<(SessionKey, bool)>,
    pub(super) delete: bool,
}

impl After {
    fn finish<B>(self, response: &Response<B>) {
        if !response.status().is_success() {
            return;
        }
        let Self {
            shared,
            owner,
            session,
            delete,
        } = self;
        let settings = &shared.settings;
        if delete {
            if let Some((key, _)) = session
                && shared.with_store(|store| store.remove(&key))
            {
                #[cfg(feature = "tracing")]
                tracing::debug!("MCP session deleted; binding forgotten");
            }
            return;
        }
        let Some(owner) = owner else {
            return;
        };
        // A session id the server issued (initialize) or rotated to.
        let issued = response_session_id(response.headers())
            .ok()
            .flatten()
            .filter(|key| session.is_none_or(|(requested, _)| requested != *key));
        let tofu = session.and_then(|(key, unknown)| unknown.then_some(key));
        if tofu.is_none() && issued.is_none() {
            // Nothing to bind (an allowed request on a known session): no clock read.
            return;
        }
        let now = settings.clock.now_upper_bound();
        for key in tofu.into_iter().chain(issued) {
            let outcome = shared.with_store(|store| {
                store.bind(key, owner, now, settings.idle_ttl, settings.capacity)
            });
            #[cfg(feature = "tracing")]
            match outcome {
                Bind::New => tracing::debug!("MCP session bound to its owner"),
                Bind::Same => {}
                Bind::Conflict => tracing::warn!(
                    "MCP session already bound to another owner; the binding was kept"
                ),
            }
            #[cfg(not(feature = "tracing"))]
            let _: Bind = outcome;
        }
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn future(future: F, after: After) -> Self {
        Self {
            future: Some(future),
            then: Then::Record(after),
        }
    }

    pub(super) fn rejected(response: Response<B>) -> Self {
        Self {
            future: None,
            then: Then::Reject(response),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.future.is_some() {
            "Future"
        } else {
            "Rejected"
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.future.as_pin_mut() {
            Some(future) => {
                let result = ready!(future.poll(cx));
                if let (Ok(response), Then::Record(after)) =
                    (&result, std::mem::replace(this.then, Then::Done))
                {
                    after.finish(response);
                }
                Poll::Ready(result)
            }
            None => {
                let response = match std::mem::replace(this.then, Then::Done) {
                    Then::Reject(response) => Some(response),
                    Then::Record(_) | Then::Done => None,
                };
                #[expect(
                    clippy::expect_used,
                    reason = "a future polled after completion is a caller bug, as in tower-http"
                )]
                let response = response.expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(response))
            }
        }
    }
}
