//! The whole authorization flow over real HTTP on loopback: discovery → registration →
//! authorize (through the real login and consent page, walked by hand like a browser) → token →
//! the token accepted by `mcp-auth-resource` (keys discovered from this server) → refresh →
//! rotation reuse detection → revoke → introspect; and every error path of the endpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    missing_docs
)]

mod common;

use std::sync::Arc;

use common::{Harness, pkce, query_of, start};
use mcp_auth_server::MachineClient;
use mcp_auth_server::login::HeadlessLogin;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn tokens(h: &Harness, client_id: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = h.authorize(client_id, REDIRECT, &challenge, scope).await;
    let response = h.exchange(client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn discovery_documents_are_consistent_and_advertise_s256_and_cimd() {
    let h = start(|b| b).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let m: Value = response.json().await.unwrap();
        assert_eq!(
            m["issuer"],
            h.base.as_str(),
            "AS-4: issuer identical to the URL's"
        );
        assert_eq!(m["authorization_endpoint"], h.url("/authorize"));
        assert_eq!(m["token_endpoint"], h.url("/token"));
        assert_eq!(m["registration_endpoint"], h.url("/register"));
        assert_eq!(m["revocation_endpoint"], h.url("/revoke"));
        assert_eq!(m["introspection_endpoint"], h.url("/introspect"));
        assert_eq!(m["jwks_uri"], h.url("/jwks.json"));
        assert_eq!(
            m["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            m["client_id_metadata_document_supported"],
            cfg!(feature = "cimd")
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            m["scopes_supported"],
            serde_json::json!(["mcp:tools", "notes:read"])
        );
        let grants: Vec<&str> = m["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(grants.contains(&"authorization_code") && grants.contains(&"refresh_token"));
        assert!(!grants.contains(&"implicit") && !grants.contains(&"password"));
    }
    let oidc: Value = h
        .http
        .get(h.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    let jwks: Value = h
        .http
        .get(h.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    assert!(jwks["keys"][0].get("d").is_none(), "no private material");
}

#[tokio::test]
async fn issuer_with_a_path_serves_all_three_metadata_urls_and_nothing_at_the_root() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/tenant1");
    let server = mcp_auth_server::AuthorizationServer::builder(&issuer)
        .resource(format!("{origin}/mcp"))
        .build()
        .await
        .unwrap();
    let app: axum::Router = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    ] {
        let m: Value = http
            .get(format!("{origin}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["issuer"], issuer.as_str(), "{path}");
        assert_eq!(m["token_endpoint"], format!("{issuer}/token"));
    }
    let root = http
        .get(format!("{origin}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 404);
}

#[tokio::test]
async fn full_flow_register_authorize_token_resource_refresh_reuse_revoke_introspect() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;

    // Authorize through the page: login + approve.
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools notes:read")
        .await;
    let response = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let t: Value = response.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "mcp:tools notes:read");
    assert!(t["expires_in"].as_u64().unwrap() > 0);
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();

    // The resource server (mcp-auth-resource, keys discovered from this AS) accepts it.
    let r = h.call_mcp(&access).await;
    assert_eq!(r.status(), 200);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["sub"], common::USER);
    assert_eq!(who["client_id"], client_id.as_str());

    // Introspection agrees.
    let i = h.introspect(&access).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], common::USER);
    assert_eq!(i["aud"], h.resource.as_str());
    assert_eq!(i["scope"], "mcp:tools notes:read");

    // Refresh: rotated, narrowed scope allowed, resource honoured.
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh),
            ("scope", "mcp:tools"),
            ("resource", &h.resource),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let t2: Value = response.json().await.unwrap();
    assert_eq!(t2["scope"], "mcp:tools");
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(
        h.call_mcp(t2["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The successor still carries the original scope (RFC 6749 §6): widening back is allowed.
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh2),
            ("scope", "mcp:tools notes:read"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let t3: Value = response.json().await.unwrap();
    let refresh3 = t3["refresh_token"].as_str().unwrap().to_owned();
    let access3 = t3["access_token"].as_str().unwrap().to_owned();

    // Reuse of a rotated token revokes the whole family, including the newest token.
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh),
        ])
        .await;
    assert_eq!(response.status(), 400);
    let e: Value = response.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh3),
        ])
        .await;
    assert_eq!(response.status(), 400, "the family is revoked");
    assert_eq!(
        h.introspect(&access3).await,
        serde_json::json!({"active": false}),
        "the grant's access tokens too"
    );
}

#[tokio::test]
async fn revoke_refresh_token_kills_the_grant_and_access_token_revocation_shows_at_introspection() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let t = tokens(&h, &client_id, "mcp:tools").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();

    // Access token revocation.
    let r = h
        .http
        .post(h.url("/revoke"))
        .form(&[
            ("token", access),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.introspect(access).await["active"], false);

    // Refresh token revocation: the family is gone.
    let r = h
        .http
        .post(h.url("/revoke"))
        .form(&[("token", refresh), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", refresh),
        ])
        .await;
    assert_eq!(response.status(), 400);

    // Unknown tokens: still 200 (RFC 7009 §2.2).
    let r = h
        .http
        .post(h.url("/revoke"))
        .form(&[("token", "nonsense"), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Another client cannot revoke this client's token.
    let other = h.register_public(REDIRECT).await;
    let t = tokens(&h, &client_id, "mcp:tools").await;
    let r = h
        .http
        .post(h.url("/revoke"))
        .form(&[
            ("token", t["refresh_token"].as_str().unwrap()),
            ("client_id", other.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(response.status(), 200, "still valid");
}

#[tokio::test]
async fn introspection_requires_credentials_and_reports_refresh_tokens_inactive() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let t = tokens(&h, &client_id, "mcp:tools").await;
    let r = h
        .http
        .post(h.url("/introspect"))
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .post(h.url("/introspect"))
        .basic_auth(common::INTROSPECT_ID, Some("wrong"))
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        h.introspect(t["refresh_token"].as_str().unwrap()).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        h.introspect("garbage").await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn consent_is_remembered_per_user_client_and_scope_set() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    h.authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;

    // Same scopes: no page, straight back with a code (the session cookie knows the user).
    let url = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools"));
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 303);
    assert!(query_of(r.headers()["location"].to_str().unwrap()).contains_key("code"));

    // A wider scope set asks again (incremental consent), without asking for the password.
    let url = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools notes:write"));
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("notes:write"));
    assert!(!page.contains("name=\"password\""));
}

#[tokio::test]
async fn consent_page_is_protected_against_framing_and_csrf() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools"));
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("Test Client"));
    assert!(page.contains("127.0.0.1"), "the redirect host is shown");

    // Wrong CSRF token.
    let tx = common::hidden_field(&page, "transaction").unwrap();
    let forged = h
        .http
        .post(h.url("/authorize"))
        .header(
            "cookie",
            format!(
                "mcp-auth-browser={}",
                h.cookies.lock().unwrap()["mcp-auth-browser"]
            ),
        )
        .form(&[
            ("transaction", tx.as_str()),
            ("csrf", "forged"),
            ("username", common::USER),
            ("password", common::PASSWORD),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Right CSRF token, but another browser (no binding cookie).
    let csrf = common::hidden_field(&page, "csrf").unwrap();
    let other_browser = h
        .http
        .post(h.url("/authorize"))
        .form(&[
            ("transaction", tx.as_str()),
            ("csrf", csrf.as_str()),
            ("username", common::USER),
            ("password", common::PASSWORD),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other_browser.status(), 403);
    // Wrong password: the page again with an error, the transaction still usable.
    let r = h
        .submit(
            &page,
            &[
                ("username", common::USER),
                ("password", "nope"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let again = r.text().await.unwrap();
    assert!(again.contains("Wrong username or password"));
    let r = h
        .submit(
            &again,
            &[
                ("username", common::USER),
                ("password", common::PASSWORD),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state_and_iss() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let r = h
        .browse(&h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools")))
        .await;
    let page = r.text().await.unwrap();
    let r = h.submit(&page, &[("decision", "deny")]).await;
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz-state");
    assert_eq!(q["iss"], h.base);
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_are_shown_never_redirected() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "unknown client",
            vec![
                ("response_type", "code"),
                ("client_id", "no-such-client"),
                ("redirect_uri", REDIRECT),
            ],
        ),
        (
            "missing client",
            vec![("response_type", "code"), ("redirect_uri", REDIRECT)],
        ),
        (
            "redirect mismatch",
            vec![
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        ),
        (
            "path mismatch",
            vec![
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", "http://127.0.0.1:9/callback/x"),
            ],
        ),
        (
            "duplicate client_id",
            vec![
                ("client_id", &client_id),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
            ],
        ),
    ];
    for (name, params) in cases {
        let mut p = params.clone();
        p.push(("code_challenge", &challenge));
        p.push(("code_challenge_method", "S256"));
        let r = h.browse(&h.authorize_url(&p)).await;
        assert_eq!(r.status(), 400, "{name}");
        assert!(r.headers().get("location").is_none(), "{name}: no redirect");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn loopback_redirects_match_on_any_port_but_nothing_else() {
    let h = start(|b| b).await;
    let client_id = h.register_public("http://127.0.0.1/callback").await;
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(
            &client_id,
            "http://127.0.0.1:53123/callback",
            &challenge,
            "mcp:tools",
        )
        .await;
    let r = h
        .exchange(
            &client_id,
            &code,
            "http://127.0.0.1:53123/callback",
            &verifier,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = h
        .browse(&h.authorize_url(&h.params(
            &client_id,
            "http://127.0.0.1:53123/other",
            &challenge,
            "mcp:tools",
        )))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_to_the_client() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let base = |extra: &[(&'static str, &'static str)], drop: &[&str]| {
        let mut p: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.clone()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_challenge".into(), challenge.clone()),
            ("code_challenge_method".into(), "S256".into()),
            ("state".into(), "s1".into()),
            ("resource".into(), h.resource.clone()),
        ];
        p.retain(|(k, _)| !drop.contains(&k.as_str()) && !extra.iter().any(|(e, _)| e == k));
        p.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        p
    };
    let cases: Vec<(&str, Vec<(String, String)>, &str)> = vec![
        (
            "implicit",
            base(&[("response_type", "token")], &[]),
            "unsupported_response_type",
        ),
        (
            "no response_type",
            base(&[], &["response_type"]),
            "invalid_request",
        ),
        (
            "no PKCE",
            base(&[], &["code_challenge", "code_challenge_method"]),
            "invalid_request",
        ),
        (
            "PKCE plain downgrade",
            base(&[("code_challenge_method", "plain")], &[]),
            "invalid_request",
        ),
        (
            "PKCE method omitted (defaults to plain)",
            base(&[], &["code_challenge_method"]),
            "invalid_request",
        ),
        (
            "short challenge",
            base(&[("code_challenge", "abc")], &[]),
            "invalid_request",
        ),
        (
            "bad resource",
            base(&[("resource", "https://other.example/mcp")], &[]),
            "invalid_target",
        ),
        (
            "unknown scope",
            base(&[("scope", "mcp:tools root")], &[]),
            "invalid_scope",
        ),
    ];
    for (name, params, error) in cases {
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = h.browse(&h.authorize_url(&pairs)).await;
        assert_eq!(r.status(), 303, "{name}");
        let location = r.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(REDIRECT), "{name}");
        let q = query_of(location);
        assert_eq!(q["error"], error, "{name}");
        assert_eq!(q["state"], "s1", "{name}");
        assert_eq!(q["iss"], h.base, "{name}");
    }
}

#[tokio::test]
async fn token_endpoint_error_paths() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();

    // Wrong verifier.
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let r = h.exchange(&client_id, &code, REDIRECT, &pkce().0).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert!(r_no_store(&h, &client_id).await);

    // Missing verifier.
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(r.status(), 400);

    // redirect_uri differs from the authorization request.
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let r = h
        .exchange(&client_id, &code, "http://127.0.0.1:10/callback", &verifier)
        .await;
    assert_eq!(r.status(), 400);

    // Code issued to another client.
    let other = h.register_public(REDIRECT).await;
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let r = h.exchange(&other, &code, REDIRECT, &verifier).await;
    assert_eq!(r.status(), 400);

    // Unknown client, unsupported grants, duplicates, wrong content type.
    let r = h.exchange("nobody", "x", REDIRECT, &verifier).await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
    let r = h
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", "a"),
            ("password", "b"),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    let r = h
        .token(&[("grant_type", "implicit"), ("client_id", &client_id)])
        .await;
    assert_eq!(r.status(), 400);
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_request");
    let r = h
        .http
        .post(h.url("/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = h.http.get(h.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // client_credentials is off unless the deployment turns it on.
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");

    // Refresh may not widen.
    let t = tokens(&h, &client_id, "mcp:tools").await;
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "mcp:tools mcp:admin"),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_scope");
    // Refresh by another client: refused, and the token still works for its owner.
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &other),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("resource", "https://other.example/mcp"),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_target");
}

async fn r_no_store(h: &Harness, client_id: &str) -> bool {
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", "x"),
            ("code_verifier", &pkce().0),
        ])
        .await;
    r.headers()
        .get("cache-control")
        .is_some_and(|v| v == "no-store")
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let first = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(first.status(), 200);
    let t: Value = first.json().await.unwrap();
    let replay = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(replay.status(), 400);
    let e: Value = replay.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    // The grant is gone: refresh fails, introspection says inactive.
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        h.introspect(t["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

#[tokio::test]
async fn a_replay_with_a_wrong_verifier_does_not_revoke() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let t: Value = h
        .exchange(&client_id, &code, REDIRECT, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let replay = h.exchange(&client_id, &code, REDIRECT, &pkce().0).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(
        h.introspect(t["access_token"].as_str().unwrap()).await["active"],
        true,
        "AS-25 DoS guard"
    );
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_exactly_one_succeeds() {
    let h = Arc::new(start(|b| b).await);
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (h, client_id, code, verifier) =
            (h.clone(), client_id.clone(), code.clone(), verifier.clone());
        tasks.push(tokio::spawn(async move {
            h.exchange(&client_id, &code, REDIRECT, &verifier)
                .await
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn expired_codes_are_refused() {
    use mcp_auth_core::Clock as _;
    let clock = mcp_auth_core::ManualClock::new(mcp_auth_core::SystemClock::default().now());
    let c2 = clock.clone();
    let h = start(move |b| b.clock(c2)).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    clock.advance(std::time::Duration::from_secs(61));
    let r = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn confidential_clients_authenticate_with_their_registered_method() {
    let (id, secret) = (
        "machine-basic",
        "a-machine-secret-of-at-least-32-characters",
    );
    let h = start(|b| {
        b.client_credentials(true).machine_client(
            MachineClient::new(id, mcp_auth_core::Secret::new(secret)).scopes(["mcp:tools"]),
        )
    })
    .await;
    let (id, secret) = (id.to_owned(), secret.to_owned());

    // client_credentials with Basic.
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools"),
            ("resource", &h.resource),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert!(t.get("refresh_token").is_none());
    assert_eq!(
        h.call_mcp(t["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Wrong secret with Basic: 401 + WWW-Authenticate.
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(&id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // The registered method is Basic: the body form is refused.
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(r.status(), 401);
    // No authentication at all.
    let r = h
        .token(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .await;
    assert_eq!(r.status(), 401);
    // Two methods at once.
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Authorization code + refresh with client_secret_post.
    let (id, secret) = h
        .register_confidential(
            REDIRECT,
            "client_secret_post",
            &["authorization_code", "refresh_token"],
        )
        .await;
    let (verifier, challenge) = pkce();
    let code = h.authorize(&id, REDIRECT, &challenge, "mcp:tools").await;
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 200);
    // This client did not register client_credentials.
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized_client");
}

#[tokio::test]
async fn headless_login_approves_at_once_on_loopback() {
    let h = start(|b| b.login(HeadlessLogin::new("demo-user"))).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let r = h
        .browse(&h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools")))
        .await;
    assert_eq!(r.status(), 303);
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let t: Value = h
        .exchange(&client_id, &code, REDIRECT, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let who: Value = h
        .call_mcp(t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(who["sub"], "demo-user");
}

#[tokio::test]
async fn headless_login_refuses_a_non_loopback_issuer() {
    let e = mcp_auth_server::AuthorizationServer::builder("https://mcp.example.com")
        .resource("https://mcp.example.com/mcp")
        .login(HeadlessLogin::new("demo"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, mcp_auth_server::ConfigError::HeadlessNotLoopback(_)),
        "{e}"
    );
}

#[tokio::test]
async fn builder_rejects_bad_configuration() {
    use mcp_auth_server::{AuthorizationServer, ConfigError};
    let e = AuthorizationServer::builder("http://mcp.example.com")
        .resource("https://mcp.example.com/mcp")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidIssuer(_)));
    let e = AuthorizationServer::builder("https://mcp.example.com?x=1")
        .resource("https://mcp.example.com/mcp")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidIssuer(_)));
    let e = AuthorizationServer::builder("https://mcp.example.com")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::NoResource));
    let e = AuthorizationServer::builder("https://mcp.example.com")
        .resource("https://mcp.example.com/mcp")
        .scopes(["bad scope\""])
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidScope(_)));
    let e = AuthorizationServer::builder("https://mcp.example.com")
        .resource("https://mcp.example.com/mcp")
        .code_ttl(std::time::Duration::from_secs(3600))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidLifetime(_)));
}

#[tokio::test]
async fn a_request_without_resource_gets_the_default_audience_or_invalid_target() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let mut p = h.params(&client_id, REDIRECT, &challenge, "mcp:tools");
    p.retain(|(k, _)| *k != "resource");
    let page = h.browse(&h.authorize_url(&p)).await.text().await.unwrap();
    let r = h
        .submit(
            &page,
            &[
                ("username", common::USER),
                ("password", common::PASSWORD),
                ("decision", "approve"),
            ],
        )
        .await;
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let t: Value = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        h.introspect(t["access_token"].as_str().unwrap()).await["aud"],
        h.resource.as_str()
    );

    let strict = start(|b| b.default_resource(None)).await;
    let client_id = strict.register_public(REDIRECT).await;
    let mut p = strict.params(&client_id, REDIRECT, &challenge, "mcp:tools");
    p.retain(|(k, _)| *k != "resource");
    let r = strict.browse(&strict.authorize_url(&p)).await;
    assert_eq!(
        query_of(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_target"
    );
}

/// Serve documents on loopback: path → body.
#[cfg(feature = "cimd")]
async fn serve_docs(docs: Vec<(&'static str, String)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut app = axum::Router::new();
    for (path, body) in docs {
        let body = body.replace("{base}", &base);
        app = app.route(
            path,
            axum::routing::get(
                move || async move { ([("content-type", "application/json")], body) },
            ),
        );
    }
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[cfg(feature = "cimd")]
fn cimd_document(path: &str) -> String {
    serde_json::json!({
        "client_id": format!("{{base}}{path}"),
        "client_name": "Metadata Document Client",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

#[cfg(feature = "cimd")]
#[tokio::test]
async fn a_client_id_metadata_document_client_completes_the_flow() {
    let docs = serve_docs(vec![
        ("/client.json", cimd_document("/client.json")),
        (
            "/huge.json",
            format!(
                "{{\"client_id\":\"{{base}}/huge.json\",\"pad\":\"{}\"}}",
                "x".repeat(6000)
            ),
        ),
    ])
    .await;
    let mut cimd = mcp_auth_server::cimd::CimdConfig::default();
    cimd.allow_loopback = true;
    let h = start(move |b| b.client_id_metadata_documents(Some(cimd))).await;
    let client_id = format!("{docs}/client.json");
    let redirect = "http://127.0.0.1:47001/callback";
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(&client_id, redirect, &challenge, "mcp:tools")
        .await;
    let response = h.exchange(&client_id, &code, redirect, &verifier).await;
    assert_eq!(response.status(), 200);
    let t: Value = response.json().await.unwrap();
    let who: Value = h
        .call_mcp(t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(who["client_id"], client_id.as_str());
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 200);

    // An oversize document: an error page, no redirect.
    let (_, challenge) = pkce();
    let huge = format!("{docs}/huge.json");
    let r = h
        .browse(&h.authorize_url(&h.params(&huge, redirect, &challenge, "mcp:tools")))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[cfg(feature = "cimd")]
#[tokio::test]
async fn a_metadata_document_on_a_private_address_is_refused_by_default() {
    let docs = serve_docs(vec![("/client.json", cimd_document("/client.json"))]).await;
    let h = start(|b| b).await; // CIMD on, loopback fetches off (the default)
    let (_, challenge) = pkce();
    let client_id = format!("{docs}/client.json");
    let r = h
        .browse(&h.authorize_url(&h.params(
            &client_id,
            "http://127.0.0.1:47001/callback",
            &challenge,
            "mcp:tools",
        )))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // An https URL that resolves to loopback is refused after DNS resolution, too.
    let r = h
        .browse(&h.authorize_url(&h.params(
            "https://localhost:1/client.json",
            "http://127.0.0.1:47001/callback",
            &challenge,
            "mcp:tools",
        )))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn open_registration_is_rate_limited() {
    let h = start(|b| b.registrations_per_minute(2)).await;
    h.register_public(REDIRECT).await;
    h.register_public(REDIRECT).await;
    let r = h
        .http
        .post(h.url("/register"))
        .json(
            &serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The seconds left in the one-minute window, from the count that refused the request.
    let retry = common::retry_after(&r);
    assert!((1..=60).contains(&retry), "{retry}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_username_for_a_while() {
    let h = start(|b| b.failed_logins_per_user(2)).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_, challenge) = pkce();
    let page = h
        .browse(&h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools")))
        .await
        .text()
        .await
        .unwrap();
    let mut page = page;
    for _ in 0..2 {
        let r = h
            .submit(
                &page,
                &[
                    ("username", common::USER),
                    ("password", "wrong"),
                    ("decision", "approve"),
                ],
            )
            .await;
        page = r.text().await.unwrap();
        assert!(page.contains("Wrong username or password"));
    }
    // Even the right password is refused now.
    let r = h
        .submit(
            &page,
            &[
                ("username", common::USER),
                ("password", common::PASSWORD),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
}
