//! Project automation. Run with `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: what `.ci/run` runs (fmt check, clippy `-D warnings`, the README test command).
//! - `cargo xtask bench`: the criterion benches of `mcp-auth-resource`.

use std::{
    env,
    process::{Command, ExitCode},
};

fn run(args: &[&str]) -> bool {
    eprintln!("== cargo {}", args.join(" "));
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn ci() -> bool {
    run(&["fmt", "--all", "--", "--check"])
        && run(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
        && run(&["test", "--workspace"])
}

fn main() -> ExitCode {
    let cmd = env::args().nth(1);
    let ok = match cmd.as_deref() {
        Some("ci") => ci(),
        Some("bench") => run(&["bench", "-p", "mcp-auth-resource", "--bench", "verify"]),
        _ => {
            eprintln!("usage: cargo xtask <ci|bench>");
            false
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
