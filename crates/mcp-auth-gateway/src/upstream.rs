//! The client side of [`McpProxy`](crate::proxy::McpProxy): one HTTP/1.1 connection pool to the
//! upstream MCP server.
//!
//! An `http` upstream (over TCP or a unix socket) is reached with `hyper-util`'s pooled client,
//! and its response body is handed on as it comes (each frame as the upstream sends it, within
//! the idle timeout). An `https` upstream goes through `reqwest` (rustls), which the workspace
//! uses for every other outgoing request.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri, uri::PathAndQuery};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{Client as Pool, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why no response head came from the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It could not be reached (refused, reset, not HTTP).
    Unreachable,
    /// Connecting timed out.
    Timeout,
}

/// The pooled client to one upstream.
pub(crate) struct Upstream {
    client: Client,
    /// The upstream's URL as an `http::Uri` (without the query, which is the caller's).
    uri: Uri,
    /// The same for `reqwest`.
    url: url::Url,
    idle_timeout: Duration,
}

enum Client {
    Http(Pool<HttpConnector, Full<Bytes>>),
    #[cfg(unix)]
    Unix(Pool<unix::UnixConnector, Full<Bytes>>),
    Https(reqwest::Client),
}

/// Settings of [`Upstream::new`].
pub(crate) struct Settings {
    pub(crate) unix_socket: Option<std::path::PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Upstream {
    /// A client for the `http(s)` URL `url`.
    pub(crate) fn new(url: &url::Url, settings: Settings) -> Result<Self, crate::error::Error> {
        let config = |what: &str| crate::error::Error::Config(format!("the HTTP client: {what}"));
        let mut url = url.clone();
        url.set_query(None);
        url.set_fragment(None);
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|_| config("the upstream URL is not a valid URI"))?;
        let pool = || {
            let mut builder = Pool::builder(TokioExecutor::new());
            builder
                .pool_max_idle_per_host(64)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(TokioTimer::new());
            builder
        };
        let client = match (url.scheme(), settings.unix_socket) {
            #[cfg(unix)]
            ("http", Some(path)) => Client::Unix(pool().build(unix::UnixConnector {
                path: path.into(),
                timeout: settings.connect_timeout,
            })),
            ("http", None) => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(settings.connect_timeout));
                Client::Http(pool().build(connector))
            }
            #[cfg_attr(not(unix), allow(unused_variables))]
            (_, socket) => {
                let mut client = reqwest::Client::builder()
                    .connect_timeout(settings.connect_timeout)
                    .read_timeout(settings.idle_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(64)
                    .http1_only();
                #[cfg(unix)]
                if let Some(path) = socket {
                    client = client.unix_socket(path);
                }
                Client::Https(client.build().map_err(|e| config(&e.to_string()))?)
            }
        };
        Ok(Self {
            client,
            uri,
            url,
            idle_timeout: settings.idle_timeout,
        })
    }

    /// The upstream's URL with `query`.
    fn uri_with(&self, query: Option<&str>) -> Option<Uri> {
        let Some(query) = query else {
            return Some(self.uri.clone());
        };
        let mut parts = self.uri.clone().into_parts();
        let path = parts
            .path_and_query
            .as_ref()
            .map_or("/", PathAndQuery::path);
        parts.path_and_query = Some(format!("{path}?{query}").parse().ok()?);
        Uri::from_parts(parts).ok()
    }

    /// Sends one request (an empty `body`: none, unless the method is `POST`); the response
    /// head, or why there is none.
    pub(crate) async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        query: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Body>, Failure> {
        let sent = match &self.client {
            Client::Http(client) => {
                let request = self.request(method, headers, query, body)?;
                client.request(request).await
            }
            #[cfg(unix)]
            Client::Unix(client) => {
                let request = self.request(method, headers, query, body)?;
                client.request(request).await
            }
            Client::Https(client) => {
                return self
                    .send_reqwest(client, method, headers, query, body)
                    .await;
            }
        };
        match sent {
            Ok(response) => {
                let idle = self.idle_timeout;
                Ok(response.map(|incoming| Body::new(IdleTimeout::new(incoming, idle))))
            }
            Err(error) => {
                tracing::warn!(error = %Chain(&error), "the upstream MCP server is unreachable");
                Err(if is_timeout(&error) {
                    Failure::Timeout
                } else {
                    Failure::Unreachable
                })
            }
        }
    }

    fn request(
        &self,
        method: Method,
        headers: HeaderMap,
        query: Option<&str>,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Failure> {
        let uri = self.uri_with(query).ok_or(Failure::Unreachable)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }

    async fn send_reqwest(
        &self,
        client: &reqwest::Client,
        method: Method,
        headers: HeaderMap,
        query: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Body>, Failure> {
        let mut url = self.url.clone();
        url.set_query(query);
        let mut request = reqwest::Request::new(method, url);
        *request.headers_mut() = headers;
        if !body.is_empty() || request.method() == Method::POST {
            *request.body_mut() = Some(reqwest::Body::from(body));
        }
        match client.execute(request).await {
            Ok(response) => Ok(http::Response::from(response).map(|body| {
                Body::new(body.map_err(|e| {
                    let e = e.without_url();
                    tracing::debug!(error = %e, "the upstream response body ended with an error");
                    e
                }))
            })),
            Err(error) => {
                let failure = if error.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Unreachable
                };
                tracing::warn!(error = %error.without_url(), "the upstream MCP server is unreachable");
                Err(failure)
            }
        }
    }
}

/// Whether `error` was caused by a timeout (connecting).
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::causes(error).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// An error with its causes, for the log.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in crate::error::causes(self.0).enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The upstream was silent within a response body for longer than the idle timeout.
#[derive(Debug)]
struct IdleTimeoutError;

impl std::fmt::Display for IdleTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream MCP server was silent for longer than the idle timeout")
    }
}

impl std::error::Error for IdleTimeoutError {}

pin_project_lite::pin_project! {
    /// A response body that ends with an error when no frame comes for `timeout`. The timer is
    /// only armed when the body has to wait (a body that is already there costs no timer).
    struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        // A frame came since the timer was last armed.
        fresh: bool,
    }
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
            fresh: true,
        }
    }
}

impl<B> http_body::Body for IdleTimeout<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.fresh = true;
            return Poll::Ready(frame.map(|f| {
                f.map_err(|e| {
                    let e = e.into();
                    tracing::debug!(error = %e, "the upstream response body ended with an error");
                    e
                })
            }));
        }
        if std::mem::take(this.fresh) {
            let deadline = tokio::time::Instant::now() + *this.timeout;
            match this.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => *this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let idle = this
            .sleep
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if idle {
            tracing::debug!("the upstream response body was idle for too long");
            return Poll::Ready(Some(Err(Box::new(IdleTimeoutError))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(unix)]
mod unix {
    //! A connector for `hyper-util`'s client to a unix socket (the URL only names the path and
    //! the `Host`).

    use std::{future::Future, path::Path, pin::Pin, sync::Arc, task::Poll, time::Duration};

    use hyper_util::rt::TokioIo;
    use tokio::net::UnixStream;

    #[derive(Clone)]
    pub(super) struct UnixConnector {
        pub(super) path: Arc<Path>,
        pub(super) timeout: Duration,
    }

    type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<UnixStream>>> + Send>>;

    impl tower::Service<http::Uri> for UnixConnector {
        type Response = TokioIo<UnixStream>;
        type Error = std::io::Error;
        type Future = Connecting;

        fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _uri: http::Uri) -> Connecting {
            let (path, timeout) = (Arc::clone(&self.path), self.timeout);
            Box::pin(async move {
                match tokio::time::timeout(timeout, UnixStream::connect(&*path)).await {
                    Ok(stream) => stream.map(TokioIo::new),
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connecting to the unix socket timed out",
                    )),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn upstream(url: &str) -> Upstream {
        let settings = Settings {
            unix_socket: None,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        };
        Upstream::new(&url.parse().unwrap(), settings).unwrap()
    }

    #[tokio::test]
    async fn the_callers_query_replaces_the_upstreams() {
        let upstream = upstream("http://127.0.0.1:8000/mcp?x=1");
        assert_eq!(
            upstream.uri_with(None).unwrap(),
            "http://127.0.0.1:8000/mcp"
        );
        assert_eq!(
            upstream.uri_with(Some("a=b&c=%20")).unwrap(),
            "http://127.0.0.1:8000/mcp?a=b&c=%20"
        );
    }

    #[tokio::test]
    async fn a_body_silent_for_longer_than_the_idle_timeout_ends_with_an_error() {
        use futures_util::StreamExt as _;
        let frames = futures_util::stream::iter([Ok::<_, BoxError>(Frame::data(
            Bytes::from_static(b"event"),
        ))])
        .chain(futures_util::stream::pending());
        let mut body = IdleTimeout::new(
            http_body_util::StreamBody::new(frames),
            Duration::from_millis(50),
        );
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "event");
        let started = std::time::Instant::now();
        let second = body.frame().await.unwrap();
        assert!(second.unwrap_err().is::<IdleTimeoutError>());
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_connections_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        drop(listener);
        let sent = upstream(&url)
            .send(Method::POST, HeaderMap::new(), None, Bytes::new())
            .await;
        assert_eq!(sent.unwrap_err(), Failure::Unreachable);
    }
}
