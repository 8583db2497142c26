//! An outbound HTTP service over reqwest, in the `Service<Request<String>>` shape that
//! `mcp_auth_client::OAuthLayer` wraps; shared by the tests that drive that layer.

use std::{convert::Infallible, time::Duration};

use http::{Request, Response};
use tower::Service;

/// An outbound HTTP service (reqwest underneath) in the shape the layer wraps.
pub(crate) fn http_service()
-> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    let client = reqwest::Client::new();
    tower::service_fn(move |req: Request<String>| {
        let client = client.clone();
        async move {
            let (parts, body) = req.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let mut builder = Response::builder().status(response.status());
            for (k, v) in response.headers() {
                builder = builder.header(k, v);
            }
            Ok(builder.body(response.text().await.unwrap()).unwrap())
        }
    })
}
