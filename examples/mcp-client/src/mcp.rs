//! A minimal MCP client over Streamable HTTP (MCP 2025-11-25, "Transports"): JSON-RPC messages
//! POSTed to the MCP endpoint with `Accept: application/json, text/event-stream`; the answer is
//! either one JSON document or an SSE stream that carries it; `Mcp-Session-Id` is kept from the
//! `initialize` response and sent back; `MCP-Protocol-Version` is sent after initialization;
//! `DELETE` ends the session.
//!
//! The client is generic over the tower service that sends the HTTP requests, so the
//! [`OAuth`](mcp_auth_client::OAuth) layer sits under every request: each one carries the bearer
//! token, and a 401/403 runs the library's discovery, authorization, refresh and step-up before
//! the request is retried. Each request names its [`Operation`] (`tools/call <tool>`, …), so the
//! layer counts step-up attempts per operation.
//!
//! Not implemented (not needed by the tools this example calls): the standalone `GET` SSE
//! stream, resuming a broken stream with `Last-Event-ID`, and server-to-client requests other than
//! `ping` (the client declares no capabilities, so a server has no reason to send them).

use std::{error::Error as StdError, fmt, future::poll_fn, pin::pin};

use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::BodyExt;
use mcp_auth_client::{AuthError, Operation};
use serde_json::{Value, json};
use tower_service::Service;

use crate::sse;

/// The protocol revision this client asks for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// The most bytes read from a JSON response or an error body.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A boxed error from the HTTP service or a body.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why an MCP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be sent or the response not read.
    #[error("HTTP request failed: {0}")]
    Http(#[source] BoxError),
    /// The server kept answering 401/403 and the auth layer gave up; its reason is attached.
    #[error("authorization failed ({status}): {source}")]
    Auth {
        /// The server's last status.
        status: StatusCode,
        /// What the auth layer ran into.
        #[source]
        source: AuthError,
    },
    /// An HTTP error status other than an authorization failure.
    #[error("the server answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// A JSON-RPC error response.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// The server's answer broke the transport rules.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// What `initialize` returned.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `serverInfo.name`.
    pub name: String,
    /// `serverInfo.version`.
    pub version: String,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// Whether the server gave a session id.
    pub has_session: bool,
    /// The server's `instructions`, if any.
    pub instructions: Option<String>,
}

/// One tool from `tools/list`.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
}

/// An MCP client session over Streamable HTTP. See the [module docs](self).
pub struct McpClient<S> {
    service: S,
    url: Uri,
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    next_id: u64,
}

impl<S> fmt::Debug for McpClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("url", &self.url)
            .field("has_session", &self.session_id.is_some())
            .field("protocol_version", &self.protocol_version)
            .finish_non_exhaustive()
    }
}

/// A JSON-RPC message read from a response, classified.
enum Incoming {
    /// The response to the request with this id.
    Response(Value),
    /// A request from the server (`id` and `method`).
    Request(Value),
    /// A notification, or a response to another id.
    Other(Value),
}

impl<S, B> McpClient<S>
where
    S: Service<Request<Bytes>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// A client for the MCP endpoint `url`, sending through `service`.
    pub fn new(service: S, url: Uri) -> Self {
        Self {
            service,
            url,
            session_id: None,
            protocol_version: None,
            next_id: 1,
        }
    }

    /// `initialize`, then `notifications/initialized`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn initialize(&mut self, client_name: &str) -> Result<ServerInfo, Error> {
        let result = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": { "name": client_name, "version": env!("CARGO_PKG_VERSION") },
                }),
                "initialize",
            )
            .await?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let protocol_version = text(result.get("protocolVersion"));
        if protocol_version.is_empty() {
            return Err(Error::Protocol(
                "the initialize result has no protocolVersion".to_owned(),
            ));
        }
        self.protocol_version = HeaderValue::from_str(&protocol_version).ok();
        self.notify("notifications/initialized", None).await?;
        Ok(ServerInfo {
            name: text(result.pointer("/serverInfo/name")),
            version: text(result.pointer("/serverInfo/version")),
            protocol_version,
            has_session: self.session_id.is_some(),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// `tools/list`, following `nextCursor` (at most 100 pages).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list_tools(&mut self) -> Result<Vec<Tool>, Error> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let result = self.request("tools/list", params, "tools/list").await?;
            for tool in result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = tool.get("name").and_then(Value::as_str) {
                    tools.push(Tool {
                        name: name.to_owned(),
                        description: tool
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    });
                }
            }
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(tools),
            }
        }
        Ok(tools)
    }

    /// `tools/call name arguments`; returns the call's result (`content`, `isError`, …).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn call_tool(
        &mut self,
        name: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<Value, Error> {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
            &format!("tools/call {name}"),
        )
        .await
    }

    /// Ends the session with `DELETE` (when the server gave a session id). A 405 means the server
    /// does not let clients end sessions, which is fine.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn close(&mut self) -> Result<(), Error> {
        let Some(session_id) = self.session_id.take() else {
            return Ok(());
        };
        let mut req = Request::new(Bytes::new());
        *req.method_mut() = Method::DELETE;
        *req.uri_mut() = self.url.clone();
        req.headers_mut().insert("mcp-session-id", session_id);
        if let Some(version) = &self.protocol_version {
            req.headers_mut()
                .insert("mcp-protocol-version", version.clone());
        }
        req.extensions_mut()
            .insert(Operation::new("session/delete"));
        let response = send(&mut self.service, req).await?;
        let status = response.status();
        if status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED {
            Ok(())
        } else {
            Err(failure(response).await)
        }
    }

    /// Sends a request and waits for its response's `result`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        operation: &str,
    ) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = self.post(&message, operation).await?;
        if response.status() == StatusCode::NOT_FOUND && self.session_id.is_some() {
            return Err(Error::Protocol(
                "the server no longer knows this session (404); start again".to_owned(),
            ));
        }
        if !response.status().is_success() {
            return Err(failure(response).await);
        }
        if method == "initialize" {
            self.session_id = response.headers().get("mcp-session-id").cloned();
        }
        let answer = self.read_response(response, id).await?;
        if let Some(error) = answer.get("error") {
            return Err(Error::JsonRpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("the response to {method} has no result")))
    }

    /// Sends a notification (the server answers 202 Accepted).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), Error> {
        let mut message = json!({ "jsonrpc": "2.0", "method": method });
        if let (Some(params), Some(object)) = (params, message.as_object_mut()) {
            object.insert("params".to_owned(), params);
        }
        let response = self.post(&message, method).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failure(response).await)
        }
    }

    /// POSTs one JSON-RPC message.
    async fn post(&mut self, message: &Value, operation: &str) -> Result<Response<B>, Error> {
        let req = post_request(
            &self.url,
            message,
            self.session_id.as_ref(),
            self.protocol_version.as_ref(),
            operation,
        )?;
        send(&mut self.service, req).await
    }

    /// Reads a 2xx response until the JSON-RPC response with `id`: a JSON document or an SSE
    /// stream (notifications before it are shown, a `ping` from the server is answered).
    async fn read_response(&mut self, response: Response<B>, id: u64) -> Result<Value, Error> {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match content_type.as_str() {
            "application/json" => {
                let bytes = read_body(response.into_body(), MAX_BODY).await?;
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Protocol(format!("the JSON response is invalid: {e}")))?;
                let messages = match value {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for message in messages {
                    if let Incoming::Response(answer) = classify(message, id) {
                        return Ok(answer);
                    }
                }
                Err(Error::Protocol(format!(
                    "the JSON response does not answer request {id}"
                )))
            }
            "text/event-stream" => {
                let mut body = pin!(response.into_body());
                let mut parser = sse::Parser::new();
                loop {
                    let (events, ended) = match body.as_mut().frame().await {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(mut data) => {
                                let bytes = data.copy_to_bytes(data.remaining());
                                (parser.feed(&bytes), false)
                            }
                            Err(_trailers) => (Vec::new(), false),
                        },
                        Some(Err(error)) => return Err(Error::Http(error.into())),
                        None => (parser.finish().into_iter().collect(), true),
                    };
                    for event in events {
                        if event.data.trim().is_empty() {
                            continue;
                        }
                        let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                            println!("  (ignoring an SSE event that is not JSON)");
                            continue;
                        };
                        match classify(message, id) {
                            Incoming::Response(answer) => return Ok(answer),
                            Incoming::Request(request) => {
                                self.answer_server_request(&request).await;
                            }
                            Incoming::Other(notification) => show_notification(&notification),
                        }
                    }
                    if ended {
                        return Err(Error::Protocol(format!(
                            "the SSE stream ended before the response to request {id}"
                        )));
                    }
                }
            }
            other => Err(Error::Protocol(format!(
                "unexpected content type {other:?} for a request"
            ))),
        }
    }

    /// Answers a server-to-client request: `ping` with `{}`, anything else with "method not found".
    async fn answer_server_request(&mut self, request: &Value) {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let reply = if method == "ping" {
            json!({ "jsonrpc": "2.0", "id": id, "result": {} })
        } else {
            println!("  (the server asked for {method}; this client does not support it)");
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "method not supported by this client" } })
        };
        let mut service = self.service.clone();
        let sent = match post_request(
            &self.url,
            &reply,
            self.session_id.as_ref(),
            self.protocol_version.as_ref(),
            "reply",
        ) {
            Ok(req) => send(&mut service, req).await.map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = sent {
            println!("  (could not answer the server's {method}: {error})");
        }
    }
}

fn post_request(
    url: &Uri,
    message: &Value,
    session_id: Option<&HeaderValue>,
    protocol_version: Option<&HeaderValue>,
    operation: &str,
) -> Result<Request<Bytes>, Error> {
    let body = serde_json::to_vec(message).map_err(|e| Error::Protocol(e.to_string()))?;
    let mut req = Request::new(Bytes::from(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = url.clone();
    let headers = req.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Some(session_id) = session_id {
        headers.insert("mcp-session-id", session_id.clone());
    }
    if let Some(version) = protocol_version {
        headers.insert("mcp-protocol-version", version.clone());
    }
    req.extensions_mut().insert(Operation::new(operation));
    Ok(req)
}

async fn send<S, B>(service: &mut S, req: Request<Bytes>) -> Result<Response<B>, Error>
where
    S: Service<Request<Bytes>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| Error::Http(e.into()))?;
    service.call(req).await.map_err(|e| Error::Http(e.into()))
}

/// The error for a non-2xx response: the auth layer's reason when it gave up, else the status and
/// the start of the body.
async fn failure<B>(response: Response<B>) -> Error
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    if let Some(source) = parts.extensions.remove::<AuthError>() {
        return Error::Auth { status, source };
    }
    let text = match read_body(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let text: String = text.chars().take(300).collect();
    Error::Status { status, body: text }
}

/// Reads at most `limit` bytes of a body (the rest is dropped).
async fn read_body<B>(body: B, limit: usize) -> Result<Vec<u8>, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|e| Error::Http(e.into()))?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                let take = chunk.len().min(limit.saturating_sub(out.len()));
                out.extend_from_slice(&chunk[..take]);
                let n = chunk.len();
                data.advance(n);
            }
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

fn classify(message: Value, id: u64) -> Incoming {
    let is_ours = message.get("id").and_then(Value::as_u64) == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some());
    if is_ours {
        Incoming::Response(message)
    } else if message.get("method").is_some() && message.get("id").is_some() {
        Incoming::Request(message)
    } else {
        Incoming::Other(message)
    }
}

/// Prints a server notification that came before the response (log messages and progress).
fn show_notification(message: &Value) {
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let params = message.get("params");
    match method {
        "notifications/message" => {
            let level = params
                .and_then(|p| p.get("level"))
                .and_then(Value::as_str)
                .unwrap_or("info");
            let data = params
                .and_then(|p| p.get("data"))
                .cloned()
                .unwrap_or_default();
            println!("  server log [{level}]: {data}");
        }
        "notifications/progress" => {
            let progress = params
                .and_then(|p| p.get("progress"))
                .cloned()
                .unwrap_or_default();
            println!("  progress: {progress}");
        }
        "" => {}
        other => println!("  notification: {other}"),
    }
}
