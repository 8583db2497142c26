//! The command line as a process: `--upstream-oidc` prints the redirect URI to register at the
//! provider and a generated vault key; its configuration errors exit with status 2 and say
//! which variable is wrong; `--db postgres://… --db-schema NAME` runs on PostgreSQL (the
//! database at `MCP_AUTH_TEST_POSTGRES_URL`; unset or unreachable, that test prints that it
//! skipped, or fails when `CI` is set), and a PostgreSQL that is down stops the start in bounded
//! time.
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
        "MCP_AUTH_DB_SCHEMA",
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
    let cases: [Case<'_>; 4] = [
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
        (
            &["--db", "demo.db", "--db-schema", "demo"],
            &[],
            "--db-schema goes with a PostgreSQL --db URL",
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

/// Start the server with `args`; its banner up to `Ctrl-C stops the server.` (or whatever it
/// printed before exiting), and the running child.
fn start(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = command()
        .args(args)
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
    (child, banner)
}

/// One HTTP/1.1 request over loopback; the response's status line and body.
fn http(host: &str, request_line: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The test database's URL, `None` when the test skips (it fails instead when `CI` is set).
fn postgres_url() -> Option<String> {
    const URL_ENV: &str = "MCP_AUTH_TEST_POSTGRES_URL";
    let reason = match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => {
            let reachable = url::Url::parse(&url).ok().and_then(|u| {
                let addr = (u.host_str()?.to_owned(), u.port().unwrap_or(5432));
                std::net::ToSocketAddrs::to_socket_addrs(&addr).ok()?.next()
            });
            match reachable {
                Some(addr)
                    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                        .is_ok() =>
                {
                    return Some(url);
                }
                _ => format!("the PostgreSQL at {URL_ENV} is unreachable"),
            }
        }
        _ => format!("{URL_ENV} is not set"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL is required when CI is set: {reason}"
    );
    eprintln!("skipped: {reason}");
    None
}

/// Drops the schema when the test ends, however it ends.
struct DropSchema {
    url: String,
    name: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        use sqlx::Connection;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.url).await {
                let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
                let _ = sqlx::raw_sql(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        });
    }
}

#[test]
fn db_postgres_url_with_a_schema_starts_registers_a_client_and_shows_no_password() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = DropSchema {
        name: format!("mcp_auth_cli_{}", std::process::id()),
        url: url.clone(),
    };
    // A password in the URL (trust authentication ignores it) must not reach the banner.
    let mut with_password = url::Url::parse(&url).unwrap();
    with_password.set_password(Some("s3cret-pw")).unwrap();
    let (mut child, banner) = start(&[
        "--addr",
        "127.0.0.1:0",
        "--auto-approve",
        "--db",
        with_password.as_str(),
        "--db-schema",
        &schema.name,
    ]);
    let text = banner.join("\n");
    let database = banner
        .iter()
        .find(|l| l.starts_with("database:"))
        .unwrap_or_else(|| panic!("no database line in {text}"));
    assert!(database.contains("postgres://"), "{database}");
    assert!(
        database.contains(&format!("(schema {})", schema.name)),
        "{database}"
    );
    assert!(!text.contains("s3cret-pw"), "{text}");
    let host = banner
        .iter()
        .find_map(|l| l.strip_prefix("MCP endpoint:"))
        .and_then(|l| l.trim().strip_prefix("http://"))
        .and_then(|l| l.strip_suffix("/mcp"))
        .unwrap_or_else(|| panic!("no endpoint in {text}"))
        .to_owned();
    // Open registration writes a client to PostgreSQL.
    let (status, body) = http(
        &host,
        "POST /register",
        r#"{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}"#,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(status.contains(" 201 "), "{status} {body}");
    assert!(body.contains("client_id"), "{body}");
}

#[test]
fn a_postgres_that_is_down_stops_the_start_within_seconds() {
    let started = Instant::now();
    let output = command()
        .args([
            "--addr",
            "127.0.0.1:0",
            "--auto-approve",
            "--db",
            "postgres://postgres:s3cret-pw@127.0.0.1:9/test",
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}
