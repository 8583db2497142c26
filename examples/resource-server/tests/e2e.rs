//! The example end to end over real HTTP on loopback: an authorization server's metadata and JWKS
//! (the resource crate's `FakeIdp`), the example app, and MCP JSON-RPC calls with real tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../../crates/mcp-auth-resource/tests/support/mod.rs"]
mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Form, Json, Router, routing::post};
use example_resource_server::{Config, app};
use serde_json::{Value, json};
use support::FakeIdp;
use tokio::net::TcpListener;

fn now() -> u64 {
    #[allow(clippy::disallowed_methods)] // the example verifies with the real clock
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct App {
    base: String,
    resource: String,
    http: reqwest::Client,
}

async fn start_app(issuer: &str, introspection_url: Option<String>) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let config = Config {
        addr,
        resource: format!("http://{addr}/mcp"),
        issuer: issuer.to_owned(),
        introspection_url,
        introspection_client: Some(("rs-client".to_owned(), "rs-secret".to_owned())),
        accept_jwt_typ: false,
        introspection_cache_ttl: None,
        accept_audience: None,
    };
    let router = app(&config).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    App {
        base: format!("http://{addr}"),
        resource: config.resource,
        http: reqwest::Client::new(),
    }
}

impl App {
    /// POSTs one JSON-RPC message to /mcp; returns the status, the WWW-Authenticate header, the
    /// session id and the JSON-RPC response (read from the SSE stream or the JSON body).
    async fn rpc(
        &self,
        token: &str,
        session: Option<&str>,
        body: Value,
    ) -> (u16, Option<String>, Option<String>, Option<Value>) {
        let mut req = self
            .http
            .post(format!("{}/mcp", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(body.to_string());
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let session = resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let json = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
            .or_else(|| serde_json::from_str(&text).ok());
        (status, challenge, session, json)
    }

    async fn initialize(&self, token: &str) -> String {
        let (status, _, session, _) = self
            .rpc(
                token,
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "e2e", "version": "0"}}}),
            )
            .await;
        assert_eq!(status, 200);
        let session = session.expect("a session id");
        let (status, ..) = self
            .rpc(
                token,
                Some(&session),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(status, 202);
        session
    }

    async fn call(
        &self,
        token: &str,
        session: &str,
        tool: &str,
    ) -> (u16, Option<String>, Option<Value>) {
        let (status, challenge, _, json) = self
            .rpc(
                token,
                Some(session),
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": {}}}),
            )
            .await;
        (status, challenge, json)
    }
}

fn tool_text(json: &Value) -> String {
    json["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn jwt_mode_serves_tools_and_steps_up_for_admin() {
    let idp = FakeIdp::start().await;
    let app = start_app(idp.issuer(), None).await;
    let key = idp.key("es-1");
    let token = |scope: &str| {
        idp.token(&app.resource)
            .claim("scope", scope)
            .claim("iat", now())
            .claim("exp", now() + 300)
            .sign(&key)
    };

    // Discovery: the metadata is public and names the issuer and the minimal scope.
    let prm: Value = serde_json::from_str(
        &app.http
            .get(format!(
                "{}/.well-known/oauth-protected-resource/mcp",
                app.base
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(prm["resource"], app.resource);
    assert_eq!(prm["authorization_servers"], json!([idp.issuer()]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:tools"]));

    // No token: 401 pointing at the metadata.
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        format!(r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#, app.base)
            .as_str()
    );

    let basic = token("mcp:tools");
    let session = app.initialize(&basic).await;
    let (status, _, json) = app.call(&basic, &session, "whoami").await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(&tool_text(&json.unwrap())).unwrap();
    assert_eq!(
        who,
        json!({"subject": "alice", "client_id": "client-1", "scopes": ["mcp:tools"]})
    );

    // admin_tool without mcp:admin: an HTTP 403 step-up challenge keeping the granted scope.
    let (status, challenge, _) = app.call(&basic, &session, "admin_tool").await;
    assert_eq!(status, 403);
    assert_eq!(
        challenge.unwrap(),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
            app.base
        )
    );

    // After step-up the same session works with the new token.
    let admin = token("mcp:tools mcp:admin");
    let (status, _, json) = app.call(&admin, &session, "admin_tool").await;
    assert_eq!(status, 200);
    assert_eq!(tool_text(&json.unwrap()), "admin operation done for alice");

    // A token for another resource is refused even though the signature is good.
    let other = idp
        .token("http://127.0.0.1:1/mcp")
        .claim("iat", now())
        .claim("exp", now() + 300)
        .sign(&key);
    let (status, challenge, _) = app.call(&other, &session, "whoami").await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer error="invalid_token""#)
    );
    // One JWKS fetch served all of it.
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn another_user_with_a_valid_token_cannot_use_alices_session() {
    let idp = FakeIdp::start().await;
    let app = start_app(idp.issuer(), None).await;
    let key = idp.key("es-1");
    let token = |sub: &str| {
        idp.token(&app.resource)
            .claim("sub", sub)
            .claim("scope", "mcp:tools")
            .claim("iat", now())
            .claim("exp", now() + 300)
            .sign(&key)
    };
    let alice = token("alice");
    let mallory = token("mallory");

    let session = app.initialize(&alice).await;
    // Mallory's token is valid, but the session id she presents is Alice's: 404, as for an
    // unknown session, and rmcp never sees the call.
    let (status, challenge, json) = app.call(&mallory, &session, "whoami").await;
    assert_eq!(status, 404);
    assert_eq!(challenge, None);
    assert_eq!(json, None);

    // Alice's session is unaffected, and Mallory can open her own.
    let (status, _, json) = app.call(&alice, &session, "whoami").await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(&tool_text(&json.unwrap())).unwrap();
    assert_eq!(who["subject"], "alice");
    let own = app.initialize(&mallory).await;
    let (status, _, json) = app.call(&mallory, &own, "whoami").await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(&tool_text(&json.unwrap())).unwrap();
    assert_eq!(who["subject"], "mallory");
}

#[tokio::test]
async fn dns_rebinding_request_is_refused() {
    let idp = FakeIdp::start().await;
    let app = start_app(idp.issuer(), None).await;
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn introspection_mode_checks_opaque_tokens() {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let introspect_addr = listener.local_addr().unwrap();
    let issuer = format!("http://{introspect_addr}");
    let resource = Arc::new(std::sync::Mutex::new(String::new()));
    let router = Router::new().route(
        "/introspect",
        post({
            let hits = hits.clone();
            let resource = resource.clone();
            let issuer = issuer.clone();
            move |headers: axum::http::HeaderMap,
                  Form(form): Form<std::collections::HashMap<String, String>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                // rs-client:rs-secret, HTTP Basic.
                assert_eq!(
                    headers["authorization"],
                    "Basic cnMtY2xpZW50OnJzLXNlY3JldA=="
                );
                let aud = resource.lock().unwrap().clone();
                Json(match form.get("token").map(String::as_str) {
                    Some("opaque-good") => json!({
                        "active": true, "sub": "bob", "client_id": "cli", "scope": "mcp:tools",
                        "aud": aud, "iss": issuer, "exp": now() + 300,
                    }),
                    _ => json!({"active": false}),
                })
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = start_app(
        &issuer,
        Some(format!("http://{introspect_addr}/introspect")),
    )
    .await;
    *resource.lock().unwrap() = app.resource.clone();

    let session = app.initialize("opaque-good").await;
    let (status, _, json) = app.call("opaque-good", &session, "whoami").await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(&tool_text(&json.unwrap())).unwrap();
    assert_eq!(who["subject"], "bob");
    let (status, challenge, _) = app.call("opaque-bad", &session, "whoami").await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
    // initialize, notifications/initialized, whoami: one introspection for the good token.
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}
