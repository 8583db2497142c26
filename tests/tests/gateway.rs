//! `mcp-auth-gateway` in front of MCP servers nobody here wrote, on loopback, knowing nothing of
//! OAuth: the official Python SDK's `MCPServer` (FastMCP; `tests/python-client/upstream_server.py`,
//! PyPI `mcp` pinned in `tests/python-client/requirements.txt`), also on a unix socket, and the
//! official TypeScript SDK's `McpServer` (`tests/sdk-client/upstream-server.mjs`, npm
//! `@modelcontextprotocol/sdk` pinned in `tests/sdk-client/package-lock.json`).
//!
//! - `example-mcp-client`'s client (rmcp over `mcp-auth-client`) and the official Python SDK
//!   client (`tests/python-client/gateway_client.py`, both protocol eras) connect with only the
//!   gateway's URL: they discover, register, authorize (auto-approve), list tools (the
//!   privileged `wipe` hidden), call one, step up on the gateway's 403 for `wipe`, refresh.
//! - A tool that reports progress: the notifications reach the client while the call runs, each
//!   as it is sent (timed at the client).
//! - Identity: the plain headers and the gateway-signed JWT reach the upstream and are checked
//!   there (the JWT with PyJWT against the gateway's JWKS, as the README shows); the client's own
//!   token never does.
//! - Upstream down, slow, or answering garbage: the client gets a JSON-RPC error, the gateway
//!   keeps serving.
//! - Graceful shutdown: an open stream runs on through the grace period, then is cut.
//!
//! The Python tests need the venv `cargo xtask setup` installs into `.tools/python-client`, the
//! TypeScript ones Node and `.tools/sdk-client`: without them they say they were skipped, or fail
//! when `CI` is set or `MCP_AUTH_REQUIRE_PYTHON=1` / `MCP_AUTH_REQUIRE_NODE=1` (which
//! `cargo xtask test` sets). The failure and shutdown tests need nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use example_mcp_client::mcp::McpClient;
use mcp_auth_client::{HeadlessBrowser, TokenManager};
use mcp_auth_core::{Clock as _, ManualClock, SystemClock};
use mcp_auth_gateway::{AuthConfig, Config, IdentityMode, build, serve};
use serde_json::{Map, Value, json};
use support::{
    PYTHON_SOURCE, REQUIRE_PYTHON, Running, SUBJECT, Steps, args, python, tool_json, tool_text,
    unavailable, workspace_root,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
};

/// The scope the gateway's configuration gives `wipe` (reached by step-up).
const ADMIN: &str = "admin";
/// The identity JWT's audience in the JWT test.
const AUDIENCE: &str = "urn:mcp-auth:e2e-upstream";

/// An upstream process, killed when dropped.
struct PyUpstream {
    url: String,
    _child: Child,
    _script: Option<support::sdk::Script>,
}

/// Starts `upstream_server.py` with `args`; `None` when Python is missing and the test may skip.
async fn python_upstream(test: &str, script_args: &[&str]) -> Option<PyUpstream> {
    let root = workspace_root();
    let python = match python(&root) {
        Ok(python) => python,
        Err(reason) => {
            unavailable(test, REQUIRE_PYTHON, &reason);
            return None;
        }
    };
    let mut command = Command::new(python);
    command
        .arg(root.join(PYTHON_SOURCE).join("upstream_server.py"))
        .args(script_args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    Some(spawn_upstream(command, None).await)
}

/// Starts `command` (an upstream that prints `listening PORT`), keeping `script` alive with it.
async fn spawn_upstream(mut command: Command, script: Option<support::sdk::Script>) -> PyUpstream {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the upstream starts within 30 s")
        .unwrap()
        .expect("the upstream prints its port");
    let port = line.strip_prefix("listening ").unwrap();
    PyUpstream {
        // Over a unix socket the URL only names the path and the Host.
        url: match port {
            "unix" => "http://localhost:1/mcp".to_owned(),
            port => format!("http://127.0.0.1:{port}/mcp"),
        },
        _child: child,
        _script: script,
    }
}

/// A running gateway.
struct Gw {
    /// `http://127.0.0.1:PORT/mcp`.
    url: String,
    /// The gateway's origin.
    origin: String,
    running: Running,
}

/// The test configuration: embedded authorization server in memory, auto-approving as
/// [`SUBJECT`], `wipe` needing [`ADMIN`] and hidden from those without it.
fn config(upstream: &str) -> Config {
    let mut config = Config::for_upstream(upstream);
    let AuthConfig::Embedded(embedded) = &mut config.auth else {
        unreachable!()
    };
    embedded.db = Some(":memory:".to_owned());
    embedded.auto_approve = Some(SUBJECT.to_owned());
    config
        .scopes
        .tools
        .insert("wipe".to_owned(), ADMIN.to_owned());
    config.scopes.hide_unauthorized_tools = true;
    config.shutdown_grace_secs = 2;
    config
}

async fn start_gateway(listener: TcpListener, config: &Config) -> Gw {
    let bound = listener.local_addr().unwrap();
    let gateway = build(config, bound).await.unwrap();
    let url = gateway.mcp_url.clone();
    let running = Running::spawn(|stopped| serve(listener, gateway, stopped));
    Gw {
        url,
        origin: format!("http://{bound}"),
        running,
    }
}

fn manager(url: &str, clock: ManualClock) -> TokenManager {
    TokenManager::builder(url)
        .client_name("gateway e2e")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .clock(clock)
        .build()
        .unwrap()
}

/// The sorted names of the tools `$mcp` lists.
macro_rules! tool_names {
    ($mcp:expr) => {{
        let mut names: Vec<String> = $mcp
            .list_tools()
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        names
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_lists_calls_steps_up_and_refreshes_through_the_gateway_with_identity_headers()
 {
    let test = "gateway_rust_client";
    let Some(upstream) = python_upstream(test, &["headers"]).await else {
        return;
    };
    let gw = start_gateway(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        &config(&upstream.url),
    )
    .await;
    let clock = ManualClock::new(SystemClock::default().now());
    let manager = manager(&gw.url, clock.clone());
    let mut mcp = McpClient::new(&gw.url, manager.clone()).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();

    // `wipe` needs `admin`, which the first token lacks: hidden.
    assert_eq!(tool_names!(mcp), ["countdown", "echo", "whoami"]);
    let echoed = mcp
        .call_tool("echo", args(json!({"text": "through the gateway"})))
        .await
        .unwrap();
    assert_eq!(tool_text(&echoed), "through the gateway");

    // The identity headers, as the upstream saw them; the client's token never reached it.
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["mode"], "headers");
    assert_eq!(me["subject"], SUBJECT);
    assert_eq!(me["scopes"], "mcp:tools");
    assert_eq!(me["authorization"], Value::Null, "{me}");
    let client_id = me["client_id"].as_str().unwrap().to_owned();
    assert!(!client_id.is_empty());

    // The gateway's 403 makes the client step up; the upstream then runs the call.
    let wiped = mcp.call_tool("wipe", Map::new()).await.unwrap();
    assert_eq!(tool_text(&wiped), "wiped");
    assert_eq!(tool_names!(mcp), ["countdown", "echo", "whoami", "wipe"]);
    let before = manager.cached_token().await.unwrap().unwrap();
    assert_eq!(before.scopes().to_string(), "mcp:tools admin");
    mcp.close().await.unwrap();

    // Past the token's expiry (client clock): refreshed, not re-authorized.
    clock.advance(Duration::from_secs(16 * 60));
    let mut mcp = McpClient::new(&gw.url, manager.clone()).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["scopes"], "mcp:tools admin");
    assert_eq!(me["client_id"], client_id.as_str());
    let after = manager.cached_token().await.unwrap().unwrap();
    assert_ne!(before.expose(), after.expose(), "a refreshed token");
    mcp.close().await.unwrap();

    // A client that sends identity headers of its own does not speak for someone else.
    let token = manager.access_token().await.unwrap();
    let mut raw = RawMcp::connect(&gw.url, token.expose()).await;
    let me = raw
        .call_with_headers("whoami", json!({}), &[("x-mcp-subject", "root")])
        .await;
    assert_eq!(tool_json(&me)["subject"], SUBJECT);

    // Progress notifications arrive while the call runs, each when it is sent.
    let (events, took) = raw.countdown(4).await;
    let progress: Vec<&(Duration, Value)> = events
        .iter()
        .filter(|(_, m)| m["method"] == "notifications/progress")
        .collect();
    let (result_at, result) = events
        .iter()
        .find(|(_, m)| m.get("result").is_some())
        .unwrap();
    assert_eq!(progress.len(), 4, "{events:?}");
    assert_eq!(tool_text(&result["result"]), "liftoff");
    assert!(
        progress[0].0 + Duration::from_millis(600) < *result_at,
        "the first progress notification came at {:?}, the result at {result_at:?}: buffered?",
        progress[0].0
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    gw.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_an_open_stream_runs_on_for_the_grace_period_then_is_cut() {
    // An upstream whose answer is an endless SSE stream: one event every 100 ms.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let upstream = Running::axum(
        listener,
        Router::new().route(
            "/mcp",
            post(|| async {
                let events = futures_util::stream::unfold(0u64, |n| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let event = format!(
                        "data: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":\"p\",\"progress\":{n}}}}}\n\n"
                    );
                    Some((Ok::<_, std::convert::Infallible>(event), n + 1))
                });
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(events),
                )
            }),
        ),
    );
    let mut config = config(&url);
    config.shutdown_grace_secs = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let gateway = build(&config, bound).await.unwrap();
    let mcp_url = gateway.mcp_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, gateway, async move {
        let _ = stopped.await;
    }));
    let manager = manager(&mcp_url, ManualClock::new(SystemClock::default().now()));
    let token = manager.access_token().await.unwrap();
    let mut response = reqwest::Client::new()
        .post(&mcp_url)
        .bearer_auth(token.expose())
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());

    stop.send(()).unwrap();
    let signalled = Instant::now();
    let mut after_signal = 0;
    // The stream keeps flowing during the grace period, then the gateway cuts it.
    while let Ok(Some(_)) = response.chunk().await {
        after_signal += 1;
    }
    let cut_after = signalled.elapsed();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after the grace period")
        .unwrap()
        .unwrap();
    assert!(after_signal >= 5, "{after_signal} events after the signal");
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(4),
        "{cut_after:?}"
    );
    // Nothing listens any more.
    assert!(
        reqwest::get(format!(
            "http://{bound}/.well-known/oauth-protected-resource/mcp"
        ))
        .await
        .is_err()
    );
    upstream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_external_authorization_server_the_gateway_checks_its_jwts() {
    let test = "gateway_external_idp";
    let Some(upstream) = python_upstream(test, &["headers"]).await else {
        return;
    };
    // The gateway's URL first: the external authorization server (the demo's) must know it as a
    // resource it issues tokens for.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let idp = support::Demo::start("127.0.0.1:0", |config| {
        config.extra_resources.push(gateway_url.clone());
    })
    .await;
    let mut config = config(&upstream.url);
    config.auth = mcp_auth_gateway::Overrides {
        issuer: Some(idp.issuer()),
        ..Default::default()
    }
    .apply(Some(config.clone()))
    .unwrap()
    .auth;
    // The demo's scopes: tools need `mcp:tools`, which it advertises.
    let gw = start_gateway(listener, &config).await;
    assert_eq!(gw.url, gateway_url);
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let mut mcp = McpClient::new(&gw.url, manager).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], SUBJECT);
    assert!(me["scopes"].as_str().unwrap().contains("mcp:tools"), "{me}");
    mcp.close().await.unwrap();
    // The tokens came from the external server; the gateway has no authorization server.
    assert_eq!(idp.hits("/token"), 1, "{:?}", idp.log());
    let response = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        gw.origin
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
    gw.running.stop().await;
    idp.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_a_unix_socket_gets_the_identity_headers() {
    let test = "gateway_unix_socket";
    let socket =
        std::env::temp_dir().join(format!("mcp-auth-gateway-e2e-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let Some(upstream) =
        python_upstream(test, &["headers", "--uds", socket.to_str().unwrap()]).await
    else {
        return;
    };
    let mut config = config(&upstream.url);
    config.upstream.unix_socket = Some(socket.clone());
    let gw = start_gateway(TcpListener::bind("127.0.0.1:0").await.unwrap(), &config).await;
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let mut mcp = McpClient::new(&gw.url, manager).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["mode"], "headers");
    assert_eq!(me["subject"], SUBJECT);
    mcp.close().await.unwrap();
    gw.running.stop().await;
    drop(upstream);
    let _ = std::fs::remove_file(&socket);
}

/// A hand-written 2025-11-25 session over reqwest, to time each SSE event as it arrives.
struct RawMcp {
    http: reqwest::Client,
    url: String,
    token: String,
    /// None for a stateless server.
    session: Option<String>,
    next_id: u64,
}

impl RawMcp {
    async fn connect(url: &str, token: &str) -> Self {
        let http = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}});
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session = response
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        response.bytes().await.unwrap();
        let raw = Self {
            http,
            url: url.to_owned(),
            token: token.to_owned(),
            session,
            next_id: 1,
        };
        let response = raw
            .post(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &[],
            )
            .await;
        assert_eq!(response.status(), 202);
        raw
    }

    /// `countdown(4)`: four progress notifications, each arriving while the call runs.
    async fn check_progress(&mut self) {
        let (events, took) = self.countdown(4).await;
        let progress: Vec<&(Duration, Value)> = events
            .iter()
            .filter(|(_, m)| m["method"] == "notifications/progress")
            .collect();
        let (result_at, result) = events
            .iter()
            .find(|(_, m)| m.get("result").is_some())
            .unwrap();
        assert_eq!(progress.len(), 4, "{events:?}");
        assert_eq!(tool_text(&result["result"]), "liftoff");
        assert!(
            progress[0].0 + Duration::from_millis(600) < *result_at,
            "the first progress notification came at {:?}, the result at {result_at:?}: buffered?",
            progress[0].0
        );
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }

    async fn post(&self, body: &Value, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Calls `tool`; its JSON-RPC `result`.
    async fn call_with_headers(
        &mut self,
        tool: &str,
        arguments: Value,
        extra: &[(&str, &str)],
    ) -> Value {
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let response = self.post(&body, extra).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let message = sse_messages(&text).into_iter().last().unwrap();
        message["result"].clone()
    }

    /// `countdown(n)` with a progress token: every SSE message with the time it arrived, and
    /// how long the call took.
    async fn countdown(&mut self, n: u32) -> (Vec<(Duration, Value)>, Duration) {
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": "countdown", "arguments": {"n": n}, "_meta": {"progressToken": "p"}}});
        let started = Instant::now();
        let mut response = self.post(&body, &[]).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut events = Vec::new();
        let mut pending = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            let at = started.elapsed();
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
            let normalized = pending.replace("\r\n", "\n");
            if let Some(end) = normalized.rfind("\n\n") {
                for message in sse_messages(&normalized[..end + 2]) {
                    events.push((at, message));
                }
                pending = normalized[end + 2..].to_owned();
            }
        }
        (events, started.elapsed())
    }
}

/// The JSON messages of the `data` lines of an SSE body (or the body itself when it is JSON).
fn sse_messages(text: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return vec![value];
    }
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_jwt_is_checked_by_the_python_upstream_against_the_gateways_keys() {
    let test = "gateway_identity_jwt";
    // The gateway's address first: the upstream needs its JWKS URL and issuer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let jwks = format!("{origin}{}", mcp_auth_gateway::identity::JWKS_PATH);
    let Some(upstream) = python_upstream(test, &["jwt", &jwks, &origin, AUDIENCE]).await else {
        return;
    };
    // Without a token the upstream refuses: the check is real.
    let direct = reqwest::Client::new()
        .post(&upstream.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);

    let mut config = config(&upstream.url);
    config.upstream.identity = Some(IdentityMode::Jwt);
    config.upstream.audience = Some(AUDIENCE.to_owned());
    let gw = start_gateway(listener, &config).await;
    let clock = ManualClock::new(SystemClock::default().now());
    let manager = manager(&gw.url, clock);
    let mut mcp = McpClient::new(&gw.url, manager.clone()).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["mode"], "jwt");
    assert_eq!(me["subject"], SUBJECT);
    assert_eq!(me["issuer"], gw.origin.as_str());
    assert_eq!(me["audience"], AUDIENCE);
    assert_eq!(me["scopes"], "mcp:tools");
    assert_eq!(me["lifetime"], 60);
    assert!(me["client_id"].as_str().is_some_and(|c| !c.is_empty()));
    mcp.close().await.unwrap();

    // The same upstream behind a gateway that does not identify itself: the upstream refuses,
    // and the client gets a clear JSON-RPC error instead of the upstream's challenge.
    let mut config = self::config(&upstream.url);
    config.upstream.identity = Some(IdentityMode::None);
    let bare = start_gateway(TcpListener::bind("127.0.0.1:0").await.unwrap(), &config).await;
    let manager = self::manager(&bare.url, ManualClock::new(SystemClock::default().now()));
    let token = manager.access_token().await.unwrap();
    let response = reqwest::Client::new()
        .post(&bare.url)
        .bearer_auth(token.expose())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers().get("www-authenticate").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32005);
    bare.running.stop().await;
    gw.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_server_behind_the_gateway_checks_the_identity_jwt_with_jose() {
    let test = "gateway_ts_upstream";
    let Some(script) = support::sdk::prepare(test, "upstream-server.mjs", "upstream") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let jwks = format!("{origin}{}", mcp_auth_gateway::identity::JWKS_PATH);
    let mut command = Command::new(&script.node);
    command
        .arg(&script.path)
        .args([jwks.as_str(), origin.as_str(), AUDIENCE])
        .current_dir(script.path.parent().unwrap());
    let upstream = spawn_upstream(command, Some(script)).await;
    let direct = reqwest::Client::new()
        .post(&upstream.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401, "the upstream checks the identity JWT");

    let mut config = config(&upstream.url);
    config.upstream.identity = Some(IdentityMode::Jwt);
    config.upstream.audience = Some(AUDIENCE.to_owned());
    let gw = start_gateway(listener, &config).await;
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let mut mcp = McpClient::new(&gw.url, manager.clone()).unwrap();
    mcp.initialize("gateway e2e").await.unwrap();
    assert_eq!(tool_names!(mcp), ["countdown", "echo", "whoami"]);
    let echoed = mcp
        .call_tool("echo", args(json!({"text": "to TypeScript"})))
        .await
        .unwrap();
    assert_eq!(tool_text(&echoed), "to TypeScript");
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], SUBJECT);
    assert_eq!(me["issuer"], gw.origin.as_str());
    assert_eq!(me["audience"], AUDIENCE);
    assert_eq!(me["scopes"], "mcp:tools");
    assert_eq!(me["lifetime"], 60);
    let wiped = mcp.call_tool("wipe", Map::new()).await.unwrap();
    assert_eq!(tool_text(&wiped), "wiped");
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(
        me["scopes"], "mcp:tools admin",
        "the identity follows the step-up"
    );
    mcp.close().await.unwrap();

    let token = manager.access_token().await.unwrap();
    RawMcp::connect(&gw.url, token.expose())
        .await
        .check_progress()
        .await;
    gw.running.stop().await;
}

/// The official SDK clients.
#[derive(Clone, Copy, Debug)]
enum Sdk {
    /// `tests/python-client/gateway_client.py`, connecting to `http://127.0.0.1:PORT/mcp`.
    Python,
    /// `tests/sdk-client/gateway-client.mjs` (TypeScript SDK v2), connecting to
    /// `http://localhost:PORT/mcp`, the spelling most guides show.
    TypeScript,
}

/// Runs the SDK's gateway client in `mode` against a new gateway and checks its steps.
async fn sdk_client(sdk: Sdk, mode: &str, era: &str) {
    let test = "gateway_sdk_client";
    let root = workspace_root();
    let script = match sdk {
        Sdk::Python => None,
        Sdk::TypeScript => match support::sdk::prepare(test, "gateway-client.mjs", mode) {
            Some(script) => Some(script),
            None => return,
        },
    };
    let Some(upstream) = python_upstream(test, &["headers"]).await else {
        return;
    };
    let gw = start_gateway(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        &config(&upstream.url),
    )
    .await;
    let mut command = match &script {
        None => {
            let mut command = Command::new(python(&root).unwrap());
            command
                .arg(root.join(PYTHON_SOURCE).join("gateway_client.py"))
                .arg(&gw.url)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1");
            command
        }
        Some(script) => {
            let mut command = Command::new(&script.node);
            command
                .arg(&script.path)
                .arg(gw.url.replace("127.0.0.1", "localhost"))
                .current_dir(script.path.parent().unwrap())
                .env("NO_COLOR", "1");
            command
        }
    };
    let child = command
        .arg(mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the SDK client finishes in 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{sdk:?} client, {mode}, failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    let steps = Steps::parse(&stdout);
    assert_eq!(steps.one("connect")["protocol_version"], era, "{stdout}");
    assert_eq!(
        steps.one("list_tools")["tools"],
        json!(["countdown", "echo", "whoami"])
    );
    assert_eq!(steps.one("echo")["result"], "hello");
    let countdown = steps.one("countdown");
    assert_eq!(countdown["result"], "liftoff");
    let progress = countdown["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 4, "{countdown}");
    let first = progress[0]["at"].as_f64().unwrap();
    let done = countdown["done_at"].as_f64().unwrap();
    assert!(
        first + 0.6 < done,
        "the first progress at {first} s, the result at {done} s: {countdown}"
    );
    assert_eq!(steps.one("wipe")["result"], "wiped");
    assert_eq!(
        steps.one("list_tools_after_step_up")["tools"],
        json!(["countdown", "echo", "whoami", "wipe"])
    );
    let step_ups: Vec<&Value> = steps
        .all("challenge")
        .into_iter()
        .filter(|c| c["status"] == 403)
        .collect();
    assert_eq!(step_ups.len(), 1, "{stdout}");
    let challenge = step_ups[0]["www_authenticate"].as_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="mcp:tools admin""#),
        "{challenge}"
    );
    let refresh = steps.one("refresh");
    assert_eq!(refresh["refreshed"], true, "{stdout}");
    assert_eq!(refresh["new_access_token"], true, "{stdout}");
    let whoami = steps.one("whoami");
    assert_eq!(whoami["result"]["subject"], SUBJECT);
    assert_eq!(whoami["result"]["scopes"], "mcp:tools admin");
    assert_eq!(whoami["result"]["client_id"], whoami["client_id"]);
    assert_eq!(whoami["result"]["authorization"], Value::Null);
    assert_eq!(
        steps.one("wire")["grant_types"],
        json!(["authorization_code", "authorization_code", "refresh_token"]),
        "{stdout}"
    );
    gw.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_in_the_2025_11_25_era_works_through_the_gateway() {
    sdk_client(Sdk::Python, "legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_in_the_2026_07_28_era_works_through_the_gateway() {
    sdk_client(Sdk::Python, "2026-07-28", "2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_in_the_2025_11_25_era_works_through_the_gateway() {
    sdk_client(Sdk::TypeScript, "legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_in_the_2026_07_28_era_works_through_the_gateway() {
    sdk_client(Sdk::TypeScript, "2026-07-28", "2026-07-28").await;
}

/// A POST of `tools/list` with id 7 through the gateway; status and JSON body.
async fn call(gw: &Gw, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(&gw.url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn still_serving(gw: &Gw) {
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", gw.origin);
    assert_eq!(reqwest::get(&metadata).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_down_slow_or_answers_garbage_gets_a_clear_error_and_the_gateway_keeps_serving()
 {
    // Fake upstreams: slow (answers after 3 s), garbage HTTP (200 text/html), and not HTTP at all.
    let slow = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/mcp", slow.local_addr().unwrap());
    let slow = Running::axum(
        slow,
        Router::new().route(
            "/mcp",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        ),
    );
    let html = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html_url = format!("http://{}/mcp", html.local_addr().unwrap());
    let html = Running::axum(
        html,
        Router::new().route(
            "/mcp",
            post(|| async { axum::response::Html("<h1>It works!</h1>") }),
        ),
    );
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_url = format!("http://{}/mcp", raw.local_addr().unwrap());
    let raw_task = tokio::spawn(async move {
        loop {
            let (mut socket, _) = raw.accept().await.unwrap();
            let _ = socket
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01garbage")
                .await;
        }
    });
    // Down: a port nobody listens on.
    let down_url = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/mcp", l.local_addr().unwrap())
    };

    let cases = [
        (down_url, 502, -32002),
        (slow_url, 504, -32003),
        (html_url, 502, -32004),
        (raw_url, 502, -32002),
    ];
    for (upstream, status, code) in cases {
        let mut config = config(&upstream);
        config.upstream.response_timeout_secs = 1;
        let gw = start_gateway(TcpListener::bind("127.0.0.1:0").await.unwrap(), &config).await;
        let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
        let token = manager.access_token().await.unwrap();
        let started = Instant::now();
        let (got, body) = call(&gw, token.expose()).await;
        assert_eq!(
            (got, &body["error"]["code"]),
            (status, &json!(code)),
            "{upstream}: {body}"
        );
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], 7, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("upstream MCP server"),
            "{body}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{upstream}");
        still_serving(&gw).await;
        // Again: the failure did not wedge anything.
        assert_eq!(call(&gw, token.expose()).await.0, status);
        gw.running.stop().await;
    }
    raw_task.abort();
    slow.stop().await;
    html.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_gateway_answers_the_challenge_and_never_calls_the_upstream() {
    // An upstream that counts its calls.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let upstream = Running::axum(
        listener,
        Router::new().route(
            "/mcp",
            post(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})) }
            }),
        ),
    );
    let gw = start_gateway(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        &config(&url),
    )
    .await;
    let http = reqwest::Client::new();
    let response = http
        .post(&gw.url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            gw.origin
        )),
        "{challenge}"
    );
    // A foreign Origin is refused before anything else (DNS rebinding).
    let response = http
        .post(&gw.url)
        .header("origin", "https://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A token for the gateway: the call reaches the upstream, and a `wipe` call without the
    // scope does not.
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let token = manager.access_token().await.unwrap();
    let response = http
        .post(&gw.url)
        .bearer_auth(token.expose())
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wipe"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (status, _) = call(&gw, token.expose()).await;
    assert_eq!(status, 200);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    gw.running.stop().await;
    upstream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_with_a_json_rpc_error_at_once_and_never_reaches_the_upstream()
 {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let upstream = Running::axum(
        listener,
        Router::new().route(
            "/mcp",
            post(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { axum::Json(json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": []}})) }
            }),
        ),
    );
    let mut config = config(&url);
    config.limits.max_body_bytes = 4096;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let gw = start_gateway(listener, &config).await;
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let token = manager.access_token().await.unwrap();

    // 1. A body sent in full, larger than the limit.
    let big = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"pad": "x".repeat(8192)}});
    let response = reqwest::Client::new()
        .post(&gw.url)
        .bearer_auth(token.expose())
        .header("accept", "application/json, text/event-stream")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");

    // 2. A body that only declares 100 MiB and sends nothing: answered at once, not after the
    //    body timeout.
    let mut socket = tokio::net::TcpStream::connect(bound).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {bound}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 104857600\r\n\r\n",
        token.expose()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut reader = BufReader::new(socket);
    let mut status_line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut status_line))
        .await
        .expect("the gateway answered before the body timeout")
        .unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // 3. A chunked body (no length declared) that grows past the limit.
    let mut socket = tokio::net::TcpStream::connect(bound).await.unwrap();
    let chunk = "x".repeat(8192);
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {bound}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        token.expose(),
        chunk.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(socket);
    let mut status_line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut status_line))
        .await
        .expect("the gateway answered a chunked body over the limit")
        .unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    let mut rest = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest),
    )
    .await
    .expect("the connection closed after the answer")
    .unwrap();
    assert!(rest.contains("-32600"), "{rest}");

    // 4. None reached the upstream; a good call still does.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (status, _) = call(&gw, token.expose()).await;
    assert_eq!(status, 200);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    gw.running.stop().await;
    upstream.stop().await;
}

/// A `MakeWriter` into a shared buffer, for reading what the gateway logged.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread (the test's), so that the subscriber set for it sees the gateway's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn each_request_gets_one_gateway_span_with_decision_client_and_hashed_subject_never_the_token()
 {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("mcp_auth_gateway=info"))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let upstream = Running::axum(
        listener,
        Router::new().route(
            "/mcp",
            post(|| async {
                axum::Json(json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": []}}))
            }),
        ),
    );
    let gw = start_gateway(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        &config(&url),
    )
    .await;
    let manager = manager(&gw.url, ManualClock::new(SystemClock::default().now()));
    let token = manager.access_token().await.unwrap();
    logs.0.lock().unwrap().clear();
    // The other tests of this binary run gateways on other threads, without a subscriber. A
    // callsite they registered while this test's subscriber was being set may have cached
    // "never" (tracing decides interest once per callsite, for every thread): decide again, now
    // that this subscriber is known.
    tracing::callsite::rebuild_interest_cache();

    assert_eq!(call(&gw, token.expose()).await.0, 200);
    let refused = reqwest::Client::new()
        .post(&gw.url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    gw.running.stop().await;
    upstream.stop().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let spans: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("mcp_auth.gateway{") && l.contains("path=/mcp ") && l.contains("close")
        })
        .collect();
    assert_eq!(spans.len(), 2, "one span per request to /mcp:\n{text}");
    let sub_hash = mcp_auth_core::SubjectHash::of(SUBJECT).to_string();
    let allowed = spans[0];
    for field in [
        "status=200".to_owned(),
        "decision=\"allow\"".to_owned(),
        format!("sub_hash=\"{sub_hash}\""),
        "client_id=".to_owned(),
    ] {
        assert!(allowed.contains(&field), "{field} in {allowed}");
    }
    let challenged = spans[1];
    assert!(challenged.contains("status=401"), "{challenged}");
    assert!(
        challenged.contains("decision=\"challenge\""),
        "{challenged}"
    );
    assert!(!challenged.contains("sub_hash"), "{challenged}");
    // The access log names the caller; no line carries the token.
    assert!(
        text.lines()
            .any(|l| l.contains("mcp_auth_gateway::access") && l.contains(SUBJECT)),
        "{text}"
    );
    assert!(!text.contains(token.expose()), "the token was logged");
}
