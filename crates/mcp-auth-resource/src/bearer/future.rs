//! [`ResponseFuture`]: the response future of [`BearerAuth`](super::BearerAuth).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{
    DefaultRejection, ResponseForBearerError,
    context::{Binding, Config, reject},
    trace::RequestSpan,
};
use crate::{AuthInfo, VerifyError};

/// The boxed future of an asynchronous verification. It owns the token (zeroized on drop).
pub(super) type VerifyFuture = Pin<Box<dyn Future<Output = Result<AuthInfo, VerifyError>> + Send>>;

/// What the future needs once verification finishes.
pub(super) struct Pending<S, ReqBody, R> {
    pub(super) inner: S,
    pub(super) request: Request<ReqBody>,
    pub(super) config: Arc<Config>,
    pub(super) rejection: R,
    /// What the request proved about the token's key (checked against `cnf.jkt`).
    pub(super) binding: Binding,
}

pin_project! {
    /// Response future of [`BearerAuth`](super::BearerAuth).
    ///
    /// It is `Send` when the inner service, its future, the request body and the rejection
    /// builder are. It is not `Sync`: the verifier's future need not be. Each poll runs inside
    /// the request's `mcp_auth.bearer` span (feature `tracing`).
    pub struct ResponseFuture<S, ReqBody, R = DefaultRejection>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, R>,
        span: RequestSpan,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        // Waiting for the verifier; the inner service that was made ready waits with the request.
        // Boxed (this state is the slow path and allocates anyway), so the future the hot path
        // returns and moves is no larger than the inner service's own.
        Verifying {
            verify: VerifyFuture,
            pending: Option<Box<Pending<S, ReqBody, R>>>,
        },
        // The inner service is handling the request.
        Calling {
            #[pin]
            future: S::Future,
        },
        // Rejected; `None` once the response was returned.
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody, R> ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(super) const fn called(future: S::Future, span: RequestSpan) -> Self {
        Self {
            state: State::Calling { future },
            span,
        }
    }

    pub(super) const fn rejected(response: S::Response, span: RequestSpan) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            span,
        }
    }

    pub(super) fn verifying(
        verify: VerifyFuture,
        pending: Pending<S, ReqBody, R>,
        span: RequestSpan,
    ) -> Self {
        Self {
            state: State::Verifying {
                verify,
                pending: Some(Box::new(pending)),
            },
            span,
        }
    }
}

impl<S, ReqBody, ResBody, R> Future for ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: ResponseForBearerError<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span = &*this.span;
        let _entered = span.enter();
        let mut state = this.state;
        loop {
            match state.as_mut().project() {
                StateProj::Verifying { verify, pending } => {
                    let result = ready!(verify.as_mut().poll(cx));
                    let Some(Pending {
                        mut inner,
                        mut request,
                        config,
                        mut rejection,
                        binding,
                    }) = pending.take().map(|pending| *pending)
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    match config.admit(&mut request, result, &binding, span) {
                        Ok(()) => {
                            let future = inner.call(request);
                            state.set(State::Calling { future });
                        }
                        Err((error, info)) => {
                            let response =
                                reject(&mut rejection, &request, error, span, info.as_ref());
                            state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    let Some(response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

impl<S, ReqBody, R> fmt::Debug for ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Verifying { .. } => "Verifying",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
