//! The MCP client: rmcp's client and Streamable HTTP transport, with `mcp-auth-client`'s
//! [`McpAuthClient`] under every request. This module only adapts rmcp's API to what the
//! command line prints (and what the end-to-end tests call); the protocol is rmcp's.
//!
//! - **Era**: [`Era::Auto`] probes with `server/discover` (MCP 2026-07-28: no session, `_meta` and
//!   `Mcp-Method`/`Mcp-Name` headers on every request) and falls back to the `initialize`
//!   handshake of 2025-11-25 when the server does not know it; [`Era::Legacy`] starts with
//!   `initialize` at once.
//! - **Server requests**: elicitations are answered by [`Handler`] (declined, or accepted with the
//!   schema's defaults when asked to), including those inside a 2026-07-28 `input_required`
//!   result, which rmcp retries with `requestState` echoed; log notifications are printed.

use std::{error::Error as StdError, fmt};

use http::StatusCode;
use mcp_auth_client::{AuthError, Credentials, rmcp::McpAuthClient};
use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams,
        ElicitResult, ElicitationAction, GetPromptRequestParams, Implementation,
        ProtocolVersion, ReadResourceRequestParams,
    },
    service::{
        ClientInitializeError, ClientLifecycleMode, ClientServiceExt, NotificationContext,
        RequestContext, RunningService, ServiceError,
    },
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::{StreamableHttpClientTransportConfig, StreamableHttpError},
    },
};
use serde_json::{Map, Value};

use crate::trace::Trace;

/// Which protocol era to start in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// MCP 2026-07-28 where the server speaks it, else 2025-11-25 (the default).
    Auto,
    /// Only the `initialize` handshake, at this protocol version (e.g. `2025-11-25`).
    Legacy(String),
}

/// What went wrong talking to the MCP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server kept answering 401/403 and the authorization library gave up; its reason.
    #[error("authorization failed ({status}): {source}")]
    Auth {
        /// The server's last status.
        status: StatusCode,
        /// What the library ran into.
        #[source]
        source: AuthError,
    },
    /// An HTTP error status other than an authorization failure.
    #[error("the server answered {status}")]
    Status {
        /// The status.
        status: StatusCode,
    },
    /// A JSON-RPC error response.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc {
        /// The error code.
        code: i32,
        /// The error message.
        message: String,
    },
    /// Anything else (transport, protocol), with rmcp's error as the source.
    #[error("{context}")]
    Other {
        /// What was being done.
        context: &'static str,
        /// rmcp's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The client was used before [`McpClient::initialize`].
    #[error("not connected")]
    NotConnected,
}

/// The server, as the connection found it.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `serverInfo.name` (empty if not given).
    pub name: String,
    /// `serverInfo.version`.
    pub version: String,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// Whether this is the 2025-11-25 era (an `initialize` handshake, usually a session).
    pub legacy: bool,
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
    /// Its input schema, as the server sent it.
    pub input_schema: Value,
}

/// Answers the server's requests and notifications.
#[derive(Debug, Clone)]
pub struct Handler {
    name: String,
    accept_elicitations: bool,
    print: bool,
    /// The `initialize` protocol version (2025-11-25 era only).
    version: Option<ProtocolVersion>,
}

impl Handler {
    /// A handler for a client called `name`. With `accept_elicitations`, an elicitation is
    /// accepted with the schema's defaults (a headless run or the conformance suite); otherwise
    /// declined (an example has no form to show). With `print`, what arrives is printed.
    #[must_use]
    pub fn new(name: &str, accept_elicitations: bool, print: bool) -> Self {
        Self {
            name: name.to_owned(),
            accept_elicitations,
            print,
            version: None,
        }
    }
}

/// The content that accepts an elicitation form: each property's `default`, else a value of its
/// type (SEP-1034: defaults applied to omitted fields).
#[must_use]
pub fn default_content(schema: &Value) -> Value {
    let mut content = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let value = property.get("default").cloned().or_else(|| {
                if let Some(first) = property
                    .get("enum")
                    .or_else(|| property.get("oneOf"))
                    .and_then(Value::as_array)
                    .and_then(|v| v.first())
                {
                    return Some(first.get("const").cloned().unwrap_or_else(|| first.clone()));
                }
                match property.get("type").and_then(Value::as_str) {
                    Some("boolean") => Some(Value::Bool(true)),
                    Some("string") => Some(Value::from("")),
                    Some("number" | "integer") => {
                        Some(property.get("minimum").cloned().unwrap_or(Value::from(0)))
                    }
                    _ => None,
                }
            });
            if let Some(value) = value {
                content.insert(name.clone(), value);
            }
        }
    }
    Value::Object(content)
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let capabilities: ClientCapabilities = if self.accept_elicitations {
            serde_json::from_value(serde_json::json!({"elicitation": {"form": {}}}))
                .unwrap_or_default()
        } else {
            ClientCapabilities::default()
        };
        let config = ClientConfig::new(
            capabilities,
            Implementation::new(self.name.clone(), env!("CARGO_PKG_VERSION")),
        );
        match &self.version {
            Some(version) => config.with_protocol_version(version.clone()),
            None => config,
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        if !self.accept_elicitations {
            if self.print {
                println!("  server asks: {message} (declined)");
            }
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        }
        let schema = serde_json::to_value(&requested_schema).unwrap_or_default();
        let content = default_content(&schema);
        if self.print {
            println!("  server asks: {message} → accepted with {content}");
        }
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(content))
    }

    // Logging is deprecated in 2026-07-28 (SEP-2577), but 2025-11-25 servers still send it.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if self.print {
            let level = serde_json::to_value(params.level).unwrap_or_default();
            println!(
                "  server log [{}]: {}",
                level.as_str().unwrap_or("?"),
                params.data
            );
        }
    }
}

/// An MCP client session over Streamable HTTP: rmcp's client, authorized by `mcp-auth-client`.
pub struct McpClient {
    url: String,
    http: McpAuthClient<Trace>,
    era: Era,
    handler: Handler,
    running: Option<RunningService<RoleClient, Handler>>,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("url", &self.url)
            .field("era", &self.era)
            .finish_non_exhaustive()
    }
}

impl McpClient {
    /// A client for the MCP endpoint `url`, sending `credentials` (a
    /// [`TokenManager`](mcp_auth_client::TokenManager) converts), in [`Era::Auto`], printing
    /// nothing.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(url: &str, credentials: impl Into<Credentials>) -> Result<Self, Error> {
        Self::with_options(
            url,
            credentials,
            Era::Auto,
            Handler::new(crate::CLIENT_NAME, false, false),
            false,
        )
    }

    /// A client with every option: the era, the handler, and whether each HTTP exchange is
    /// printed.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn with_options(
        url: &str,
        credentials: impl Into<Credentials>,
        era: Era,
        handler: Handler,
        trace: bool,
    ) -> Result<Self, Error> {
        let inner = Trace::new(trace).map_err(|e| Error::Other {
            context: "the HTTP client could not be built",
            source: Box::new(e),
        })?;
        Ok(Self {
            url: url.to_owned(),
            http: McpAuthClient::with_client(inner, credentials),
            era,
            handler,
            running: None,
        })
    }

    /// Connects: `server/discover` or `initialize` (authorizing as the server asks).
    ///
    /// # Errors
    /// [`Error::Auth`] when authorization failed, else the server's or the transport's error.
    pub async fn initialize(&mut self, client_name: &str) -> Result<ServerInfo, Error> {
        self.handler.name = client_name.to_owned();
        let transport = StreamableHttpClientTransport::with_client(
            self.http.clone(),
            StreamableHttpClientTransportConfig::with_uri(self.url.as_str()),
        );
        let mut handler = self.handler.clone();
        let lifecycle = match &self.era {
            Era::Auto => ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
            Era::Legacy(version) => {
                handler.version = serde_json::from_value(Value::from(version.as_str())).ok();
                ClientLifecycleMode::Initialize
            }
        };
        let running = handler
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .map_err(|e| self.init_error(e))?;
        self.connected(running)
    }

    fn connected(&mut self, running: RunningService<RoleClient, Handler>) -> Result<ServerInfo, Error> {
        let info = running.peer_info().ok_or(Error::NotConnected)?;
        let server = ServerInfo {
            name: info
                .server_info
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_default(),
            version: info
                .server_info
                .as_ref()
                .map(|i| i.version.clone())
                .unwrap_or_default(),
            protocol_version: info.protocol_version.to_string(),
            legacy: info.protocol_version.has_initialize(),
            instructions: info.instructions.clone(),
        };
        self.running = Some(running);
        Ok(server)
    }

    fn running(&self) -> Result<&RunningService<RoleClient, Handler>, Error> {
        self.running.as_ref().ok_or(Error::NotConnected)
    }

    /// `tools/list`, every page.
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn list_tools(&mut self) -> Result<Vec<Tool>, Error> {
        let tools = self
            .running()?
            .list_all_tools()
            .await
            .map_err(|e| self.service_error(e, "tools/list failed"))?;
        Ok(tools
            .into_iter()
            .map(|t| Tool {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect())
    }

    /// `tools/call` (through any `input_required` rounds); the result as JSON.
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn call_tool(&mut self, name: &str, arguments: Map<String, Value>) -> Result<Value, Error> {
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        let result = self
            .running()?
            .call_tool(params)
            .await
            .map_err(|e| self.service_error(e, "tools/call failed"))?;
        serde_json::to_value(result).map_err(|e| Error::Other {
            context: "the tool result could not be read",
            source: Box::new(e),
        })
    }

    /// `resources/list` then `resources/read` of each; (uri, number of contents).
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn read_resources(&mut self) -> Result<Vec<(String, usize)>, Error> {
        let running = self.running()?;
        let resources = running
            .list_all_resources()
            .await
            .map_err(|e| self.service_error(e, "resources/list failed"))?;
        let mut read = Vec::new();
        for resource in resources {
            let uri = resource.uri.clone();
            let result = running
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .map_err(|e| self.service_error(e, "resources/read failed"))?;
            read.push((uri, result.contents.len()));
        }
        Ok(read)
    }

    /// `prompts/list` then `prompts/get` of each (arguments from their names); (name, messages).
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn get_prompts(&mut self) -> Result<Vec<(String, usize)>, Error> {
        let running = self.running()?;
        let prompts = running
            .list_all_prompts()
            .await
            .map_err(|e| self.service_error(e, "prompts/list failed"))?;
        let mut got = Vec::new();
        for prompt in prompts {
            let mut params = GetPromptRequestParams::new(prompt.name.clone());
            let arguments: Map<String, Value> = prompt
                .arguments
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), Value::from(format!("example {}", a.name))))
                .collect();
            if !arguments.is_empty() {
                params.arguments = Some(arguments);
            }
            let result = running
                .get_prompt(params)
                .await
                .map_err(|e| self.service_error(e, "prompts/get failed"))?;
            got.push((prompt.name, result.messages.len()));
        }
        Ok(got)
    }

    /// Ends the session (a 2025-11-25 session is deleted with `DELETE`).
    ///
    /// # Errors
    /// When the connection had already failed.
    pub async fn close(&mut self) -> Result<(), Error> {
        if let Some(running) = self.running.take() {
            running.cancel().await.map_err(|e| Error::Other {
                context: "closing the connection failed",
                source: Box::new(e),
            })?;
        }
        Ok(())
    }

    /// Why the authorization library last gave up, if it did.
    #[must_use]
    pub fn auth_error(&self) -> Option<AuthError> {
        self.http.last_error()
    }

    fn init_error(&self, error: ClientInitializeError) -> Error {
        if let ClientInitializeError::JsonRpcError(data) = &error {
            return Error::JsonRpc {
                code: data.code.0,
                message: data.message.to_string(),
            };
        }
        self.classify(Box::new(error), "connecting failed")
    }

    fn service_error(&self, error: ServiceError, context: &'static str) -> Error {
        if let ServiceError::McpError(data) = &error {
            return Error::JsonRpc {
                code: data.code.0,
                message: data.message.to_string(),
            };
        }
        self.classify(Box::new(error), context)
    }

    /// Finds the HTTP status in rmcp's error chain: an authorization failure (with the library's
    /// reason), another status, or neither.
    fn classify(&self, error: Box<dyn StdError + Send + Sync>, context: &'static str) -> Error {
        let mut status = None;
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error.as_ref());
        while let Some(e) = cause {
            if let Some(http) = e.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
                status = match http {
                    StreamableHttpError::AuthRequired(_) => Some(StatusCode::UNAUTHORIZED),
                    StreamableHttpError::InsufficientScope(_) => Some(StatusCode::FORBIDDEN),
                    StreamableHttpError::HttpStatus(s) => StatusCode::from_u16(s.status).ok(),
                    StreamableHttpError::Client(c) => c.status().map(|s| {
                        StatusCode::from_u16(s.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
                    }),
                    StreamableHttpError::UnexpectedServerResponse(text) => text
                        .strip_prefix("HTTP ")
                        .and_then(|t| t.get(..3))
                        .and_then(|code| code.parse::<u16>().ok())
                        .and_then(|code| StatusCode::from_u16(code).ok()),
                    _ => None,
                };
                break;
            }
            // Wrapped by rmcp's worker in a way that cannot be downcast: its message says.
            let text = e.to_string();
            if text.contains("Auth required") {
                status = Some(StatusCode::UNAUTHORIZED);
            } else if text.contains("Insufficient scope") {
                status = Some(StatusCode::FORBIDDEN);
            }
            cause = e.source();
        }
        match (status, self.http.last_error()) {
            (Some(status), Some(source))
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) =>
            {
                Error::Auth { status, source }
            }
            (Some(status), _) => Error::Status { status },
            (None, _) => Error::Other {
                context,
                source: error,
            },
        }
    }
}
