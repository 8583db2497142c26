//! Redirect logins against a fake provider on loopback (`fake_idp/mod.rs`): the whole sign-in
//! with consent before the browser goes upstream, and every bad input of issue 11 item 10 that a
//! real provider cannot be made to produce: forged ID tokens, wrong, replayed, expired or
//! unbound `state`, `access_denied`, a provider down at start and mid-flow, oversize and slow
//! answers, an admission rule that refuses the user. The same flow against a real OpenID
//! provider is in `upstream_oidc.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod fake_idp;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use common::{Harness, hidden_field, pkce, query_of, start};
use fake_idp::{CLIENT_ID, CLIENT_SECRET, Fake, Mode, SUB};
use mcp_auth_core::ManualClock;
use mcp_auth_server::login::{OAuth2Login, OidcLogin, OidcLoginBuilder};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn oidc(fake: &Fake) -> OidcLoginBuilder {
    OidcLogin::builder(&fake.issuer, CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .provider_name("Fake IdP")
}

async fn harness(login: OidcLogin) -> Harness {
    start(|b| b.login(login)).await
}

/// The consent page, then the approval that sends the browser upstream: returns the provider's
/// authorization URL.
async fn approve(h: &Harness, client_id: &str, challenge: &str) -> String {
    let url = h.authorize_url(&h.params(client_id, REDIRECT, challenge, "mcp:tools"));
    let response = h.browse(&url).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("mcp-auth-upstream")),
        "no state cookie before consent (AS-52)"
    );
    let page = response.text().await.unwrap();
    // AS-49: the client, its redirect host and the provider, before the browser leaves.
    assert!(
        page.contains("<span class=\"client\">Test Client</span>"),
        "{page}"
    );
    assert!(page.contains("sent to <span class=\"host\">127.0.0.1</span>"));
    assert!(page.contains("you will sign in with <span class=\"host provider\">Fake IdP</span>"));
    assert!(!page.contains("id=\"password\""));
    let response = h.submit(&page, &[("decision", "approve")]).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mcp-auth-upstream="))
        .expect("the binding cookie is set on the redirect");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Max-Age=600")
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The provider's answer: the callback URL it sends the browser to.
async fn provider(h: &Harness, upstream_url: &str) -> String {
    let response = h.http.get(upstream_url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&h.url("/login/callback?")),
        "{callback}"
    );
    callback
}

/// The query of the authorization response the MCP client gets (the callback's `Location`).
fn client_response(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(location)
}

#[tokio::test]
async fn a_user_signs_in_upstream_after_consent_and_the_client_gets_a_working_code() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    assert_eq!(
        h.server.upstream_redirect_uri(),
        Some(h.url("/login/callback"))
    );
    let client = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let q = query_of(&upstream);
    assert_eq!(q["redirect_uri"], h.url("/login/callback"));
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    assert_ne!(q["state"], q["nonce"]);
    assert_eq!(q["code_challenge_method"], "S256");
    let callback = provider(&h, &upstream).await;
    let response = h.browse(&callback).await;
    let answer = client_response(&response);
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
    // Stable and namespaced by the provider.
    assert_eq!(me["sub"], format!("{}#{SUB}", fake.issuer));
    // The upstream token never reaches the MCP client (AS-53).
    assert!(!tokens.to_string().contains("upstream-access"));

    // Consent is remembered for this user and client: the next authorization needs no page
    // and no trip upstream.
    let hits = fake.token_hits.load(Ordering::SeqCst);
    let (_, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client, REDIRECT, &challenge, "mcp:tools"));
    let response = h.browse(&url).await;
    assert!(client_response(&response).contains_key("code"));
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), hits);

    // Another client: asked again, and the page says who is signed in (no trip upstream).
    let other = h.register_public(REDIRECT).await;
    let url = h.authorize_url(&h.params(&other, REDIRECT, &challenge, "mcp:tools"));
    let page = h.browse(&url).await.text().await.unwrap();
    assert!(
        page.contains("Signed in as <strong>Fake User</strong>"),
        "{page}"
    );
    let response = h.submit(&page, &[("decision", "approve")]).await;
    assert!(client_response(&response).contains_key("code"));
}

#[tokio::test]
async fn forged_or_wrong_id_tokens_are_refused_and_no_code_is_issued() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    let client = h.register_public(REDIRECT).await;
    for mode in [
        Mode::UnknownKid,
        Mode::AlgNone,
        Mode::HmacWithPublicKey,
        Mode::WrongAud,
        Mode::WrongIss,
        Mode::Expired,
        Mode::WrongNonce,
    ] {
        fake.set_mode(mode);
        let (_, challenge) = pkce();
        let upstream = approve(&h, &client, &challenge).await;
        let callback = provider(&h, &upstream).await;
        let response = h.browse(&callback).await;
        assert_eq!(response.status(), 502, "{mode:?}");
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("could not be verified"), "{mode:?}: {page}");
    }
    // The unknown key cost one JWK Set refetch at most (cool-down), not one per token.
    assert!(fake.jwks_hits.load(Ordering::SeqCst) <= 2);
    // A good token still works afterwards.
    fake.set_mode(Mode::Good);
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    assert!(client_response(&h.browse(&callback).await).contains_key("code"));
}

#[tokio::test]
async fn wrong_replayed_unbound_or_expired_state_gets_an_error_page() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let login = oidc(&fake).build().unwrap();
    let h = start(|b| b.login(login).clock(clock.clone())).await;
    let client = h.register_public(REDIRECT).await;

    // Wrong state.
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let code = query_of(&callback)["code"].clone();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged");
    let response = h.browse(forged.as_str()).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("already used, has expired, or did not start here")
    );
    let response = h.browse(&h.url("/login/callback?code=x")).await;
    assert_eq!(response.status(), 400);

    // Replayed: the first use works, the second is refused.
    assert!(client_response(&h.browse(&callback).await).contains_key("code"));
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());

    // A browser with no session yet (the one above is signed in now, so it would not go
    // upstream again).
    h.cookies.lock().unwrap().clear();
    // Another browser (no binding cookie): refused, and the sign-in is gone.
    let fresh = h.register_public(REDIRECT).await;
    let upstream = approve(&h, &fresh, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let response = h.http.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(h.browse(&callback).await.status(), 400);

    // Expired: ten minutes and a second.
    let third = h.register_public(REDIRECT).await;
    let upstream = approve(&h, &third, &challenge).await;
    let callback = provider(&h, &upstream).await;
    clock.advance(Duration::from_secs(601));
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn access_denied_at_the_provider_reaches_the_client_with_its_state_and_our_iss() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    let client = h.register_public(REDIRECT).await;
    fake.set_mode(Mode::Deny);
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    assert!(callback.contains("error=access_denied"));
    let answer = client_response(&h.browse(&callback).await);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "xyz-state");
    assert_eq!(answer["iss"], h.base);
    assert!(!answer.contains_key("code"));
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_provider_down_at_start_gives_503_keeps_the_request_and_the_server_serving() {
    // A port nobody listens on yet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let login = OidcLogin::builder(format!("http://{addr}"), CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .provider_name("Fake IdP")
        .build()
        .unwrap();
    let h = harness(login).await;
    let client = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client, REDIRECT, &challenge, "mcp:tools"));
    let page = h.browse(&url).await.text().await.unwrap();
    let response = h.submit(&page, &[("decision", "approve")]).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("location").is_none());
    let again = response.text().await.unwrap();
    assert!(
        again.contains("Fake IdP cannot be reached right now"),
        "{again}"
    );
    // The server keeps serving others.
    let metadata = h
        .http
        .get(h.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    // Nothing lost: once the provider is up, the same page's form goes on.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (fake, _task) = fake_idp::start_on(Some(listener)).await;
    let response = h.submit(&again, &[("decision", "approve")]).await;
    assert_eq!(response.status(), 303);
    let upstream = response.headers()["location"].to_str().unwrap().to_owned();
    let callback = provider(&h, &upstream).await;
    let answer = client_response(&h.browse(&callback).await);
    let response = h
        .exchange(&client, &answer["code"], REDIRECT, &verifier)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_provider_down_mid_flow_gives_503_and_no_code() {
    let (fake, task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    // The token endpoint answers 503.
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    fake.set_mode(Mode::Down);
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 503);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Fake IdP cannot be reached right now")
    );
    // The provider is gone entirely.
    fake.set_mode(Mode::Good);
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    task.abort();
    let _ = task.await;
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("location").is_none());
    // Others are still served.
    let metadata = h
        .http
        .get(h.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
}

#[tokio::test]
async fn oversize_and_slow_provider_answers_are_bounded() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let login = oidc(&fake)
        .http_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let h = harness(login).await;
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();

    fake.set_mode(Mode::Oversize);
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 502);

    fake.set_mode(Mode::Slow);
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let started = std::time::Instant::now();
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(2800),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_admission_rule_refuses_the_user_with_a_page_that_says_why() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let login = oidc(&fake)
        .allow_email_domains(["example.org"])
        .build()
        .unwrap();
    let h = harness(login).await;
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let response = h.browse(&callback).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Sign-ins here are limited to accounts at example.org."),
        "{page}"
    );

    // A verified address in the domain is admitted; an unverified one is not.
    *fake.email.lock().unwrap() = ("someone@example.org".into(), false);
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let page = h.browse(&callback).await.text().await.unwrap();
    assert!(page.contains("no verified email address"), "{page}");
    *fake.email.lock().unwrap() = ("someone@example.org".into(), true);
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    assert!(client_response(&h.browse(&callback).await).contains_key("code"));
}

#[tokio::test]
async fn the_consent_page_can_be_denied_before_anything_goes_upstream() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client, REDIRECT, &challenge, "mcp:tools"));
    let page = h.browse(&url).await.text().await.unwrap();
    assert!(hidden_field(&page, "csrf").is_some());
    let answer = client_response(&h.submit(&page, &[("decision", "deny")]).await);
    assert_eq!(answer["error"], "access_denied");
    // Discovery was never even fetched: nothing went upstream.
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 0);
    assert_eq!(fake.jwks_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn oauth2_login_signs_in_a_github_style_user_by_its_user_info() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let i = &fake.issuer;
    let login = OAuth2Login::builder(
        format!("{i}/authorize"),
        format!("{i}/token"),
        format!("{i}/userinfo"),
        CLIENT_ID,
    )
    .client_secret(CLIENT_SECRET)
    .client_auth_method(mcp_auth_server::login::ClientAuthMethod::ClientSecretPost)
    .provider_name("Fake IdP")
    .scopes(["read:user"])
    .display_name_field("login")
    .build()
    .unwrap();
    let h = start(|b| b.login(login.clone())).await;
    let client = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    assert!(!upstream.contains("nonce="));
    // What a tool calls with the user's upstream token.
    let info = login
        .user_info(&mcp_auth_core::Secret::new("upstream-access-1"))
        .await
        .unwrap();
    assert_eq!(info["login"], "octo-fake");
    let callback = provider(&h, &upstream).await;
    let answer = client_response(&h.browse(&callback).await);
    let response = h
        .exchange(&client, &answer["code"], REDIRECT, &verifier)
        .await;
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
    assert_eq!(me["sub"], format!("{i}#12345"));
    let _ = Arc::clone(&fake);
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_as_a_mix_up() {
    let (fake, _task) = fake_idp::start_on(None).await;
    let h = harness(oidc(&fake).build().unwrap()).await;
    let client = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    // RFC 9207: the response names another provider.
    let response = h
        .browse(&format!("{callback}&iss=https%3A%2F%2Fevil.example"))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    // And the state is spent.
    assert_eq!(h.browse(&callback).await.status(), 400);
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 0);
    // The right issuer is accepted.
    let upstream = approve(&h, &client, &challenge).await;
    let callback = provider(&h, &upstream).await;
    let with_iss = format!(
        "{callback}&iss={}",
        url::form_urlencoded::byte_serialize(fake.issuer.as_bytes()).collect::<String>()
    );
    assert!(client_response(&h.browse(&with_iss).await).contains_key("code"));
}
