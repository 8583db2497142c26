//! `cargo xtask bench-as [--n N] [--only memory|sqlite|postgres|reference]…`: the authorization server's
//! CPU per grant next to the official TypeScript SDK's reference authorization server (issue 12
//! item 5).
//!
//! 1. Installs the reference server: the committed npm project `xtask/bench-as/reference`
//!    (`@modelcontextprotocol/sdk`, pinned like `tests/sdk-client`, and Node 22) by `npm ci`
//!    into `.tools/bench-as` when it is missing or its lock file changed (not a `cargo xtask
//!    setup` step: no test needs it), with `reference-as.mjs` next to it.
//! 2. Builds `example-mcp-server` and the load generator `bench-as` (`xtask/bench-as`, a crate
//!    of its own so that xtask stays dependency-free) in release.
//! 3. Runs the load generator pinned to CPU 1 (`taskset -c 1`); it starts each server pinned to
//!    CPU 0, runs the same workload against each and prints the table (see
//!    `xtask/bench-as/src/main.rs`). Databases and server logs go to `target/bench-as`.

use std::{env, fs, process::Command};

use crate::conformance;

/// The committed npm project of the reference authorization server.
const SOURCE: &str = "xtask/bench-as/reference";
/// Where it is installed, relative to the workspace root (git-ignored).
const PREFIX: &str = ".tools/bench-as";
/// The reference server's script (copied next to the installed `node_modules`).
const SCRIPT: &str = "reference-as.mjs";
/// A file of the installed SDK that the script imports.
const ENTRY: &str =
    "node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/demoInMemoryOAuthProvider.js";
/// The CPU of the load generator (the servers run on CPU 0).
const LOADGEN_CPU: &str = "1";

/// Whether the reference server's npm project is installed with a Node >= 22.
fn present() -> bool {
    conformance::npm_installed(SOURCE, PREFIX, ENTRY)
        && conformance::node_binary(&conformance::root().join(PREFIX)).is_some()
}

/// `npm ci` of the committed lock file into [`PREFIX`].
fn install() -> bool {
    conformance::npm_ci(SOURCE, PREFIX)
}

/// Installs, builds and runs; `args` go to the load generator (`--n`, `--only`).
pub(crate) fn run(args: &[String]) -> bool {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: cargo xtask bench-as [--n N] [--only memory|sqlite|postgres|reference]..."
        );
        return true;
    }
    let installed = present() || (install() && present());
    if !installed {
        eprintln!("xtask: cannot install the reference authorization server into {PREFIX}");
        return false;
    }
    let root = conformance::root();
    let prefix = root.join(PREFIX);
    let Some(node) = conformance::node_binary(&prefix) else {
        eprintln!("xtask: no Node >= 22 for the reference authorization server");
        return false;
    };
    let script = prefix.join(SCRIPT);
    if let Err(error) = fs::copy(root.join(SOURCE).join(SCRIPT), &script) {
        eprintln!(
            "xtask: cannot copy {SCRIPT} to {}: {error}",
            prefix.display()
        );
        return false;
    }
    let Some(target) = conformance::target_dir(&root) else {
        return false;
    };
    let built = crate::cargo(
        &[
            "build",
            "--release",
            "-p",
            "example-mcp-server",
            "-p",
            "bench-as",
        ],
        &[],
    );
    if !built {
        return false;
    }
    let release = target.join("release");
    let binary = |name: &str| release.join(format!("{name}{}", env::consts::EXE_SUFFIX));
    let work_dir = target.join("bench-as");
    let mut command = Command::new("taskset");
    command
        .args(["-c", LOADGEN_CPU])
        .arg(binary("bench-as"))
        .arg("--server")
        .arg(binary("example-mcp-server"))
        .arg("--node")
        .arg(&node)
        .arg("--reference")
        .arg(&script)
        .arg("--work-dir")
        .arg(&work_dir)
        .args(args)
        .current_dir(&root);
    eprintln!("== {command:?}");
    match command.status() {
        Ok(status) => status.success(),
        Err(error) => {
            eprintln!("xtask: cannot run taskset (util-linux) for the load generator: {error}");
            false
        }
    }
}
