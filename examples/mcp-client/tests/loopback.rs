//! Runs the `example-mcp-client` binary against one loopback server that is both a small
//! authorization server (metadata, registration, an `/authorize` that approves at once, a token
//! endpoint checking PKCE) and a protected MCP server (JSON and SSE answers, a session id, a tool
//! that needs a step-up scope). It checks what the server saw, and that no token reaches the
//! client's output.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::HashMap,
    process::Output,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use serde_json::{Value, json};

/// Every token this server issues contains it; the client must never print it.
const TOKEN_MARK: &str = "SECRET-TOKEN-VALUE";

#[derive(Default)]
struct Seen {
    /// The `scope` of each authorization request (`None` when absent).
    authorizations: Vec<Option<String>>,
    registrations: usize,
    /// code → (PKCE challenge, scope)
    codes: HashMap<String, (String, String)>,
    /// token → granted scope
    tokens: HashMap<String, String>,
    /// MCP requests that carried a valid token, by JSON-RPC method (or `DELETE`).
    authorized_calls: Vec<String>,
    /// Requests after `initialize` without the session id or the protocol version header.
    missing_headers: Vec<String>,
    /// `server/discover` probes (MCP 2026-07-28), which this 2025-11-25 server does not know.
    discover_probes: usize,
}

#[derive(Clone)]
struct Server {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = Server {
        base,
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/oauth-protected-resource/mcp", get(prm))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/mcp", post(mcp).delete(mcp_delete))
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    server
}

async fn prm(State(s): State<Server>) -> Json<Value> {
    Json(json!({
        "resource": format!("{}/mcp", s.base),
        "authorization_servers": [s.base],
        "scopes_supported": ["mcp:tools"],
    }))
}

async fn as_metadata(State(s): State<Server>) -> Json<Value> {
    Json(json!({
        "issuer": s.base,
        "authorization_endpoint": format!("{}/authorize", s.base),
        "token_endpoint": format!("{}/token", s.base),
        "registration_endpoint": format!("{}/register", s.base),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
}

async fn register(State(s): State<Server>, Json(body): Json<Value>) -> Response {
    s.seen().registrations += 1;
    (
        StatusCode::CREATED,
        Json(json!({
            "client_id": "loopback-client",
            "token_endpoint_auth_method": "none",
            "redirect_uris": body["redirect_uris"],
        })),
    )
        .into_response()
}

async fn authorize(State(s): State<Server>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut seen = s.seen();
    seen.authorizations.push(q.get("scope").cloned());
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert_eq!(q.get("resource"), Some(&format!("{}/mcp", s.base)));
    let code = format!("code-{}", seen.authorizations.len());
    seen.codes.insert(
        code.clone(),
        (
            q["code_challenge"].clone(),
            q.get("scope").cloned().unwrap_or_default(),
        ),
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .into_response()
}

async fn token(State(s): State<Server>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut seen = s.seen();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("authorization_code")
    );
    let Some((challenge, scope)) = form.get("code").and_then(|c| seen.codes.remove(c)) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = CodeVerifier::new(form["code_verifier"].clone()).unwrap();
    assert!(CodeChallenge::new(challenge).unwrap().verify(&verifier));
    let token = format!("{TOKEN_MARK}-{}", seen.tokens.len());
    seen.tokens.insert(token.clone(), scope.clone());
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": scope}))
        .into_response()
}

/// The granted scope of the request's bearer token, if it is one of ours.
fn granted(s: &Server, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    s.seen().tokens.get(token).cloned()
}

fn challenge(s: &Server, status: StatusCode, extra: &str) -> Response {
    let value = format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp"{extra}"#,
        s.base
    );
    (status, [(header::WWW_AUTHENTICATE, value)]).into_response()
}

async fn mcp(State(s): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    let message: Value = serde_json::from_slice(&body).unwrap();
    let method = message["method"].as_str().unwrap_or("").to_owned();
    let Some(scope) = granted(&s, &headers) else {
        return challenge(&s, StatusCode::UNAUTHORIZED, r#", scope="mcp:tools""#);
    };
    let tool = message["params"]["name"].as_str().unwrap_or("");
    if tool == "admin_tool" && !scope.split(' ').any(|s| s == "mcp:admin") {
        return challenge(
            &s,
            StatusCode::FORBIDDEN,
            r#", error="insufficient_scope", scope="mcp:tools mcp:admin""#,
        );
    }
    let id = message["id"].clone();
    if method == "server/discover" {
        s.seen().discover_probes += 1;
        return Json(json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "Method not found"}}))
        .into_response();
    }
    {
        let mut seen = s.seen();
        seen.authorized_calls.push(method.clone());
        if method != "initialize"
            && (headers
                .get("mcp-session-id")
                .is_none_or(|v| v != "session-1")
                || headers
                    .get("mcp-protocol-version")
                    .is_none_or(|v| v != "2025-11-25"))
        {
            seen.missing_headers.push(method.clone());
        }
    }
    let reply = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match method.as_str() {
        "initialize" => (
            [("mcp-session-id", "session-1")],
            Json(reply(json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "loopback-test-server", "version": "1.2.3"},
            }))),
        )
            .into_response(),
        m if m.starts_with("notifications/") => StatusCode::ACCEPTED.into_response(),
        // An SSE answer with a log notification before the response, split over CRLF lines.
        "tools/list" => {
            let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "listing tools"}});
            let result = reply(json!({"tools": [
                {"name": "whoami", "description": "Who the token belongs to",
                    "inputSchema": {"type": "object"}},
                {"name": "admin_tool", "description": "Needs mcp:admin",
                    "inputSchema": {"type": "object"}},
            ]}));
            let stream = format!(
                ": comment\r\nevent: message\r\ndata: {log}\r\n\r\nid: 7\r\ndata: {result}\r\n\r\n"
            );
            ([(header::CONTENT_TYPE, "text/event-stream")], stream).into_response()
        }
        "tools/call" => {
            let text = match tool {
                "whoami" => "you are loopback-user".to_owned(),
                "admin_tool" => format!("admin ok ({})", message["params"]["arguments"]),
                other => format!("unknown tool {other}"),
            };
            Json(reply(json!({"content": [{"type": "text", "text": text}]}))).into_response()
        }
        _ => Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}))
            .into_response(),
    }
}

async fn mcp_delete(State(s): State<Server>, headers: HeaderMap) -> Response {
    if granted(&s, &headers).is_none() {
        return challenge(&s, StatusCode::UNAUTHORIZED, "");
    }
    s.seen().authorized_calls.push("DELETE".to_owned());
    StatusCode::OK.into_response()
}

async fn client(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-mcp-client"))
        .args(args)
        .env_remove("MCP_CONFORMANCE_SCENARIO")
        .env_remove("MCP_CONFORMANCE_CONTEXT")
        .env("RUST_LOG", "mcp_auth_client=debug")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the client finished within 60 s")
        .expect("the client ran")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn authorizes_steps_up_and_calls_tools() {
    let server = start().await;
    let url = format!("{}/mcp", server.base);
    let output = client(&[
        "--headless",
        "--call",
        "whoami",
        "--call",
        "admin_tool",
        "--arg",
        "reason=audit",
        "--arg",
        "count=2",
        &url,
    ])
    .await;
    let text = text(&output);
    println!("{text}");
    assert!(output.status.success(), "{text}");
    assert!(text.contains("server loopback-test-server 1.2.3"), "{text}");
    assert!(
        text.contains("- whoami: Who the token belongs to"),
        "{text}"
    );
    assert!(
        text.contains("server log [info]: \"listing tools\""),
        "{text}"
    );
    assert!(text.contains("│ you are loopback-user"), "{text}");
    assert!(
        text.contains(r#"│ admin ok ({"count":2,"reason":"audit"})"#),
        "{text}"
    );
    assert!(!text.contains(TOKEN_MARK), "a token was printed:\n{text}");

    let seen = server.seen();
    assert_eq!(seen.registrations, 1);
    assert_eq!(
        seen.authorizations,
        [
            Some("mcp:tools".to_owned()),
            Some("mcp:tools mcp:admin".to_owned())
        ],
        "first the challenged scope, then the step-up union"
    );
    assert_eq!(
        seen.authorized_calls,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call",
            "tools/call",
            "DELETE"
        ]
    );
    assert!(
        seen.missing_headers.is_empty(),
        "{:?}",
        seen.missing_headers
    );
    assert_eq!(
        seen.discover_probes, 1,
        "one 2026-07-28 probe, then the 2025-11-25 handshake"
    );
}

#[tokio::test]
async fn a_file_store_spares_the_second_run_an_authorization() {
    let server = start().await;
    let url = format!("{}/mcp", server.base);
    let dir = std::env::temp_dir().join(format!(
        "example-mcp-client-test-{}-{}",
        std::process::id(),
        server.base.rsplit(':').next().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("tokens.json");
    let store = store.to_str().unwrap();

    for run in 0..2 {
        let output = client(&["--headless", "--store", store, "--call", "whoami", &url]).await;
        let text = text(&output);
        println!("{text}");
        assert!(output.status.success(), "run {run}: {text}");
        assert!(text.contains("│ you are loopback-user"), "{text}");
        assert!(!text.contains(TOKEN_MARK), "a token was printed:\n{text}");
    }
    let saved = std::fs::read_to_string(store).unwrap();
    assert!(saved.contains(TOKEN_MARK), "the store keeps the token");
    let seen = server.seen();
    assert_eq!(
        seen.authorizations.len(),
        1,
        "the second run used the stored token"
    );
    assert_eq!(seen.registrations, 1, "and the stored registration");
    drop(seen);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_refused_authorization_is_reported() {
    let server = start().await;
    // Not an MCP server URL the PRM names: the client must refuse to authorize.
    let url = format!("{}/mcp", server.base.replace("127.0.0.1", "localhost"));
    let output = client(&["--headless", &url]).await;
    let text = text(&output);
    println!("{text}");
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("error: authorization failed (401 Unauthorized)"),
        "{text}"
    );
    assert!(server.seen().authorizations.is_empty());
}
