//! The official Python MCP SDK (PyPI `mcp`, pinned with hashes in
//! `tests/python-client/requirements.txt`) as a client of the demo server with `AutoApprove`,
//! given nothing but the MCP URL, once per protocol era: `legacy` (the 2025-11-25 `initialize`
//! handshake) and pinned `2026-07-28` (stateless, `_meta` on every request). The SDK's own OAuth
//! code discovers the protected resource and the authorization server, registers dynamically,
//! authorizes with PKCE and exchanges the code; the script (`tests/python-client/client.py`) then
//! lists the tools, calls `list_notes`, lets the SDK step up on `403 insufficient_scope` for
//! `add_note` (`notes:write`) and `delete_note` (`notes:admin`), moves the SDK's clock past the
//! access token's `expires_in` so that the SDK refreshes it (`grant_type=refresh_token`) before
//! `whoami`, and reports the `MCP-Protocol-Version` every MCP request carried.
//!
//! Needs the venv that `cargo xtask setup` installs into `.tools/python-client` (Python 3 with
//! `venv`). Without it the test prints that it was skipped, or fails when `CI` is set or
//! `MCP_AUTH_REQUIRE_PYTHON=1` (which `cargo xtask test` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use example_mcp_server::scopes;
use serde_json::json;
use support::{
    Demo, PYTHON_SOURCE as SOURCE, REQUIRE_PYTHON as REQUIRE, SDK_HOST, SUBJECT, Steps,
    advertised_issuer, python, unavailable, workspace_root,
};
use tokio::process::Command;

/// The whole client run, bounded (the script bounds itself at 45 s too).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const TEST: &str = "python_client";

/// Runs the SDK client against a new demo in `mode` and checks every step; `era` is the
/// protocol version the run must speak.
async fn run(mode: &str, era: &str) {
    let root = workspace_root();
    let python = match python(&root) {
        Ok(python) => python,
        Err(reason) => return unavailable(TEST, REQUIRE, &reason),
    };
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let url = server.url_at(SDK_HOST);
    let issuer = advertised_issuer(&url).await;

    let started = Instant::now();
    let child = Command::new(&python)
        .arg(root.join(SOURCE).join("client.py"))
        .arg(&url)
        .arg(mode)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the SDK client did not finish in {CLIENT_TIMEOUT:?} (killed)"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client.py {url} {mode} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    let steps = Steps::parse(&stdout);
    assert_eq!(steps.0.last().unwrap()["step"], "done", "{stdout}");

    // What the SDK negotiated, and what it put on the wire.
    let negotiated = &steps.one("connect")["protocol_version"];
    let wire = steps.one("wire");
    eprintln!(
        "{TEST}: mode {mode}: negotiated {negotiated}, MCP-Protocol-Version sent {}, in {:?}",
        wire["protocol_versions"],
        started.elapsed()
    );
    assert_eq!(negotiated, era, "{stdout}");
    assert_eq!(wire["protocol_versions"], json!([era]), "{stdout}");
    if era == "2026-07-28" {
        // No handshake: every request names its version.
        assert_eq!(wire["without_version"], 0, "{stdout}");
    }

    // One dynamic registration.
    let client_id = &steps.one("registered")["client_id"];

    let mut tools: Vec<&str> = steps.one("list_tools")["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tools.sort_unstable();
    let mut expected: Vec<&str> = scopes::TOOL_SCOPES.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(tools, expected);

    let notes = steps.one("list_notes")["result"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "the welcome note: {notes:?}");
    assert!(
        notes[0]["text"].as_str().unwrap().starts_with("Welcome"),
        "{notes:?}"
    );
    let added = &steps.one("add_note")["result"];
    assert_eq!(added["author"], SUBJECT);
    assert_eq!(added["text"], "from the Python SDK");
    assert_eq!(&steps.one("delete_note")["result"], added);

    // The step-ups: the SDK itself, from each 403's challenge, asked for everything granted so
    // far plus the challenged scope (SEP-2350).
    let challenges: Vec<&str> = steps
        .all("challenge")
        .iter()
        .map(|c| c["www_authenticate"].as_str().unwrap())
        .collect();
    assert_eq!(challenges.len(), 2, "{stdout}");
    for challenge in &challenges {
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{challenge}"
        );
        assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    }
    assert!(
        challenges[0].contains("scope=\"mcp:tools notes:read notes:write\""),
        "{challenges:?}"
    );
    assert!(challenges[1].contains("notes:admin"), "{challenges:?}");
    let authorizations = steps.all("authorize");
    let requested: Vec<&str> = authorizations
        .iter()
        .map(|a| a["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        requested,
        [
            "mcp:tools notes:read",
            "mcp:tools notes:read notes:write",
            "mcp:tools notes:read notes:write notes:admin",
        ]
    );
    for authorization in &authorizations {
        assert_eq!(authorization["status"], 303);
        assert_eq!(authorization["iss"], issuer.as_str());
        assert_eq!(authorization["resource"], url.as_str());
    }

    // The refresh: once the SDK held its token as expired, it refreshed before the next request
    // and sent the new token, which kept the whole grant.
    let refresh = steps.one("refresh");
    assert_eq!(refresh["refreshed"], true, "{stdout}");
    assert_eq!(refresh["new_access_token"], true, "{stdout}");
    assert_eq!(
        refresh["scope"],
        "mcp:tools notes:read notes:write notes:admin"
    );
    assert_eq!(
        wire["grant_types"],
        json!([
            "authorization_code",
            "authorization_code",
            "authorization_code",
            "refresh_token"
        ]),
        "{stdout}"
    );
    for tokens in steps.all("tokens") {
        assert_eq!(tokens["refresh_token"], true, "{tokens}");
    }

    let me = &steps.one("whoami")["result"];
    assert_eq!(me["subject"], SUBJECT);
    assert_eq!(&me["client_id"], client_id);
    assert_eq!(
        me["scopes"],
        json!(["mcp:tools", "notes:read", "notes:write", "notes:admin"])
    );

    let paths = server.log();
    assert_eq!(server.hits("/register"), 1, "{paths:?}");
    assert_eq!(server.hits("/authorize"), 3, "{paths:?}");
    assert_eq!(server.hits("/token"), 4, "{paths:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_in_the_2025_11_25_era_authorizes_steps_up_and_refreshes() {
    run("legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_in_the_2026_07_28_era_authorizes_steps_up_and_refreshes() {
    run("2026-07-28", "2026-07-28").await;
}
