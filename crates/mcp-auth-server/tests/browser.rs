//! Tests in a real headless Chromium, driven through `chromedriver` by `fantoccini` (started by
//! `support/chromium.rs`). Skipped (with a message) when Chromium is not installed, unless
//! `MCP_AUTH_REQUIRE_BROWSER=1` (`cargo xtask test` sets it).
//!
//! The smoke test proves the driver: a loopback server serves a form shaped like the consent
//! page's, the browser fills and submits it, and the server sees the fields and the redirect.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use fantoccini::Locator;
use support::chromium;
use tokio::net::TcpListener;

/// What the fake server received.
#[derive(Default)]
struct Seen {
    form: Mutex<Vec<HashMap<String, String>>>,
    callback: Mutex<Vec<HashMap<String, String>>>,
}

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Smoke form</title></head>
<body>
<h1>Sign in</h1>
<form method="post" action="/submit">
<input type="hidden" name="transaction" value="tx-42">
<input type="hidden" name="csrf" value="csrf-token">
<input id="username" name="username" autocomplete="username">
<input id="password" name="password" type="password">
<button id="approve" name="decision" value="approve">Approve</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form>
</body></html>"#;

async fn form_page() -> Html<&'static str> {
    Html(FORM_PAGE)
}

/// Records the form, then 303 to a callback on the same loopback origin (like `/authorize`
/// sending the browser to a loopback redirect URI).
async fn submit(
    State(seen): State<Arc<Seen>>,
    Form(fields): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let decision = fields.get("decision").cloned().unwrap_or_default();
    seen.form.lock().unwrap().push(fields);
    Redirect::to(&format!(
        "/callback?code=abc123&state=xyz&decision={decision}"
    ))
}

async fn callback(
    State(seen): State<Arc<Seen>>,
    Query(query): Query<HashMap<String, String>>,
) -> Html<&'static str> {
    seen.callback.lock().unwrap().push(query);
    Html("<!doctype html><title>Done</title><p id=\"result\">You can close this window.</p>")
}

async fn serve() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/", get(form_page))
        .route("/submit", axum::routing::post(submit))
        .route("/callback", get(callback))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_browser_fills_and_submits_a_form() {
    let Some(chromium) = chromium::browser_available() else {
        return;
    };
    let (base, seen) = serve().await;
    let browser = chromium.launch().await;

    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Smoke form");
    assert_eq!(
        browser.current_url().await.unwrap().to_string(),
        format!("{base}/")
    );
    assert!(browser.source().await.unwrap().contains("<h1>Sign in</h1>"));
    assert!(browser.try_find("#no-such-element").await.is_none());

    let username = browser.find(Locator::Css("#username")).await.unwrap();
    username.send_keys("alice").await.unwrap();
    assert_eq!(
        username.prop("value").await.unwrap().as_deref(),
        Some("alice")
    );
    browser
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("p&ss <word> \"ü\"")
        .await
        .unwrap();
    assert_eq!(
        browser
            .find(Locator::Css("#approve"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .as_deref(),
        Some("approve")
    );
    browser
        .find(Locator::Css("#approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let url = browser
        .wait_for_url(|u| u.contains("/callback"), Duration::from_secs(10))
        .await;
    assert_eq!(
        url,
        format!("{base}/callback?code=abc123&state=xyz&decision=approve")
    );
    assert_eq!(
        browser
            .wait_for("#result", Duration::from_secs(5))
            .await
            .text()
            .await
            .unwrap(),
        "You can close this window."
    );

    let form = seen.form.lock().unwrap().clone();
    assert_eq!(form.len(), 1, "{form:?}");
    let expected: HashMap<String, String> = [
        ("transaction", "tx-42"),
        ("csrf", "csrf-token"),
        ("username", "alice"),
        ("password", "p&ss <word> \"ü\""),
        ("decision", "approve"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(form[0], expected);
    let callback = seen.callback.lock().unwrap().clone();
    assert_eq!(callback.len(), 1);
    assert_eq!(callback[0]["code"], "abc123");

    // The other button sends the other decision, and only one of them.
    browser.goto(&format!("{base}/")).await.unwrap();
    browser
        .find(Locator::Css("#deny"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_url(|u| u.contains("decision=deny"), Duration::from_secs(10))
        .await;
    let form = seen.form.lock().unwrap().clone();
    assert_eq!(form.len(), 2);
    assert_eq!(form[1]["decision"], "deny");
    assert_eq!(form[1]["username"], "");

    browser.quit().await;
}

mod common;

type Received = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A loopback redirect URI that records what it receives (like a CLI's callback listener).
async fn callback_listener() -> (String, Received) {
    let seen: Received = Arc::default();
    let app = Router::new()
        .route(
            "/callback",
            get(|State(seen): State<Received>, Query(q): Query<HashMap<String, String>>| async move {
                seen.lock().unwrap().push(q);
                Html("<!doctype html><title>Signed in</title><p id=\"done\">You can close this window.</p>")
            }),
        )
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_page_in_chromium_logs_in_approves_and_delivers_the_code_to_a_loopback_redirect() {
    let Some(chromium) = chromium::browser_available() else {
        return;
    };
    let h = common::start(|b| b).await;
    let (redirect, received) = callback_listener().await;
    // Registered without a port: the loopback rule lets the request use the listener's port.
    let registered = "http://127.0.0.1/callback";
    let client_id = h.register_public(registered).await;
    let (verifier, challenge) = common::pkce();
    let url = h.authorize_url(&h.params(&client_id, &redirect, &challenge, "mcp:tools notes:read"));

    let browser = chromium.launch().await;
    browser.goto(&url).await.unwrap();
    let page = browser.source().await.unwrap();
    assert!(page.contains("Test Client"), "the client name is shown");
    assert!(page.contains("127.0.0.1"), "the redirect host is shown");
    assert!(page.contains("notes:read"), "the scopes are shown");
    assert!(
        page.contains("localhost") || page.contains("this device"),
        "the loopback warning is shown"
    );

    browser
        .find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys(common::USER)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(common::PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = browser
        .wait_for_url(|u| u.contains("/callback?"), Duration::from_secs(15))
        .await;
    assert!(landed.starts_with(&redirect), "{landed}");
    browser.wait_for("#done", Duration::from_secs(5)).await;

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["state"], "xyz-state");
    assert_eq!(got[0]["iss"], h.base);
    let code = got[0]["code"].clone();
    let response = h.exchange(&client_id, &code, &redirect, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        h.call_mcp(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The same browser again: the session cookie and the remembered consent skip the page.
    let (_, challenge) = common::pkce();
    let url = h.authorize_url(&h.params(&client_id, &redirect, &challenge, "mcp:tools"));
    browser.goto(&url).await.unwrap();
    browser
        .wait_for_url(|u| u.contains("/callback?"), Duration::from_secs(15))
        .await;
    assert_eq!(received.lock().unwrap().len(), 2, "approved without a page");

    // Deny sends access_denied to the client.
    let (_, challenge) = common::pkce();
    let url = h.authorize_url(&h.params(&client_id, &redirect, &challenge, "mcp:tools mcp:admin"));
    browser.goto(&url).await.unwrap();
    assert!(
        browser.try_find("#password").await.is_none(),
        "already signed in"
    );
    browser
        .find(Locator::Css("#deny"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_url(
            |u| u.contains("error=access_denied"),
            Duration::from_secs(15),
        )
        .await;
    browser.quit().await;
}
