//! [`ToolScopes`]: the service.

use std::{
    mem,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Method, Request, Response, header};
use http_body::Body;
use tower_service::Service;

use super::{
    RejectionBody, ResponseFuture, ToolScopesBody, ToolScopesLayer, ToolScopesRejectionKind,
    layer::Config, trace::ScopeSpan,
};
use crate::ProtectedResource;

/// Checks the MCP 2026-07-28 request headers and the scopes of MCP `tools/call` requests before
/// they reach the inner service.
///
/// Built by [`ToolScopesLayer`]. The inner service receives a
/// `Request<`[`ToolScopesBody<ReqBody>`](ToolScopesBody)`>`. Rejections are responses, never
/// errors (`Error = S::Error`): with an empty `ResBody::default()` body, or for a header mismatch
/// a JSON-RPC error built with [`RejectionBody::from_json`].
///
/// `poll_ready` delegates to the inner service; `call` keeps the service that was made ready (a
/// clone takes its place) while the body is read, as the tower `Service` docs advise.
///
/// See the [module docs](crate::mcp) for the rules and an example.
#[derive(Debug, Clone)]
pub struct ToolScopes<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ToolScopes<S> {
    /// A [`ToolScopesLayer`] for `resource`; same as [`ToolScopesLayer::new`].
    pub fn layer(resource: ProtectedResource) -> ToolScopesLayer {
        ToolScopesLayer::new(resource)
    }

    pub(super) fn from_layer(inner: S, layer: ToolScopesLayer) -> Self {
        Self {
            inner,
            config: layer.config,
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ToolScopes<S>
where
    S: Service<Request<ToolScopesBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Rule 1 and 2: only POST bodies carry tool calls, and with no scope configured nothing
        // can be required.
        if req.method() != Method::POST || self.config.strictest.is_empty() {
            let span = ScopeSpan::new();
            let future = {
                let _entered = span.enter();
                span.record("allow", None);
                self.inner.call(req.map(ToolScopesBody::new))
            };
            return ResponseFuture::call(future, span);
        }

        // Rule 3: refuse a body declared too large without reading it. A body that knows its
        // exact length says so itself (hyper's, from `Content-Length`): no header lookup, which
        // hashes the name. Otherwise the header, or the body's lower bound if larger.
        let hint = req.body().size_hint();
        let declared = hint.exact().unwrap_or_else(|| {
            req.headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .max(hint.lower())
        });
        if declared > self.config.max_body_size as u64 {
            let span = ScopeSpan::new();
            span.record("deny", None);
            return ResponseFuture::rejected(
                super::rejection(
                    &self.config.resource,
                    ToolScopesRejectionKind::BodyTooLarge,
                    None,
                    mcp_auth_core::ScopeSet::new(),
                    None,
                ),
                span,
            );
        }

        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        ResponseFuture::read(
            parts,
            body,
            inner,
            Arc::clone(&self.config),
            ScopeSpan::new(),
        )
    }
}
