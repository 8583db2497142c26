//! Headless Chromium for the browser tests: finds the binaries, starts `chromedriver` on a free
//! loopback port in its own process group, and opens a [`fantoccini`] WebDriver session in a
//! fresh profile. The tests drive the page with fantoccini's own API (`goto`, `find`,
//! `wait().for_element(..)`, …) through [`Browser`]'s `Deref` to its `Client`.
//!
//! Install the browser with `cargo xtask setup` (Debian's `chromium` and `chromium-driver`).
//!
//! ```ignore
//! let Some(chromium) = chromium::browser_available() else { return }; // skip, or fail with
//!                                                                      // MCP_AUTH_REQUIRE_BROWSER=1
//! let browser = chromium.launch().await;
//! browser.goto(&url).await.unwrap();
//! browser.find(Locator::Css("#approve")).await.unwrap().click().await.unwrap();
//! browser.quit().await;   // or drop: kills chromedriver and Chromium, removes the profile
//! ```
//!
//! The paths default to `/usr/bin/chromium` and `/usr/bin/chromedriver`; the environment
//! variables `MCP_AUTH_CHROMIUM` and `MCP_AUTH_CHROMEDRIVER` override them.
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, TcpListener};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Set to `1` to make a missing browser a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "MCP_AUTH_REQUIRE_BROWSER";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to accept a session.
const DRIVER_START: Duration = Duration::from_secs(15);
/// Page loads inside the browser (`goto`, a click that submits a form).
const PAGE_LOAD: Duration = Duration::from_secs(15);

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
            match driver.connect(self, &profile).await {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        profile,
                    };
                }
                Err(error) => last_error = error,
            }
        }
        panic!("no Chromium session: {last_error}");
    }
}

/// A running `chromedriver`, killed (with its process group: Chromium too) on drop.
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

    /// A fantoccini session, retried until chromedriver listens (at most [`DRIVER_START`]).
    async fn connect(&mut self, chromium: &Chromium, profile: &TempDir) -> Result<Client, String> {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&a| a.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": PAGE_LOAD.as_millis() as u64, "script": 5000 },
            "goog:chromeOptions": { "binary": chromium.binary, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "chromedriver exited with {status}; log: {}",
                    self.log_tail()
                ));
            }
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Ok(client),
                Err(error) if Instant::now() >= deadline => {
                    return Err(format!("{error}; chromedriver log: {}", self.log_tail()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
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

/// A WebDriver session in headless Chromium: fantoccini's [`Client`] (by `Deref`), owning the
/// chromedriver process and the profile. Dropping it kills both and removes the profile;
/// [`quit`](Self::quit) ends the session politely first.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    // Field order is drop order: the driver is killed, then the profile removed.
    driver: Driver,
    profile: TempDir,
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Browser {
    /// Poll the URL until `done(url)`, for at most `timeout`; returns that URL.
    pub async fn wait_for_url(&self, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.client.current_url().await.unwrap().to_string();
            if done(&url) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "URL still {url} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching the CSS selector, or `None` when there is none.
    pub async fn try_find(&self, css: &str) -> Option<fantoccini::elements::Element> {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => Some(element),
            Err(error) if error.is_no_such_element() => None,
            Err(error) => panic!("find {css:?}: {error}"),
        }
    }

    /// Wait for an element matching the CSS selector, for at most `timeout`; panics (showing
    /// the page) when none came.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(timeout)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => panic!(
                "no element matches {css:?} on {} ({error}):\n{}",
                self.client.current_url().await.unwrap(),
                self.client.source().await.unwrap_or_default()
            ),
        }
    }

    /// End the session (Chromium quits); drop then kills chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}
