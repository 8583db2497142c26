//! Opening the authorization URL.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use crate::{
    error::{AuthError, AuthErrorKind},
    fetch::{UrlPolicy, transport_error},
};

/// The future [`BrowserOpener::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send + 'a>>;

/// Shows the user the authorization URL.
///
/// The URL was already checked (https, or http on loopback when the manager allows it). An
/// implementation returns once the URL is on its way (a browser launched); the manager then waits
/// for the redirect on its [`LoopbackRedirect`](super::LoopbackRedirect). A GUI application
/// implements this to open its own web view; an agent, to send the link to its user.
pub trait BrowserOpener: fmt::Debug + Send + Sync + 'static {
    /// Opens `url`.
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a>;
}

/// Opens the system browser: `xdg-open` (Linux, BSD), `open` (macOS) or
/// `rundll32 url.dll,FileProtocolHandler` (Windows), with the URL as one argument, **never
/// through a shell** (SPEC C-10: `cmd /c start` would re-parse `&` in the URL). URLs other than
/// https or loopback http are refused before anything is spawned.
///
/// See the [module docs](crate::authorize) for the flow.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemBrowser;

impl SystemBrowser {
    /// The system browser.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

/// The command that opens a URL on this platform.
fn opener_command() -> (&'static str, &'static [&'static str]) {
    if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    }
}

impl BrowserOpener for SystemBrowser {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        Box::pin(async move {
            // Whatever the manager allowed, a browser only ever gets https or loopback http.
            UrlPolicy {
                allow_insecure_loopback: true,
            }
            .check(url)
            .map_err(|_| UrlPolicy::refused("the authorization URL"))?;
            if url.chars().any(char::is_control) {
                return Err(UrlPolicy::refused("the authorization URL"));
            }
            let (program, args) = opener_command();
            let mut child = std::process::Command::new(program)
                .args(args)
                .arg(url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| AuthError::new(AuthErrorKind::Browser).with_source(e))?;
            // Reap the opener when it exits; the browser it started lives on.
            tokio::task::spawn_blocking(move || child.wait());
            Ok(())
        })
    }
}

/// A browser without a user: fetches the authorization URL itself and follows the redirects
/// (at most 10) — through an authorization server that approves at once (a test server, the
/// conformance suite's mock, a server whose consent was given before) to the
/// [`LoopbackRedirect`](super::LoopbackRedirect), which then receives the code.
///
/// For tests, CI and headless agents. It never follows a redirect to a scheme other than http(s)
/// and fails when the last response is not a success.
///
/// See the [module docs](crate::authorize) for the flow.
#[derive(Debug, Clone)]
pub struct HeadlessBrowser {
    client: reqwest::Client,
}

impl Default for HeadlessBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadlessBrowser {
    /// A headless browser with a 30 s timeout.
    #[must_use]
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "mcp-auth-client/",
                env!("CARGO_PKG_VERSION"),
                " (headless)"
            ))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client }
    }
}

impl BrowserOpener for HeadlessBrowser {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        Box::pin(async move {
            let response = self.client.get(url).send().await.map_err(|e| {
                let kind = transport_error(e);
                AuthError::new(AuthErrorKind::Browser).with_source(kind)
            })?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(AuthError::new(AuthErrorKind::Browser)
                    .with_detail("the authorization page did not lead to the redirect")
                    .with_status(status.as_u16()))
            }
        })
    }
}
