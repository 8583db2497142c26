//! [`ResponseFuture`]: reads the body, decides, then runs the inner service.

use std::{
    fmt,
    future::Future,
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, Response, request::Parts};
use http_body::Body;
use mcp_auth_core::ScopeSet;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::{
    RejectionBody, ToolScopesBody, ToolScopesRejectionKind, classify, header_mismatch, headers,
    layer::Config, rejection, scan, trace::ScopeSpan,
};
use crate::AuthInfo;

/// The first allocation for a body that comes in more than one frame; it grows as frames
/// arrive, up to the limit. A body of one frame (the usual JSON-RPC message) is kept as it came,
/// without a copy.
const INITIAL_CAPACITY: usize = 16 * 1024;

pin_project! {
    /// Response future of [`ToolScopes`](super::ToolScopes).
    ///
    /// It reads the `POST` body (bounded in size and time), checks the MCP 2026-07-28 request
    /// headers against it, classifies it, and then either resolves to a rejection or runs the
    /// inner service's future.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<ToolScopesBody<B>>>,
    {
        #[pin]
        state: State<S, B>,
        span: ScopeSpan,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<ToolScopesBody<B>>>,
    {
        Reading {
            #[pin]
            body: B,
            // Boxed: made only when the body makes the layer wait, and a `Sleep` inline would
            // make every future of the stack larger, to be copied each time one wraps it.
            deadline: Option<Pin<Box<Sleep>>>,
            read: Option<Read<S, B>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

/// What the reading state owns until the body is complete.
struct Read<S, B> {
    /// The request's head, with an empty body until the read one replaces it: kept whole, so
    /// that deciding does not copy the head out of the future and again into a new request.
    request: Option<Request<ToolScopesBody<B>>>,
    inner: S,
    config: Arc<Config>,
    buf: Buffer,
    /// Boxed, as in [`ToolScopesBody`]: rare, and large inline.
    trailers: Option<Box<HeaderMap>>,
}

/// The body read so far.
#[derive(Default)]
enum Buffer {
    #[default]
    Empty,
    /// One frame, as it came (no copy).
    One(Bytes),
    /// Several frames, copied together.
    Many(BytesMut),
}

impl Buffer {
    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(bytes) => bytes.len(),
            Self::Many(buf) => buf.len(),
        }
    }

    fn push(&mut self, mut data: impl Buf, max: usize) {
        match self {
            Self::Empty => *self = Self::One(data.copy_to_bytes(data.remaining())),
            Self::One(first) => {
                let len = first.len() + data.remaining();
                let mut buf = BytesMut::with_capacity(len.max(max.min(INITIAL_CAPACITY)));
                buf.put(first);
                buf.put(data);
                *self = Self::Many(buf);
            }
            Self::Many(buf) => buf.put(data),
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(bytes) => bytes,
            Self::Many(buf) => buf.freeze(),
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<ToolScopesBody<B>>>,
{
    pub(super) fn call(future: S::Future, span: ScopeSpan) -> Self {
        Self {
            state: State::Calling { future },
            span,
        }
    }

    pub(super) fn rejected(response: S::Response, span: ScopeSpan) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            span,
        }
    }

    pub(super) fn read(
        parts: Parts,
        body: B,
        inner: S,
        config: Arc<Config>,
        span: ScopeSpan,
    ) -> Self {
        Self {
            state: State::Reading {
                body,
                deadline: None,
                read: Some(Read {
                    request: Some(Request::from_parts(
                        parts,
                        ToolScopesBody::replay(Bytes::new(), None),
                    )),
                    inner,
                    config,
                    buf: Buffer::Empty,
                    trailers: None,
                }),
            },
            span,
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<ToolScopesBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Reading { .. } => "Reading",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<ToolScopesBody<B>>, Response = Response<ResBody>>,
    B: Body,
    ResBody: RejectionBody,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span = &*this.span;
        let _entered = span.enter();
        let mut state = this.state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    #[expect(
                        clippy::expect_used,
                        reason = "a future polled after completion is a caller bug, as in tower-http"
                    )]
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Reading {
                    body,
                    deadline,
                    read,
                } => {
                    let outcome = ready!(poll_body(body, deadline, read.as_mut(), cx));
                    #[expect(
                        clippy::expect_used,
                        reason = "`read` is set for as long as the state is `Reading`"
                    )]
                    let read = read
                        .as_mut()
                        .expect("ResponseFuture polled after completion");
                    match outcome {
                        // Decided in place: the state changes right after, dropping `read`.
                        Ok(()) => decide(read, span),
                        Err(kind) => {
                            span.record("deny", None);
                            #[cfg(feature = "tracing")]
                            tracing::debug!(reason = ?kind, "request body refused before classification");
                            State::Rejected {
                                response: Some(rejection(
                                    &read.config.resource,
                                    kind,
                                    None,
                                    ScopeSet::new(),
                                    None,
                                )),
                            }
                        }
                    }
                }
            };
            state.set(next);
        }
    }
}

/// Reads frames until the body ends (`Ok`), or fails, overflows or times out (`Err`).
fn poll_body<S, B: Body>(
    mut body: Pin<&mut B>,
    deadline: &mut Option<Pin<Box<Sleep>>>,
    read: Option<&mut Read<S, B>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), ToolScopesRejectionKind>> {
    let Some(read) = read else {
        // Unreachable: the state changes as soon as `read` is taken. Fail closed anyway.
        return Poll::Ready(Err(ToolScopesRejectionKind::BodyReadFailed));
    };
    loop {
        match body.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let max = read.config.max_body_size;
                    if read.buf.len().saturating_add(data.remaining()) > max {
                        return Poll::Ready(Err(ToolScopesRejectionKind::BodyTooLarge));
                    }
                    if data.has_remaining() {
                        read.buf.push(data, max);
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        read.trailers
                            .get_or_insert_with(Box::default)
                            .extend(trailers);
                    }
                }
            },
            Poll::Ready(Some(Err(_))) => {
                return Poll::Ready(Err(ToolScopesRejectionKind::BodyReadFailed));
            }
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Pending => {
                // The timer starts the first time the body makes the layer wait: a body that is
                // all there at once (the usual request) reads no clock and makes no timer.
                // Without a Tokio runtime there is no timer to register with; see
                // `body_timeout`.
                if deadline.is_none() && tokio::runtime::Handle::try_current().is_ok() {
                    let timeout: Duration = read.config.body_timeout;
                    *deadline = Some(Box::pin(tokio::time::sleep(timeout)));
                }
                if let Some(deadline) = deadline
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(ToolScopesRejectionKind::BodyTimeout));
                }
                return Poll::Pending;
            }
        }
    }
}

/// Rules 3 to 9: check the headers against the body, classify it, check the caller's scopes,
/// and either call the inner service with the body replayed or reject.
///
/// Works on the reading state in place (the caller leaves that state right after): only the
/// request is taken out of it, whole, not the state itself.
fn decide<S, B, ResBody>(read: &mut Read<S, B>, span: &ScopeSpan) -> State<S, B>
where
    S: Service<Request<ToolScopesBody<B>>, Response = Response<ResBody>>,
    ResBody: RejectionBody,
{
    let Read {
        request: slot,
        inner,
        config,
        buf,
        trailers,
    } = read;
    let Some(mut request) = slot.take() else {
        // Unreachable: the request is taken only on the way out of the reading state.
        return State::Rejected {
            response: Some(rejection(
                &config.resource,
                ToolScopesRejectionKind::BodyReadFailed,
                None,
                ScopeSet::new(),
                None,
            )),
        };
    };
    let body = mem::take(buf).freeze();
    let mut parsed = classify::Parsed::Invalid;
    scan::parse_into(&body, &mut parsed);

    // Rule 3: the headers must agree with the body before anything else looks at either.
    if let Err(kind) = headers::check(request.headers(), &parsed) {
        #[cfg(feature = "tracing")]
        tracing::debug!(reason = ?kind, "MCP request headers do not match the body; answered 400");
        span.record("deny", None);
        let id = match &parsed {
            classify::Parsed::Single(message) => &message.id,
            _ => &classify::Id::Null,
        };
        return State::Rejected {
            response: Some(header_mismatch(kind, headers::error_body(kind, id))),
        };
    }

    let required = config.required_scopes(&parsed);

    let refusal = if required.scopes.is_empty() {
        None
    } else {
        match request.extensions().get::<AuthInfo>() {
            None => Some((ToolScopesRejectionKind::MissingToken, None)),
            Some(info) if info.scopes().contains_all(&required.scopes) => None,
            Some(info) => Some((
                ToolScopesRejectionKind::InsufficientScope,
                Some(info.scopes()),
            )),
        }
    };

    match refusal {
        None => {
            #[cfg(feature = "tracing")]
            tracing::trace!(
                calls = required.calls,
                required = %required.scopes,
                ambiguous = required.ambiguous,
                "tool scopes satisfied"
            );
            span.record("allow", Some((required.calls, &*required.scopes)));
            *request.body_mut() = ToolScopesBody::replay(body, trailers.take());
            State::Calling {
                future: inner.call(request),
            }
        }
        Some((kind, granted)) => {
            span.record("challenge", Some((required.calls, &*required.scopes)));
            #[cfg(feature = "tracing")]
            if kind == ToolScopesRejectionKind::MissingToken
                && request.extensions().get::<crate::Anonymous>().is_none()
            {
                tracing::warn!(
                    "a tool call needs scopes but the request has neither AuthInfo nor the Anonymous \
                     marker: is BearerAuthLayer installed outside ToolScopesLayer?"
                );
            }
            #[cfg(feature = "tracing")]
            tracing::debug!(
                reason = ?kind,
                calls = required.calls,
                required = %required.scopes,
                ambiguous = required.ambiguous,
                "tool call refused"
            );
            State::Rejected {
                response: Some(rejection(
                    config
                        .resource
                        .as_addressed(request.uri(), request.headers()),
                    kind,
                    granted,
                    required.scopes.into_owned(),
                    crate::bearer::LayerContext::of(request.extensions()),
                )),
            }
        }
    }
}
