//! [`ToolScopesBody`]: the request body the inner service receives.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The request body that [`ToolScopes`](super::ToolScopes) hands to the inner service.
    ///
    /// Either the original body, untouched and still streaming (requests that are not `POST`, or
    /// when no scope is configured), or the `POST` body that was read to classify it, replayed
    /// byte for byte with its trailers. Data chunks are [`Bytes`] (converted with
    /// [`Buf::copy_to_bytes`], which does not copy when the original chunks are `Bytes`); errors
    /// are the original body's.
    ///
    /// Any service that takes a generic `http_body::Body` with `Bytes` chunks accepts it, such as
    /// an axum `Router` (see the crate's `tool_scopes` tests).
    pub struct ToolScopesBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] body: B },
        // The trailers boxed: rare, and a `HeaderMap` inline would make every request larger.
        Buffered { data: Option<Bytes>, trailers: Option<Box<HeaderMap>> },
    }
}

impl<B> ToolScopesBody<B> {
    /// Wraps a body unchanged.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    /// A body that replays `data` and then `trailers`, as read (boxed).
    pub(super) fn replay(data: Bytes, trailers: Option<Box<HeaderMap>>) -> Self {
        Self {
            kind: Kind::Buffered {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }
}

impl<B> Body for ToolScopesBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Passthrough { body } => body.poll_frame(cx).map(|frame| {
                frame.map(|frame| frame.map(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining()))))
            }),
            KindProj::Buffered { data, trailers } => Poll::Ready(match data.take() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailers.take().map(|t| Ok(Frame::trailers(*t))),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { body } => body.size_hint(),
            Kind::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

impl<B> fmt::Debug for ToolScopesBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the content: bodies may carry secrets.
        match &self.kind {
            Kind::Passthrough { .. } => f.write_str("ToolScopesBody::Passthrough"),
            Kind::Buffered { data, trailers } => f
                .debug_struct("ToolScopesBody::Buffered")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .field("trailers", &trailers.is_some())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test]
    async fn buffered_body_replays_data_then_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-check", "1".parse().unwrap());
        let body = ToolScopesBody::<Full<Bytes>>::replay(
            Bytes::from_static(b"abc"),
            Some(Box::new(trailers.clone())),
        );
        assert_eq!(body.size_hint().exact(), Some(3));
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(collected.to_bytes(), "abc");
    }

    #[tokio::test]
    async fn empty_buffered_body_is_at_its_end() {
        let body = ToolScopesBody::<Full<Bytes>>::replay(Bytes::new(), None);
        assert!(body.is_end_stream());
        assert!(body.collect().await.unwrap().to_bytes().is_empty());
    }

    #[tokio::test]
    async fn passthrough_body_is_unchanged() {
        let body = ToolScopesBody::new(Full::new(Bytes::from_static(b"xyz")));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(format!("{body:?}"), "ToolScopesBody::Passthrough");
        assert_eq!(body.collect().await.unwrap().to_bytes(), "xyz");
    }
}
