//! Regression tests for the hostile review (issue 21), over real HTTP on loopback: machine grants
//! are arranged by the operator and bounded by their allow list, several `resource` parameters
//! are `invalid_target`, failed client authentications are throttled, a loopback deployment
//! refuses foreign `Host` names (DNS rebinding), and every revocation reaches
//! [`Revocations`](mcp_auth_server::Revocations) at once and survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{INTROSPECT_ID, pkce, query_of, start, start_with_store};
use mcp_auth_core::Secret;
use mcp_auth_core::metadata::ClientMetadata;
use mcp_auth_core::revocation::RevocationList;
use mcp_auth_server::MachineClient;
use mcp_auth_server::store::{
    ClientAuthMethod, ClientRecord, ClientSource, SqliteStore, Store, TokenHash,
};
use serde_json::{Map, Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const MACHINE_ID: &str = "nightly-report";
const MACHINE_SECRET: &str = "nightly-report-secret-0123456789abcdef";

fn machine() -> MachineClient {
    MachineClient::new(MACHINE_ID, Secret::new(MACHINE_SECRET)).scopes(["notes:read"])
}

async fn machine_token(h: &common::Harness, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("grant_type", "client_credentials")];
    all.extend_from_slice(form);
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
        .form(&all)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn claims_of(token: &str) -> Map<String, Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_three_request_escalation_fails_at_registration_and_at_the_token_endpoint() {
    // Step 1 with the grant off (the default) and on: open registration never gets it.
    for allowed in [false, true] {
        let h = start(|b| b.client_credentials(allowed)).await;
        let r = h
            .http
            .post(h.url("/register"))
            .json(&json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata");
        let advertised: Value = h
            .http
            .get(h.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let grants = advertised["grant_types_supported"].as_array().unwrap();
        assert_eq!(
            grants.iter().any(|g| g == "client_credentials"),
            allowed,
            "{advertised}"
        );
    }

    // Step 2 for an operator-registered machine client without notes:admin / mcp:admin.
    let h = start(|b| b.client_credentials(true).machine_client(machine())).await;
    let resource = h.resource.clone();
    let (status, e) = machine_token(
        &h,
        &[("scope", "notes:admin mcp:admin"), ("resource", &resource)],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_scope")));
    for scope in ["mcp:admin", "notes:read mcp:tools", "notes:write"] {
        let (status, e) = machine_token(&h, &[("scope", scope), ("resource", &resource)]).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_scope")),
            "{scope}"
        );
    }

    // What it may have, it gets; no scope means its whole allow list, and no refresh token.
    for form in [vec![("scope", "notes:read")], vec![]] {
        let mut form = form;
        form.push(("resource", &resource));
        let (status, t) = machine_token(&h, &form).await;
        assert_eq!(status, 200, "{t}");
        assert_eq!(t["scope"], "notes:read");
        assert!(t.get("refresh_token").is_none());
        let claims = claims_of(t["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], "notes:read");
        assert_eq!(claims["sub"], MACHINE_ID);
        assert_eq!(claims["aud"], resource.as_str());
        let r = h.call_mcp(t["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
    }
    // Another resource than the deployment's: invalid_target.
    let (status, e) = machine_token(&h, &[("resource", "http://127.0.0.1:1/mcp")]).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_target")));
}

#[tokio::test]
async fn a_machine_client_restricted_to_a_resource_gets_tokens_only_for_it() {
    let other = "http://127.0.0.1:9/other";
    let h = start(|b| {
        b.resource(other)
            .client_credentials(true)
            .machine_client(machine().resource(other))
    })
    .await;
    let (status, t) = machine_token(&h, &[]).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        claims_of(t["access_token"].as_str().unwrap())["aud"],
        other,
        "no resource named: the client's own"
    );
    let resource = h.resource.clone();
    let (status, e) = machine_token(&h, &[("resource", &resource)]).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_target")));
}

#[tokio::test]
async fn operators_register_machine_clients_at_run_time_with_checks() {
    let h = start(|b| b.client_credentials(true)).await;
    let (status, e) = machine_token(&h, &[]).await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));

    h.server.register_machine_client(machine()).await.unwrap();
    let (status, t) = machine_token(&h, &[]).await;
    assert_eq!(status, 200, "{t}");
    let stored = h
        .server
        .store()
        .get_client(MACHINE_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.source, ClientSource::Static);
    assert_eq!(stored.machine_scope.as_deref(), Some("notes:read"));
    assert_ne!(stored.secret_hash, None);

    // No allow list, a short secret, a scope or resource the server does not serve: refused.
    for (client, want) in [
        (
            MachineClient::new("no-scopes", Secret::new(MACHINE_SECRET)),
            "scopes",
        ),
        (
            MachineClient::new("short", Secret::new("short-secret")).scopes(["mcp:tools"]),
            "32 characters",
        ),
        (
            MachineClient::new("x", Secret::new(MACHINE_SECRET)).scopes(["root"]),
            "root",
        ),
        (
            MachineClient::new("x", Secret::new(MACHINE_SECRET))
                .scopes(["mcp:tools"])
                .resource("https://elsewhere.example/mcp"),
            "elsewhere",
        ),
        (
            MachineClient::new(
                "https://evil.example/client.json",
                Secret::new(MACHINE_SECRET),
            )
            .scopes(["mcp:tools"]),
            "not a URL",
        ),
    ] {
        let error = h
            .server
            .register_machine_client(client)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(want), "{error} should mention {want}");
    }

    // offline_access is meaningless for a machine grant (no refresh token), even when the
    // server accepts it from users.
    let offline = start(|b| b.client_credentials(true).offline_access(true)).await;
    let error = offline
        .server
        .register_machine_client(machine().scopes(["offline_access"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("offline_access"), "{error}");

    // With the grant off, the operator is told so instead of registering a dead client.
    let off = start(|b| b).await;
    let error = off
        .server
        .register_machine_client(machine())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("client_credentials(true)"), "{error}");
    let built = mcp_auth_server::AuthorizationServer::builder("http://127.0.0.1:1")
        .resource("http://127.0.0.1:1/mcp")
        .scopes(["notes:read"])
        .machine_client(machine())
        .build()
        .await;
    assert!(built.is_err());
}

#[tokio::test]
async fn a_self_registered_client_that_lists_client_credentials_gets_no_machine_token() {
    // A record an older version stored: open registration, confidential, client_credentials.
    let h = start(|b| b.client_credentials(true)).await;
    let mut metadata = ClientMetadata::default();
    metadata.grant_types = vec!["client_credentials".into()];
    metadata.scope = Some("mcp:tools notes:read".into());
    let secret = "old-dynamic-client-secret-0123456789abcdef";
    h.server
        .store()
        .put_client(
            ClientRecord::confidential(
                "legacy",
                ClientAuthMethod::ClientSecretPost,
                TokenHash::of(secret),
                metadata,
                0,
            )
            .with_machine_scope("notes:read"),
        )
        .await
        .unwrap();
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "legacy"),
            ("client_secret", secret),
            ("scope", "mcp:tools"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized_client", "{e}");
}

#[tokio::test]
async fn user_grants_stay_within_the_scopes_the_server_knows_and_refresh_only_narrows() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_verifier, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools root"));
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_scope");
}

#[tokio::test]
async fn several_resource_parameters_are_invalid_target() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let (_verifier, challenge) = pkce();
    let mut params = h.params(&client_id, REDIRECT, &challenge, "mcp:tools");
    params.push(("resource", "http://127.0.0.1:9/other"));
    let r = h.browse(&h.authorize_url(&params)).await;
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_target");
    assert_eq!(q["state"], "xyz-state");

    let resource = h.resource.clone();
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", "whatever"),
            ("resource", &resource),
            ("resource", &resource),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_target");
}

#[tokio::test]
async fn failed_client_authentications_are_throttled_per_client_and_per_address() {
    let h = start(|b| {
        b.client_credentials(true)
            .machine_client(machine())
            .failed_client_auths(3)
    })
    .await;
    let wrong = |id: &'static str| {
        h.http
            .post(h.url("/token"))
            .basic_auth(id, Some("wrong-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(wrong(MACHINE_ID).await.unwrap().status(), 401);
    }
    // Now even the right secret waits: the id (and this address) are over the limit.
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry = common::retry_after(&r);
    assert!((1..=300).contains(&retry), "{retry}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "temporarily_unavailable");
    // The same address with another client id: throttled by address.
    assert_eq!(wrong("someone-else").await.unwrap().status(), 429);

    // Hostile client ids (huge, multi-byte, control characters) are counted, never a panic.
    let h = start(|b| b.failed_client_auths(100)).await;
    for id in [
        "é".repeat(5_000),
        "\u{1F600}".repeat(300),
        "a\u{0}b".to_owned(),
    ] {
        let r = h
            .http
            .post(h.url("/token"))
            .basic_auth(&id, Some("x"))
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{}", id.len());
    }

    // Introspection credentials are guessed no faster.
    let h = start(|b| b.failed_client_auths(2)).await;
    let introspect = |secret: &'static str| {
        h.http
            .post(h.url("/introspect"))
            .basic_auth(INTROSPECT_ID, Some(secret))
            .form(&[("token", "x")])
            .send()
    };
    assert_eq!(introspect("guess-1").await.unwrap().status(), 401);
    assert_eq!(introspect("guess-2").await.unwrap().status(), 401);
    assert_eq!(introspect("guess-3").await.unwrap().status(), 429);
    assert_eq!(
        introspect(common::INTROSPECT_SECRET)
            .await
            .unwrap()
            .status(),
        429
    );
    // /revoke shares the same counters.
    let r = h
        .http
        .post(h.url("/revoke"))
        .form(&[("client_id", "nobody"), ("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn a_loopback_deployment_refuses_foreign_host_names() {
    let h = start(|b| b).await;
    let port = h.base.rsplit(':').next().unwrap().to_owned();
    let client_id = h.register_public(REDIRECT).await;
    let (_verifier, challenge) = pkce();
    let authorize = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools"));
    for path in [
        "/.well-known/oauth-authorization-server".to_owned(),
        "/jwks.json".to_owned(),
        authorize.trim_start_matches(&h.base).to_owned(),
    ] {
        for host in [format!("evil.example:{port}"), "attacker.test".to_owned()] {
            let r = h
                .http
                .get(h.url(&path))
                .header("host", host.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path} with Host {host}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"], "invalid_request");
        }
        for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
            let r = h
                .http
                .get(h.url(&path))
                .header("host", host.as_str())
                .send()
                .await
                .unwrap();
            assert_ne!(r.status(), 403, "{path} with Host {host}");
        }
    }
    for (path, form) in [
        ("/token", vec![("grant_type", "client_credentials")]),
        ("/revoke", vec![("token", "x")]),
        ("/introspect", vec![("token", "x")]),
    ] {
        let r = h
            .http
            .post(h.url(path))
            .header("host", format!("rebound.example:{port}"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = h
        .http
        .post(h.url("/register"))
        .header("host", "rebound.example")
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Revocations reach the in-process list at once: `/revoke` of an access token and of a refresh
/// token (its grant), a replayed code, a reused refresh token; and a restart loads them.
#[tokio::test]
async fn every_revocation_reaches_the_in_process_list_and_survives_a_restart() {
    let db = common::TempDb::new("revocations");
    let path = &db.0;
    let store = SqliteStore::open(path).await.unwrap();
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let h = start_with_store(shared, |b| b).await;
    let list = h.server.revocations();
    let client_id = h.register_public(REDIRECT).await;

    let grant = |scope: &'static str| {
        let h = &h;
        let client_id = client_id.clone();
        async move {
            let (verifier, challenge) = pkce();
            let code = h.authorize(&client_id, REDIRECT, &challenge, scope).await;
            let r = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
            assert_eq!(r.status(), 200);
            let t: Value = r.json().await.unwrap();
            (code, verifier, t)
        }
    };
    let revoke = |token: String| {
        let h = &h;
        let client_id = client_id.clone();
        async move {
            let r = h
                .token_revoke(&[("client_id", client_id.as_str()), ("token", token.as_str())])
                .await;
            assert_eq!(r, 200);
        }
    };

    // 1. An access token by /revoke: that token only.
    let (_, _, first) = grant("mcp:tools").await;
    let first_access = first["access_token"].as_str().unwrap().to_owned();
    assert!(!list.is_revoked(&claims_of(&first_access)));
    assert_eq!(h.call_mcp(&first_access).await.status(), 200);
    revoke(first_access.clone()).await;
    assert!(list.is_revoked(&claims_of(&first_access)));

    // 2. A refresh token by /revoke: every access token of its grant.
    let (_, _, second) = grant("mcp:tools").await;
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    revoke(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert!(list.is_revoked(&claims_of(&second_access)));

    // 3. A replayed code revokes the grant it produced.
    let (code, verifier, third) = grant("mcp:tools").await;
    let third_access = third["access_token"].as_str().unwrap().to_owned();
    assert!(!list.is_revoked(&claims_of(&third_access)));
    let r = h.exchange(&client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(r.status(), 400);
    assert!(list.is_revoked(&claims_of(&third_access)));

    // 4. A reused refresh token revokes its family.
    let (_, _, fourth) = grant("mcp:tools").await;
    let fourth_access = fourth["access_token"].as_str().unwrap().to_owned();
    let refresh = fourth["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    let rotated: Value = h.token(&form).await.json().await.unwrap();
    assert!(!list.is_revoked(&claims_of(&fourth_access)));
    // Reuse after the successor was used (inside the grace window, a replay with the
    // successor unused would get another pair).
    let successor = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
    ];
    assert_eq!(h.token(&successor).await.status(), 200);
    assert_eq!(h.token(&form).await.status(), 400);
    assert!(list.is_revoked(&claims_of(&fourth_access)));

    // An untouched grant stays good.
    let (_, _, fifth) = grant("mcp:tools").await;
    let fifth_access = fifth["access_token"].as_str().unwrap().to_owned();
    assert!(!list.is_revoked(&claims_of(&fifth_access)));

    // A restart on the same database knows all of it.
    let again = mcp_auth_server::AuthorizationServer::builder(&h.base)
        .resource(&h.resource)
        .scopes(["mcp:tools"])
        .shared_store(Arc::new(store.clone()))
        .build()
        .await
        .unwrap();
    let reloaded = again.revocations();
    for token in [&first_access, &second_access, &third_access, &fourth_access] {
        assert!(reloaded.is_revoked(&claims_of(token)));
    }
    assert!(!reloaded.is_revoked(&claims_of(&fifth_access)));
    store.close().await;
}

/// One address cannot fill the store with authorization requests waiting for the user: after
/// `authorization_pages_per_address` pages in ten minutes, `GET /authorize` answers 429 with
/// `Retry-After` and stores nothing; the pages already given still work.
async fn authorization_pages_are_limited_per_address(h: common::Harness) {
    let client_id = h.register_public(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let url = h.authorize_url(&h.params(&client_id, REDIRECT, &challenge, "mcp:tools"));
    let mut pages = Vec::new();
    for _ in 0..3 {
        let r = h.browse(&url).await;
        assert_eq!(r.status(), 200, "a consent page");
        pages.push(r.text().await.unwrap());
    }
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        r.headers()["content-type"],
        "text/html; charset=utf-8",
        "an error page for the browser"
    );
    let retry = common::retry_after(&r);
    assert!((1..=600).contains(&retry), "{retry}");
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many"), "{page}");
    assert!(
        !page.contains("name=\"transaction\""),
        "no transaction for the refused request"
    );

    // The first page still completes the flow: the limit stops new transactions only.
    let r = h
        .submit(
            &pages[0],
            &[
                ("username", common::USER),
                ("password", common::PASSWORD),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
            ("resource", &h.resource),
        ])
        .await;
    assert_eq!(r.status(), 200);

    // Signed in, with consent remembered: answered at once, never counted.
    let r = h.browse(&url).await;
    assert_eq!(r.status(), 303, "remembered consent needs no page");
}

#[tokio::test]
async fn authorization_pages_are_limited_per_address_in_memory() {
    authorization_pages_are_limited_per_address(
        start(|b| b.authorization_pages_per_address(3)).await,
    )
    .await;
}

#[tokio::test]
async fn authorization_pages_are_limited_per_address_with_sqlite() {
    let db = common::TempDb::new("pages");
    let store = SqliteStore::open(&db.0).await.unwrap();
    authorization_pages_are_limited_per_address(
        start_with_store(Arc::new(store), |b| b.authorization_pages_per_address(3)).await,
    )
    .await;
}
