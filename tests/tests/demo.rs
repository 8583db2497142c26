//! The demo (`example-mcp-server`) end to end over real HTTP on loopback, driven by
//! `example-mcp-client`'s MCP client over `mcp-auth-client` (token manager, OAuth layer):
//!
//! - discovery, dynamic registration, authorization, then MCP `initialize` → `tools/list` →
//!   `list_notes` → `add_note` (step-up to `notes:write`) → `delete_note` (step-up to
//!   `notes:admin`), with `--auto-approve`;
//! - the same client registered by a Client ID Metadata Document instead (no `/register`);
//! - the real login and consent page in headless Chromium with the demo user's password, and the
//!   step-up consent that asks again without the password;
//! - a restart on the same database in the middle: the client carries on with its refresh token;
//! - revocation: a revoked grant's access and refresh tokens are refused at once and the client
//!   authorizes anew;
//! - the two binaries as processes, as the README runs them, across a crash (SIGKILL) of the
//!   server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../crates/mcp-auth-server/tests/support/chromium.rs"]
mod chromium;
mod support;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, routing::get};
use example_mcp_server::{Login, scopes};
use fantoccini::Locator;
use mcp_auth_client::{
    BrowserOpener, HeadlessBrowser, Principal, TokenManager,
    authorize::OpenFuture,
    store::{MemoryTokenStore, TokenKey, TokenStore},
};
use mcp_auth_core::{Clock, ManualClock, ResourceId, SystemClock};
use serde_json::{Map, Value, json};
use support::{Demo, args, client, granted, tool_json};
use tokio::net::TcpListener;

async fn start(addr: &str, db: Option<PathBuf>) -> Demo {
    Demo::start(addr, |config| config.db = db.map(Into::into)).await
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
    assert!(
        info.legacy || info.protocol_version == "2026-07-28",
        "{info:?}"
    );
    assert_eq!(granted(&manager).await, "mcp:tools notes:read");

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
    assert!(server.hits("/token") > 0, "{:?}", server.log());
    assert_eq!(
        (server.hits("/register"), server.hits("/authorize")),
        (0, 0),
        "no new registration or authorization after the restart"
    );
    mcp.close().await.unwrap();
    server.stop().await;
    remove_db(&db);
}

/// Serves this client's Client ID Metadata Document on a loopback port; returns its URL (which
/// is also its `client_id`).
async fn serve_client_metadata() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let document = Arc::new(json!({
        "client_id": url,
        "client_name": "demo e2e (metadata document)",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }));
    let app = Router::new().route(
        "/client.json",
        get(move || {
            let document = Arc::clone(&document);
            async move { Json(Value::clone(&document)) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A query parameter of a logged request (path and query).
fn query_param(request: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://logged{request}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_metadata_document_url_needs_no_registration() {
    let document = serve_client_metadata().await;
    // The demo fetches documents over https from public addresses only; this test serves one
    // from loopback, which `cimd_allow_loopback` permits.
    let server = Demo::start("127.0.0.1:0", |config| config.cimd_allow_loopback = true).await;
    let manager = TokenManager::builder(&server.url)
        .client_id_metadata_document(&document)
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .build()
        .unwrap();
    let mut mcp = client(&server.url, &manager);
    mcp.initialize("demo e2e").await.unwrap();
    let added = tool_json(
        &mcp.call_tool("add_note", args(json!({ "text": "from a CIMD client" })))
            .await
            .unwrap(),
    );
    assert_eq!(added["author"], "alice");

    assert_eq!(server.hits("/register"), 0, "no dynamic registration");
    let authorizations = server.requests("/authorize");
    assert_eq!(
        authorizations.len(),
        2,
        "sign-in and step-up: {authorizations:?}"
    );
    for request in &authorizations {
        assert_eq!(query_param(request, "client_id"), Some(document.clone()));
    }
    assert_eq!(
        query_param(&authorizations[1], "scope").as_deref(),
        Some("mcp:tools notes:read notes:write")
    );
    mcp.close().await.unwrap();
    server.stop().await;
}

/// The user in front of Chromium: opens the authorization URL, reads the page, signs in when
/// asked (only the first time: the browser then has a session) and approves.
#[derive(Debug)]
struct ChromiumUser {
    browser: chromium::Browser,
    username: String,
    password: String,
    /// The HTML of every consent page shown.
    pages: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
struct ChromiumOpener(Arc<ChromiumUser>);

impl BrowserOpener for ChromiumOpener {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        Box::pin(async move {
            let user = &self.0;
            let browser = &user.browser;
            browser.goto(url).await.unwrap();
            browser.wait_for("#approve", Duration::from_secs(10)).await;
            let html = browser.source().await.unwrap();
            user.pages.lock().unwrap().push(html);
            if let Some(username) = browser.try_find("#username").await {
                username.send_keys(&user.username).await.unwrap();
                browser
                    .find(Locator::Css("#password"))
                    .await
                    .unwrap()
                    .send_keys(&user.password)
                    .await
                    .unwrap();
            }
            browser
                .find(Locator::Css("#approve"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_user_signs_in_and_consents_on_the_real_page_in_chromium() {
    let Some(chromium) = chromium::browser_available() else {
        return;
    };
    let password = example_mcp_server::random_password().unwrap();
    let login = Login::Local {
        username: example_mcp_server::DEMO_USER.to_owned(),
        password: password.clone(),
    };
    let server = Demo::start("127.0.0.1:0", |config| config.login = login).await;
    let user = Arc::new(ChromiumUser {
        browser: chromium.launch().await,
        username: example_mcp_server::DEMO_USER.to_owned(),
        password,
        pages: Mutex::new(Vec::new()),
    });
    let manager = TokenManager::builder(&server.url)
        .client_name("demo e2e in Chromium")
        .allow_insecure_loopback(true)
        .browser(ChromiumOpener(Arc::clone(&user)))
        .authorization_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut mcp = client(&server.url, &manager);

    mcp.initialize("demo e2e").await.unwrap();
    let notes = tool_json(&mcp.call_tool("list_notes", Map::new()).await.unwrap());
    assert_eq!(notes.as_array().unwrap().len(), 1);
    let added = tool_json(
        &mcp.call_tool("add_note", args(json!({ "text": "approved in a browser" })))
            .await
            .unwrap(),
    );
    assert_eq!(added["author"], example_mcp_server::DEMO_USER);
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], example_mcp_server::DEMO_USER);
    assert_eq!(granted(&manager).await, "mcp:tools notes:read notes:write");

    let pages = user.pages.lock().unwrap().clone();
    assert_eq!(pages.len(), 2, "the sign-in and the step-up consent");
    assert!(pages[0].contains("demo e2e in Chromium"), "{}", pages[0]);
    assert!(
        pages[0].contains("id=\"password\""),
        "asks for the password"
    );
    assert!(pages[0].contains("notes:read"), "{}", pages[0]);
    assert!(
        !pages[1].contains("id=\"password\""),
        "the step-up asks for consent only, the browser is signed in: {}",
        pages[1]
    );
    assert!(pages[1].contains("notes:write"), "{}", pages[1]);
    mcp.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_cannot_be_refreshed_and_the_client_authorizes_again() {
    let server = start("127.0.0.1:0", None).await;
    let clock = ManualClock::new(SystemClock::default().now());
    let store = MemoryTokenStore::default();
    let manager = TokenManager::builder(&server.url)
        .client_name("demo e2e")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    let mut mcp = client(&server.url, &manager);
    mcp.initialize("demo e2e").await.unwrap();

    // The user revokes the grant (RFC 7009; a public client names itself).
    let key = TokenKey::new(Principal::shared(), ResourceId::parse(&server.url).unwrap());
    let stored = store.load_tokens(&key).await.unwrap().unwrap();
    let refresh = stored.refresh_token.clone().unwrap();
    let http = reqwest::Client::new();
    let revoke = http
        .post(format!("http://{}/revoke", server.addr))
        .form(&[
            ("token", refresh.expose()),
            ("client_id", stored.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);

    // The demo's resource side shares the embedded server's revocations: the grant's access
    // token is refused at once (401), its refresh token too (invalid_grant), so the client
    // authorizes again (auto-approved) with the registration it has, and the call succeeds.
    tool_json(&mcp.call_tool("list_notes", Map::new()).await.unwrap());
    assert_eq!(server.hits("/authorize"), 2, "{:#?}", server.log());
    assert_eq!(server.hits("/register"), 1);
    let renewed = store.load_tokens(&key).await.unwrap().unwrap();
    assert_ne!(renewed.refresh_token, Some(refresh.clone()));
    assert_ne!(renewed.access_token, stored.access_token);

    // The revoked refresh token stays dead.
    let reuse = http
        .post(format!("http://{}/token", server.addr))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("client_id", stored.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 400);
    let error: Value = reuse.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    mcp.close().await.unwrap();
    server.stop().await;
}

/// The `example-mcp-server` binary, started as the README starts it (plus `--auto-approve`, a
/// port of its choosing and a database of the test's).
struct ServerProcess {
    child: tokio::process::Child,
    url: String,
}

impl ServerProcess {
    async fn start(addr: &str, db: &std::path::Path) -> Self {
        use tokio::io::AsyncBufReadExt;

        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-example-mcp-server"))
            .args(["--auto-approve", "--addr", addr, "--db"])
            .arg(db)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                banner.push(line.clone());
                if line.starts_with("Ctrl-C stops the server") {
                    break;
                }
            }
            let endpoint = banner
                .iter()
                .find_map(|l| l.strip_prefix("MCP endpoint:"))
                .unwrap_or_else(|| panic!("no endpoint in the banner: {banner:#?}"));
            assert!(
                banner
                    .iter()
                    .any(|l| l.contains("--auto-approve: NO LOGIN PAGE")),
                "the loud warning: {banner:#?}"
            );
            endpoint.trim().to_owned()
        })
        .await
        .expect("the server printed its banner within 30 s");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, url }
    }

    /// SIGKILL: no graceful shutdown, the database is not closed.
    async fn crash(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Runs the `example-mcp-client` binary; returns its stdout, panicking (with both outputs)
/// unless it succeeds.
async fn run_client_binary(url: &str, store: &std::path::Path, calls: &[&str]) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-example-mcp-client"))
            .args([url, "--headless", "--quiet", "--store"])
            .arg(store)
            .args(calls)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "example-mcp-client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_work_as_the_readme_says_and_survive_a_server_crash() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-e2e-binaries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (db, tokens) = (dir.join("demo.db"), dir.join("tokens.json"));

    let server = ServerProcess::start("127.0.0.1:0", &db).await;
    let url = server.url.clone();
    let out = run_client_binary(
        &url,
        &tokens,
        &[
            "--call",
            "list_notes",
            "--call",
            "add_note",
            "--arg",
            "text=from the binary",
            "--call",
            "whoami",
        ],
    )
    .await;
    let authorizations: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("client_id=") && l.contains(" scope="))
        .collect();
    assert_eq!(authorizations.len(), 2, "sign-in and step-up:\n{out}");
    assert!(
        authorizations[0].contains("scope=mcp:tools notes:read "),
        "{out}"
    );
    assert!(
        authorizations[1].contains("scope=mcp:tools notes:read notes:write "),
        "{out}"
    );
    assert!(
        out.contains(r#""author":"demo","text":"from the binary""#),
        "{out}"
    );
    assert!(
        out.contains("done: authorized (scopes: mcp:tools notes:read notes:write;"),
        "{out}"
    );

    // The server dies without shutting down; restarted on the same address and database, it
    // still knows the client, and the client's stored token (signed by a key in the database)
    // is accepted: no registration, no authorization.
    server.crash().await;
    // The banner names `localhost`; `--addr` takes the address it is bound to.
    let addr = url
        .strip_prefix("http://localhost:")
        .and_then(|u| u.strip_suffix("/mcp"))
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("the banner prints a localhost URL: {url}"));
    let server = ServerProcess::start(&addr, &db).await;
    assert_eq!(server.url, url);
    let out = run_client_binary(&url, &tokens, &["--call", "whoami"]).await;
    assert!(!out.contains("authorization request"), "{out}");
    assert!(out.contains(r#""subject":"demo""#), "{out}");
    server.crash().await;
    let _ = std::fs::remove_dir_all(&dir);
}
