//! [`OriginGuard`]: the service.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;

use super::{OriginGuardLayer, ResponseFuture, rejection, rules::Rules};

/// Checks `Origin` and `Host` before the inner service sees the request.
///
/// Built by [`OriginGuardLayer`]. Rejections are `403 Forbidden` responses with an empty
/// `ResBody::default()` body, never errors: `Error = S::Error`. The request body is never read.
///
/// See the [module docs](crate::origin) for the rules and examples.
#[derive(Debug, Clone)]
pub struct OriginGuard<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S> OriginGuard<S> {
    pub(super) fn from_layer(inner: S, layer: OriginGuardLayer) -> Self {
        Self {
            inner,
            rules: layer.rules,
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginGuard<S>
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

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.rules.check(req.uri(), req.headers()) {
            Ok(()) => ResponseFuture::future(self.inner.call(req)),
            Err(kind) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(reason = ?kind, method = %req.method(), "request refused by the origin guard");
                ResponseFuture::rejected(rejection(kind))
            }
        }
    }
}
