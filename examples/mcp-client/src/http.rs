//! The HTTP client under the auth layer: a tower service that sends `http::Request<Bytes>` with
//! reqwest and, when asked, prints one line per exchange (method, path, whether a bearer token
//! went out, the status and any `WWW-Authenticate` challenge; never a token).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, header};
use tower_service::Service;

/// The future [`HttpClient`] returns.
pub type HttpFuture =
    Pin<Box<dyn Future<Output = Result<Response<reqwest::Body>, reqwest::Error>> + Send>>;

/// Sends requests to the MCP server. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    trace: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that never follows redirects (a redirect is answered as is) and gives up connecting
    /// after 10 s. With `trace`, every exchange is printed to stdout.
    ///
    /// # Errors
    /// When reqwest cannot build its TLS configuration.
    pub fn new(trace: bool) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("example-mcp-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, trace })
    }
}

impl Service<Request<Bytes>> for HttpClient {
    type Response = Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = HttpFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let client = self.client.clone();
        let trace = self.trace;
        Box::pin(async move {
            let line = trace.then(|| {
                let bearer = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
                format!(
                    "  · {} {}{}",
                    req.method(),
                    req.uri().path(),
                    if bearer { " (bearer token)" } else { "" }
                )
            });
            let result = match reqwest::Request::try_from(req) {
                Ok(request) => client.execute(request).await,
                Err(error) => Err(error),
            };
            let response = match result {
                Ok(response) => Response::from(response),
                Err(error) => {
                    if let Some(line) = line {
                        println!("{line} → failed: {error}");
                    }
                    return Err(error);
                }
            };
            if let Some(line) = line {
                let challenge = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(" | ");
                if challenge.is_empty() {
                    println!("{line} → {}", response.status());
                } else {
                    println!(
                        "{line} → {}; WWW-Authenticate: {challenge}",
                        response.status()
                    );
                }
            }
            Ok(response)
        })
    }
}
