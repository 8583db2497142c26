//! [`McpAuthClient`]: rmcp's Streamable HTTP client transport, authorized by a
//! [`TokenManager`](crate::TokenManager). Feature `rmcp`.
//!
//! rmcp's [`StreamableHttpClientTransport`] sends every HTTP request through a
//! [`StreamableHttpClient`]. `McpAuthClient` is one: it wraps another (by default rmcp's
//! `reqwest::Client` implementation, which does the HTTP, JSON and SSE work) and runs each request —
//! every POST, the GET stream and the DELETE — through the same loop as the tower
//! [`OAuthLayer`](crate::OAuthLayer):
//!
//! 1. the token from the manager goes out on **every** request (SPEC C-26); before the first
//!    authorization there is none, and the server's 401 challenge decides the scopes (SPEC C-20);
//! 2. a **401** runs [`on_unauthorized`](crate::TokenManager::on_unauthorized) — adopt, refresh, or
//!    discovery, registration and authorization — then the request is retried once;
//! 3. a **403** `insufficient_scope` runs [`on_insufficient_scope`](crate::TokenManager::on_insufficient_scope)
//!    (granted ∪ challenged scopes) and retries, at most
//!    [`max_authorization_attempts`](crate::TokenManagerBuilder::max_authorization_attempts)
//!    times per operation (SPEC C-29, C-30);
//! 4. a DPoP-bound token (RFC 9449) goes out as `Authorization: DPoP` with a fresh proof in the
//!    `DPoP` header on every request; a 401 `use_dpop_nonce` is retried once with the server's
//!    nonce. rmcp's client hands over only the `WWW-Authenticate` header of a 401, so the nonce
//!    is learned with one empty POST to the same URL (answered 401 with `DPoP-Nonce` by a server
//!    that wants one) before the retry;
//! 5. when the manager gives up, rmcp sees the server's own verdict
//!    (`StreamableHttpError::AuthRequired` / `InsufficientScope`) and
//!    [`last_error`](McpAuthClient::last_error) says why.
//!
//! The operation whose attempts are counted is the JSON-RPC method, with the tool, prompt or
//! resource name for `tools/call`, `prompts/get` and `resources/read` (e.g. `tools/call admin`).
//! Everything MCP — the `server/discover` probe and per-request `_meta` of 2026-07-28, the
//! `initialize` handshake and session of 2025-11-25, `Mcp-Method`/`Mcp-Name` headers, SSE — stays
//! rmcp's; the `auth_header` rmcp passes (from its config) is replaced by the manager's token.
//!
//! # Example
//!
//! ```no_run
//! use mcp_auth_client::{TokenManager, rmcp::McpAuthClient};
//! use rmcp::{ServiceExt, transport::StreamableHttpClientTransport};
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "https://mcp.example.com/mcp";
//! let manager = TokenManager::builder(url).client_name("my-agent").build()?;
//! let transport = StreamableHttpClientTransport::with_client(
//!     McpAuthClient::new(manager)?,
//!     StreamableHttpClientTransportConfig::with_uri(url),
//! );
//! let client = ().serve(transport).await?; // a 401 here runs discovery and the browser flow
//! let tools = client.list_all_tools().await?;
//! println!("{} tools", tools.len());
//! client.cancel().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`StreamableHttpClientTransport`]: rmcp::transport::StreamableHttpClientTransport

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use futures_util::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
use rmcp::{
    model::{ClientJsonRpcMessage, ClientRequest},
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
        StreamableHttpResponseLimits,
    },
};
use sse_stream::Sse;

use crate::{
    AuthError,
    credentials::Credentials,
    error::ConfigError,
    retry::{Attempt, authorized},
    token::AccessToken,
};

/// rmcp's Streamable HTTP client with `mcp-auth-client`'s authorization under every request. See
/// the [module docs](crate::rmcp).
///
/// Cheap to clone; clones share the credentials and [`last_error`](Self::last_error).
#[derive(Clone)]
pub struct McpAuthClient<C = reqwest::Client> {
    inner: C,
    credentials: Credentials,
    last_error: Arc<Mutex<Option<AuthError>>>,
}

impl<C> fmt::Debug for McpAuthClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpAuthClient")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl McpAuthClient<reqwest::Client> {
    /// Sends with a new `reqwest::Client` that follows no redirects (a redirect is answered as
    /// is, so a request and its token never go to another place) and keeps no idle connections
    /// (as rmcp's default client).
    ///
    /// # Errors
    /// [`ConfigError::HttpClient`] when the HTTP client cannot be built (its TLS configuration).
    pub fn new(credentials: impl Into<Credentials>) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|_| ConfigError::HttpClient)?;
        Ok(Self::with_client(http, credentials))
    }
}

impl<C> McpAuthClient<C> {
    /// Sends through `inner`, any [`StreamableHttpClient`] (e.g. a `reqwest::Client` configured
    /// with a proxy or timeouts).
    pub fn with_client(inner: C, credentials: impl Into<Credentials>) -> Self {
        Self {
            inner,
            credentials: credentials.into(),
            last_error: Arc::default(),
        }
    }

    /// Why the manager last gave up on a request (the server's 401/403 then reached rmcp), if it
    /// did; cleared by the next request the server accepts.
    #[must_use]
    pub fn last_error(&self) -> Option<AuthError> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The inner client.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    fn set_last_error(&self, error: Option<AuthError>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}

/// How a token goes out through rmcp's client: a bearer token as rmcp's `auth_token` (it writes
/// `Authorization: Bearer`); a DPoP-bound one as the `Authorization: DPoP …` and `DPoP` (a fresh
/// proof for `method` and `uri`) custom headers, with no `auth_token`.
fn present(
    token: Option<&AccessToken>,
    method: &str,
    uri: &str,
    custom_headers: &HashMap<HeaderName, HeaderValue>,
) -> (Option<String>, HashMap<HeaderName, HeaderValue>) {
    let mut headers = custom_headers.clone();
    let Some(token) = token else {
        return (None, headers);
    };
    if !token.is_dpop() {
        return (Some(token.expose().to_owned()), headers);
    }
    if let Ok(authorization) = token.authorization_header() {
        headers.insert(http::header::AUTHORIZATION, authorization);
    }
    match token.dpop_proof(method, uri) {
        Ok(Some(proof)) => {
            headers.insert(HeaderName::from_static(crate::dpop::DPOP), proof);
        }
        Ok(None) => {}
        Err(_e) => event!(warn, error = %_e, "no DPoP proof could be made"),
    }
    (None, headers)
}

/// The operation a message performs, for the step-up attempt limit.
fn operation_of(message: &ClientJsonRpcMessage) -> String {
    let ClientJsonRpcMessage::Request(request) = message else {
        return "POST".to_owned();
    };
    let name = match &request.request {
        ClientRequest::CallToolRequest(call) => Some(call.params.name.to_string()),
        ClientRequest::GetPromptRequest(get) => Some(get.params.name.clone()),
        ClientRequest::ReadResourceRequest(read) => Some(read.params.uri.clone()),
        _ => None,
    };
    let method = request.request.method();
    match name {
        Some(name) => format!("{method} {name}"),
        None => method.to_owned(),
    }
}

/// How one attempt's result reads to the retry loop: rmcp's reqwest client reports a 401/403
/// with a challenge as `AuthRequired`/`InsufficientScope` (the first `WWW-Authenticate` value),
/// and one without a challenge as an "HTTP 401 …" unexpected response.
fn classify<T, E>(
    result: Result<T, StreamableHttpError<E>>,
) -> Attempt<Result<T, StreamableHttpError<E>>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let challenged = |status: StatusCode, header: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(value) = header.and_then(|h| HeaderValue::from_str(h).ok()) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        (status, headers)
    };
    let found = match &result {
        Ok(_) => {
            return Attempt::Done {
                result,
                succeeded: true,
            };
        }
        Err(StreamableHttpError::AuthRequired(e)) => Some(challenged(
            StatusCode::UNAUTHORIZED,
            Some(&e.www_authenticate_header),
        )),
        Err(StreamableHttpError::InsufficientScope(e)) => Some(challenged(
            StatusCode::FORBIDDEN,
            Some(&e.www_authenticate_header),
        )),
        Err(StreamableHttpError::UnexpectedServerResponse(Cow::Borrowed(text)))
            if text.starts_with("HTTP 401 ") =>
        {
            Some(challenged(StatusCode::UNAUTHORIZED, None))
        }
        Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(text)))
            if text.starts_with("HTTP 401 ") =>
        {
            Some(challenged(StatusCode::UNAUTHORIZED, None))
        }
        Err(_) => None,
    };
    match found {
        Some((status, headers)) => Attempt::Challenged {
            status,
            headers,
            result,
        },
        None => Attempt::Done {
            result,
            succeeded: false,
        },
    }
}

impl<C> McpAuthClient<C>
where
    C: StreamableHttpClient + Sync,
{
    /// Runs `send(auth_token, custom_headers)` under the credentials, for a `method` request to
    /// `uri`.
    async fn send<T, F, Fut>(
        &self,
        operation: &str,
        method: &str,
        uri: &str,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        send: F,
    ) -> Result<T, StreamableHttpError<C::Error>>
    where
        F: Fn(Option<String>, HashMap<HeaderName, HeaderValue>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<C::Error>>>,
    {
        match &self.credentials {
            Credentials::Bearer(token) => {
                send(Some(token.expose().to_owned()), custom_headers).await
            }
            Credentials::ApiKey { header, value } => {
                let mut headers = custom_headers;
                headers.insert(header.clone(), value.clone());
                send(None, headers).await
            }
            Credentials::OAuth(manager) => {
                let (result, error) =
                    authorized(manager, operation, uri, |token: Option<AccessToken>| {
                        let (auth, headers) = present(token.as_ref(), method, uri, &custom_headers);
                        let attempt = send(auth, headers);
                        async move { classify(attempt.await) }
                    })
                    .await;
                if error.is_some() || result.is_ok() {
                    self.set_last_error(error);
                }
                result
            }
        }
    }
}

impl<C> StreamableHttpClient for McpAuthClient<C>
where
    C: StreamableHttpClient + Sync,
{
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            None,
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
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            None,
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
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let operation = operation_of(&message);
        self.send(
            &operation,
            "POST",
            &uri,
            custom_headers,
            |token, headers| {
                self.inner.post_message_with_response_limits(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    token,
                    headers,
                    limits,
                )
            },
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.send(
            "DELETE",
            "DELETE",
            &uri,
            custom_headers,
            |token, headers| {
                self.inner
                    .delete_session(uri.clone(), session_id.clone(), token, headers)
            },
        )
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.send("GET", "GET", &uri, custom_headers, |token, headers| {
            self.inner.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                headers,
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.send("GET", "GET", &uri, custom_headers, |token, headers| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Result = std::result::Result<(), StreamableHttpError<std::io::Error>>;

    fn status_of(result: Result) -> Option<(StatusCode, bool)> {
        match classify(result) {
            Attempt::Challenged {
                status, headers, ..
            } => Some((status, headers.contains_key(WWW_AUTHENTICATE))),
            Attempt::Done { .. } => None,
        }
    }

    #[test]
    fn challenges_with_and_without_a_header_are_recognised() {
        use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError};
        assert_eq!(
            status_of(Err(StreamableHttpError::AuthRequired(
                AuthRequiredError::new(r#"Bearer resource_metadata="https://a/x""#.to_owned())
            ))),
            Some((StatusCode::UNAUTHORIZED, true))
        );
        assert_eq!(
            status_of(Err(StreamableHttpError::InsufficientScope(
                InsufficientScopeError::new(
                    r#"Bearer error="insufficient_scope", scope="a b""#.to_owned(),
                    Some("a b".to_owned())
                )
            ))),
            Some((StatusCode::FORBIDDEN, true))
        );
        // rmcp's reqwest client: a 401 without WWW-Authenticate (2025-03-26 servers).
        assert_eq!(
            status_of(Err(StreamableHttpError::UnexpectedServerResponse(
                "HTTP 401 Unauthorized: ".into()
            ))),
            Some((StatusCode::UNAUTHORIZED, false))
        );
        assert_eq!(
            status_of(Err(StreamableHttpError::UnexpectedServerResponse(
                "HTTP 4011".into()
            ))),
            None
        );
        assert_eq!(status_of(Err(StreamableHttpError::SessionExpired)), None);
        assert_eq!(status_of(Ok(())), None);
    }
}
