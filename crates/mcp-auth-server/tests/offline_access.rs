//! Refresh tokens and the OpenID Connect `offline_access` scope (MCP 2026-07-28, SEP-2207) over
//! real HTTP on loopback: refresh tokens go to clients registered for the `refresh_token` grant
//! without `offline_access`; `offline_access` is advertised, and accepted, only when configured.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Harness, pkce, query_of, start};
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::ConfigError;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The whole flow for a public client; the token response.
async fn tokens(h: &Harness, client_id: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = h.authorize(client_id, REDIRECT, &challenge, scope).await;
    let response = h.exchange(client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `scopes_supported` of both discovery documents.
async fn scopes_supported(h: &Harness) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m: Value = h
            .http
            .get(h.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.push(m["scopes_supported"].clone());
    }
    all
}

async fn refresh(h: &Harness, client_id: &str, token: &str) -> reqwest::Response {
    h.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", token),
    ])
    .await
}

#[tokio::test]
async fn offline_access_is_advertised_only_when_configured() {
    let off = start(|b| b).await;
    for scopes in scopes_supported(&off).await {
        assert_eq!(scopes, json!(["mcp:tools", "notes:read"]));
    }
    assert!(
        !off.server
            .metadata()
            .scopes_supported
            .iter()
            .any(|s| s == "offline_access")
    );

    let on = start(|b| b.offline_access(true)).await;
    for scopes in scopes_supported(&on).await {
        assert_eq!(scopes, json!(["mcp:tools", "notes:read", "offline_access"]));
    }
    // Refresh tokens are advertised either way.
    let m = on.server.metadata();
    assert!(m.grant_types_supported.iter().any(|g| g == "refresh_token"));
}

#[tokio::test]
async fn a_refresh_token_is_issued_without_offline_access() {
    for configured in [false, true] {
        let h = start(|b| b.offline_access(configured)).await;
        let client_id = h.register_public(REDIRECT).await;
        let t = tokens(&h, &client_id, "mcp:tools").await;
        assert_eq!(t["scope"], "mcp:tools", "offline_access={configured}");
        let refresh_token = t["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("a refresh token, offline_access={configured}: {t}"));
        let response = refresh(&h, &client_id, refresh_token).await;
        assert_eq!(response.status(), 200);
        let next: Value = response.json().await.unwrap();
        assert!(next["refresh_token"].is_string());
        assert_eq!(next["scope"], "mcp:tools");
    }
}

#[tokio::test]
async fn offline_access_is_refused_as_an_unknown_scope_when_not_configured() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let params = h.params(&client_id, REDIRECT, &challenge, "mcp:tools offline_access");
    let response = h.browse(&h.authorize_url(&params)).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(location);
    assert_eq!(q["error"], "invalid_scope");
    assert_eq!(q["iss"], h.base);
}

#[tokio::test]
async fn offline_access_is_accepted_when_configured() {
    let h = start(|b| b.offline_access(true)).await;
    let client_id = h.register_public(REDIRECT).await;
    let t = tokens(&h, &client_id, "mcp:tools offline_access").await;
    assert!(t["refresh_token"].is_string(), "{t}");
    let granted: Vec<&str> = t["scope"].as_str().unwrap().split(' ').collect();
    assert!(granted.contains(&"mcp:tools"), "{t}");
    assert!(granted.contains(&"offline_access"), "{t}");
    // The resource accepts the token; offline_access means nothing to it.
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(h.call_mcp(access).await.status(), 200);
    // A refresh may drop it.
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "mcp:tools"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let next: Value = response.json().await.unwrap();
    assert_eq!(next["scope"], "mcp:tools");
}

#[tokio::test]
async fn offline_access_does_not_give_a_refresh_token_to_a_client_not_registered_for_one() {
    let h = start(|b| b.offline_access(true)).await;
    let response = h
        .http
        .post(h.url("/register"))
        .json(&json!({
            "client_name": "No refresh",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "application_type": "native",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    let t = tokens(&h, client_id, "mcp:tools offline_access").await;
    assert!(t["access_token"].is_string());
    assert!(t.get("refresh_token").is_none(), "{t}");
}

#[tokio::test]
async fn offline_access_settings_are_checked_when_built() {
    let builder = || {
        AuthorizationServer::builder("http://127.0.0.1:1")
            .resource("http://127.0.0.1:1/mcp")
            .scopes(["mcp:tools"])
    };
    // It advertises refresh tokens: it needs them.
    let error = builder()
        .offline_access(true)
        .refresh_tokens(false)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, ConfigError::Invalid(_)), "{error}");
    // Advertised only through the setting.
    let error = builder()
        .scopes(["offline_access"])
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, ConfigError::Invalid(_)), "{error}");
    assert!(
        error.to_string().contains("offline_access(true)"),
        "{error}"
    );
    // Listed in scopes as well as turned on: advertised once.
    let server = builder()
        .scopes(["offline_access"])
        .offline_access(true)
        .build()
        .await
        .unwrap();
    assert_eq!(
        server.metadata().scopes_supported,
        ["mcp:tools", "offline_access"]
    );
    // Accepted but not advertised, when the operator wants to tolerate clients that send it.
    let server = builder()
        .unadvertised_scopes(["offline_access"])
        .build()
        .await
        .unwrap();
    assert_eq!(server.metadata().scopes_supported, ["mcp:tools"]);
}
