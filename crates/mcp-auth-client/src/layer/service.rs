//! The service.

use std::{
    future::poll_fn,
    task::{Context, Poll},
};

use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use tower_service::Service;

use super::{OAuthLayer, Operation, ResponseFuture};
use crate::{
    credentials::Credentials,
    dpop::DPOP,
    retry::Attempt,
    token::{AccessToken, Principal},
};

/// The service [`OAuthLayer`] makes. See the [module docs](crate::layer).
#[derive(Debug, Clone)]
pub struct OAuth<S> {
    inner: S,
    credentials: Credentials,
}

impl<S> OAuth<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, credentials: impl Into<Credentials>) -> Self {
        Self {
            inner,
            credentials: credentials.into(),
        }
    }

    /// The layer.
    pub fn layer(credentials: impl Into<Credentials>) -> OAuthLayer {
        OAuthLayer::new(credentials)
    }

    define_inner_service_accessors!();
}

/// What a retry needs of the original request.
struct Template<B> {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
    body: B,
}

impl<B: Clone> Template<B> {
    /// The request again, with `token` (and, for a DPoP-bound one, a fresh proof for `url`).
    fn build_with(&self, token: Option<&AccessToken>, url: &str) -> Request<B> {
        let mut req = self.build(header_for(token).as_ref());
        if let Some(token) = token {
            match token.dpop_proof(self.method.as_str(), url) {
                Ok(Some(proof)) => {
                    req.headers_mut().insert(DPOP, proof);
                }
                Ok(None) => {}
                Err(_e) => event!(warn, error = %_e, "no DPoP proof could be made"),
            }
        }
        req
    }

    fn build(&self, auth: Option<&HeaderValue>) -> Request<B> {
        let mut req = Request::new(self.body.clone());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        *req.extensions_mut() = self.extensions.clone();
        if let Some(auth) = auth {
            req.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        req
    }
}

async fn call<S, B, R>(inner: &mut S, req: Request<B>) -> Result<Response<R>, S::Error>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    poll_fn(|cx| inner.poll_ready(cx)).await?;
    inner.call(req).await
}

fn header_for(token: Option<&AccessToken>) -> Option<HeaderValue> {
    token.and_then(|t| t.authorization_header().ok())
}

/// The absolute URL a request goes to (what a DPoP proof's `htu` names): its URI when absolute,
/// else its path on the MCP server's origin.
fn request_url(uri: &http::Uri, resource: &str) -> String {
    if uri.scheme().is_some() && uri.authority().is_some() {
        return uri.to_string();
    }
    match url::Url::parse(resource) {
        Ok(base) => base
            .join(uri.path_and_query().map_or("/", |p| p.as_str()))
            .map_or_else(|_| resource.to_owned(), String::from),
        Err(_) => resource.to_owned(),
    }
}

impl<S, B, R> Service<Request<B>> for OAuth<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Clone + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Keep the service that is ready; the clone goes back in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match &self.credentials {
            Credentials::Bearer(token) => {
                if let Some(value) = header_for(Some(token)) {
                    req.headers_mut().insert(AUTHORIZATION, value);
                }
                ResponseFuture::new(inner.call(req))
            }
            Credentials::ApiKey { header, value } => {
                req.headers_mut().insert(header.clone(), value.clone());
                ResponseFuture::new(inner.call(req))
            }
            Credentials::OAuth(manager) => {
                let manager = match req.extensions().get::<Principal>() {
                    Some(p) if p != manager.principal() => manager.for_principal(p.clone()),
                    _ => manager.clone(),
                };
                let operation = req.extensions().get::<Operation>().map_or_else(
                    || format!("{} {}", req.method(), req.uri().path()),
                    |op| op.as_str().to_owned(),
                );
                let url = request_url(req.uri(), manager.resource().as_str());
                let (parts, body) = req.into_parts();
                let template = Template {
                    method: parts.method,
                    uri: parts.uri,
                    version: parts.version,
                    headers: parts.headers,
                    extensions: parts.extensions,
                    body,
                };
                ResponseFuture::new(async move {
                    let observer = manager.clone();
                    let target = url.clone();
                    let (result, error) =
                        crate::retry::authorized(&manager, &operation, &target, move |token| {
                            let request = template.build_with(token.as_ref(), &url);
                            // Each attempt polls its own clone ready (tower's clone rule).
                            let mut inner = inner.clone();
                            let observer = observer.clone();
                            let url = url.clone();
                            async move {
                                let response = call(&mut inner, request).await;
                                if let Ok(response) = &response {
                                    observer.observe_dpop_nonce(&url, response.headers());
                                }
                                match response {
                                    Ok(response)
                                        if matches!(
                                            response.status(),
                                            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                                        ) =>
                                    {
                                        Attempt::Challenged {
                                            status: response.status(),
                                            headers: response.headers().clone(),
                                            result: Ok(response),
                                        }
                                    }
                                    Ok(response) => Attempt::Done {
                                        result: Ok(response),
                                        succeeded: true,
                                    },
                                    Err(e) => Attempt::Done {
                                        result: Err(e),
                                        succeeded: false,
                                    },
                                }
                            }
                        })
                        .await;
                    let mut response = result?;
                    if let Some(e) = error {
                        response.extensions_mut().insert(e);
                    }
                    Ok(response)
                })
            }
        }
    }
}
