//! The handlers' signatures agree with the scope table: every tool is called through rmcp
//! *without* the tool-scope layer, so only its `RequireScope<…>` parameter decides. With every
//! scope but the ones `TOOL_SCOPES` names for it, the handler refuses, naming exactly those; with
//! only those, it runs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header::AUTHORIZATION};
use example_mcp_server::{notes::Notes, scopes, tools::Tools};
use mcp_auth_resource::{
    AuthInfo, BearerAuthLayer, ProtectedResource, TokenVerifier, VerifyError, VerifyErrorKind,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};

/// The token lists its scopes, `:` written `_` and joined by `.` (`mcp_tools.notes_read`).
#[derive(Debug, Clone)]
struct ScopesAreTheToken;

impl TokenVerifier for ScopesAreTheToken {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let scopes = token
            .split('.')
            .filter(|s| !s.is_empty() && *s != "none")
            .map(|s| s.replace('_', ":"))
            .collect::<Vec<_>>()
            .join(" ")
            .parse()
            .map_err(|_| VerifyError::from(VerifyErrorKind::Malformed))?;
        Ok(AuthInfo::builder().subject("alice").scopes(scopes).build())
    }
}

fn token(scopes: &[&str]) -> String {
    if scopes.is_empty() {
        return "none".to_owned();
    }
    scopes.join(".").replace(':', "_")
}

fn arguments(tool: &str) -> Value {
    match tool {
        "get_note" | "delete_note" => json!({ "id": 1 }),
        "add_note" => json!({ "text": "a note" }),
        _ => json!({}),
    }
}

/// `tools/call tool` with a token granting `scopes`: the JSON-RPC response.
async fn call(tool: &str, scopes: &[&str]) -> Value {
    let resource = ProtectedResource::builder("http://127.0.0.1:8080/mcp")
        .authorization_server("http://127.0.0.1:8080")
        .build()
        .unwrap();
    let notes = Notes::new();
    let mcp = StreamableHttpService::new(
        move || Ok(Tools::new(notes.clone())),
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
        "params": { "name": tool, "arguments": arguments(tool) },
    });
    let request = Request::post("/mcp")
        .header("host", "127.0.0.1:8080")
        .header(AUTHORIZATION, format!("Bearer {}", token(scopes)))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), app.oneshot(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200, "{tool}");
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .map_or(text.as_str(), str::trim);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn every_handler_requires_exactly_the_scopes_of_its_table_row() {
    let all: Vec<&str> = scopes::ALL_SCOPES
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    for (tool, required) in scopes::TOOL_SCOPES {
        let others: Vec<&str> = all
            .iter()
            .copied()
            .filter(|s| !required.contains(s))
            .collect();
        let refused = call(tool, &others).await;
        assert_eq!(refused["error"]["code"], -32600, "{tool}: {refused}");
        assert_eq!(
            refused["error"]["data"]["required_scope"],
            required.join(" "),
            "{tool}: the handler's RequireScope names another scope than the table: {refused}"
        );

        let allowed = call(tool, required).await;
        assert!(
            allowed.get("error").is_none(),
            "{tool} with only {required:?}: {allowed}"
        );
        if *tool == "upstream_profile" {
            // It ran: without --upstream-oidc it says so in a tool error.
            assert!(
                allowed["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("--upstream-oidc")),
                "{allowed}"
            );
        } else {
            assert_ne!(allowed["result"]["isError"], true, "{tool}: {allowed}");
        }
    }
}
