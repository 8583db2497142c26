//! A minimal W3C WebDriver client driving headless Chromium through `chromedriver`: raw JSON
//! over HTTP with reqwest, on loopback only. Test support: every method panics with a clear
//! message on a WebDriver error, and every wait is bounded.
//!
//! Install the browser with `cargo xtask setup` (Debian's `chromium` and `chromium-driver`).
//!
//! # API
//!
//! ```ignore
//! mod support;
//! use support::webdriver::{self, Browser};
//!
//! #[tokio::test]
//! async fn consent_flow() {
//!     // Prints "SKIPPED: ..." and returns when Chromium is missing; fails instead when
//!     // MCP_AUTH_REQUIRE_BROWSER=1 (set by `cargo xtask test`).
//!     let Some(chromium) = webdriver::browser_available() else { return };
//!     let browser: Browser = chromium.launch().await;        // chromedriver + a session
//!
//!     browser.navigate(&authorize_url).await;
//!     browser.find("#username").await.send_keys("alice").await;
//!     browser.find("#password").await.send_keys("secret").await;
//!     browser.find("#approve").await.click().await;
//!     let url = browser.wait_for_url(|u| u.contains("code="), Duration::from_secs(10)).await;
//!     assert!(browser.try_find("#username").await.is_none());
//!     let html = browser.page_source().await;
//! }   // drop: deletes the session (Chromium quits), kills chromedriver, removes the profile
//! ```
//!
//! - [`browser_available`] → `Option<Chromium>`; [`Chromium::launch`] → [`Browser`].
//! - [`Browser`]: `navigate`, `current_url`, `wait_for_url`, `page_source`, `title`, `find`,
//!   `try_find`, `wait_for`, `quit`.
//! - [`Element`]: `send_keys`, `click`, `text`, `property` (e.g. `"value"`), `attribute`.
//!
//! The paths default to `/usr/bin/chromium` and `/usr/bin/chromedriver`; the environment
//! variables `MCP_AUTH_CHROMIUM` and `MCP_AUTH_CHROMEDRIVER` override them.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Set to `1` to make a missing browser a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "MCP_AUTH_REQUIRE_BROWSER";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_START: Duration = Duration::from_secs(15);
/// Any single WebDriver command (session creation starts Chromium: the slowest).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Page loads inside the browser (`navigate`, a click that submits a form).
const PAGE_LOAD: Duration = Duration::from_secs(15);
/// Polling interval of the `wait_*` helpers.
const POLL: Duration = Duration::from_millis(50);

/// The Chromium arguments (TESTING.md "A real browser"); `--user-data-dir` is added per session.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--window-size=1024,768",
];

/// Installed browser binaries, found by [`browser_available`].
#[derive(Clone, Debug)]
pub struct Chromium {
    /// The Chromium binary.
    pub binary: PathBuf,
    /// The `chromedriver` binary.
    pub driver: PathBuf,
}

/// The installed Chromium and chromedriver, or `None` after printing
/// `SKIPPED: chromium not installed (run `cargo xtask setup`)`. Panics instead when
/// `MCP_AUTH_REQUIRE_BROWSER=1`.
pub fn browser_available() -> Option<Chromium> {
    let path = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = Chromium {
        binary: path("MCP_AUTH_CHROMIUM", DEFAULT_CHROMIUM),
        driver: path("MCP_AUTH_CHROMEDRIVER", DEFAULT_CHROMEDRIVER),
    };
    let missing: Vec<&Path> = [&chromium.binary, &chromium.driver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(PathBuf::as_path)
        .collect();
    if missing.is_empty() {
        return Some(chromium);
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!(
            "{REQUIRE_ENV}=1 but the browser is not installed (missing {missing:?}): run `cargo xtask setup`"
        );
    }
    eprintln!("SKIPPED: chromium not installed (run `cargo xtask setup`); missing {missing:?}");
    None
}

impl Chromium {
    /// Start chromedriver on a free loopback port and open a session in a fresh profile.
    pub async fn launch(&self) -> Browser {
        let profile = TempDir::new();
        let mut last_error = String::new();
        // The free port is found by binding and releasing it; another process may take it in
        // between, so retry a few times with a new port.
        for _ in 0..3 {
            let mut driver = match Driver::spawn(&self.driver, &profile.path) {
                Ok(driver) => driver,
                Err(error) => panic!("cannot start {}: {error}", self.driver.display()),
            };
            let http = reqwest::Client::builder()
                .no_proxy()
                .timeout(COMMAND_TIMEOUT)
                .build()
                .unwrap();
            match driver.wait_ready(&http).await {
                Ok(()) => return Browser::new_session(self, driver, http, profile).await,
                Err(error) => last_error = error,
            }
        }
        panic!("chromedriver did not become ready: {last_error}");
    }
}

/// A running `chromedriver`, killed (with its process group) on drop.
#[derive(Debug)]
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn spawn(binary: &Path, profile: &Path) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt as _;

        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log = profile.with_extension("chromedriver.log");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so drop can kill Chromium too if the session is stuck.
            .process_group(0)
            .spawn()?;
        Ok(Self { child, port, log })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Poll `/status` until `ready`, for at most [`DRIVER_START`].
    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "chromedriver exited with {status}; log: {}",
                    self.log_tail()
                ));
            }
            let request = http
                .get(self.url("/status"))
                .timeout(Duration::from_secs(2));
            if let Ok(response) = request.send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no ready /status within {DRIVER_START:?}; log: {}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The end of chromedriver's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium it left behind. By id, never by name.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "mcp-auth-chromium-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A WebDriver session in headless Chromium. Dropping it deletes the session (Chromium
/// quits), kills chromedriver and removes the profile directory.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    session: String,
    // Field order is drop order: the session is deleted in `Drop::drop`, then the driver is
    // killed, then the profile removed.
    driver: Driver,
    profile: TempDir,
}

impl Browser {
    async fn new_session(
        chromium: &Chromium,
        driver: Driver,
        http: reqwest::Client,
        profile: TempDir,
    ) -> Self {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&a| a.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": PAGE_LOAD.as_millis() as u64, "script": 5000 },
                    "goog:chromeOptions": { "binary": chromium.binary, "args": args },
                }
            }
        });
        let response = http
            .post(driver.url("/session"))
            .json(&capabilities)
            .send()
            .await;
        let value = match response {
            Ok(response) => unwrap_value(response.json::<Value>().await.unwrap_or(Value::Null)),
            Err(error) => Err(error.to_string()),
        };
        let session = match value.as_ref().map(|v| v["sessionId"].as_str()) {
            Ok(Some(id)) => id.to_owned(),
            _ => panic!(
                "cannot create a Chromium session: {value:?}; chromedriver log: {}",
                driver.log_tail()
            ),
        };
        Self {
            http,
            session,
            driver,
            profile,
        }
    }

    fn url(&self, path: &str) -> String {
        self.driver.url(&format!("/session/{}{path}", self.session))
    }

    /// One command: its `value`, or the WebDriver error as `Err("error: message")`.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let body = response
            .json::<Value>()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        unwrap_value(body)
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Load `url` and wait for the page (at most the page-load timeout).
    pub async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Poll the URL until `done(url)`, for at most `timeout`; returns that URL.
    pub async fn wait_for_url(&self, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if done(&url) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "URL still {url} after {timeout:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current page's HTML, as the browser serialises its DOM.
    pub async fn page_source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The document title.
    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching the CSS selector, or `None` if there is none.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        match self
            .command(reqwest::Method::POST, "/element", Some(body))
            .await
        {
            Ok(value) => Some(Element {
                browser: self,
                id: element_id(&value),
            }),
            Err(error) if error.starts_with("no such element") => None,
            Err(error) => panic!("find {css:?}: {error}"),
        }
    }

    /// The first element matching the CSS selector; panics (showing the page) if there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(element) => element,
            None => panic!(
                "no element matches {css:?} on {}:\n{}",
                self.current_url().await,
                self.page_source().await
            ),
        }
    }

    /// Poll for an element matching the CSS selector, for at most `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            if Instant::now() >= deadline {
                return self.find(css).await; // panics with the page
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Delete the session now (drop does it too, blocking for at most a few seconds).
    pub async fn quit(mut self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// Delete the session with a plain blocking HTTP request (no async in drop), bounded by
    /// socket timeouts; Chromium quits. The driver and the profile are dropped after.
    fn drop(&mut self) {
        if self.session.is_empty() {
            return;
        }
        let Ok(mut stream) = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.driver.port).into(),
            Duration::from_secs(2),
        ) else {
            return;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.driver.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // Wait for the answer (Chromium has quit by then); ignore its content.
            let mut sink = Vec::new();
            let _ = stream.take(64 * 1024).read_to_end(&mut sink);
        }
    }
}

/// An element of the current page.
#[derive(Debug)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    fn path(&self, suffix: &str) -> String {
        format!("/element/{}{suffix}", self.id)
    }

    /// Type `text` into the element (appends to what is there).
    pub async fn send_keys(&self, text: &str) {
        self.browser
            .post(&self.path("/value"), json!({ "text": text }))
            .await;
    }

    /// Click it; a form submission it triggers is waited for (at most the page-load timeout).
    pub async fn click(&self) {
        self.browser.post(&self.path("/click"), json!({})).await;
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        self.browser
            .get(&self.path("/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A DOM property (e.g. `"value"` of an input), `None` when null.
    pub async fn property(&self, name: &str) -> Option<String> {
        value_string(
            self.browser
                .get(&self.path(&format!("/property/{name}")))
                .await,
        )
    }

    /// An HTML attribute as written in the markup, `None` when absent.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        value_string(
            self.browser
                .get(&self.path(&format!("/attribute/{name}")))
                .await,
        )
    }
}

fn value_string(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// `{"value": v}` → `Ok(v)`; a WebDriver error → `Err("<error>: <message>")`.
fn unwrap_value(mut body: Value) -> Result<Value, String> {
    let value = body["value"].take();
    match value["error"].as_str() {
        Some(error) => Err(format!(
            "{error}: {}",
            value["message"].as_str().unwrap_or_default()
        )),
        None => Ok(value),
    }
}

fn element_id(value: &Value) -> String {
    match value[ELEMENT_KEY].as_str() {
        Some(id) => id.to_owned(),
        None => panic!("not an element reference: {value}"),
    }
}
