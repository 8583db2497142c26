//! The hostile-input suite (issue 16 item 3), over real HTTP on loopback, table-driven:
//!
//! - **resource server** (`example-resource-server`, JWT mode, trusting the demo): malformed,
//!   huge, repeated and odd-scheme `Authorization` headers, tokens in the query, JSON-RPC bodies
//!   that are huge, deep, duplicate-keyed, batches or not JSON, wrong content types;
//! - **authorization server** (the demo `example-mcp-server`): malformed and oversize forms,
//!   duplicate parameters, bad PKCE, bad redirect URIs, bad registration bodies, client ID
//!   metadata documents that are huge, lie about their `client_id` or redirect, bad cookies,
//!   foreign `Host`s;
//! - **the client** (`mcp-auth-client`'s `TokenManager`) against small hostile servers written
//!   here: oversize metadata, redirect loops, metadata whose `issuer` or `resource` lies, a PRM
//!   naming a link-local or a plain-http non-loopback authorization server, a 401 flood.
//!
//! Requests are written byte for byte on a TCP connection (so malformed ones reach the server as
//! sent). For every case: the expected status and OAuth error code (from the JSON body or the
//! `WWW-Authenticate` challenge), no secret or token of the case (nor the suite's own tokens and
//! client secrets) in any response header or body, and the server still answering the next good
//! request. Every log line the servers wrote (tracing, DEBUG) is captured and must not contain a
//! token or secret either. A panic anywhere fails its case. The suite prints
//! `N passed, M failed` and fails when any case failed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    fmt::Write as _,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use base64::Engine as _;
use mcp_auth_client::{AuthErrorKind, HeadlessBrowser, TokenManager};
use serde_json::{Value, json};
use support::{Demo, Running};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// One request, written as is.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// `Host` to send (default: the server's address).
    host: Option<String>,
    /// Send no `Content-Length` (it is in `headers`, or the body is absent).
    no_length: bool,
}

impl Req {
    fn new(method: &'static str, target: impl Into<String>) -> Self {
        Self {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            host: None,
            no_length: false,
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    fn bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        let host = self.host.clone().unwrap_or_else(|| addr.to_string());
        out.extend_from_slice(format!("host: {host}\r\nconnection: close\r\n").as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !self.no_length {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// What came back.
#[derive(Debug, Default)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Everything as received (headers and body), for the echo checks.
    raw: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The OAuth error code: the JSON body's `error`, else the challenge's `error`.
    fn error_code(&self) -> Option<String> {
        if let Some(code) = self
            .json()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        {
            return Some(code);
        }
        let challenge = self.header("www-authenticate")?;
        let parsed = mcp_auth_core::challenge::parse(challenge).ok()?;
        parsed
            .iter()
            .find_map(|c| c.param("error").map(str::to_owned))
    }
}

/// Writes `req` to `addr` and reads the whole answer (the connection is closed by the server).
async fn send(addr: SocketAddr, req: &Req) -> io::Result<Resp> {
    let bytes = req.bytes(addr);
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        // A server may answer (413, 431) and close before it read everything: not an error.
        let _ = stream.write_all(&bytes).await;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if raw.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer within 15 s"))??;
    parse_response(raw)
}

fn parse_response(raw: Vec<u8>) -> io::Result<Resp> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(Resp {
        status,
        headers,
        body,
        raw,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures every event at DEBUG and above (this test binary has one test, so the global
/// subscriber is ours).
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,hyper=info,h2=info,sqlx=warn,rustls=info",
        ))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
    captured
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// The expected OAuth error code.
#[derive(Clone, Debug)]
enum Code {
    /// Not checked.
    Any,
    /// Must be absent.
    Absent,
    /// Must be this code.
    Is(&'static str),
}

/// Which server a case goes to (and which good request follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Rs,
    As,
}

struct Case {
    name: String,
    server: Server,
    req: Req,
    /// Any of these statuses.
    status: Vec<u16>,
    code: Code,
    /// Values the case sends that must not come back (tokens, secrets, verifiers).
    secrets: Vec<String>,
}

fn case(name: impl Into<String>, server: Server, req: Req, status: &[u16], code: Code) -> Case {
    Case {
        name: name.into(),
        server,
        req,
        status: status.to_vec(),
        code,
        secrets: Vec::new(),
    }
}

impl Case {
    fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }
}

/// The outcome of all cases.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: Vec<String>,
}

impl Report {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => {
                eprintln!("FAILED {name}: {why}");
                self.failed.push(format!("{name}: {why}"));
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// The deployment
// ---------------------------------------------------------------------------------------------

const CIMD_PATH: &str = "/client.json";

struct Env {
    demo: Demo,
    as_addr: SocketAddr,
    rs_addr: SocketAddr,
    rs_mcp: String,
    _rs: Running,
    /// A token for the resource server with `mcp:tools` (not `mcp:admin`).
    token: String,
    /// An initialized MCP session at the resource server, bound to that token.
    session: String,
    /// A confidential client registered at the demo.
    client_id: String,
    client_secret: String,
    /// A public client with redirect URI `http://127.0.0.1:<port>/cb`.
    public_id: String,
    redirect: String,
    /// The hostile CIMD host (loopback).
    cimd: SocketAddr,
    _cimd_server: Running,
    /// An MCP server that answers 401 to everything; the demo issues tokens for it.
    flood: Hostile,
}

impl Env {
    /// Every secret of the deployment: never in a response of a case or a log line.
    fn global_secrets(&self) -> Vec<String> {
        vec![self.token.clone(), self.client_secret.clone()]
    }
}

/// The hostile client ID metadata documents, served on loopback: `/client.json` (good),
/// `/huge.json` (over the fetcher's limit), `/liar.json` (another `client_id`), `/redirect.json`
/// (a 302 to the good one), `/loop.json` (a 302 to itself), `/secret.json` (carries a
/// `client_secret`), `/slow.json` (never finishes), `/notjson`.
fn cimd_router(base: String) -> Router {
    let doc = |base: &str, path: &str| {
        json!({
            "client_id": format!("{base}{path}"),
            "client_name": "Hostile CIMD",
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "none",
        })
    };
    let b = base.clone();
    let good = move || {
        let d = doc(&b, CIMD_PATH);
        async move { axum::Json(d) }
    };
    let b = base.clone();
    let liar = move || {
        let d = doc(&b, CIMD_PATH);
        async move { axum::Json(d) }
    };
    let b = base.clone();
    let secret = move || {
        let mut d = doc(&b, "/secret.json");
        d["client_secret"] = json!("cimd-secret-in-document-0123456789");
        async move { axum::Json(d) }
    };
    let b = base.clone();
    let huge = move || {
        let mut d = doc(&b, "/huge.json");
        d["padding"] = json!("x".repeat(2 * 1024 * 1024));
        async move { axum::Json(d) }
    };
    let b = base.clone();
    let redirect = move || {
        let to = format!("{b}{CIMD_PATH}");
        async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
    };
    let b = base;
    let redirect_loop = move || {
        let to = format!("{b}/loop.json");
        async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
    };
    Router::new()
        .route(CIMD_PATH, get(good))
        .route("/liar.json", get(liar))
        .route("/secret.json", get(secret))
        .route("/huge.json", get(huge))
        .route("/redirect.json", get(redirect))
        .route("/loop.json", get(redirect_loop))
        .route(
            "/slow.json",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "{}"
            }),
        )
        .route("/notjson", get(|| async { "<html>hello</html>" }))
}

async fn start() -> Env {
    // The resource server's listener first: its URL is an extra resource of the demo.
    let rs_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs_addr = rs_listener.local_addr().unwrap();
    let rs_mcp = format!("http://{rs_addr}/mcp");
    let flood_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flood_mcp = format!("http://{}/mcp", flood_listener.local_addr().unwrap());
    let demo = Demo::start("127.0.0.1:0", |config| {
        config.extra_resources.push(rs_mcp.clone());
        config.extra_resources.push(flood_mcp.clone());
        config.cimd_allow_loopback = true;
    })
    .await;
    let issuer = demo.issuer();
    let config = example_resource_server::Config {
        addr: rs_addr,
        resource: rs_mcp.clone(),
        issuer: issuer.clone(),
        introspection_url: None,
        introspection_client: None,
        introspection_cache_ttl: None,
        accept_jwt_typ: false,
        accept_audience: None,
    };
    let rs = Running::axum(rs_listener, example_resource_server::app(&config).unwrap());

    // A token for the resource server, through the real flow.
    let manager = TokenManager::builder(&rs_mcp)
        .client_name("hostile suite")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .build()
        .unwrap();
    let token = manager.access_token().await.unwrap().expose().to_owned();
    let initialized = send(rs_addr, &mcp(Some(&token), initialize_body().to_string()))
        .await
        .unwrap();
    assert_eq!(
        initialized.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&initialized.body)
    );
    let session = initialized
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let ready = send(
        rs_addr,
        &mcp(
            Some(&token),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .header("mcp-session-id", &session),
    )
    .await
    .unwrap();
    assert!(matches!(ready.status, 200 | 202), "{}", ready.status);

    let http = reqwest::Client::new();
    let confidential: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:7/cb"], "token_endpoint_auth_method": "client_secret_basic", "client_name": "hostile confidential"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let redirect = "http://127.0.0.1:7/cb".to_owned();
    let public: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none", "client_name": "hostile public"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let cimd_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cimd = cimd_listener.local_addr().unwrap();
    let cimd_server = Running::axum(cimd_listener, cimd_router(format!("http://{cimd}")));
    let flood = hostile_on(flood_listener, |base| flood_router(base, issuer.clone()));
    Env {
        as_addr: demo.addr,
        demo,
        rs_addr,
        rs_mcp,
        _rs: rs,
        token,
        session,
        client_id: confidential["client_id"].as_str().unwrap().to_owned(),
        client_secret: confidential["client_secret"]
            .as_str()
            .unwrap_or_else(|| panic!("no secret: {confidential}"))
            .to_owned(),
        public_id: public["client_id"].as_str().unwrap().to_owned(),
        redirect,
        cimd,
        _cimd_server: cimd_server,
        flood,
    }
}

/// `/mcp` always 401 with a challenge naming this server's metadata, which names `issuer`.
fn flood_router(base: String, issuer: String) -> Router {
    let challenge =
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    let document = prm(&format!("{base}/mcp"), &[&issuer]);
    Router::new()
        .route(
            "/mcp",
            any(move || {
                let c = challenge.clone();
                async move {
                    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, c)]).into_response()
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || {
                let d = document.clone();
                async move { json_response(d) }
            }),
        )
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "hostile", "version": "0"}}})
}

/// A `POST /mcp` with the MCP headers and `body`.
fn mcp(token: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
    let mut r = Req::new("POST", "/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(body);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r
}

/// The good request after each case: the server still answers.
async fn still_answers(env: &Env, server: Server) -> Result<(), String> {
    let (addr, req, expect) = match server {
        Server::Rs => (
            env.rs_addr,
            mcp(Some(&env.token), initialize_body().to_string()),
            200,
        ),
        Server::As => (
            env.as_addr,
            Req::new("GET", "/.well-known/oauth-authorization-server"),
            200,
        ),
    };
    match send(addr, &req).await {
        Ok(r) if r.status == expect => Ok(()),
        Ok(r) => Err(format!(
            "the next good request got {} ({})",
            r.status,
            String::from_utf8_lossy(&r.body)
        )),
        Err(e) => Err(format!("the next good request failed: {e}")),
    }
}

async fn run_case(env: &Env, c: &Case) -> Result<(), String> {
    let addr = match c.server {
        Server::Rs => env.rs_addr,
        Server::As => env.as_addr,
    };
    let r = send(addr, &c.req)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let mut problems = String::new();
    if !c.status.contains(&r.status) {
        let _ = write!(
            problems,
            "status {} (expected {:?}); body {:.300}; www-authenticate {:?}. ",
            r.status,
            c.status,
            String::from_utf8_lossy(&r.body),
            r.header("www-authenticate")
        );
    }
    let code = r.error_code();
    match (&c.code, code.as_deref()) {
        (Code::Any, _) | (Code::Absent, None) => {}
        (Code::Is(want), Some(got)) if *want == got => {}
        (want, got) => {
            let _ = write!(problems, "error code {got:?} (expected {want:?}). ");
        }
    }
    if let Some(d) = r
        .json()
        .and_then(|v| v.get("error_description").cloned())
        .and_then(|d| d.as_str().map(str::to_owned))
        && d.contains('"')
    {
        let _ = write!(problems, "error_description with a quote: {d}. ");
    }
    for secret in c.secrets.iter().chain(env.global_secrets().iter()) {
        if secret.len() >= 8 && contains(&r.raw, secret) {
            let _ = write!(problems, "a secret came back ({} bytes). ", secret.len());
        }
    }
    if let Err(e) = still_answers(env, c.server).await {
        problems.push_str(&e);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

// ---------------------------------------------------------------------------------------------
// Resource server cases
// ---------------------------------------------------------------------------------------------

fn rs_cases(env: &Env) -> Vec<Case> {
    use Code::*;
    use Server::Rs;
    let t = env.token.as_str();
    let init = initialize_body().to_string();
    let mut cases = Vec::new();
    let auth = |value: &[u8]| mcp(None, init.clone()).header("authorization", value);

    // Malformed Authorization headers.
    let malformed: &[(&str, &[u8], &[u16], Code)] = &[
        ("empty Authorization", b"", &[400, 401], Any),
        ("scheme only", b"Bearer", &[400], Is("invalid_request")),
        (
            "scheme and spaces",
            b"Bearer    ",
            &[400],
            Is("invalid_request"),
        ),
        (
            "token with a space inside",
            b"Bearer abc def",
            &[401],
            Is("invalid_token"),
        ),
        (
            "token with a quote",
            b"Bearer \"abc\"",
            &[401],
            Is("invalid_token"),
        ),
        (
            "token with a comma",
            b"Bearer a,b",
            &[401],
            Is("invalid_token"),
        ),
        ("only padding", b"Bearer ====", &[401], Is("invalid_token")),
        (
            "padding inside",
            b"Bearer ab=cd",
            &[401],
            Is("invalid_token"),
        ),
        (
            "non-ASCII token",
            "Bearer t\u{f6}ken".as_bytes(),
            &[400, 401],
            Any,
        ),
        ("obs-text byte", b"Bearer abc\xff", &[400, 401], Any),
        (
            "tab separator",
            b"Bearer\tnot-a-jwt",
            &[401],
            Is("invalid_token"),
        ),
        ("three dots", b"Bearer a.b.c.d", &[401], Is("invalid_token")),
        (
            "two segments",
            b"Bearer eyJhbGciOiJFUzI1NiJ9.e30",
            &[401],
            Is("invalid_token"),
        ),
        (
            "alg none",
            b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhIn0.",
            &[401],
            Is("invalid_token"),
        ),
        (
            "HS256 forged",
            b"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhIn0.c2ln",
            &[401],
            Is("invalid_token"),
        ),
        (
            "header not JSON",
            b"Bearer bm90IGpzb24.e30.c2ln",
            &[401],
            Is("invalid_token"),
        ),
        ("empty segments", b"Bearer ..", &[401], Is("invalid_token")),
        (
            "crit header",
            b"Bearer eyJhbGciOiJFUzI1NiIsImNyaXQiOlsieCJdfQ.e30.c2ln",
            &[401],
            Is("invalid_token"),
        ),
    ];
    for (name, value, status, code) in malformed {
        cases.push(case(
            format!("rs: {name}"),
            Rs,
            auth(value),
            status,
            code.clone(),
        ));
    }

    // Odd schemes.
    for scheme in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"a\"",
        "Token abc",
        "Bearer: abc",
        "Bearerabc",
        "MAC id=\"a\"",
        "Negotiate YIIB",
        "OAuth abc",
        "Beare abc",
        "JWT abc",
    ] {
        cases.push(case(
            format!("rs: scheme {scheme:?}"),
            Rs,
            auth(scheme.as_bytes()),
            &[400, 401],
            Any,
        ));
    }
    // The scheme is case-insensitive: these carry the good token and pass.
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        cases.push(case(
            format!("rs: scheme {scheme} with the good token"),
            Rs,
            auth(format!("{scheme} {t}").as_bytes()),
            &[200],
            Absent,
        ));
    }
    cases.push(case(
        "rs: good token with surrounding spaces",
        Rs,
        auth(format!("  Bearer   {t}  ").as_bytes()),
        &[200],
        Absent,
    ));

    // Many and huge headers.
    let mut two = auth(format!("Bearer {t}").as_bytes());
    two = two.header("authorization", format!("Bearer {t}"));
    cases.push(case(
        "rs: the good token twice",
        Rs,
        two,
        &[400],
        Is("invalid_request"),
    ));
    let mut mixed = auth(format!("Bearer {t}").as_bytes());
    mixed = mixed.header("authorization", "Basic dXNlcjpwYXNz");
    cases.push(case(
        "rs: Bearer and Basic",
        Rs,
        mixed,
        &[400],
        Is("invalid_request"),
    ));
    let mut many = mcp(None, init.clone());
    for _ in 0..50 {
        many = many.header("authorization", "Bearer abc");
    }
    cases.push(case(
        "rs: 50 Authorization headers",
        Rs,
        many,
        &[400, 431],
        Any,
    ));
    let mut flood = mcp(Some(t), init.clone());
    for i in 0..200 {
        flood = flood.header(&format!("x-filler-{i}"), "y");
    }
    cases.push(case("rs: 200 extra headers", Rs, flood, &[200, 431], Any));
    let long = "a".repeat(20 * 1024);
    cases.push(case(
        "rs: a 20 KiB token",
        Rs,
        auth(format!("Bearer {long}").as_bytes()),
        &[401, 431],
        Any,
    ));
    let huge = "a".repeat(128 * 1024);
    cases.push(case(
        "rs: a 128 KiB Authorization header",
        Rs,
        auth(format!("Bearer {huge}").as_bytes()),
        &[431, 400, 401],
        Any,
    ));
    cases.push(case(
        "rs: a 1 MiB header",
        Rs,
        mcp(Some(t), init.clone()).header("x-big", "b".repeat(1024 * 1024)),
        &[431, 400],
        Any,
    ));

    // Tokens elsewhere.
    cases.push(
        case(
            "rs: token in the query",
            Rs,
            Req::new("POST", format!("/mcp?access_token={t}"))
                .header("accept", "application/json, text/event-stream")
                .json(init.clone()),
            &[400],
            Is("invalid_request"),
        )
        .secret(t),
    );
    cases.push(case(
        "rs: token in the query percent-encoded name",
        Rs,
        Req::new("POST", "/mcp?%61ccess_token=abc")
            .header("accept", "application/json, text/event-stream")
            .json(init.clone()),
        &[400],
        Is("invalid_request"),
    ));
    cases.push(
        case(
            "rs: token in the query and the header",
            Rs,
            Req::new("POST", format!("/mcp?access_token={t}"))
                .header("authorization", format!("Bearer {t}"))
                .json(init.clone()),
            &[400],
            Is("invalid_request"),
        )
        .secret(t),
    );
    cases.push(case(
        "rs: token in a form body only",
        Rs,
        Req::new("POST", "/mcp").form(format!("access_token={t}")),
        &[401],
        Absent,
    ));
    cases.push(case(
        "rs: no credentials",
        Rs,
        mcp(None, init.clone()),
        &[401],
        Absent,
    ));
    cases.push(case(
        "rs: GET without credentials",
        Rs,
        Req::new("GET", "/mcp"),
        &[401],
        Absent,
    ));
    cases.push(case(
        "rs: DELETE without credentials",
        Rs,
        Req::new("DELETE", "/mcp"),
        &[401],
        Absent,
    ));
    // A tampered good token: one character of the signature changed.
    let mut tampered = t.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    cases.push(
        case(
            "rs: the good token with its signature changed",
            Rs,
            auth(format!("Bearer {tampered}").as_bytes()),
            &[401],
            Is("invalid_token"),
        )
        .secret(tampered.clone()),
    );
    // The good token with its payload swapped for more scopes (signature no longer matches).
    let parts: Vec<&str> = t.split('.').collect();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let mut escalated = claims;
    escalated["scope"] = json!("mcp:tools mcp:admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(escalated.to_string()),
        parts[2]
    );
    cases.push(
        case(
            "rs: the good token with more scopes in its payload",
            Rs,
            auth(format!("Bearer {forged}").as_bytes()),
            &[401],
            Is("invalid_token"),
        )
        .secret(forged),
    );

    // JSON-RPC bodies (with the good token: mcp:tools, not mcp:admin).
    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}})
            .to_string()
    };
    let admin_needed: Vec<(&str, String)> = vec![
        ("admin_tool call", call("admin_tool")),
        (
            "admin_tool in a batch",
            json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, serde_json::from_str::<Value>(&call("admin_tool")).unwrap()]).to_string(),
        ),
        ("escaped method and name", r#"{"jsonrpc":"2.0","id":2,"method":"tools\/call","params":{"name":"admin\u005ftool"}}"#.to_owned()),
        ("duplicate name", r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","name":"admin_tool"}}"#.to_owned()),
        ("duplicate method", r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","method":"tools/call","params":{"name":"admin_tool"}}"#.to_owned()),
        ("duplicate params", r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"},"params":{"name":"admin_tool"}}"#.to_owned()),
        ("trailing garbage", format!("{} x", call("whoami"))),
        ("two values", format!("{}{}", call("whoami"), call("whoami"))),
        ("not JSON", "tools/call admin_tool".to_owned()),
        ("deep nesting in arguments", format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"whoami","arguments":{{"a":{}0{}}}}}}}"#, "[".repeat(200), "]".repeat(200))),
        ("name not a string", r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":["admin_tool"]}}"#.to_owned()),
        ("params an array", r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":["admin_tool"]}"#.to_owned()),
        ("method a number", r#"{"jsonrpc":"2.0","id":2,"method":5,"params":{"name":"admin_tool"}}"#.to_owned()),
        ("serde private key", r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","$serde_json::private::RawValue":"x"}}"#.to_owned()),
        ("top-level string", r#""tools/call""#.to_owned()),
        ("batch with a non-object", format!("[{}, 1]", call("whoami"))),
        (
            "huge number id (not JSON to serde_json)",
            r#"{"jsonrpc":"2.0","id":1e999999,"method":"tools/list"}"#.to_owned(),
        ),
        (
            "400-digit integer id (not JSON to serde_json)",
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"tools/list"}}"#,
                "9".repeat(400)
            ),
        ),
    ];
    for (name, body) in admin_needed {
        cases.push(case(
            format!("rs: json-rpc {name}: the strictest scopes"),
            Rs,
            mcp(Some(t), body).header("mcp-session-id", &env.session),
            &[403],
            Is("insufficient_scope"),
        ));
    }
    let mut invalid_utf8 =
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_tool"#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\"}}");
    cases.push(case(
        "rs: json-rpc invalid UTF-8 in a name: the strictest scopes",
        Rs,
        mcp(Some(t), invalid_utf8),
        &[403],
        Is("insufficient_scope"),
    ));
    let passes: Vec<(&str, String, &[u16])> = vec![
        ("whoami call", call("whoami"), &[200]),
        ("unknown tool (default scopes: none)", call("rm_rf"), &[200]),
        (
            "large finite number id",
            r#"{"jsonrpc":"2.0","id":1e300,"method":"tools/list"}"#.to_owned(),
            // Past the layer; rmcp refuses a non-integer id.
            &[200, 400, 415],
        ),
        (
            "deep nesting outside params",
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"ping","x":{}1{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            ),
            &[200, 400],
        ),
        ("empty batch", "[]".to_owned(), &[200, 202, 400, 415]),
        (
            "notification",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
            &[200, 202, 400],
        ),
        (
            "response object",
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_owned(),
            &[200, 202, 400],
        ),
    ];
    for (name, body, status) in passes {
        cases.push(case(
            format!("rs: json-rpc {name}"),
            Rs,
            mcp(Some(t), body).header("mcp-session-id", &env.session),
            status,
            Absent,
        ));
    }
    cases.push(case(
        "rs: json-rpc body over 1 MiB",
        Rs,
        mcp(
            Some(t),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","x":"{}"}}"#,
                "a".repeat(1100 * 1024)
            ),
        ),
        &[413],
        Any,
    ));
    cases.push(case(
        "rs: Content-Length over 1 MiB, short body",
        Rs,
        {
            let mut r = mcp(Some(t), "{}");
            r.no_length = true;
            r.header("content-length", "5000000")
        },
        &[413],
        Any,
    ));
    cases.push(case(
        "rs: chunked body with a bad chunk",
        Rs,
        {
            let mut r = mcp(Some(t), "zz\r\n{}\r\n0\r\n\r\n");
            r.no_length = true;
            r.header("transfer-encoding", "chunked")
        },
        &[400],
        Any,
    ));
    cases.push(case(
        "rs: Content-Length and chunked together",
        Rs,
        {
            let body = call("admin_tool");
            let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
            let mut r = mcp(Some(t), chunked);
            r.no_length = true;
            r.header("transfer-encoding", "chunked")
                .header("content-length", "4")
        },
        &[400, 403],
        Any,
    ));

    // Wrong content types: the body decides the scopes, whatever the type says.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "",
    ] {
        let mut r = Req::new("POST", "/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {t}"))
            .body(call("admin_tool"));
        if !content_type.is_empty() {
            r = r.header("content-type", content_type);
        }
        cases.push(case(
            format!("rs: admin_tool call as {content_type:?}"),
            Rs,
            r,
            &[403],
            Is("insufficient_scope"),
        ));
    }
    cases.push(case(
        "rs: initialize as text/plain",
        Rs,
        Req::new("POST", "/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "text/plain")
            .body(init.clone()),
        &[400, 415],
        Absent,
    ));
    // Foreign Host (DNS rebinding) with the good token.
    let mut rebinding = mcp(Some(t), init.clone());
    rebinding.host = Some("evil.example".to_owned());
    cases.push(case("rs: foreign Host", Rs, rebinding, &[403, 421], Any));
    let mut origin = mcp(Some(t), init.clone());
    origin = origin.header("origin", "https://evil.example");
    cases.push(case("rs: foreign Origin", Rs, origin, &[403], Any));
    // The metadata route stays open whatever comes with it.
    for auth_value in ["Bearer garbage", "Basic abc", ""] {
        let mut r = Req::new("GET", "/.well-known/oauth-protected-resource/mcp");
        if !auth_value.is_empty() {
            r = r.header("authorization", auth_value);
        }
        cases.push(case(
            format!("rs: metadata with {auth_value:?}"),
            Rs,
            r,
            &[200],
            Absent,
        ));
    }
    cases.push(case(
        "rs: metadata with a huge query",
        Rs,
        Req::new(
            "GET",
            format!(
                "/.well-known/oauth-protected-resource/mcp?{}",
                "q".repeat(60 * 1024)
            ),
        ),
        &[200, 414, 431, 400],
        Any,
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// Authorization server cases
// ---------------------------------------------------------------------------------------------

/// Percent-encodes everything but unreserved characters (a form or query value).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn as_cases(env: &Env) -> Vec<Case> {
    use Code::*;
    use Server::As;
    let mut cases = Vec::new();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", env.client_id, env.client_secret))
    );
    let wrong_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:wrong-secret-0123456789", env.client_id))
    );
    let verifier = "v".repeat(43);
    let challenge = mcp_auth_core::pkce::CodeChallenge::s256(
        &mcp_auth_core::pkce::CodeVerifier::new(verifier.clone()).unwrap(),
    )
    .as_str()
    .to_owned();
    let resource = env.rs_mcp.clone();
    let authorize = |extra: &str| {
        format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=st&resource={}{extra}",
            enc(&env.public_id),
            enc(&env.redirect),
            enc(&resource)
        )
    };

    // The token endpoint: malformed forms.
    let token_forms: Vec<(&str, Vec<u8>, &[u16], Code)> = vec![
        ("empty form", b"".to_vec(), &[400, 401], Any),
        ("no grant_type", b"code=abc".to_vec(), &[400, 401], Any),
        ("unknown grant", b"grant_type=password&username=a&password=b".to_vec(), &[400], Is("unsupported_grant_type")),
        ("grant_type twice", b"grant_type=authorization_code&grant_type=refresh_token".to_vec(), &[400], Is("invalid_request")),
        ("resource twice", format!("grant_type=authorization_code&code=x&resource={}&resource={}", enc(&resource), enc(&resource)).into_bytes(), &[400], Is("invalid_target")),
        ("not urlencoded", b"\x00\x01\x02\xff\xfe".to_vec(), &[400, 401], Any),
        ("percent garbage", b"grant_type=%zz%&code=%".to_vec(), &[400, 401], Any),
        ("semicolons", b"grant_type=authorization_code;code=abc".to_vec(), &[400, 401], Any),
        ("1000 parameters", (0..1000).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&").into_bytes(), &[400, 401], Any),
        ("a 60 KiB value", format!("grant_type=authorization_code&code={}", "c".repeat(60 * 1024)).into_bytes(), &[400, 401], Any),
        ("client_credentials off", b"grant_type=client_credentials&scope=mcp%3Aadmin".to_vec(), &[400, 401], Any),
        ("public client, bad code", format!("grant_type=authorization_code&code=nope-0123456789&client_id={}&redirect_uri={}&code_verifier={verifier}", enc(&env.public_id), enc(&env.redirect)).into_bytes(), &[400], Is("invalid_grant")),
        ("public client, short verifier", format!("grant_type=authorization_code&code=nope&client_id={}&redirect_uri={}&code_verifier=short", enc(&env.public_id), enc(&env.redirect)).into_bytes(), &[400], Any),
        ("refresh with garbage", format!("grant_type=refresh_token&refresh_token=rt-garbage-0123456789&client_id={}", enc(&env.public_id)).into_bytes(), &[400], Is("invalid_grant")),
        ("unknown client", b"grant_type=authorization_code&code=x&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv".to_vec(), &[400, 401], Is("invalid_client")),
        ("secret in the body and the header", format!("grant_type=authorization_code&code=x&client_id={}&client_secret=wrong-secret-in-body-0123", enc(&env.client_id)).into_bytes(), &[400, 401], Any),
        ("assertion garbage", b"grant_type=authorization_code&code=x&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c".to_vec(), &[400, 401], Any),
        ("assertion type unknown", b"grant_type=authorization_code&code=x&client_assertion_type=urn%3Ax&client_assertion=eyJhbGciOiJub25lIn0.e30.".to_vec(), &[400, 401], Any),
        ("jwt-bearer grant garbage", b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x.y.z".to_vec(), &[400, 401], Any),
    ];
    for (name, body, status, code) in token_forms {
        let mut c = case(
            format!("as: /token {name}"),
            As,
            Req::new("POST", "/token").form(body.clone()),
            status,
            code,
        );
        for pair in String::from_utf8_lossy(&body).split('&') {
            if let Some((n, v)) = pair.split_once('=')
                && matches!(
                    n,
                    "code"
                        | "code_verifier"
                        | "refresh_token"
                        | "client_secret"
                        | "client_assertion"
                        | "password"
                        | "assertion"
                )
                && v.len() >= 12
                && !v.contains('%')
            {
                c = c.secret(v);
            }
        }
        cases.push(c);
    }
    // Client authentication headers.
    let auths: Vec<(&str, String, &[u16], Code)> = vec![
        (
            "the right Basic with a bad code",
            basic.clone(),
            &[400],
            Is("invalid_grant"),
        ),
        ("a wrong secret", wrong_basic, &[401], Is("invalid_client")),
        (
            "Basic not base64",
            "Basic !!!!".to_owned(),
            &[400, 401],
            Any,
        ),
        (
            "Basic without a colon",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("justaname")
            ),
            &[400, 401],
            Any,
        ),
        (
            "Basic with an empty id",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(":secret-0123456789")
            ),
            &[400, 401],
            Any,
        ),
        (
            "Basic percent garbage",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("%zz:%zz")
            ),
            &[400, 401],
            Any,
        ),
        (
            "Bearer at the token endpoint",
            format!("Bearer {}", env.token),
            &[400, 401],
            Any,
        ),
        (
            "Basic twice in one header",
            format!("{basic}, {basic}"),
            &[400, 401],
            Any,
        ),
    ];
    for (name, value, status, code) in auths {
        cases.push(
            case(
                format!("as: /token {name}"),
                As,
                Req::new("POST", "/token")
                    .header("authorization", value)
                    .form(format!("grant_type=authorization_code&code=bad-code-0123456789&redirect_uri={}&code_verifier={verifier}", enc("http://127.0.0.1:7/cb"))),
                status,
                code,
            )
            .secret(verifier.clone())
            .secret("bad-code-0123456789"),
        );
    }
    let twice = Req::new("POST", "/token")
        .header("authorization", &basic)
        .header("authorization", &basic)
        .form("grant_type=authorization_code&code=x");
    cases.push(case(
        "as: /token two Authorization headers",
        As,
        twice,
        &[400, 401],
        Any,
    ));
    cases.push(case(
        "as: /token form as JSON",
        As,
        Req::new("POST", "/token").json(r#"{"grant_type":"authorization_code","code":"x"}"#),
        &[400, 401, 415],
        Any,
    ));
    cases.push(case(
        "as: /token no content type",
        As,
        Req::new("POST", "/token").body("grant_type=authorization_code&code=x"),
        &[400, 401, 415],
        Any,
    ));
    cases.push(case(
        "as: GET /token",
        As,
        Req::new("GET", "/token?grant_type=client_credentials"),
        &[405, 400],
        Any,
    ));
    cases.push(case(
        "as: /token oversize body (1 MiB)",
        As,
        Req::new("POST", "/token").form(format!(
            "grant_type=authorization_code&code={}",
            "c".repeat(1024 * 1024)
        )),
        &[413, 400],
        Any,
    ));
    cases.push(case(
        "as: /token declared 100 MiB",
        As,
        {
            let mut r = Req::new("POST", "/token").form("grant_type=x");
            r.no_length = true;
            r.header("content-length", "104857600")
        },
        &[413, 400],
        Any,
    ));

    // Revocation and introspection.
    let revokes: Vec<(&str, Req, &[u16], Code)> = vec![
        (
            "unknown token (public client)",
            Req::new("POST", "/revoke").form(format!(
                "token=unknown-token-0123456789&client_id={}",
                enc(&env.public_id)
            )),
            &[200],
            Absent,
        ),
        (
            "no token",
            Req::new("POST", "/revoke").form(format!("client_id={}", enc(&env.public_id))),
            &[400],
            Is("invalid_request"),
        ),
        (
            "token twice",
            Req::new("POST", "/revoke")
                .form(format!("token=a&token=b&client_id={}", enc(&env.public_id))),
            &[400],
            Is("invalid_request"),
        ),
        (
            "no client",
            Req::new("POST", "/revoke").form("token=unknown-token-0123456789"),
            &[400, 401],
            Any,
        ),
        (
            "wrong secret",
            Req::new("POST", "/revoke")
                .header(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:nope-nope-nope", env.client_id))
                    ),
                )
                .form("token=unknown-token-0123456789"),
            &[401],
            Is("invalid_client"),
        ),
        (
            "odd hint",
            Req::new("POST", "/revoke")
                .header("authorization", &basic)
                .form("token=unknown-token-0123456789&token_type_hint=%00%ff"),
            &[200, 400],
            Any,
        ),
        (
            "oversize",
            Req::new("POST", "/revoke").form(format!("token={}", "t".repeat(1024 * 1024))),
            &[413, 400],
            Any,
        ),
    ];
    for (name, req, status, code) in revokes {
        cases.push(
            case(format!("as: /revoke {name}"), As, req, status, code)
                .secret("unknown-token-0123456789"),
        );
    }
    for (name, req, status) in [
        (
            "without credentials",
            Req::new("POST", "/introspect").form(format!("token={}", env.token)),
            &[401, 404, 405][..],
        ),
        (
            "with a client's credentials",
            Req::new("POST", "/introspect")
                .header("authorization", &basic)
                .form(format!("token={}", env.token)),
            &[401, 403, 404, 405][..],
        ),
    ] {
        cases.push(case(
            format!("as: /introspect {name}"),
            As,
            req,
            status,
            Any,
        ));
    }

    // The authorization endpoint: bad PKCE, bad redirect URIs, duplicates.
    let redirect_errors: Vec<(&str, String, &[u16], Code)> = vec![
        (
            "no code_challenge",
            authorize("").replace(&format!("&code_challenge={challenge}"), ""),
            &[302, 303],
            Any,
        ),
        (
            "plain method",
            authorize("").replace("code_challenge_method=S256", "code_challenge_method=plain"),
            &[302, 303],
            Any,
        ),
        (
            "short challenge",
            authorize("").replace(&challenge, "abc"),
            &[302, 303],
            Any,
        ),
        (
            "challenge with bad characters",
            authorize("").replace(&challenge, &enc(&"!".repeat(43))),
            &[302, 303],
            Any,
        ),
        (
            "response_type token",
            authorize("").replace("response_type=code", "response_type=token"),
            &[302, 303],
            Any,
        ),
        (
            "state twice",
            authorize("&state=again"),
            &[302, 303, 400],
            Any,
        ),
        (
            "scope unknown",
            authorize("&scope=root%3Aeverything"),
            &[302, 303],
            Any,
        ),
        (
            "resource unknown",
            authorize("").replace(&enc(&resource), &enc("https://evil.example/mcp")),
            &[302, 303, 400],
            Any,
        ),
        (
            "resource twice",
            authorize(&format!("&resource={}", enc(&resource))),
            &[302, 303, 400],
            Any,
        ),
    ];
    for (name, target, status, code) in redirect_errors {
        cases.push(case(
            format!("as: /authorize {name}"),
            As,
            Req::new("GET", target),
            status,
            code,
        ));
    }
    let no_redirect: Vec<(&str, String)> = vec![
        (
            "unknown client",
            authorize("").replace(&enc(&env.public_id), "nobody"),
        ),
        (
            "redirect to another host",
            authorize("").replace(&enc(&env.redirect), &enc("https://evil.example/cb")),
        ),
        (
            "redirect with a different path",
            authorize("").replace(&enc(&env.redirect), &enc("http://127.0.0.1:7/cb/../evil")),
        ),
        (
            "redirect with userinfo",
            authorize("").replace(&enc(&env.redirect), &enc("http://evil@127.0.0.1:7/cb")),
        ),
        (
            "redirect with a fragment",
            authorize("").replace(&enc(&env.redirect), &enc("http://127.0.0.1:7/cb#x")),
        ),
        (
            "redirect javascript:",
            authorize("").replace(&enc(&env.redirect), &enc("javascript:alert(1)")),
        ),
        (
            "redirect data:",
            authorize("").replace(&enc(&env.redirect), &enc("data:text/html,x")),
        ),
        (
            "redirect twice",
            authorize(&format!("&redirect_uri={}", enc("https://evil.example/cb"))),
        ),
        (
            "client_id twice",
            authorize(&format!("&client_id={}", enc(&env.client_id))),
        ),
        (
            "redirect on another loopback host",
            authorize("").replace(&enc(&env.redirect), &enc("http://localhost:7/cb")),
        ),
        (
            "redirect 127.0.0.1 lookalike",
            authorize("").replace(
                &enc(&env.redirect),
                &enc("http://127.0.0.1.evil.example:7/cb"),
            ),
        ),
        (
            "redirect percent-encoded host",
            authorize("").replace(&enc(&env.redirect), &enc("http://%31%32%37.0.0.1:7/cb")),
        ),
        (
            "redirect with CRLF",
            authorize("").replace(
                &enc(&env.redirect),
                &enc("http://127.0.0.1:7/cb\r\nSet-Cookie: x=y"),
            ),
        ),
    ];
    for (name, target) in no_redirect {
        // Never a redirect to an unregistered URI: an error page or JSON, 400.
        cases.push(case(
            format!("as: /authorize {name}"),
            As,
            Req::new("GET", target),
            &[400],
            Any,
        ));
    }
    // The loopback port rule: any port on the registered loopback redirect.
    cases.push(case(
        "as: /authorize another loopback port",
        As,
        Req::new(
            "GET",
            authorize("").replace(&enc(&env.redirect), &enc("http://127.0.0.1:65000/cb")),
        ),
        &[302, 303],
        Absent,
    ));
    cases.push(case(
        "as: /authorize empty query",
        As,
        Req::new("GET", "/authorize"),
        &[400],
        Any,
    ));
    cases.push(case(
        "as: /authorize garbage query",
        As,
        Req::new("GET", "/authorize?%zz=%&&&=="),
        &[400],
        Any,
    ));
    cases.push(case(
        "as: /authorize 7 KiB query",
        As,
        Req::new("GET", authorize(&format!("&x={}", "y".repeat(7 * 1024)))),
        &[302, 303, 400, 414],
        Any,
    ));
    // Bad cookies: the flow is unchanged (auto-approval here).
    for (name, cookie) in [
        (
            "garbage",
            "mcp-auth-session=!!!; mcp-auth-browser=\u{1}".to_owned(),
        ),
        (
            "many",
            (0..300)
                .map(|i| format!("c{i}=v"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "session cookie forged",
            "mcp-auth-session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        (
            "empty values",
            "mcp-auth-session=; mcp-auth-browser=".to_owned(),
        ),
        ("no equals", "mcp-auth-session".to_owned()),
        (
            "huge",
            format!("mcp-auth-session={}", "s".repeat(32 * 1024)),
        ),
    ] {
        cases.push(case(
            format!("as: /authorize cookie {name}"),
            As,
            Req::new("GET", authorize("")).header("cookie", cookie.as_bytes()),
            &[302, 303, 400, 431],
            Any,
        ));
    }
    // The consent form posted without its binding.
    for (name, body, cookie) in [
        ("no transaction", "decision=approve".to_owned(), None),
        (
            "forged transaction",
            "id=forged&csrf=forged&decision=approve".to_owned(),
            Some("mcp-auth-browser=forged"),
        ),
        (
            "duplicate decision",
            "id=a&id=b&decision=approve&decision=deny".to_owned(),
            None,
        ),
        ("not a form", "\u{0}\u{1}".to_owned(), Some("\u{1}")),
        ("oversize", format!("id={}", "i".repeat(1024 * 1024)), None),
    ] {
        let mut r = Req::new("POST", "/authorize").form(body);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        cases.push(case(
            format!("as: POST /authorize {name}"),
            As,
            r,
            &[400, 403, 413],
            Any,
        ));
    }

    // Registration bodies.
    let registrations: Vec<(&str, String, &[u16], Code)> = vec![
        ("not JSON", "redirect_uris=http://x".to_owned(), &[400], Is("invalid_client_metadata")),
        ("an array", "[]".to_owned(), &[400], Is("invalid_client_metadata")),
        ("redirect_uris a string", r#"{"redirect_uris":"http://127.0.0.1/cb"}"#.to_owned(), &[400], Is("invalid_client_metadata")),
        ("no redirect_uris", r#"{"client_name":"x"}"#.to_owned(), &[400], Any),
        ("custom scheme", r#"{"redirect_uris":["myapp://cb"],"token_endpoint_auth_method":"none"}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("http non-loopback", r#"{"redirect_uris":["http://evil.example/cb"],"token_endpoint_auth_method":"none"}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("fragment", r#"{"redirect_uris":["https://a.example/cb#x"]}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("userinfo", r#"{"redirect_uris":["https://u:p@a.example/cb"]}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("javascript", r#"{"redirect_uris":["javascript:alert(1)"]}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("a 3 KiB URI", format!(r#"{{"redirect_uris":["https://a.example/{}"]}}"#, "p".repeat(3000)), &[400], Is("invalid_redirect_uri")),
        ("CRLF in a URI", r#"{"redirect_uris":["https://a.example/cb\r\nx: y"]}"#.to_owned(), &[400], Is("invalid_redirect_uri")),
        ("client_credentials asked", r#"{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}"#.to_owned(), &[400], Is("invalid_client_metadata")),
        ("unknown auth method", r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"magic"}"#.to_owned(), &[400], Is("invalid_client_metadata")),
        ("auth method a number", r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":5}"#.to_owned(), &[400], Is("invalid_client_metadata")),
        ("deep nesting", format!(r#"{{"redirect_uris":["http://127.0.0.1/cb"],"x":{}1{}}}"#, "[".repeat(5000), "]".repeat(5000)), &[400], Is("invalid_client_metadata")),
        ("duplicate keys", r#"{"redirect_uris":["http://127.0.0.1/cb"],"redirect_uris":["javascript:x"]}"#.to_owned(), &[400], Any),
        ("a client_secret chosen by the client", r#"{"redirect_uris":["http://127.0.0.1/cb"],"client_secret":"chosen-by-client-0123456789"}"#.to_owned(), &[201, 400], Any),
        ("a huge client_name", format!(r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","client_name":"{}"}}"#, "n".repeat(15 * 1024)), &[201, 400, 413], Any),
        ("1000 redirect URIs", format!(r#"{{"redirect_uris":[{}]}}"#, (0..1000).map(|i| format!("\"http://127.0.0.1/{i}\"")).collect::<Vec<_>>().join(",")), &[400, 413], Any),
        ("over 16 KiB", format!(r#"{{"redirect_uris":["http://127.0.0.1/cb"],"x":"{}"}}"#, "x".repeat(20 * 1024)), &[400, 413], Any),
        ("invalid UTF-8", "{\"redirect_uris\":[\"http://127.0.0.1/\u{fffd}\"],\"client_name\":\"\u{0}\"}".to_owned(), &[201, 400], Any),
        ("jwks and jwks_uri", r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]},"jwks_uri":"https://a.example/jwks"}"#.to_owned(), &[400], Is("invalid_client_metadata")),
        // Accepted, never fetched: a self-registered client's jwks_uri passes the metadata-document
        // fetcher's SSRF guards at use (crates/mcp-auth-server/tests/assertions.rs).
        ("jwks_uri link-local", r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://169.254.169.254/latest"}"#.to_owned(), &[201], Absent),
    ];
    for (name, body, status, code) in registrations {
        cases.push(
            case(
                format!("as: /register {name}"),
                As,
                Req::new("POST", "/register").json(body),
                status,
                code,
            )
            .secret("chosen-by-client-0123456789"),
        );
    }
    cases.push(case(
        "as: /register as a form",
        As,
        Req::new("POST", "/register").form("redirect_uris=http%3A%2F%2F127.0.0.1%2Fcb"),
        &[400, 415],
        Any,
    ));
    cases.push(case(
        "as: /register 2 MiB",
        As,
        Req::new("POST", "/register").json(format!(r#"{{"x":"{}"}}"#, "x".repeat(2 * 1024 * 1024))),
        &[413, 400],
        Any,
    ));

    // Client ID metadata documents on a hostile loopback host.
    let cimd = |path: &str| format!("http://{}{path}", env.cimd);
    let cimd_cases: Vec<(&str, String)> = vec![
        ("huge", cimd("/huge.json")),
        ("lying client_id", cimd("/liar.json")),
        ("redirecting", cimd("/redirect.json")),
        ("redirect loop", cimd("/loop.json")),
        ("carrying a client_secret", cimd("/secret.json")),
        ("not JSON", cimd("/notjson")),
        ("404", cimd("/missing.json")),
        ("with a fragment", format!("{}#x", cimd(CIMD_PATH))),
        (
            "with user info",
            format!("http://user@{}{CIMD_PATH}", env.cimd),
        ),
        (
            "link-local",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        ),
        ("closed port", "http://127.0.0.1:9/client.json".to_owned()),
        ("dot segments", cimd("/a/../client.json")),
    ];
    for (name, client_id) in cimd_cases {
        let target = format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=s&resource={}",
            enc(&client_id),
            enc("http://127.0.0.1:9/cb"),
            enc(&resource)
        );
        cases.push(
            case(
                format!("as: CIMD {name}"),
                As,
                Req::new("GET", target),
                &[400],
                Any,
            )
            .secret("cimd-secret-in-document-0123456789"),
        );
    }
    // The good document works (so the refusals above are about the documents).
    cases.push(case(
        "as: CIMD good document",
        As,
        Req::new(
            "GET",
            format!(
                "/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=s&resource={}",
                enc(&cimd(CIMD_PATH)),
                enc("http://127.0.0.1:9/cb"),
                enc(&resource)
            ),
        ),
        &[302, 303],
        Absent,
    ));

    // Foreign Host and odd methods.
    for host in [
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil.example:80",
    ] {
        let mut r = Req::new("GET", "/.well-known/oauth-authorization-server");
        r.host = Some(host.to_owned());
        cases.push(case(
            format!("as: metadata with Host {host}"),
            As,
            r,
            &[403],
            Is("invalid_request"),
        ));
    }
    let mut absolute = Req::new(
        "GET",
        "http://evil.example/.well-known/oauth-authorization-server",
    );
    absolute.host = Some("127.0.0.1".to_owned());
    cases.push(case(
        "as: absolute-form target on a foreign host",
        As,
        absolute,
        &[403, 400],
        Any,
    ));
    cases.push(case(
        "as: PUT /token",
        As,
        Req::new("PUT", "/token").form("grant_type=x"),
        &[405],
        Any,
    ));
    cases.push(case(
        "as: TRACE /authorize",
        As,
        Req::new("TRACE", "/authorize"),
        &[405, 400],
        Any,
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// The client against hostile servers
// ---------------------------------------------------------------------------------------------

/// A hostile server: `routes` built with its own base URL; counts every request.
struct Hostile {
    base: String,
    hits: Arc<AtomicUsize>,
    _running: Running,
}

async fn hostile(routes: impl FnOnce(String) -> Router) -> Hostile {
    hostile_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), routes)
}

fn hostile_on(listener: TcpListener, routes: impl FnOnce(String) -> Router) -> Hostile {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = routes(base.clone()).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        },
    ));
    Hostile {
        base,
        hits,
        _running: Running::axum(listener, router),
    }
}

fn json_response(value: Value) -> Response {
    axum::Json(value).into_response()
}

fn prm(resource: &str, servers: &[&str]) -> Value {
    json!({"resource": resource, "authorization_servers": servers, "scopes_supported": ["mcp:tools"]})
}

fn asm(issuer: &str) -> Value {
    json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"), "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"], "response_types_supported": ["code"]})
}

fn manager_for(url: &str) -> TokenManager {
    TokenManager::builder(url)
        .client_name("hostile client")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .request_timeout(Duration::from_secs(5))
        .authorization_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What discovery must come to.
enum Expect {
    /// An error of one of these kinds.
    Fails(Vec<AuthErrorKind>),
    /// The 2025-03-26 fallback at the MCP server's own origin (what a missing, redirected or
    /// unreadable PRM means to the client: "4xx, not JSON, or not the document: try the next
    /// URL"), never another host.
    LegacyAtOrigin,
}

/// Discovery against `server`'s `/mcp` must come to `expect` within 20 s, with at most
/// `max_hits` requests to the hostile server.
async fn discovery_outcome(
    server: &Hostile,
    expect: &Expect,
    max_hits: usize,
) -> Result<(), String> {
    let manager = manager_for(&format!("{}/mcp", server.base));
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), manager.discover()).await;
    let elapsed = started.elapsed();
    let hits = server.hits.load(Ordering::SeqCst);
    if hits > max_hits {
        return Err(format!(
            "{hits} requests to the hostile server (at most {max_hits})"
        ));
    }
    match (outcome, expect) {
        (Err(_), _) => Err(format!("discovery still running after {elapsed:?}")),
        (Ok(Err(e)), Expect::Fails(kinds)) if kinds.contains(&e.kind()) => Ok(()),
        (Ok(Ok(found)), Expect::LegacyAtOrigin)
            if found.is_legacy() && found.issuer() == server.base =>
        {
            Ok(())
        }
        (Ok(Ok(found)), _) => Err(format!(
            "discovery succeeded (issuer {}, legacy {})",
            found.issuer(),
            found.is_legacy()
        )),
        (Ok(Err(e)), _) => Err(format!("error {:?} ({e})", e.kind())),
    }
}

async fn client_cases(env: &Env, report: &mut Report) {
    use AuthErrorKind::*;
    let demo_issuer = env.demo.issuer();
    type Routes = Box<dyn FnOnce(String) -> Router>;
    // Where the redirects below point: it must never be asked for anything.
    let elsewhere =
        hostile(|_| Router::new().route("/{*rest}", any(|| async { json_response(json!({})) })))
            .await;
    let elsewhere_base = elsewhere.base.clone();
    let table: Vec<(&str, Routes, Expect, usize)> =
        vec![
            (
                "PRM over 1 MiB",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let mut v = prm(&format!("{base}/mcp"), &[&base]);
                            v["padding"] = json!("p".repeat(3 * 1024 * 1024));
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![Discovery, Protocol, Transient]),
                6,
            ),
            (
                "AS metadata over 1 MiB",
                Box::new(|base: String| {
                    let b = base.clone();
                    Router::new()
                        .route(
                            "/.well-known/oauth-protected-resource/mcp",
                            get(move || {
                                let v = prm(&format!("{b}/mcp"), &[&b]);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/oauth-authorization-server",
                            get(move || {
                                let mut v = asm(&base);
                                v["padding"] = json!("p".repeat(3 * 1024 * 1024));
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/openid-configuration",
                            get(|| async { StatusCode::NOT_FOUND }),
                        )
                }),
                Expect::Fails(vec![Discovery, Protocol, Transient]),
                8,
            ),
            (
                "PRM redirect loop",
                Box::new(|base: String| {
                    Router::new().route("/{*rest}", any(move || {
                    let to = format!("{base}/.well-known/oauth-protected-resource/mcp");
                    async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
                }))
                }),
                Expect::LegacyAtOrigin,
                8,
            ),
            (
                "PRM redirect to another host",
                Box::new(move |_base: String| {
                    Router::new().route(
                        "/{*rest}",
                        any(move || {
                            let to = format!(
                                "{elsewhere_base}/.well-known/oauth-protected-resource/mcp"
                            );
                            async move {
                                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)])
                                    .into_response()
                            }
                        }),
                    )
                }),
                Expect::LegacyAtOrigin,
                8,
            ),
            (
                "PRM whose resource lies",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm("https://victim.example/mcp", &[&base]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![ResourceMismatch]),
                2,
            ),
            (
                "PRM whose resource is another path",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/other"), &[&base]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![ResourceMismatch]),
                2,
            ),
            (
                "AS metadata whose issuer lies",
                Box::new(move |base: String| {
                    let b = base;
                    Router::new()
                        .route(
                            "/.well-known/oauth-protected-resource/mcp",
                            get(move || {
                                let v = prm(&format!("{b}/mcp"), &[&b]);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/oauth-authorization-server",
                            get(move || {
                                let v = asm("https://victim-as.example");
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/openid-configuration",
                            get(|| async { json_response(asm("https://victim-as.example")) }),
                        )
                }),
                Expect::Fails(vec![IssuerMismatch]),
                4,
            ),
            (
                "AS metadata naming the real demo as issuer",
                Box::new(move |base: String| {
                    let b = base;
                    let demo = demo_issuer.clone();
                    let demo2 = demo_issuer;
                    Router::new()
                        .route(
                            "/.well-known/oauth-protected-resource/mcp",
                            get(move || {
                                let v = prm(&format!("{b}/mcp"), &[&b]);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/oauth-authorization-server",
                            get(move || {
                                let v = asm(&demo);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/openid-configuration",
                            get(move || {
                                let v = asm(&demo2);
                                async move { json_response(v) }
                            }),
                        )
                }),
                Expect::Fails(vec![IssuerMismatch]),
                4,
            ),
            (
                "AS without S256",
                Box::new(|base: String| {
                    let b = base.clone();
                    Router::new()
                        .route(
                            "/.well-known/oauth-protected-resource/mcp",
                            get(move || {
                                let v = prm(&format!("{b}/mcp"), &[&b]);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/oauth-authorization-server",
                            get(move || {
                                let mut v = asm(&base);
                                v["code_challenge_methods_supported"] = json!(["plain"]);
                                async move { json_response(v) }
                            }),
                        )
                }),
                Expect::Fails(vec![PkceUnsupported]),
                4,
            ),
            (
                "PRM naming a link-local authorization server",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/mcp"), &["http://169.254.169.254"]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![InsecureUrl, Discovery]),
                2,
            ),
            (
                "PRM naming an IPv6 link-local authorization server",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/mcp"), &["https://[fe80::1]"]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![InsecureUrl, Discovery]),
                2,
            ),
            (
                "PRM naming a private http authorization server",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/mcp"), &["http://10.0.0.1"]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![InsecureUrl, Discovery]),
                2,
            ),
            (
                "PRM naming an authorization server with user info",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/mcp"), &["https://user:pass@as.example"]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![InsecureUrl, Discovery]),
                2,
            ),
            (
                "AS metadata with a link-local token endpoint",
                Box::new(|base: String| {
                    let b = base.clone();
                    Router::new()
                        .route(
                            "/.well-known/oauth-protected-resource/mcp",
                            get(move || {
                                let v = prm(&format!("{b}/mcp"), &[&b]);
                                async move { json_response(v) }
                            }),
                        )
                        .route(
                            "/.well-known/oauth-authorization-server",
                            get(move || {
                                let mut v = asm(&base);
                                v["token_endpoint"] = json!("http://169.254.169.254/token");
                                async move { json_response(v) }
                            }),
                        )
                }),
                Expect::Fails(vec![InsecureUrl, Discovery]),
                4,
            ),
            (
                "PRM not JSON",
                Box::new(|_base: String| {
                    Router::new().route("/{*rest}", any(|| async { "<html>not json</html>" }))
                }),
                Expect::LegacyAtOrigin,
                8,
            ),
            (
                "PRM with wrong types",
                Box::new(|_base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(|| async {
                            json_response(json!({"resource": 5, "authorization_servers": "x"}))
                        }),
                    )
                }),
                Expect::LegacyAtOrigin,
                8,
            ),
            (
                "PRM with no authorization server",
                Box::new(|base: String| {
                    Router::new().route(
                        "/.well-known/oauth-protected-resource/mcp",
                        get(move || {
                            let v = prm(&format!("{base}/mcp"), &[]);
                            async move { json_response(v) }
                        }),
                    )
                }),
                Expect::Fails(vec![Discovery, Protocol]),
                8,
            ),
            (
                "PRM that never finishes",
                Box::new(|_base: String| {
                    Router::new().route(
                        "/{*rest}",
                        any(|| async {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            "{}"
                        }),
                    )
                }),
                Expect::Fails(vec![Transient, Discovery]),
                8,
            ),
        ];
    for (name, routes, expect, max_hits) in table {
        let server = hostile(routes).await;
        let result = discovery_outcome(&server, &expect, max_hits).await;
        report.record(&format!("client: {name}"), result);
    }
    let asked = elsewhere.hits.load(Ordering::SeqCst);
    report.record(
        "client: a redirect is never followed",
        if asked == 0 {
            Ok(())
        } else {
            Err(format!("the redirect target got {asked} requests"))
        },
    );

    // A 401 flood: an MCP server that answers 401 to everything, naming a real authorization
    // server (the demo) that issues tokens for it. The client gives up after a bounded number
    // of authorizations.
    let flood_result = flood(env).await;
    report.record("client: 401 flood", flood_result);
}

async fn flood(env: &Env) -> Result<(), String> {
    let server = &env.flood;
    let mut client = support::client(
        &format!("{}/mcp", server.base),
        &manager_for(&format!("{}/mcp", server.base)),
    );
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(40), client.initialize("hostile")).await;
    let hits = server.hits.load(Ordering::SeqCst);
    let token_hits = env.demo.hits("/token");
    match outcome {
        Err(_) => Err(format!(
            "still retrying after {:?} ({hits} requests)",
            started.elapsed()
        )),
        Ok(Ok(_)) => Err("initialize succeeded against a server that only answers 401".to_owned()),
        Ok(Err(_)) if hits <= 20 => {
            eprintln!(
                "401 flood: gave up after {hits} requests to the server, {token_hits} token requests in all, {:?}",
                started.elapsed()
            );
            Ok(())
        }
        Ok(Err(e)) => Err(format!("gave up only after {hits} requests: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_and_the_servers_keep_answering() {
    let logs = capture_logs();
    let started = Instant::now();
    let env = start().await;
    let mut report = Report::default();
    let mut all = rs_cases(&env);
    all.extend(as_cases(&env));
    for c in &all {
        let result = run_case(&env, c).await;
        report.record(&c.name, result);
    }
    client_cases(&env, &mut report).await;

    // No token or secret in any log line.
    let captured = logs.0.lock().unwrap().clone();
    let mut secrets = env.global_secrets();
    for c in &all {
        secrets.extend(c.secrets.iter().cloned());
    }
    let leaked: Vec<usize> = secrets
        .iter()
        .filter(|s| s.len() >= 12 && contains(&captured, s))
        .map(String::len)
        .collect();
    report.record(
        "logs: no token or secret in any log line",
        if captured.is_empty() {
            Err("no log line was captured".to_owned())
        } else if leaked.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} secrets in the logs (lengths {leaked:?})",
                leaked.len()
            ))
        },
    );

    let failed = report.failed.len();
    eprintln!(
        "hostile suite: {} cases in {:?}",
        report.passed + failed,
        started.elapsed()
    );
    println!("{} passed, {failed} failed", report.passed);
    env.demo.stop().await;
    assert!(
        failed == 0,
        "{failed} hostile cases failed:\n{}",
        report.failed.join("\n")
    );
}
