//! The official TypeScript MCP SDK as a client of the demo server with `AutoApprove`, given nothing
//! but the MCP URL (`http://<SDK_HOST>:<port>/mcp`): the SDK's own OAuth code discovers the
//! protected resource and the authorization server, registers dynamically, authorizes with PKCE
//! and exchanges the code. Both SDK lines are pinned in `tests/sdk-client/package-lock.json`:
//!
//! - v1, `@modelcontextprotocol/sdk` 1.32 (protocol up to 2025-11-25), `client.mjs`: lists the
//!   tools, calls `list_notes`, and steps up on `403 insufficient_scope` for `add_note`
//!   (`notes:write`) and `delete_note` (`notes:admin`) before `whoami` (with an app-side workaround
//!   for the SDK's 403 handling, see the script);
//! - v2, `@modelcontextprotocol/client` 2.4 (the line that implements 2026-07-28),
//!   `client-v2.mjs`, once per era (its default `legacy` negotiation, i.e. 2025-11-25, and pinned
//!   `2026-07-28`): the same steps with the SDK's own step-up, then the access token is revoked at
//!   the authorization server (standing in for its expiry) and the SDK refreshes on the 401 before
//!   `whoami`; the script reports the `MCP-Protocol-Version` of every MCP request.
//!
//! Needs Node (>= 20) and the npm packages that `cargo xtask setup` installs into
//! `.tools/sdk-client`. Without them the test prints that it was skipped, or fails when `CI` is
//! set or `MCP_AUTH_REQUIRE_NODE=1` (which `cargo xtask test` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use example_mcp_server::scopes;
use serde_json::{Value, json};
use support::{Demo, SDK_HOST, SUBJECT, Steps, advertised_issuer, sdk};

const TEST: &str = "sdk_client";

/// Runs `script` with `args` (the MCP URL first), or `None` when Node or the SDK is missing and
/// the test may skip.
async fn run_script(script: &str, tag: &str, args: &[&str]) -> Option<Steps> {
    sdk::run(TEST, script, tag, args).await
}

/// The tools, notes and identity steps both SDK lines report alike.
fn check_tools_and_notes(steps: &Steps, text: &str) {
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
    assert_eq!(notes[0]["id"], 1);
    assert!(
        notes[0]["text"].as_str().unwrap().starts_with("Welcome"),
        "{notes:?}"
    );

    let added = &steps.one("add_note")["result"];
    assert_eq!(added["author"], SUBJECT);
    assert_eq!(added["text"], text);
    assert_eq!(&steps.one("delete_note")["result"], added);

    let me = &steps.one("whoami")["result"];
    assert_eq!(me["subject"], SUBJECT);
    assert_eq!(me["client_id"], steps.one("registered")["client_id"]);
    assert_eq!(
        me["scopes"],
        json!(["mcp:tools", "notes:read", "notes:write", "notes:admin"])
    );
}

/// The step-ups: each started from the server's 403 insufficient_scope, whose challenge names
/// the scope the tool needs, and asked the user for everything granted so far plus that.
fn check_step_ups(steps: &Steps, url: &str, issuer: &str) {
    let challenges: Vec<&str> = steps
        .all("challenge")
        .iter()
        .filter(|c| c["status"] == 403)
        .map(|c| c["www_authenticate"].as_str().unwrap())
        .collect();
    // SDK v1 meets each 403 twice (see client.mjs), v2 once.
    assert!(challenges.len() >= 2, "{:#?}", steps.0);
    for challenge in &challenges {
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{challenge}"
        );
        assert!(
            challenge.contains("/.well-known/oauth-protected-resource/mcp\""),
            "{challenge}"
        );
    }
    assert!(
        challenges[0].contains("scope=\"mcp:tools notes:read notes:write\""),
        "{challenges:?}"
    );
    assert!(
        challenges.last().unwrap().contains("notes:admin"),
        "{challenges:?}"
    );
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
        assert_eq!(authorization["iss"], issuer);
        assert_eq!(authorization["resource"], url);
    }
    assert_eq!(
        steps.one("authorization_scopes")["scopes"],
        json!(requested)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_authorizes_with_only_the_url_and_steps_up_on_insufficient_scope() {
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let url = server.url_at(SDK_HOST);
    let issuer = advertised_issuer(&url).await;
    let Some(steps) = run_script("client.mjs", "v1", &[&url]).await else {
        return;
    };

    // One dynamic registration; the connection went through after the first authorization.
    steps.one("registered");
    let connect = steps.one("connect");
    assert_eq!(connect["server"]["name"], "example-mcp-server");
    assert_eq!(connect["session"], true);

    check_tools_and_notes(&steps, "from the TypeScript SDK");
    assert_eq!(
        steps.one("connect")["protocol_version"],
        "2025-11-25",
        "{:#?}",
        steps.0
    );

    check_step_ups(&steps, &url, &issuer);
    let stepped_up: Vec<&Value> = steps.all("step_up").iter().map(|s| &s["tool"]).collect();
    assert_eq!(stepped_up, [&json!("add_note"), &json!("delete_note")]);

    let paths = server.log();
    assert_eq!(server.hits("/register"), 1, "{paths:?}");
    assert_eq!(server.hits("/authorize"), 3, "{paths:?}");
    assert!(server.hits("/token") >= 3, "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/.well-known/oauth-protected-resource")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/.well-known/oauth-authorization-server")),
        "{paths:?}"
    );

    server.stop().await;
}

/// SDK v2 in one era: `mode` is the script's argument, `era` the version it must speak.
async fn v2(mode: &str, era: &str) {
    let server = Demo::start("127.0.0.1:0", |_| {}).await;
    let url = server.url_at(SDK_HOST);
    let issuer = advertised_issuer(&url).await;
    let tag = format!("v2-{mode}");
    let Some(steps) = run_script("client-v2.mjs", &tag, &[&url, mode]).await else {
        return;
    };

    // What the SDK negotiated, and what it put on the wire.
    let connect = steps.one("connect");
    let wire = steps.one("wire");
    eprintln!(
        "{TEST}: v2 {mode}: negotiated {}, MCP-Protocol-Version sent {}",
        connect["protocol_version"], wire["protocol_versions"]
    );
    assert_eq!(connect["server"]["name"], "example-mcp-server");
    assert_eq!(connect["protocol_version"], era, "{:#?}", steps.0);
    assert_eq!(wire["negotiated"], era);
    assert_eq!(wire["protocol_versions"], json!([era]), "{:#?}", steps.0);
    if era == "2026-07-28" {
        // Stateless: no session, and every request names its version.
        assert_eq!(connect["session"], false);
        assert_eq!(wire["without_version"], 0, "{:#?}", steps.0);
    } else {
        assert_eq!(connect["session"], true);
    }

    check_tools_and_notes(&steps, "from the TypeScript SDK v2");
    check_step_ups(&steps, &url, &issuer);

    // The refresh: the revoked access token got 401 invalid_token; the SDK refreshed (no new
    // authorization) and retried with a new token that kept the whole grant.
    let revoked = steps.one("revoked");
    let invalid: Vec<&Value> = steps
        .all("challenge")
        .into_iter()
        .filter(|c| c["status"] == 401)
        .collect();
    assert!(
        invalid.iter().any(|c| c["www_authenticate"]
            .as_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")),
        "{invalid:?}"
    );
    let refresh = steps.one("refresh");
    assert_eq!(refresh["new_access_token"], true);
    assert_eq!(
        refresh["scope"],
        "mcp:tools notes:read notes:write notes:admin"
    );
    let last_tokens = steps.all("tokens").last().copied().unwrap().clone();
    assert_ne!(last_tokens["access_token"], revoked["access_token"]);
    assert_eq!(
        wire["grant_types"],
        json!([
            "authorization_code",
            "authorization_code",
            "authorization_code",
            "refresh_token"
        ]),
        "{:#?}",
        steps.0
    );

    let paths = server.log();
    assert_eq!(server.hits("/register"), 1, "{paths:?}");
    assert_eq!(server.hits("/authorize"), 3, "{paths:?}");
    assert_eq!(server.hits("/token"), 4, "{paths:?}");
    assert_eq!(server.hits("/revoke"), 1, "{paths:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_v2_in_the_2025_11_25_era_authorizes_steps_up_and_refreshes() {
    v2("legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_v2_in_the_2026_07_28_era_authorizes_steps_up_and_refreshes() {
    v2("2026-07-28", "2026-07-28").await;
}
