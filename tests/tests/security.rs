//! The hostile review's findings (issue 21) against the demo, end to end over real HTTP:
//!
//! - the three-request escalation (open registration → `client_credentials` → admin tools) is
//!   refused at the first request, and the grant is off altogether;
//! - a machine client the operator arranges (`--machine-client`) gets exactly its scopes, and
//!   its token cannot run a tool that needs more;
//! - an access token revoked at `/revoke` is refused at the demo's own `/mcp` on the next
//!   request (the embedded authorization server and resource side share revocations);
//! - the authorization server's endpoints refuse a foreign `Host` (DNS rebinding);
//! - the banner prints the demo password only when it generated it (the binary as a process).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use mcp_auth_client::{
    HeadlessBrowser, Principal, TokenManager,
    store::{MemoryTokenStore, TokenKey, TokenStore},
};
use mcp_auth_core::{ResourceId, Secret};
use mcp_auth_server::MachineClient;
use serde_json::{Value, json};
use support::{Demo, client};

const MACHINE_ID: &str = "report-job";
const MACHINE_SECRET: &str = "report-job-secret-0123456789abcdefghij";

/// `POST /mcp` with a bearer token and a JSON-RPC body; status, `WWW-Authenticate`, body text.
async fn mcp_post(url: &str, token: &str, body: Value) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, r.text().await.unwrap())
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "security e2e", "version": "0"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escalation_is_refused_at_its_first_request() {
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let http = reqwest::Client::new();
    let issuer = server.issuer();
    let r = http
        .post(format!("{issuer}/register"))
        .json(&json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client_metadata");

    // The grant itself is off in the demo unless the operator arranges a machine client.
    let r = http
        .post(format!("{issuer}/token"))
        .basic_auth("anyone", Some("anything"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "notes:admin mcp:admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    let metadata: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "client_credentials"),
        "{metadata}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arranged_machine_client_gets_exactly_its_scopes() {
    let server = Demo::start("127.0.0.1:0", |config| {
        config.machine_clients.push(
            MachineClient::new(MACHINE_ID, Secret::new(MACHINE_SECRET))
                .scopes(["mcp:tools", "notes:read"]),
        );
    })
    .await;
    let http = reqwest::Client::new();
    let token = |scope: &'static str| {
        http.post(format!("{}/token", server.issuer()))
            .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", server.url.as_str()),
            ])
            .send()
    };
    let r = token("notes:admin mcp:admin").await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_scope");

    let r = token("mcp:tools notes:read").await.unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    let (status, _, _) = mcp_post(&server.url, access, initialize()).await;
    assert_eq!(status, 200);
    // Deleting another author's note needs notes:admin: HTTP 403 before the tool runs.
    let (status, challenge, _) = mcp_post(
        &server.url,
        access,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "delete_note", "arguments": {"id": 1}}}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("notes:admin"),
        "{challenge}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_access_token_is_refused_at_mcp_on_the_next_request() {
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let store = MemoryTokenStore::default();
    let manager = TokenManager::builder(&server.url)
        .client_name("security e2e")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .store(store.clone())
        .build()
        .unwrap();
    let mut mcp = client(&server.url, &manager);
    mcp.initialize("security e2e").await.unwrap();
    let key = TokenKey::new(Principal::shared(), ResourceId::parse(&server.url).unwrap());
    let stored = store.load_tokens(&key).await.unwrap().unwrap();
    let access = stored.access_token.expose().to_owned();
    let (status, _, _) = mcp_post(&server.url, &access, initialize()).await;
    assert_eq!(
        status, 200,
        "the token works, and is now in the verifier's cache"
    );

    let r = reqwest::Client::new()
        .post(format!("{}/revoke", server.issuer()))
        .form(&[
            ("token", access.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", stored.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, challenge, _) = mcp_post(&server.url, &access, initialize()).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("invalid_token") && challenge.contains("not active"),
        "{challenge}"
    );
    mcp.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_server_refuses_a_rebound_host() {
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let port = server.addr.port();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/authorize?client_id=x",
        "/jwks.json",
    ] {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", server.issuer()))
            .header("host", format!("rebound.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = reqwest::Client::new()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.issuer()
        ))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// The banner of the binary, up to its last line.
async fn banner(envs: &[(&str, &str)]) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;

    let db = std::env::temp_dir().join(format!(
        "mcp-auth-banner-{}-{}.db",
        std::process::id(),
        envs.len()
    ));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-example-mcp-server"));
    command
        .args(["--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env_remove("MCP_AUTH_DEMO_PASSWORD")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("Ctrl-C stops the server");
            banner.push(line);
            if last {
                break;
            }
        }
    })
    .await
    .expect("the banner within 30 s");
    child.kill().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    banner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banner_prints_the_password_only_when_it_made_it() {
    let chosen = "my-chosen-demo-password-42";
    let lines = banner(&[("MCP_AUTH_DEMO_PASSWORD", chosen)]).await;
    let text = lines.join("\n");
    assert!(!text.contains(chosen), "{text}");
    assert!(
        text.contains("password: the one in MCP_AUTH_DEMO_PASSWORD (not printed)"),
        "{text}"
    );
    assert!(!text.contains("a new random password"), "{text}");
    assert!(
        text.contains("machine grants: off"),
        "the banner says machine grants are off: {text}"
    );

    let lines = banner(&[]).await;
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(password.len(), 23, "{password}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a new random password each start"))
    );
}

/// The machine-client flags refuse what cannot work, with a message and exit code 2 or 1,
/// instead of starting a server with a half-configured client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_machine_client_flags_refuse_bad_combinations() {
    let run = |args: &'static [&'static str], secret: Option<&'static str>| async move {
        let db = std::env::temp_dir().join(format!(
            "mcp-auth-flags-{}-{}.db",
            std::process::id(),
            args.len() + secret.map_or(0, str::len)
        ));
        let mut command =
            tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-example-mcp-server"));
        command
            .args(["--addr", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(args)
            .env_remove("MCP_AUTH_MACHINE_SECRET")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(secret) = secret {
            command.env("MCP_AUTH_MACHINE_SECRET", secret);
        }
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("the binary answers within 30 s")
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["--machine-client", "job"], Some(MACHINE_SECRET)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at least one --machine-scope"), "{stderr}");
    let (code, stderr) = run(&["--machine-scope", "notes:read"], Some(MACHINE_SECRET)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("goes with --machine-client"), "{stderr}");
    let (code, stderr) = run(
        &["--machine-client", "job", "--machine-scope", "notes:read"],
        None,
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("MCP_AUTH_MACHINE_SECRET"), "{stderr}");
    // A scope the demo does not have, and a short secret: refused at start, not at the first token.
    let (code, stderr) = run(
        &["--machine-client", "job", "--machine-scope", "root"],
        Some(MACHINE_SECRET),
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("root"), "{stderr}");
    let (code, stderr) = run(
        &["--machine-client", "job", "--machine-scope", "notes:read"],
        Some("short"),
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("32 characters"), "{stderr}");
}
