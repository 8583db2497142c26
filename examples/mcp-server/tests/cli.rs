//! The command line as a process: `--upstream-oidc` prints the redirect URI to register at the
//! provider and a generated vault key; its configuration errors exit with status 2 and say
//! which variable is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_example-mcp-server");

fn command() -> Command {
    let mut command = Command::new(BIN);
    for name in [
        "MCP_AUTH_ADDR",
        "MCP_AUTH_DB",
        "MCP_AUTH_UPSTREAM_CLIENT_ID",
        "MCP_AUTH_UPSTREAM_CLIENT_SECRET",
        "MCP_AUTH_VAULT_KEY",
        "MCP_AUTH_DEMO_PASSWORD",
    ] {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "warn");
    command
}

#[test]
fn upstream_oidc_prints_the_redirect_uri_and_a_generated_vault_key_once() {
    let db = std::env::temp_dir().join(format!("mcp-auth-cli-{}.db", std::process::id()));
    let mut child = command()
        .args(["--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        // Discovery is lazy: the provider need not be up for the server to start.
        .args(["--upstream-oidc", "http://127.0.0.1:9"])
        .env("MCP_AUTH_UPSTREAM_CLIENT_ID", "demo-client")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (send, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut banner = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line == "Ctrl-C stops the server.";
                banner.push(line);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let text = banner.join("\n");
    let endpoint = banner
        .iter()
        .find_map(|l| l.strip_prefix("                (also "))
        .and_then(|l| l.split("/mcp;").next())
        .unwrap_or_else(|| panic!("no canonical endpoint in {text}"));
    let redirect: Vec<&String> = banner
        .iter()
        .filter(|l| l.starts_with("upstream redirect URI: "))
        .collect();
    assert_eq!(
        redirect,
        [&format!("upstream redirect URI: {endpoint}/login/callback")],
        "{text}"
    );
    let key_line = banner
        .iter()
        .position(|l| l.starts_with("vault key generated for this run"))
        .unwrap_or_else(|| panic!("{text}"));
    let key = banner[key_line + 1].trim();
    assert_eq!(key.len(), 44, "base64 of 32 bytes: {key}");
    assert_eq!(text.matches(key).count(), 1, "printed once");
    assert!(text.contains("set MCP_AUTH_VAULT_KEY"), "{text}");
    assert!(text.contains("tool upstream_profile"), "{text}");
}

/// Arguments, environment, what stderr must say.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn configuration_errors_exit_2_and_name_the_variable() {
    let cases: [Case<'_>; 3] = [
        (
            &["--upstream-oidc", "http://127.0.0.1:9"],
            &[],
            "MCP_AUTH_UPSTREAM_CLIENT_ID",
        ),
        (
            &["--upstream-oidc", "http://127.0.0.1:9"],
            &[
                ("MCP_AUTH_UPSTREAM_CLIENT_ID", "demo-client"),
                ("MCP_AUTH_VAULT_KEY", "c2hvcnQ="),
            ],
            "MCP_AUTH_VAULT_KEY: the vault key must be 32 bytes",
        ),
        (
            &["--auto-approve", "--upstream-oidc", "http://127.0.0.1:9"],
            &[("MCP_AUTH_UPSTREAM_CLIENT_ID", "demo-client")],
            "cannot be combined",
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = command();
        command.args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("c2hvcnQ="),
            "the key is not echoed: {stderr}"
        );
    }
}
