//! [`Trace`]: rmcp's reqwest client for Streamable HTTP, printing one line per exchange when asked
//! (the HTTP method, the JSON-RPC method, whether a bearer token went out, and the outcome with any
//! `WWW-Authenticate` challenge; never a token).

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
        StreamableHttpResponseLimits,
    },
};
use sse_stream::Sse;

/// Sends with reqwest (no redirects followed, connect timeout 10 s), optionally printing.
#[derive(Debug, Clone)]
pub struct Trace {
    client: reqwest::Client,
    print: bool,
}

impl Trace {
    /// A client; with `print`, every exchange is printed to stdout.
    ///
    /// # Errors
    /// When reqwest cannot build its TLS configuration.
    pub fn new(print: bool) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("example-mcp-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, print })
    }

    fn show<T>(
        &self,
        what: &str,
        bearer: bool,
        result: &Result<T, StreamableHttpError<reqwest::Error>>,
    ) {
        if !self.print {
            return;
        }
        let token = if bearer { " (bearer token)" } else { "" };
        match result {
            Ok(_) => println!("  · {what}{token} → ok"),
            Err(StreamableHttpError::AuthRequired(e)) => println!(
                "  · {what}{token} → 401 Unauthorized; WWW-Authenticate: {}",
                e.www_authenticate_header
            ),
            Err(StreamableHttpError::InsufficientScope(e)) => println!(
                "  · {what}{token} → 403 Forbidden; WWW-Authenticate: {}",
                e.www_authenticate_header
            ),
            Err(e) => println!("  · {what}{token} → {e}"),
        }
    }
}

fn method_of(message: &ClientJsonRpcMessage) -> String {
    serde_json::to_value(message)
        .ok()
        .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "response".to_owned())
}

impl StreamableHttpClient for Trace {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let what = format!("POST {}", method_of(&message));
        let bearer = auth_header.is_some();
        let result = self
            .client
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.show(&what, bearer, &result);
        result
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let bearer = auth_header.is_some();
        let result = self
            .client
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await;
        self.show("DELETE session", bearer, &result);
        result
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let bearer = auth_header.is_some();
        let result = self
            .client
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await;
        self.show("GET stream", bearer, &result);
        result
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let bearer = auth_header.is_some();
        let result = self
            .client
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.show("GET stream", bearer, &result);
        result
    }
}
