//! The gateway's cost: the same `tools/call` load sent directly to an upstream MCP endpoint and
//! through the gateway (embedded authorization server, a token the verifier has cached, identity
//! headers, the tool-scope check), over loopback. Run with `cargo xtask bench-gateway` (release).
//!
//! Two upstreams, one table each:
//!
//! 1. **nothing**: an in-process endpoint that answers each `tools/call` at once (a JSON-RPC
//!    result, `application/json`), so the numbers are the gateway's own cost with nothing to
//!    hide it: the worst case for the throughput ratio.
//! 2. **Python SDK**: the official Python SDK's `MCPServer` (FastMCP,
//!    `tests/python-client/upstream_server.py` in `headers` mode, from the venv `cargo xtask
//!    setup` installs into `.tools/python-client`): an MCP server as people write them. Each
//!    target gets its own MCP session (`initialize`, then `tools/call` of `echo` with the
//!    session id). Skipped with a note when the venv is missing.
//!
//! Latency: one client, sequential requests on a kept-alive connection, rounds alternating
//! direct and gateway (the machine is shared and noisy). Throughput: `CONCURRENCY` clients for
//! `ROUND` each, alternating too.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, routing::post};
use mcp_auth_core::{Clock as _, SystemClock};
use mcp_auth_gateway::{AuthConfig, Config, build, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const LATENCY_ROUNDS: usize = 5;
const LATENCY_PER_ROUND: usize = 2_000;
const WARMUP: usize = 1_000;
const CONCURRENCY: usize = 8;
const ROUND: Duration = Duration::from_secs(3);
const THROUGHPUT_ROUNDS: usize = 2;

async fn upstream(body: Bytes) -> ([(&'static str, &'static str); 1], String) {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "content": [{"type": "text", "text": "hello"}], "isError": false}});
    ([("content-type", "application/json")], answer.to_string())
}

#[derive(Clone)]
struct Target {
    url: String,
    token: Option<String>,
    /// The MCP session to send, for an upstream that keeps sessions.
    session: Option<String>,
}

fn request(client: &reqwest::Client, target: &Target, id: u64) -> reqwest::RequestBuilder {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#
    );
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = &target.session {
        request = request.header("mcp-session-id", session);
    }
    request
}

/// Opens an MCP session at `target` (`initialize`, `notifications/initialized`) and keeps its
/// id in `target`.
async fn open_session(client: &reqwest::Client, target: &mut Target) {
    let post = |body: Value| {
        let mut request = client
            .post(&target.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(token) = &target.token {
            request = request.bearer_auth(token);
        }
        request
    };
    let response = post(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench-gateway", "version": "0"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "initialize at {}", target.url);
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    response.bytes().await.unwrap();
    let mut initialized = post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    if let Some(session) = &session {
        initialized = initialized.header("mcp-session-id", session);
    }
    let status = initialized.send().await.unwrap().status();
    assert!(status.is_success(), "notifications/initialized: {status}");
    target.session = session;
}

/// JSON-RPC ids, unique across the whole run: an MCP session routes each response by its
/// request's id, so two requests in flight with one id (8 clients each counting from 0, or
/// `initialize`'s id 0 again) would wait for each other's answer (the Python SDK hangs).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

async fn one(client: &reqwest::Client, target: &Target) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // Bounded: a request that is never answered fails the bench instead of hanging it.
    let (status, body) = tokio::time::timeout(Duration::from_secs(30), async {
        let response = request(client, target, id).send().await.unwrap();
        (response.status(), response.bytes().await.unwrap())
    })
    .await
    .unwrap_or_else(|_| panic!("no answer in 30 s from {}", target.url));
    assert_eq!(status, 200, "{}", target.url);
    assert!(body.windows(8).any(|w| w == b"\"result\""), "{body:?}");
}

/// `n` sequential calls; each one's latency in microseconds.
async fn latencies(client: &reqwest::Client, target: &Target, n: usize, out: &mut Vec<f64>) {
    for _ in 0..n {
        let started = Instant::now();
        one(client, target).await;
        out.push(started.elapsed().as_secs_f64() * 1e6);
    }
}

/// Requests per second with `CONCURRENCY` clients for `ROUND`.
async fn throughput(target: &Target) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (done, stop, target) = (done.clone(), stop.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                one(&client, &target).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(ROUND).await;
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await.unwrap();
    }
    count as f64 / elapsed.as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// `.tools/python-client`'s Python, when `cargo xtask setup` installed it.
fn python() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".tools/python-client/bin/python");
    let script = root.join("tests/python-client/upstream_server.py");
    (python.is_file() && script.is_file()).then_some((python, script))
}

/// Starts the Python SDK upstream; its URL and the process (killed when dropped).
async fn python_upstream() -> Option<(String, tokio::process::Child)> {
    use tokio::io::AsyncBufReadExt as _;
    let (python, script) = python()?;
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg("headers")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take()?).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .ok()?
        .ok()??;
    let port = line.strip_prefix("listening ")?.to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((format!("http://127.0.0.1:{port}/mcp"), child))
}

/// A gateway (embedded authorization server in memory, no rate limits) in front of
/// `upstream_url`, and an access token its verifier accepts.
async fn gateway(upstream_url: &str) -> Target {
    let mut config = Config::for_upstream(upstream_url);
    if let AuthConfig::Embedded(embedded) = &mut config.auth {
        embedded.db = Some(":memory:".to_owned());
        embedded.auto_approve = Some("bench".to_owned());
    }
    config.limits.per_ip_per_minute = 0;
    config.limits.per_client_per_minute = 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let gateway = build(&config, bound).await.unwrap();
    let server = gateway.server.clone().unwrap();
    let mcp_url = gateway.mcp_url.clone();
    tokio::spawn(serve(listener, gateway, std::future::pending()));

    // An access token as the embedded server issues them (RFC 9068), valid for an hour.
    let now = SystemClock::default().unix_seconds();
    let claims = json!({"iss": server.issuer(), "aud": mcp_url, "sub": "bench",
        "client_id": "bench-client", "scope": "mcp:tools", "iat": now, "exp": now + 3600,
        "jti": "bench-token"});
    let token = server.keys().sign("at+jwt", &claims, now).unwrap();
    Target {
        url: mcp_url,
        token: Some(token),
        session: None,
    }
}

/// Measures `direct` against `through` and prints the table.
async fn measure(title: &str, direct: &Target, through: &Target, per_round: usize) {
    let client = reqwest::Client::new();
    let mut sink = Vec::new();
    latencies(&client, direct, WARMUP.min(per_round), &mut sink).await;
    latencies(&client, through, WARMUP.min(per_round), &mut sink).await;

    let (mut d, mut g) = (Vec::new(), Vec::new());
    for _ in 0..LATENCY_ROUNDS {
        latencies(&client, direct, per_round, &mut d).await;
        latencies(&client, through, per_round, &mut g).await;
    }
    d.sort_by(f64::total_cmp);
    g.sort_by(f64::total_cmp);

    let (mut dt, mut gt) = (Vec::new(), Vec::new());
    for _ in 0..THROUGHPUT_ROUNDS {
        dt.push(throughput(direct).await);
        gt.push(throughput(through).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (dt, gt) = (mean(&dt), mean(&gt));

    let (d50, d99, g50, g99) = (
        percentile(&d, 0.50),
        percentile(&d, 0.99),
        percentile(&g, 0.50),
        percentile(&g, 0.99),
    );
    println!("## {title}\n");
    println!(
        "latency: {} sequential requests each; throughput: {CONCURRENCY} clients, {} x {ROUND:?} each\n",
        LATENCY_ROUNDS * per_round,
        THROUGHPUT_ROUNDS
    );
    println!("| | direct | gateway | added |");
    println!("|---|---|---|---|");
    println!(
        "| p50 latency | {d50:.0} µs | {g50:.0} µs | **{:.0} µs** |",
        g50 - d50
    );
    println!(
        "| p99 latency | {d99:.0} µs | {g99:.0} µs | **{:.0} µs** |",
        g99 - d99
    );
    println!(
        "| throughput | {dt:.0} req/s | {gt:.0} req/s | **{:.0}% of direct** |\n",
        gt / dt * 100.0
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/mcp", post(upstream)))
            .await
            .unwrap();
    });
    let direct = Target {
        url: upstream_url.clone(),
        token: None,
        session: None,
    };
    let through = gateway(&upstream_url).await;
    measure(
        "mcp-auth-gateway: tools/call over loopback, direct vs through the gateway (an upstream that does nothing)",
        &direct,
        &through,
        LATENCY_PER_ROUND,
    )
    .await;

    let Some((python_url, _python)) = python_upstream().await else {
        println!(
            "(the Python SDK upstream was skipped: no venv in .tools/python-client; run `cargo xtask setup`)"
        );
        return;
    };
    let client = reqwest::Client::new();
    let mut direct = Target {
        url: python_url.clone(),
        token: None,
        session: None,
    };
    let mut through = gateway(&python_url).await;
    open_session(&client, &mut direct).await;
    open_session(&client, &mut through).await;
    measure(
        "mcp-auth-gateway: tools/call over loopback, direct vs through the gateway (the official Python SDK's MCPServer)",
        &direct,
        &through,
        LATENCY_PER_ROUND / 20,
    )
    .await;
}
