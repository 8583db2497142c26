//! rmcp's MCP client over `McpAuthClient`, against rmcp's own MCP server behind the loopback fake
//! authorization server: both protocol eras, step-up, the retry limit, refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{collections::HashMap, sync::atomic::Ordering};

use axum::Router;
use mcp_auth_client::{AuthErrorKind, TokenManager, rmcp::McpAuthClient};
use rmcp::{
    ClientHandler, ErrorData, ServerHandler,
    handler::server::router::tool::ToolRouter,
    model::{
        CallToolRequestParams, CallToolResult, ClientConfig, ContentBlock, ProtocolVersion,
        ServerCapabilities, ServerConfig,
    },
    service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService},
    tool, tool_handler, tool_router,
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};
use support::{Fake, Knobs, clock};

#[derive(Debug, Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    #[tool(description = "Says hello.")]
    async fn hello(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("hello")]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn mcp_app() -> Router {
    let service = StreamableHttpService::new(
        || {
            Ok(Tools {
                tool_router: Tools::tool_router(),
            })
        },
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default().with_allowed_hosts(Vec::<String>::new()),
    );
    Router::new().route_service("/mcp", service)
}

#[derive(Debug, Clone, Default)]
struct Client;

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

async fn connect(
    manager: &TokenManager,
    url: &str,
    lifecycle: ClientLifecycleMode,
) -> (RunningService<RoleClient, Client>, McpAuthClient) {
    let http = McpAuthClient::new(manager.clone()).unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        http.clone(),
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let running = Client
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap();
    (running, http)
}

fn auto() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    }
}

fn step_up_knobs() -> Knobs {
    Knobs {
        challenge_scope: Some("mcp:tools".into()),
        required: HashMap::from([(
            "tools/call".to_owned(),
            vec!["mcp:tools".to_owned(), "mcp:admin".to_owned()],
        )]),
        ..Knobs::default()
    }
}

async fn authorizes_and_steps_up(lifecycle: ClientLifecycleMode, era: ProtocolVersion) {
    let fake = Fake::start_with_mcp(step_up_knobs(), mcp_app()).await;
    let manager = fake.manager(&clock()).build().unwrap();
    let (client, http) = connect(&manager, &fake.mcp_url(), lifecycle).await;
    assert_eq!(client.peer_info().unwrap().protocol_version, era);

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 1);
    let result = client
        .call_tool(CallToolRequestParams::new("hello"))
        .await
        .unwrap();
    assert_eq!(
        result.content[0].as_text().map(|t| t.text.as_str()),
        Some("hello")
    );
    assert!(http.last_error().is_none());
    client.cancel().await.unwrap();

    let scopes: Vec<_> = fake
        .authorize_calls()
        .iter()
        .map(|a| a["scope"].clone())
        .collect();
    assert_eq!(
        scopes,
        ["mcp:tools", "mcp:tools mcp:admin"],
        "the challenged scope, then the union on step-up"
    );
    assert_eq!(fake.registrations().len(), 1);
    // Only the very first request went out without a token; every later one carried it.
    let log = fake.log();
    let mcp_requests = log.iter().filter(|l| l.ends_with(" /mcp")).count();
    assert!(mcp_requests >= 5, "{log:?}");
    assert_eq!(fake.anonymous_mcp.load(Ordering::SeqCst), 1, "{log:?}");
}

#[tokio::test]
async fn an_rmcp_client_speaks_2026_07_28_with_authorization_and_step_up() {
    authorizes_and_steps_up(auto(), ProtocolVersion::V_2026_07_28).await;
}

#[tokio::test]
async fn an_rmcp_client_speaks_2025_11_25_with_authorization_and_step_up() {
    authorizes_and_steps_up(
        ClientLifecycleMode::Initialize,
        ProtocolVersion::V_2025_11_25,
    )
    .await;
}

#[tokio::test]
async fn step_up_is_bounded_and_the_reason_is_kept() {
    let fake = Fake::start_with_mcp(
        Knobs {
            challenge_scope: Some("mcp:tools".into()),
            ..Knobs::default()
        },
        mcp_app(),
    )
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let (client, http) = connect(&manager, &fake.mcp_url(), auto()).await;
    fake.set(|k| k.always_403 = true);
    let error = client
        .call_tool(CallToolRequestParams::new("hello"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("scope"), "{error}");
    assert_eq!(
        http.last_error().map(|e| e.kind()),
        Some(AuthErrorKind::StepUpLimit)
    );
    // One authorization at connect, then three step-ups: the limit (SPEC C-30).
    assert_eq!(fake.authorize_calls().len(), 4);
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_refusal_reaches_rmcp_as_the_servers_401() {
    let fake = Fake::start_with_mcp(
        Knobs {
            prm_resource: Some("https://elsewhere.example.com/mcp".into()),
            ..Knobs::default()
        },
        mcp_app(),
    )
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let http = McpAuthClient::new(manager).unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        http.clone(),
        StreamableHttpClientTransportConfig::with_uri(fake.mcp_url()),
    );
    let error = Client
        .serve_with_lifecycle(transport, auto())
        .await
        .unwrap_err();
    assert!(error.is_authorization_required(), "{error}");
    assert_eq!(
        http.last_error().map(|e| e.kind()),
        Some(AuthErrorKind::ResourceMismatch)
    );
    assert!(fake.authorize_calls().is_empty());
}

#[tokio::test]
async fn tokens_are_refreshed_under_rmcp_ahead_of_expiry_and_after_a_revocation() {
    let fake = Fake::start_with_mcp(Knobs::default(), mcp_app()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    let (client, http) = connect(&manager, &fake.mcp_url(), auto()).await;
    let grant_types = || {
        fake.token_calls()
            .iter()
            .map(|c| c.form["grant_type"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(grant_types(), ["authorization_code"]);

    // Close to expiry: the next request refreshes first.
    clock.advance(std::time::Duration::from_secs(3590));
    client.list_all_tools().await.unwrap();
    assert_eq!(grant_types(), ["authorization_code", "refresh_token"]);

    // The server forgets the token: its 401 leads to a refresh and a retry, not a new login.
    fake.revoke_all_access_tokens();
    client
        .call_tool(CallToolRequestParams::new("hello"))
        .await
        .unwrap();
    assert_eq!(
        grant_types(),
        ["authorization_code", "refresh_token", "refresh_token"]
    );
    assert_eq!(fake.authorize_calls().len(), 1);
    assert!(http.last_error().is_none());
    client.cancel().await.unwrap();
}
