//! `Auth` and `RequireScope<S>` as rmcp tool parameters (feature `rmcp`): an rmcp Streamable HTTP
//! server (stateless, JSON responses) behind `BearerAuthLayer`, called with tokens that do and do
//! not carry the tool's scope.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::body::Body;
use http::{Request, header::AUTHORIZATION};
use http_body_util::BodyExt as _;
use mcp_auth_resource::{
    Auth, AuthInfo, BearerAuthLayer, ProtectedResource, RequireScope, TokenVerifier, VerifyError,
    VerifyErrorKind, scopes,
};
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::router::tool::ToolRouter,
    model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};

scopes!(pub Admin = "mcp:admin");

/// The token names its scopes without the `mcp:` prefix, joined by `.` (`tools.admin` grants
/// `mcp:tools mcp:admin`); the subject is always alice.
#[derive(Debug, Clone)]
struct ScopesAreTheToken;

impl TokenVerifier for ScopesAreTheToken {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let scopes = token
            .split('.')
            .map(|s| format!("mcp:{s}"))
            .collect::<Vec<_>>()
            .join(" ")
            .parse()
            .map_err(|_| VerifyError::from(VerifyErrorKind::Malformed))?;
        Ok(AuthInfo::builder().subject("alice").scopes(scopes).build())
    }
}

#[derive(Debug, Clone)]
struct Server {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Server {
    #[tool(description = "Who is calling.")]
    async fn whoami(&self, auth: Auth) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(
            auth.subject().unwrap_or("?").to_owned(),
        )]))
    }

    #[tool(description = "Needs mcp:admin.")]
    async fn admin(&self, auth: RequireScope<Admin>) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "admin for {}",
            auth.subject().unwrap_or("?")
        ))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Calls `tool` with `token` and returns the JSON-RPC response.
async fn call(tool: &str, token: &str) -> Value {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let mcp = StreamableHttpService::new(
        || {
            Ok(Server {
                tool_router: Server::tool_router(),
            })
        },
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(Vec::<String>::new())
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let app = ServiceBuilder::new()
        .layer(BearerAuthLayer::new(ScopesAreTheToken, resource))
        .service(mcp);
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": tool, "arguments": {} },
    });
    let request = Request::post("/mcp")
        .header("host", "mcp.example.com")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(status, 200, "{text}");
    // JSON, or one SSE event whose data is the response.
    let json = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .map_or(text.as_str(), str::trim);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn auth_is_a_tool_parameter() {
    let response = call("whoami", "tools").await;
    assert_eq!(
        response["result"]["content"][0]["text"], "alice",
        "{response}"
    );
}

#[tokio::test]
async fn require_scope_passes_with_the_scope() {
    let response = call("admin", "tools.admin").await;
    assert_eq!(
        response["result"]["content"][0]["text"], "admin for alice",
        "{response}"
    );
}

#[tokio::test]
async fn require_scope_without_the_scope_is_an_mcp_error_naming_it() {
    let response = call("admin", "tools").await;
    let error = &response["error"];
    assert_eq!(error["code"], -32600, "{response}");
    assert_eq!(
        error["message"],
        "insufficient_scope: this operation requires the scope \"mcp:admin\""
    );
    assert_eq!(
        error["data"],
        json!({
            "error": "insufficient_scope",
            "required_scope": "mcp:admin",
            "scope": "mcp:tools mcp:admin",
        })
    );
}

/// The whole documented stack (bearer, session binding, tool scopes) in front of a dual-era rmcp
/// server, called in both eras.
mod dual_era {
    use mcp_auth_resource::{SessionBindingLayer, ToolScopesLayer};

    use super::*;

    async fn send(token: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .scopes_supported("mcp:tools".parse().unwrap())
            .build()
            .unwrap();
        let mcp = StreamableHttpService::new(
            || {
                Ok(Server {
                    tool_router: Server::tool_router(),
                })
            },
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default()
                .with_allowed_hosts(Vec::<String>::new())
                .with_json_response(true),
        );
        let app = ServiceBuilder::new()
            .layer(BearerAuthLayer::new(ScopesAreTheToken, resource.clone()))
            .layer(SessionBindingLayer::new())
            .layer(ToolScopesLayer::new(resource).tool(
                "admin",
                "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
            ))
            .service(mcp);
        let mut request = Request::post("/mcp")
            .header("host", "mcp.example.com")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // JSON, or SSE events (a priming event with empty data first) whose last data is it.
        let json = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:").map(str::trim))
            .rfind(|data| !data.is_empty())
            .unwrap_or(text.as_str());
        let value = serde_json::from_str(json).unwrap_or_else(|_| Value::String(text.clone()));
        (status, value)
    }

    fn modern_call(tool: &str) -> Value {
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": tool, "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": {}
                }
            }
        })
    }

    #[tokio::test]
    async fn a_2026_call_with_true_headers_and_a_stale_session_id_is_served_by_rmcp() {
        let (status, response) = send(
            "tools.admin",
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "admin"),
                ("mcp-session-id", "stale-from-2025"),
            ],
            &modern_call("admin"),
        )
        .await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            response["result"]["content"][0]["text"], "admin for alice",
            "{response}"
        );
    }

    #[tokio::test]
    async fn a_2026_call_with_a_lying_mcp_name_never_reaches_rmcp() {
        let (status, response) = send(
            "tools.admin",
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "whoami"),
            ],
            &modern_call("admin"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(response["error"]["code"], -32020, "{response}");
        assert_eq!(response["id"], 1);
    }

    #[tokio::test]
    async fn a_2025_initialize_still_opens_a_session() {
        let initialize = |version: &str| {
            json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            })
        };
        let (status, response) = send("tools", &[], &initialize("2025-11-25")).await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            response["result"]["protocolVersion"], "2025-11-25",
            "{response}"
        );
        // A dual-era client asking for 2026-07-28 in its `initialize` (header and params):
        // `initialize` is 2025-11-25 whatever it asks for and needs no Mcp-Method; the server
        // answers with the newest revision that has the handshake.
        let (status, response) = send(
            "tools",
            &[("mcp-protocol-version", "2026-07-28")],
            &initialize("2026-07-28"),
        )
        .await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            response["result"]["protocolVersion"], "2025-11-25",
            "{response}"
        );
    }
}
