//! The demo end to end over real HTTP on loopback: `mcp-auth-client` (token manager, OAuth layer,
//! headless browser) against the demo with `--auto-approve`: discovery, dynamic registration,
//! authorization, then MCP `initialize` → `tools/list` → `tools/call list_notes` → `add_note`
//! (step-up to `notes:write`) → `delete_note` (step-up to `notes:admin`); and a restart on the
//! same database that keeps the client's refresh token working.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use example_mcp_client::{http::HttpClient, mcp::McpClient};
use example_mcp_server::{Config, Login, build, scopes, serve};
use mcp_auth_client::{OAuth, OAuthLayer, TokenManager, authorize::HeadlessBrowser};
use mcp_auth_core::{Clock, ManualClock, SystemClock};
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, sync::oneshot};
use tower::Layer;

struct Running {
    url: String,
    /// The path of every request the server received, in order.
    paths: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Graceful shutdown, as on Ctrl-C; waits until the database is closed.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn start(addr: &str, db: Option<PathBuf>) -> Running {
    let listener = TcpListener::bind(addr).await.unwrap();
    let bound = listener.local_addr().unwrap();
    let config = Config {
        addr: bound,
        db,
        login: Login::AutoApprove {
            subject: "alice".to_owned(),
        },
    };
    let mut demo = build(&config, bound).await.unwrap();
    let url = demo.mcp_url.clone();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let log = paths.clone();
    demo.router = demo.router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            log.lock().unwrap().push(req.uri().path().to_owned());
            next.run(req)
        },
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, demo, async move {
        let _ = stopped.await;
    }));
    Running {
        url,
        paths,
        addr: bound,
        stop,
        task,
    }
}

fn manager(url: &str, clock: ManualClock) -> TokenManager {
    TokenManager::builder(url)
        .client_name("demo e2e")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .clock(clock)
        .build()
        .unwrap()
}

fn client(url: &str, manager: &TokenManager) -> McpClient<OAuth<HttpClient>> {
    let service = OAuthLayer::new(manager.clone()).layer(HttpClient::new(false).unwrap());
    McpClient::new(service, url.parse().unwrap())
}

/// The JSON a tool returned as its first text content.
fn tool_json(result: &Value) -> Value {
    assert_ne!(result["isError"], json!(true), "tool error: {result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    serde_json::from_str(text).unwrap()
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn granted(manager: &TokenManager) -> String {
    manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .scopes()
        .to_string()
}

fn temp_db(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mcp-auth-demo-{name}-{}.db", std::process::id()));
    remove_db(&path);
    path
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connects_lists_reads_and_steps_up_to_write_and_admin() {
    let server = start("127.0.0.1:0", None).await;
    let manager = manager(&server.url, ManualClock::new(SystemClock::default().now()));
    let mut mcp = client(&server.url, &manager);

    // 401 → discovery → registration → authorization (headless) → initialize.
    let info = mcp.initialize("demo e2e").await.unwrap();
    assert_eq!(info.name, "example-mcp-server");
    assert!(info.has_session);
    assert_eq!(granted(&manager).await, scopes::ADVERTISED_SCOPES);

    let mut tools: Vec<String> = mcp
        .list_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    tools.sort();
    let mut expected: Vec<&str> = scopes::TOOL_SCOPES.iter().map(|(name, _)| *name).collect();
    expected.sort();
    assert_eq!(tools, expected);

    let notes = tool_json(&mcp.call_tool("list_notes", Map::new()).await.unwrap());
    let notes = notes.as_array().unwrap();
    assert_eq!(notes.len(), 1, "the welcome note: {notes:?}");
    assert_eq!(notes[0]["id"], 1);

    // add_note needs notes:write: HTTP 403, the client steps up, the call goes through.
    let added = tool_json(
        &mcp.call_tool("add_note", args(json!({ "text": "buy milk" })))
            .await
            .unwrap(),
    );
    assert_eq!(added["author"], "alice");
    assert_eq!(added["text"], "buy milk");
    let id = added["id"].as_u64().unwrap();
    assert_eq!(granted(&manager).await, "mcp:tools notes:read notes:write");

    let got = tool_json(
        &mcp.call_tool("get_note", args(json!({ "id": id })))
            .await
            .unwrap(),
    );
    assert_eq!(got, added);

    // delete_note needs notes:admin: a second step-up, keeping what was granted.
    let deleted = tool_json(
        &mcp.call_tool("delete_note", args(json!({ "id": id })))
            .await
            .unwrap(),
    );
    assert_eq!(deleted, added);
    assert_eq!(
        granted(&manager).await,
        "mcp:tools notes:read notes:write notes:admin"
    );
    let gone = mcp
        .call_tool("get_note", args(json!({ "id": id })))
        .await
        .unwrap();
    assert_eq!(gone["isError"], true, "{gone}");

    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], "alice");
    assert_eq!(
        me["scopes"],
        json!(["mcp:tools", "notes:read", "notes:write", "notes:admin"])
    );

    mcp.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_server_points_at_its_metadata_with_the_minimal_scopes() {
    let server = start("127.0.0.1:0", None).await;
    let http = reqwest::Client::new();
    let response = http.post(&server.url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        server.addr
    );
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp:tools notes:read\"")
    );
    let metadata: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], server.url);
    assert_eq!(
        metadata["authorization_servers"],
        json!([format!("http://{}", server.addr)])
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!(["mcp:tools", "notes:read"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_database_keeps_the_client_and_its_refresh_token() {
    let db = temp_db("restart");
    let server = start("127.0.0.1:0", Some(db.clone())).await;
    let addr = server.addr;
    let clock = ManualClock::new(SystemClock::default().now());
    let manager = manager(&server.url, clock.clone());
    let mut mcp = client(&server.url, &manager);
    mcp.initialize("demo e2e").await.unwrap();
    mcp.close().await.unwrap();
    let before = manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned();
    server.stop().await;

    // Same address, same database; the access token has expired (client clock), so the client
    // refreshes: the registration, the refresh token and the signing keys all survived.
    let server = start(&addr.to_string(), Some(db.clone())).await;
    let paths = server.paths.clone();
    clock.advance(Duration::from_secs(16 * 60));
    let mut mcp = client(&server.url, &manager);
    mcp.initialize("demo e2e").await.unwrap();
    let notes = tool_json(&mcp.call_tool("list_notes", Map::new()).await.unwrap());
    assert_eq!(notes.as_array().unwrap().len(), 1);
    let after = manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned();
    assert_ne!(before, after, "a refreshed token");
    let paths = paths.lock().unwrap().clone();
    assert!(paths.iter().any(|p| p == "/token"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p == "/register" || p == "/authorize"),
        "no new registration or authorization after the restart: {paths:?}"
    );
    mcp.close().await.unwrap();
    server.stop().await;
    remove_db(&db);
}
