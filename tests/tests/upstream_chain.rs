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
//! The provider, the demo and the browser are in `support/upstream.rs` (shared with
//! `upstream_chain_sdk.rs`, the same chain with the official TypeScript SDK as the client).
//!
//! Needs Node >= 22 and the npm packages; without them the test prints that it was skipped,
//! unless `CI` or `MCP_AUTH_REQUIRE_NODE=1` (set by `cargo xtask test`) make it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use mcp_auth_client::TokenManager;
use serde_json::Map;
use support::{
    client, tool_json,
    upstream::{Browser, Chain, USER},
};

const TEST: &str = "upstream_chain";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_client_signs_in_upstream_reads_the_profile_survives_expiry_and_signs_in_again() {
    let Some(chain) = Chain::start(TEST).await else {
        return;
    };
    let url = chain.url.clone();
    let idp = &chain.idp;
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
    let subject = chain.subject();
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], subject);

    // 2. The provider's userinfo for alice, with the upstream token kept at sign-in.
    let profile = tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(profile["sub"], USER, "{profile}");
    assert_eq!(profile["email"], "alice@example.com", "{profile}");
    assert_eq!(profile["name"], "Alice Example", "{profile}");
    let at_sign_in = chain
        .stored()
        .await
        .expect("the sign-in kept the upstream tokens");
    tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(
        chain.stored().await.as_ref(),
        Some(&at_sign_in),
        "fresh: no refresh"
    );
    let first_upstream = chain.upstream_access_token().await;

    // 3. The upstream access token expires: the vault refreshes it at the provider; the MCP
    //    client sees an ordinary answer (same MCP token, no 401, no new authorization).
    let mcp_token = manager.cached_token().await.unwrap().unwrap();
    let (authorizations, tokens) = (
        chain.count("GET", "/authorize", None),
        chain.count("POST", "/token", None),
    );
    assert_eq!(
        chain.count("POST", "/mcp", Some(401)),
        1,
        "the first request only"
    );
    chain.expire_upstream();
    let profile = tool_json(&mcp.call_tool("upstream_profile", Map::new()).await.unwrap());
    assert_eq!(profile["sub"], USER, "{profile}");
    let refreshed = chain.stored().await.expect("kept");
    assert_ne!(refreshed, at_sign_in, "the refreshed tokens were stored");
    let second_upstream = chain.upstream_access_token().await;
    assert_ne!(second_upstream.expose(), first_upstream.expose());
    assert_eq!(
        manager.cached_token().await.unwrap().unwrap().expose(),
        mcp_token.expose()
    );
    assert_eq!(chain.count("POST", "/mcp", Some(401)), 1);
    assert_eq!(chain.count("GET", "/authorize", None), authorizations);
    assert_eq!(chain.count("POST", "/token", None), tokens);
    assert_eq!(seen.runs.load(Ordering::SeqCst), 1);

    // 4. The user's grant is revoked at the provider: revoking the access token there revokes
    //    the grant's tokens, the refresh token included (oidc-provider's revocation endpoint).
    idp.revoke(second_upstream.expose()).await;
    // ...and the access token expires: the refresh is refused, the tool call fails.
    chain.expire_upstream();
    let failed = mcp.call_tool("upstream_profile", Map::new()).await;
    let message = match failed {
        Err(error) => format!("{error:?}"),
        Ok(result) => panic!("upstream_profile should fail: {result}"),
    };
    assert!(message.contains("sign in again"), "{message}");
    assert_eq!(
        chain.stored().await,
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
        chain.count("POST", "/mcp", Some(401)),
        2,
        "{:#?}",
        chain.log.lock().unwrap()
    );
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2, "the browser ran again");
    // Through our consent page and the provider again: the user's session here ended with the
    // grant (a session would have approved at once, with no upstream tokens to keep).
    assert_eq!(seen.consent_pages.lock().unwrap().len(), 2);
    assert_eq!(chain.count("GET", "/login/callback", None), 2);
    assert!(chain.stored().await.is_some(), "new upstream tokens kept");
    let me = tool_json(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(me["subject"], subject);
    assert_ne!(
        manager.cached_token().await.unwrap().unwrap().expose(),
        mcp_token.expose()
    );

    mcp.close().await.unwrap();
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_upstream_oidc_the_profile_tool_says_how_to_enable_it() {
    let demo = support::Demo::start("127.0.0.1:0", |_| {}).await;
    let manager = TokenManager::builder(&demo.url)
        .client_name("upstream chain e2e")
        .allow_insecure_loopback(true)
        .browser(mcp_auth_client::HeadlessBrowser::new())
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
