//! Two `example-mcp-server` processes on one PostgreSQL schema behind a round-robin TCP proxy on
//! loopback (issue 12 item 6): both replicas name the proxy as their public URL (`--public-url`),
//! so the issuer and the MCP endpoint are the proxy's, and any request may land on either.
//!
//! The proxy ([`Proxy`]) hands each accepted connection to the next backend (skipping one that
//! refuses the connection) and makes every connection carry one request: it adds
//! `Connection: close` to the first request's head, so the backend closes after answering and
//! the client's next request opens a new connection, to the other replica. It records where each
//! request went, which the tests check.
//!
//! - `mcp-auth-client` (token manager, MCP client) authorizes through the demo's login page,
//!   calls tools, steps up on `403 insufficient_scope` (consent only: the session holds) and
//!   refreshes, its requests alternating between the replicas; the test steers the proxy so that
//!   each page comes from one replica, its form goes to the other, the code is redeemed at the
//!   first, and the refresh token is used at the replica that did not issue it;
//! - the official TypeScript SDK (v2, MCP 2026-07-28) does the same with its own OAuth code
//!   (its MCP requests and its revocation go to one replica: the demo's notes are per process);
//! - 50 concurrent redemptions of one code, sent to both replicas: one succeeds, and the replays
//!   revoke what it got (AS-25) on both;
//! - a refresh token reused on the other replica after the grace window revokes the family, and
//!   both replicas refuse its access token within a second;
//! - `kill -9` of one replica during 200 grants: every answered grant still works, and the
//!   client carries on through the other replica.
//!
//! Needs PostgreSQL at `MCP_AUTH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test uses a schema of its own, dropped at the
//! end. Unreachable, the tests print that they were skipped, or fail when `CI` (or
//! `MCP_AUTH_REQUIRE_POSTGRES=1`) is set. The SDK test needs Node and the SDK like
//! `sdk_client.rs`. The tests run one at a time (each starts two servers; the timing checks
//! should not compete with each other for the CPU).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    io,
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use example_mcp_client::mcp::McpClient;
use example_mcp_server::DEMO_USER;
use mcp_auth_client::{BrowserOpener, Credentials, TokenManager, authorize::OpenFuture};
use mcp_auth_core::{Clock, ManualClock, SystemClock};
use serde_json::{Map, Value, json};
use support::{granted, sdk, tool_json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::Semaphore,
};

/// The tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Connections the proxy relays at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// How long the proxy waits for a backend to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the proxy waits for a request's head, and the most it reads of it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 64 * 1024;
/// The longest a relayed connection lives.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a replica may take to print its banner.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Each request the tests make themselves.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The demo's refresh grace window (the library default, which the demo keeps).
const REFRESH_GRACE: Duration = Duration::from_secs(30);
/// What issue 12 item 4 promises: a revocation reaches every replica within a second.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// Nothing listens there: the tests read the authorization response from the redirect.
const REDIRECT_URI: &str = "http://127.0.0.1:53684/callback";

// ---------------------------------------------------------------------------------------------
// The proxy

/// Where one request went.
#[derive(Debug, Clone)]
struct Routed {
    backend: usize,
    method: String,
    path: String,
}

struct ProxyState {
    backends: Mutex<Vec<SocketAddr>>,
    next: AtomicUsize,
    /// Paths (prefixes) that always go to one backend while it is up.
    pinned: Vec<(&'static str, usize)>,
    log: Mutex<Vec<Routed>>,
}

/// A round-robin TCP proxy on loopback, one request per connection.
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port; backends come later ([`set_backends`](Self::set_backends)).
    async fn start(pinned: Vec<(&'static str, usize)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            backends: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            pinned,
            log: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, state.relay(client)).await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.state.backends.lock().unwrap() = backends;
    }

    /// Makes `backend` the next in turn.
    fn aim(&self, backend: usize) {
        self.state.aim(backend);
    }

    /// Every request so far, in order.
    fn log(&self) -> Vec<Routed> {
        self.state.log.lock().unwrap().clone()
    }

    /// The backends that requests `method path` went to, in order.
    fn backends_of(&self, method: &str, path: &str) -> Vec<usize> {
        self.log()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| r.backend)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl ProxyState {
    fn aim(&self, backend: usize) {
        self.next.store(backend, Ordering::SeqCst);
    }

    async fn relay(&self, mut client: TcpStream) -> io::Result<()> {
        // The first request's head, up to the blank line.
        let mut head = Vec::with_capacity(4096);
        let end = tokio::time::timeout(HEAD_TIMEOUT, async {
            let mut buf = [0_u8; 8192];
            loop {
                if let Some(end) = find(&head, b"\r\n\r\n") {
                    return Ok::<_, io::Error>(Some(end));
                }
                if head.len() > MAX_HEAD {
                    return Ok(None);
                }
                let n = client.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                head.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let Some(end) = end else {
            return Ok(());
        };
        let line_end = find(&head, b"\r\n").unwrap_or(end);
        let line = String::from_utf8_lossy(&head[..line_end]).into_owned();
        let mut words = line.split(' ');
        let method = words.next().unwrap_or_default().to_owned();
        let path = words
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let (backend, mut upstream) = self.connect(&path).await?;
        self.log.lock().unwrap().push(Routed {
            backend,
            method,
            path,
        });
        // Last, so that it wins over the client's own `Connection` header: the backend closes
        // after this request, and the client's next one opens a new connection.
        head.splice(end + 2..end + 2, b"Connection: close\r\n".iter().copied());
        upstream.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }

    /// A connection to the backend for `path`: the pinned one, else the next in turn; on a
    /// refused connection, the one after it.
    async fn connect(&self, path: &str) -> io::Result<(usize, TcpStream)> {
        let backends = self.backends.lock().unwrap().clone();
        if backends.is_empty() {
            return Err(io::Error::other("no backends yet"));
        }
        let first = match self
            .pinned
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
        {
            Some(&(_, backend)) => backend,
            None => self.next.fetch_add(1, Ordering::SeqCst) % backends.len(),
        };
        let mut last = io::Error::other("no backend");
        for k in 0..backends.len() {
            let i = (first + k) % backends.len();
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backends[i])).await {
                Ok(Ok(stream)) => return Ok((i, stream)),
                Ok(Err(error)) => last = error,
                Err(_) => last = io::Error::from(io::ErrorKind::TimedOut),
            }
        }
        Err(last)
    }
}

// ---------------------------------------------------------------------------------------------
// The replicas

/// Drops the test's schema when dropped (after the replicas are gone).
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A runtime of its own, on a thread of its own: this may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let conn = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&url),
                )
                .await;
                if let Ok(Ok(mut conn)) = conn {
                    let drop = format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    );
                    if let Err(error) = sqlx::raw_sql(&drop).execute(&mut conn).await {
                        eprintln!("{name}: not dropped: {error}");
                    }
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// One `example-mcp-server` process.
struct Replica {
    child: Child,
    /// Where it listens (the proxy's backend).
    addr: SocketAddr,
}

impl Replica {
    /// With `password`, the login page for the demo user with that password; without,
    /// `--auto-approve`.
    async fn start(
        name: &'static str,
        db: &str,
        schema: &str,
        public_url: &str,
        password: Option<&str>,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-example-mcp-server"));
        match password {
            Some(password) => command.env("MCP_AUTH_DEMO_PASSWORD", password),
            None => command.arg("--auto-approve"),
        };
        let mut child = command
            .args(["--addr", "127.0.0.1:0", "--public-url"])
            .arg(public_url)
            .args(["--db", db, "--db-schema", schema])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Its log, prefixed, into the test's output (shown when the test fails).
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                eprintln!("{name}: {line}");
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let addr = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                banner.push(line.clone());
                if line.starts_with("Ctrl-C stops the server") {
                    break;
                }
            }
            let endpoint = banner
                .iter()
                .find_map(|l| l.strip_prefix("MCP endpoint:"))
                .unwrap_or_else(|| panic!("{name}: no endpoint in the banner: {banner:#?}"));
            let port = public_url.rsplit(':').next().unwrap();
            assert_eq!(
                endpoint.trim(),
                format!("http://localhost:{port}/mcp"),
                "{name}: the public URL is the endpoint: {banner:#?}"
            );
            banner
                .iter()
                .find_map(|l| l.strip_prefix("listening on:   http://"))
                .unwrap_or_else(|| panic!("{name}: no address in the banner: {banner:#?}"))
                .parse::<SocketAddr>()
                .unwrap()
        })
        .await
        .unwrap_or_else(|_| panic!("{name} printed its banner within {START_TIMEOUT:?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The proxy and two replicas on a fresh schema. Fields drop in order: the proxy, the replicas
/// (killed), then the schema.
struct Cluster {
    proxy: Proxy,
    replicas: Vec<Replica>,
    _schema: Schema,
}

impl Cluster {
    /// `None` when PostgreSQL is unreachable and the test may skip.
    async fn start(test: &str, pinned: Vec<(&'static str, usize)>) -> Option<Self> {
        Self::with_login(test, pinned, None).await
    }

    /// With `password`: the demo's login page instead of `--auto-approve`.
    async fn with_login(
        test: &str,
        pinned: Vec<(&'static str, usize)>,
        password: Option<&str>,
    ) -> Option<Self> {
        let db = support::postgres_url(test).await?;
        let mut random = [0_u8; 4];
        aws_lc_rs::rand::fill(&mut random).unwrap();
        let suffix = u32::from_le_bytes(random);
        let schema = Schema {
            url: db.clone(),
            name: format!("e2e_{test}_{}_{suffix:08x}", std::process::id()),
        };
        let proxy = Proxy::start(pinned).await;
        let started = Instant::now();
        // One after the other: the first creates the tables and the signing key, the second
        // finds them.
        let a = Replica::start("replica-0", &db, &schema.name, &proxy.url(), password).await;
        let b = Replica::start("replica-1", &db, &schema.name, &proxy.url(), password).await;
        eprintln!(
            "{test}: replicas {} and {} behind {} on schema {} (started in {:?})",
            a.addr,
            b.addr,
            proxy.addr,
            schema.name,
            started.elapsed()
        );
        proxy.set_backends(vec![a.addr, b.addr]);
        Some(Self {
            proxy,
            replicas: vec![a, b],
            _schema: schema,
        })
    }

    fn issuer(&self) -> String {
        self.proxy.url()
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.proxy.url())
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth by hand: a public client with PKCE, for the grant-level cases

/// An HTTP client that follows no redirect and keeps no idle connection.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&value[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The tokens of one grant.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

impl Tokens {
    fn from(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// A registered public client.
struct OAuth {
    http: reqwest::Client,
    mcp_url: String,
    client_id: String,
    /// The scope it asks for (the demo's `mcp:tools notes:read` unless changed).
    scope: &'static str,
}

impl OAuth {
    /// Registers at `base` (the proxy or a replica).
    async fn register(base: &str, mcp_url: &str) -> Self {
        let http = http();
        let response = http
            .post(format!("{base}/register"))
            .json(&json!({
                "client_name": "replicas e2e",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        Self {
            http,
            mcp_url: mcp_url.to_owned(),
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            scope: "mcp:tools notes:read",
        }
    }

    /// An authorization code from `base`'s `/authorize` (approved at once) and its PKCE
    /// verifier.
    async fn code(&self, base: &str) -> Result<(String, String), String> {
        let mut random = [0_u8; 32];
        aws_lc_rs::rand::fill(&mut random).unwrap();
        let verifier = URL_SAFE_NO_PAD.encode(random);
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        let url = format!(
            "{base}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}\
             &state=s1&code_challenge={challenge}&code_challenge_method=S256&resource={}",
            encode(&self.client_id),
            encode(REDIRECT_URI),
            encode(self.scope),
            encode(&self.mcp_url),
        );
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if response.status() != 303 && response.status() != 302 {
            return Err(format!("/authorize answered {}", response.status()));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or("no Location")?;
        let query = location
            .strip_prefix(REDIRECT_URI)
            .and_then(|rest| rest.strip_prefix('?'))
            .ok_or_else(|| format!("redirected elsewhere: {location}"))?;
        let code = query
            .split('&')
            .find_map(|p| p.strip_prefix("code="))
            .ok_or_else(|| format!("no code: {location}"))?;
        Ok((decode(code), verifier))
    }

    /// `POST {base}/token` with `form` (and the client id): the status and the JSON body.
    async fn token(&self, base: &str, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        let response = self
            .http
            .post(format!("{base}/token"))
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.json().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    async fn redeem(&self, base: &str, code: &str, verifier: &str) -> Result<(u16, Value), String> {
        self.token(
            base,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT_URI),
                ("resource", &self.mcp_url),
            ],
        )
        .await
    }

    async fn refresh(&self, base: &str, refresh_token: &str) -> Result<(u16, Value), String> {
        self.token(
            base,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("resource", &self.mcp_url),
            ],
        )
        .await
    }

    /// A complete grant at `base`: authorize, redeem.
    async fn grant(&self, base: &str) -> Result<Tokens, String> {
        let (code, verifier) = self.code(base).await?;
        match self.redeem(base, &code, &verifier).await? {
            (200, body) => Ok(Tokens::from(&body)),
            (status, body) => Err(format!("/token answered {status} {body}")),
        }
    }
}

/// The demo's `/mcp` at `base` with `access_token`: `Ok(())` when the bearer layer lets the
/// request (an MCP `ping`) through to the MCP server, `Err` with the status and challenge of
/// the refusal (401 or 403).
async fn mcp_accepts(base: &str, access_token: &str) -> Result<(), String> {
    let response = http()
        .post(format!("{base}/mcp"))
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        return Err(format!("{status} {challenge}"));
    }
    Ok(())
}

/// Polls `base`'s `/mcp` with `access_token` until it is refused with 401 `invalid_token`;
/// panics unless that happens within `bound` (plus a quarter second for the polling and the
/// requests themselves). Returns how long it took.
async fn refused_within(base: &str, access_token: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    let deadline = started + bound + Duration::from_millis(250);
    loop {
        match mcp_accepts(base, access_token).await {
            Err(challenge) => {
                assert!(
                    challenge.starts_with("401 Bearer error=\"invalid_token\""),
                    "{challenge}"
                );
                return started.elapsed();
            }
            Ok(()) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(()) => panic!(
                "{base} still accepts the token after {:?}",
                started.elapsed()
            ),
        }
    }
}

/// `whoami` at the MCP endpoint `url` with `access_token`, through the example MCP client.
async fn whoami(url: &str, access_token: &str) -> Value {
    let mut mcp = McpClient::new(url, Credentials::bearer(access_token.to_owned())).unwrap();
    mcp.initialize("replicas e2e").await.unwrap();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    mcp.close().await.unwrap();
    me
}

/// The user at the demo's login and consent page, in a browser that keeps cookies, steering the
/// proxy: the page comes from one replica, the form goes to the other, and the client's code
/// exchange that follows goes back to the first. Then the browser delivers the redirect to the
/// client's loopback listener.
struct FormBrowser {
    http: reqwest::Client,
    proxy: Arc<ProxyState>,
    password: String,
    cookies: Mutex<Vec<(String, String)>>,
    /// Per authorization: (page from, form to, whether the password was asked).
    visits: Mutex<Vec<(usize, usize, bool)>>,
}

impl std::fmt::Debug for FormBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormBrowser").finish_non_exhaustive()
    }
}

impl FormBrowser {
    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap();
        for header in response.headers().get_all("set-cookie") {
            let pair = header.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            jar.retain(|(n, _)| n != name);
            jar.push((name.to_owned(), value.to_owned()));
        }
    }

    fn last_backend(&self, method: &str) -> usize {
        self.proxy
            .log
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r.path == "/authorize" && r.method == method)
            .map(|r| r.backend)
            .unwrap()
    }

    async fn sign_in(&self, url: &str) -> Result<(), String> {
        let page = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.keep_cookies(&page);
        let status = page.status();
        let html = page.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("the page: {status} {html}"));
        }
        let page_from = self.last_backend("GET");
        let hidden = |name: &str| {
            let marker = format!("name=\"{name}\" value=\"");
            let start = html.find(&marker).map(|i| i + marker.len())?;
            let end = html[start..].find('"')?;
            Some(html[start..start + end].to_owned())
        };
        let (Some(transaction), Some(csrf)) = (hidden("transaction"), hidden("csrf")) else {
            return Err(format!("no form: {html}"));
        };
        let asks_password = html.contains("name=\"password\"");
        let mut form = vec![
            ("transaction", transaction),
            ("csrf", csrf),
            ("decision", "approve".to_owned()),
        ];
        if asks_password {
            form.push(("username", DEMO_USER.to_owned()));
            form.push(("password", self.password.clone()));
        }
        // The form to the other replica.
        self.proxy.aim(1 - page_from);
        let origin = url.split("/authorize").next().unwrap().to_owned();
        let answer = self
            .http
            .post(format!("{origin}/authorize"))
            .header("cookie", self.cookie_header())
            .header("origin", &origin)
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.keep_cookies(&answer);
        let form_to = self.last_backend("POST");
        let status = answer.status();
        let location = answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location.filter(|_| status.is_redirection()) else {
            let body = answer.text().await.unwrap_or_default();
            return Err(format!("the form: {status} {body}"));
        };
        self.visits
            .lock()
            .unwrap()
            .push((page_from, form_to, asks_password));
        // The client's code exchange, next, to the replica that showed the page.
        self.proxy.aim(page_from);
        let delivered = self
            .http
            .get(&location)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !delivered.status().is_success() {
            return Err(format!("the redirect: {}", delivered.status()));
        }
        Ok(())
    }
}

/// The [`FormBrowser`] the client opens, shared with the test.
#[derive(Debug)]
struct Shared(Arc<FormBrowser>);

impl BrowserOpener for Shared {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        Box::pin(async move {
            self.0
                .sign_in(url)
                .await
                .unwrap_or_else(|detail| panic!("the browser: {detail}"));
            Ok(())
        })
    }
}

/// Whether some code was issued by one replica's `/authorize` and redeemed at the other's
/// `/token` (the next `/token` after each `/authorize`).
fn a_code_crossed(log: &[Routed]) -> bool {
    log.iter().enumerate().any(|(i, r)| {
        r.method == "GET"
            && r.path == "/authorize"
            && log[i + 1..]
                .iter()
                .find(|t| t.method == "POST" && t.path == "/token")
                .is_some_and(|t| t.backend != r.backend)
    })
}

fn both(backends: &[usize]) -> bool {
    backends.contains(&0) && backends.contains(&1)
}

// ---------------------------------------------------------------------------------------------
// The cases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_auth_client_authorizes_steps_up_and_refreshes_across_replicas() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let password = "replicas-e2e-password";
    let Some(cluster) = Cluster::with_login("replicas_client", vec![], Some(password)).await else {
        return;
    };
    let url = cluster.mcp_url();
    let browser = Arc::new(FormBrowser {
        http: http(),
        proxy: Arc::clone(&cluster.proxy.state),
        password: password.to_owned(),
        cookies: Mutex::new(Vec::new()),
        visits: Mutex::new(Vec::new()),
    });
    let clock = ManualClock::new(SystemClock::default().now());
    let manager = TokenManager::builder(&url)
        .client_name("replicas e2e")
        .allow_insecure_loopback(true)
        .browser(Shared(Arc::clone(&browser)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut mcp = support::client(&url, &manager);

    // 401 → discovery → registration → authorization → server/discover, request by request
    // on alternating replicas.
    let info = mcp.initialize("replicas e2e").await.unwrap();
    assert_eq!(info.name, "example-mcp-server");
    assert_eq!(granted(&manager).await, "mcp:tools notes:read");
    // Each replica answers tools with the other's token.
    for _ in 0..2 {
        let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
        assert_eq!(me["subject"], DEMO_USER);
    }

    // add_note needs notes:write: 403 insufficient_scope, a new authorization, the call again.
    let added = tool_json(
        &mcp.call_tool("add_note", support::args(json!({ "text": "replicated" })))
            .await
            .unwrap(),
    );
    assert_eq!(added["text"], "replicated");
    assert_eq!(granted(&manager).await, "mcp:tools notes:read notes:write");
    let before = manager.cached_token().await.unwrap().unwrap();

    // The client's clock passes the access token's expiry (15 minutes): it refreshes, at the
    // replica that did not issue the refresh token.
    let tokens_before = cluster.proxy.backends_of("POST", "/token");
    let issued_by = *tokens_before.last().unwrap();
    cluster.proxy.aim(1 - issued_by);
    clock.advance(Duration::from_secs(16 * 60));
    for _ in 0..2 {
        let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
        assert_eq!(me["subject"], DEMO_USER);
        assert_eq!(
            me["scopes"],
            json!(["mcp:tools", "notes:read", "notes:write"])
        );
    }
    let after = manager.cached_token().await.unwrap().unwrap();
    assert_ne!(after.expose(), before.expose(), "refreshed");
    mcp.close().await.unwrap();

    let log = cluster.proxy.log();
    let authorize = cluster.proxy.backends_of("GET", "/authorize");
    let token = cluster.proxy.backends_of("POST", "/token");
    let mcp_posts = cluster.proxy.backends_of("POST", "/mcp");
    eprintln!(
        "replicas_client: /authorize on {authorize:?}, /token on {token:?}, /mcp on {mcp_posts:?}"
    );
    assert_eq!(
        authorize.len(),
        2,
        "the first authorization and one step-up: {log:#?}"
    );
    assert_eq!(
        token.len(),
        tokens_before.len() + 1,
        "one refresh: {log:#?}"
    );
    assert_eq!(token.len(), 3, "two codes and a refresh: {log:#?}");
    assert_eq!(
        token[2],
        1 - issued_by,
        "the refresh on the other replica: {log:#?}"
    );
    assert!(both(&mcp_posts), "{log:#?}");
    // The login page on one replica, the form on the other; the step-up asked for consent
    // only (the session from the first sign-in, on the other replica, still held).
    let visits = browser.visits.lock().unwrap().clone();
    eprintln!("replicas_client: (page, form, password asked) {visits:?}");
    assert_eq!(visits.len(), 2, "{visits:?}");
    assert!(
        visits.iter().all(|(page, form, _)| page != form),
        "{visits:?}"
    );
    assert!(visits[0].2 && !visits[1].2, "{visits:?}");
    // Each code was redeemed at the replica that did not issue it: the one that showed the page.
    let exchanges: Vec<(usize, usize)> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path == "/authorize" && r.method == "POST")
        .map(|(i, r)| {
            let exchange = log[i + 1..].iter().find(|t| t.path == "/token").unwrap();
            (r.backend, exchange.backend)
        })
        .collect();
    assert!(exchanges.iter().all(|(a, t)| a != t), "{exchanges:?}");
    eprintln!("replicas_client: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_authorizes_steps_up_and_refreshes_across_replicas() {
    const TEST: &str = "replicas_sdk";
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    // The MCP requests (and the revocation the script makes before its last call) go to the
    // first replica: the demo keeps its notes in each process's memory, and the script deletes
    // the note it added. Everything else alternates.
    let Some(cluster) = Cluster::start(TEST, vec![("/mcp", 0), ("/revoke", 0)]).await else {
        return;
    };
    let url = cluster.mcp_url();
    let Some(steps) = sdk::run(TEST, "client-v2.mjs", "replicas", &[&url, "2026-07-28"]).await
    else {
        return;
    };
    assert_eq!(steps.one("connect")["protocol_version"], "2026-07-28");
    let me = &steps.one("whoami")["result"];
    assert_eq!(me["subject"], DEMO_USER);
    assert_eq!(
        me["scopes"],
        json!(["mcp:tools", "notes:read", "notes:write", "notes:admin"])
    );
    assert_eq!(steps.all("authorize").len(), 3, "{:#?}", steps.0);
    for authorization in steps.all("authorize") {
        assert_eq!(authorization["iss"], cluster.issuer());
    }
    assert_eq!(steps.one("refresh")["new_access_token"], true);

    let log = cluster.proxy.log();
    let authorize = cluster.proxy.backends_of("GET", "/authorize");
    let token = cluster.proxy.backends_of("POST", "/token");
    eprintln!("{TEST}: /authorize on {authorize:?}, /token on {token:?}");
    assert_eq!(authorize.len(), 3, "{log:#?}");
    assert_eq!(token.len(), 4, "three codes and a refresh: {log:#?}");
    assert!(both(&token), "{log:#?}");
    assert!(a_code_crossed(&log), "{log:#?}");
    eprintln!("{TEST}: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_redemptions_of_one_code_on_both_replicas_one_succeeds() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let Some(cluster) = Cluster::start("replicas_code", vec![]).await else {
        return;
    };
    let oauth = Arc::new(OAuth::register(&cluster.issuer(), &cluster.mcp_url()).await);
    let (code, verifier) = oauth.code(&cluster.issuer()).await.unwrap();
    let redemptions: Vec<_> = (0..50)
        .map(|i| {
            let oauth = Arc::clone(&oauth);
            let base = cluster.replicas[i % 2].url();
            let (code, verifier) = (code.clone(), verifier.clone());
            tokio::spawn(async move { oauth.redeem(&base, &code, &verifier).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, redemption) in redemptions.into_iter().enumerate() {
        let (status, body) = redemption.await.unwrap().unwrap();
        match status {
            200 => winners.push((i % 2, Tokens::from(&body))),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            _ => panic!("redemption {i}: {status} {body}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one redemption succeeds: {winners:?}"
    );
    let (replica, tokens) = &winners[0];
    eprintln!("replicas_code: replica {replica} won");
    // The replays revoked what the code produced (AS-25): both replicas refuse its tokens.
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let refused = refused_within(&replica.url(), &tokens.access, REVOCATION_BOUND).await;
        eprintln!("replicas_code: replica {i} refuses the winner's access token after {refused:?}");
        let (status, body) = oauth
            .refresh(&replica.url(), &tokens.refresh)
            .await
            .unwrap();
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{body}"
        );
    }
    // The client carries on with a new code.
    let tokens = oauth.grant(&cluster.issuer()).await.unwrap();
    assert_eq!(
        whoami(&cluster.mcp_url(), &tokens.access).await["subject"],
        DEMO_USER
    );
    eprintln!("replicas_code: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_reused_on_the_other_replica_revokes_the_family_on_both() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let Some(cluster) = Cluster::start("replicas_reuse", vec![]).await else {
        return;
    };
    let (a, b) = (cluster.replicas[0].url(), cluster.replicas[1].url());
    let oauth = OAuth::register(&cluster.issuer(), &cluster.mcp_url()).await;
    let first = oauth.grant(&cluster.issuer()).await.unwrap();

    // Rotation on A.
    let (status, body) = oauth.refresh(&a, &first.refresh).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let second = Tokens::from(&body);
    for base in [&a, &b] {
        mcp_accepts(base, &second.access).await.unwrap();
    }

    // The old refresh token again, on B, after the grace window.
    tokio::time::sleep(REFRESH_GRACE + Duration::from_secs(2)).await;
    let (status, body) = oauth.refresh(&b, &first.refresh).await.unwrap();
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let reused = Instant::now();

    // Both replicas refuse the family's access token within the bound.
    let mut refused_after = Vec::new();
    for base in [&a, &b] {
        refused_within(base, &second.access, REVOCATION_BOUND).await;
        refused_after.push(reused.elapsed());
    }
    eprintln!(
        "replicas_reuse: refused by A after {:?}, by B after {:?}",
        refused_after[0], refused_after[1]
    );
    // The successor refresh token is dead too, on both.
    for base in [&a, &b] {
        let (status, body) = oauth.refresh(base, &second.refresh).await.unwrap();
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{body}"
        );
    }
    eprintln!("replicas_reuse: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_replica_during_200_grants_loses_no_answered_grant() {
    const GRANTS: usize = 200;
    const KILL_AT: usize = 60;
    const LOOP_TIMEOUT: Duration = Duration::from_secs(60);
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let Some(mut cluster) = Cluster::start("replicas_kill", vec![]).await else {
        return;
    };
    let proxy = cluster.proxy.url();
    let oauth = OAuth::register(&proxy, &cluster.mcp_url()).await;

    // The kill comes from another task when the 60th grant starts, in the middle of requests.
    let progress = Arc::new(AtomicUsize::new(0));
    let mut victim = cluster.replicas.pop().unwrap();
    let seen = Arc::clone(&progress);
    let proxy_state = Arc::clone(&cluster.proxy.state);
    let killer = tokio::spawn(async move {
        let deadline = Instant::now() + LOOP_TIMEOUT;
        while seen.load(Ordering::SeqCst) < KILL_AT && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
        let grant_at_kill = seen.load(Ordering::SeqCst);
        victim.child.start_kill().unwrap();
        let status = victim.child.wait().await.unwrap();
        // Where the proxy's log stood once the replica was gone.
        (status, grant_at_kill, proxy_state.log.lock().unwrap().len())
    });

    let deadline = Instant::now() + LOOP_TIMEOUT;
    let mut answered = Vec::new();
    let mut failed = Vec::new();
    for i in 0..GRANTS {
        assert!(
            Instant::now() < deadline,
            "200 grants within {LOOP_TIMEOUT:?}"
        );
        progress.store(i, Ordering::SeqCst);
        match oauth.grant(&proxy).await {
            Ok(tokens) => answered.push((i, tokens)),
            Err(error) => failed.push((i, error)),
        }
    }
    let (status, grant_at_kill, log_at_kill) = killer.await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let log = cluster.proxy.log();
    eprintln!(
        "replicas_kill: killed during grant {grant_at_kill}; {} grants answered, {} failed {failed:?}; the loop took {:?}",
        answered.len(),
        failed.len(),
        started.elapsed()
    );
    // At most the grant in flight at the kill failed (its two requests).
    assert!(failed.len() <= 1, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(i, _)| (grant_at_kill..grant_at_kill + 2).contains(i)),
        "{failed:?}"
    );
    // Replica 1 answered some before the kill; after it, the proxy skipped it.
    let before_kill = log.iter().filter(|r| r.backend == 1).count();
    assert!(before_kill > 10, "{log:#?}");
    assert!(
        log[log_at_kill..].iter().all(|r| r.backend == 0),
        "after the kill, everything went to replica 0"
    );
    assert!(
        log.len() - log_at_kill > 200,
        "the client carried on after the kill"
    );

    // Every answered grant still works: its refresh succeeds, its access token is accepted.
    let checks = Instant::now();
    for (i, tokens) in &answered {
        let (status, body) = oauth.refresh(&proxy, &tokens.refresh).await.unwrap();
        assert_eq!(status, 200, "grant {i}: {body}");
        mcp_accepts(&proxy, &tokens.access)
            .await
            .unwrap_or_else(|e| panic!("grant {i}: {e}"));
    }
    let after = cluster.proxy.log();
    assert!(
        after[log.len()..].iter().all(|r| r.backend == 0),
        "only replica 0 is left"
    );
    let (_, last) = answered.last().unwrap();
    assert_eq!(
        whoami(&cluster.mcp_url(), &last.access).await["subject"],
        DEMO_USER
    );
    eprintln!(
        "replicas_kill: {} refreshes and token checks on the surviving replica in {:?}; total {:?}",
        answered.len(),
        checks.elapsed(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// mcp-auth-gateway replicas

/// A trivial upstream MCP endpoint on loopback: answers every JSON-RPC request with an empty
/// result, and `tools/call` with the `X-MCP-Subject` the gateway sent.
async fn gateway_upstream() -> (String, support::Running) {
    use axum::{Router, http::HeaderMap, routing::post};
    async fn answer(headers: HeaderMap, body: axum::body::Bytes) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let subject = headers
            .get("x-mcp-subject")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let result = if request["method"] == "tools/call" {
            json!({"content": [{"type": "text", "text": subject}], "isError": false})
        } else {
            json!({})
        };
        let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
        ([("content-type", "application/json")], answer.to_string()).into_response()
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let router = Router::new().route("/mcp", post(answer));
    (url, support::Running::axum(listener, router))
}

/// `tools/call` at `base`'s `/mcp` through a gateway: the status and the text the upstream
/// answered (the subject it was told).
async fn gateway_call(base: &str, access_token: &str) -> (u16, String) {
    let response = http()
        .post(format!("{base}/mcp"))
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_postgres_schema_share_clients_codes_tokens_and_revocations() {
    const TEST: &str = "replicas_gateway";
    const SUBJECT: &str = "gw-replica-user";
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let Some(db) = support::postgres_url(TEST).await else {
        return;
    };
    let mut random = [0_u8; 4];
    aws_lc_rs::rand::fill(&mut random).unwrap();
    let schema = Schema {
        url: db.clone(),
        name: format!(
            "e2e_{TEST}_{}_{:08x}",
            std::process::id(),
            u32::from_le_bytes(random)
        ),
    };
    let (upstream, _upstream) = gateway_upstream().await;
    let proxy = Proxy::start(vec![]).await;
    let mut config = mcp_auth_gateway::Config::for_upstream(&upstream);
    config.public_url = Some(proxy.url());
    let mcp_auth_gateway::AuthConfig::Embedded(embedded) = &mut config.auth else {
        unreachable!("embedded by default")
    };
    embedded.db = Some(db.clone());
    embedded.db_schema = Some(schema.name.clone());
    embedded.auto_approve = Some(SUBJECT.to_owned());
    // One after the other: the first creates the tables and the signing key, the second finds
    // them.
    let mut replicas = Vec::new();
    let mut running = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bound = listener.local_addr().unwrap();
        let gateway = mcp_auth_gateway::build(&config, bound).await.unwrap();
        assert_eq!(gateway.issuer, proxy.url(), "the proxy is the issuer");
        running.push(support::Running::spawn(move |stopped| {
            mcp_auth_gateway::serve(listener, gateway, stopped)
        }));
        replicas.push(format!("http://{bound}"));
    }
    proxy.set_backends(
        replicas
            .iter()
            .map(|r| r.strip_prefix("http://").unwrap().parse().unwrap())
            .collect(),
    );
    let (a, b) = (&replicas[0], &replicas[1]);

    // Registered through the proxy, authorized at one replica, redeemed at the other.
    let mut oauth = OAuth::register(&proxy.url(), &format!("{}/mcp", proxy.url())).await;
    oauth.scope = "mcp:tools";
    let (code, verifier) = oauth.code(a).await.unwrap();
    let (status, body) = oauth.redeem(b, &code, &verifier).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let tokens = Tokens::from(&body);
    // Either replica lets the token through to the upstream, with the caller's identity.
    for replica in [a, b] {
        assert_eq!(
            gateway_call(replica, &tokens.access).await,
            (200, SUBJECT.to_owned()),
            "{replica}"
        );
    }
    // The refresh token issued by one replica is rotated by the other.
    let (status, body) = oauth.refresh(a, &tokens.refresh).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let refreshed = Tokens::from(&body);
    assert_eq!(gateway_call(b, &refreshed.access).await.0, 200);

    // Revoked at one replica, refused by both within the bound.
    let response = http()
        .post(format!("{b}/revoke"))
        .form(&[
            ("token", refreshed.access.as_str()),
            ("client_id", oauth.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for replica in [a, b] {
        let took = refused_within(replica, &refreshed.access, REVOCATION_BOUND).await;
        eprintln!("{TEST}: {replica} refuses the revoked token after {took:?}");
    }
    for running in running {
        running.stop().await;
    }
    drop(proxy);
    drop(schema);
    eprintln!("{TEST}: {:?}", started.elapsed());
}
