//! The client rules of MCP 2026-07-28 (SPEC-2026-07-28 N-11..N-16), each against real loopback
//! authorization servers: `application_type`, credentials that belong to one authorization server,
//! re-registration when the resource names another one, `offline_access` only when listed, CIMD
//! before DCR; and the grants without a browser: client credentials (extension E-1),
//! enterprise-managed authorization (E-2) and workload identity federation (E-3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
};

use mcp_auth_client::{
    ClientCredentials, OAuthLayer, TokenManager,
    store::{FileTokenStore, RegistrationKind, TokenStore},
};
use support::{Fake, Knobs, Transport, clock, rpc};
use tower::{ServiceBuilder, ServiceExt};

async fn call(manager: &TokenManager, fake: &Fake, method: &str) -> http::Response<String> {
    ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default())
        .oneshot(
            http::Request::post(fake.mcp_url())
                .header("content-type", "application/json")
                .body(rpc(method))
                .unwrap(),
        )
        .await
        .unwrap()
}

fn temp_store(name: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::env::temp_dir()
        .join(format!(
            "mcp-auth-client-2026-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
        .join("tokens.json")
}

/// Every client id, secret, code, refresh token and client authentication `from` received, as seen in
/// the requests `to` received (authorize, token, registration): must be empty.
fn leaked(from: &Fake, to: &Fake) -> Vec<String> {
    let mut issued: Vec<String> = from
        .token_calls()
        .iter()
        .flat_map(|c| {
            ["client_id", "client_secret", "refresh_token", "code"]
                .into_iter()
                .filter_map(|k| c.form.get(k).cloned())
                .chain(c.authorization.clone())
                .collect::<Vec<_>>()
        })
        .chain(
            from.authorize_calls()
                .iter()
                .map(|a| a["client_id"].clone()),
        )
        .collect();
    issued.retain(|v| !v.is_empty());
    let seen: Vec<String> = to
        .token_calls()
        .iter()
        .flat_map(|c| c.form.values().cloned().chain(c.authorization.clone()))
        .chain(
            to.authorize_calls()
                .iter()
                .flat_map(|a| a.values().cloned().collect::<Vec<_>>()),
        )
        .chain(to.registrations().iter().map(|r| r.to_string()))
        .collect();
    issued
        .into_iter()
        .filter(|v| seen.iter().any(|s| s.contains(v.as_str())))
        .collect()
}

/// The resource `a` now names `b` as its authorization server and accepts only `b`'s tokens.
fn migrate(a: &Fake, b: &Arc<Fake>) {
    let issuer = b.issuer();
    a.set(|k| k.authorization_servers = Some(vec![issuer]));
    a.trusted.lock().unwrap().push(Arc::clone(b));
}

#[tokio::test]
async fn registration_says_application_type_native_for_the_loopback_redirect() {
    let fake = Fake::start(Knobs::default()).await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let registration = &fake.registrations()[0];
    assert_eq!(registration["application_type"], "native");
    assert!(
        registration["redirect_uris"][0]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}

#[tokio::test]
async fn an_authorization_server_that_changes_between_two_runs_gets_none_of_the_old_credentials() {
    let a = Fake::start(Knobs {
        registration_secret: Some(format!("secret-of-a-{}", std::process::id())),
        registration_method: Some("client_secret_post".into()),
        ..Knobs::default()
    })
    .await;
    let b = Fake::start(Knobs::default()).await;
    let path = temp_store("migration");

    // Run 1: registered with A, tokens from A, all kept in the file.
    let first = a
        .manager(&clock())
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    assert_eq!(call(&first, &a, "tools/list").await.status(), 200);
    assert_eq!(a.registrations().len(), 1);
    drop(first);

    // Between the runs the resource moves to authorization server B.
    migrate(&a, &b);

    // Run 2: a new process with the same file.
    let store = FileTokenStore::new(&path);
    let second = a.manager(&clock()).store(store.clone()).build().unwrap();
    let response = call(&second, &a, "tools/list").await;
    assert_eq!(response.status(), 200, "{:?}", a.log());

    // B registered the client anew and authorized it; it never saw A's client id, secret or
    // tokens, and A saw no new registration or token request.
    assert_eq!(b.registrations().len(), 1);
    assert_eq!(b.authorize_calls().len(), 1);
    let secret = format!("secret-of-a-{}", std::process::id());
    assert!(
        b.token_calls()
            .iter()
            .all(|c| !c.form.values().any(|v| v == &secret)),
        "A's client secret went to B"
    );
    assert_eq!(leaked(&a, &b), Vec::<String>::new());
    assert_eq!(a.registrations().len(), 1);
    assert_eq!(a.token_calls().len(), 1, "no refresh or token request at A");

    // The store keeps one registration per issuer; the tokens are B's now.
    let at_a = store.load_client(&a.issuer()).await.unwrap().unwrap();
    let at_b = store.load_client(&b.issuer()).await.unwrap().unwrap();
    assert_ne!(at_a.client_id, at_b.client_id);
    assert_eq!(at_b.kind, RegistrationKind::Dynamic);
    let tokens = store
        .load_tokens(&mcp_auth_client::store::TokenKey::new(
            second.principal().clone(),
            second.resource().clone(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tokens.issuer, b.issuer());
    assert_eq!(tokens.client_id, at_b.client_id);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_resource_that_names_another_authorization_server_mid_run_leads_to_a_new_registration() {
    let a = Fake::start(Knobs::default()).await;
    let b = Fake::start(Knobs::default()).await;
    let manager = a.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &a, "tools/list").await.status(), 200);

    migrate(&a, &b);
    // A's token is refused now; the 401 leads to discovery, which finds B.
    assert_eq!(call(&manager, &a, "tools/call").await.status(), 200);
    assert_eq!(b.registrations().len(), 1);
    assert_eq!(a.registrations().len(), 1);
    assert_eq!(leaked(&a, &b), Vec::<String>::new());
    // A's refresh token was not spent at A for a resource that moved away, nor sent to B.
    assert!(
        a.token_calls()
            .iter()
            .all(|c| c.form["grant_type"] == "authorization_code")
    );
}

#[tokio::test]
async fn credentials_for_one_issuer_are_never_offered_to_another() {
    let a = Fake::start(Knobs::default()).await;
    let b = Fake::start(Knobs::default()).await;
    let manager = a
        .manager(&clock())
        .client_credentials(
            ClientCredentials::new("pre-registered-at-a")
                .secret("a-secret")
                .for_issuer(a.issuer()),
        )
        .build()
        .unwrap();
    assert_eq!(call(&manager, &a, "tools/list").await.status(), 200);
    assert_eq!(a.authorize_calls()[0]["client_id"], "pre-registered-at-a");
    assert!(a.registrations().is_empty());

    migrate(&a, &b);
    assert_eq!(call(&manager, &a, "tools/list").await.status(), 200);
    assert_eq!(
        b.registrations().len(),
        1,
        "B gets a registration of its own"
    );
    let offered: Vec<_> = b
        .authorize_calls()
        .iter()
        .map(|c| c["client_id"].clone())
        .chain(b.token_calls().iter().map(|c| format!("{:?}", c.form)))
        .chain(
            b.token_calls()
                .iter()
                .filter_map(|c| c.authorization.clone()),
        )
        .collect();
    assert!(
        offered
            .iter()
            .all(|v| !v.contains("pre-registered-at-a") && !v.contains("a-secret")),
        "{offered:?}"
    );
}

#[tokio::test]
async fn offline_access_is_dropped_when_the_authorization_server_does_not_list_it() {
    // The resource (wrongly) names offline_access; the authorization server does not list it.
    let fake = Fake::start(Knobs {
        challenge_scope: Some("mcp:tools offline_access".into()),
        as_scopes_supported: vec!["mcp:tools".into()],
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(fake.authorize_calls()[0]["scope"], "mcp:tools");

    // Listed: added, unless the application turned it off.
    let listed = Fake::start(Knobs {
        as_scopes_supported: vec!["mcp:tools".into(), "offline_access".into()],
        ..Knobs::default()
    })
    .await;
    let off = listed
        .manager(&clock())
        .offline_access(false)
        .build()
        .unwrap();
    assert_eq!(call(&off, &listed, "tools/list").await.status(), 200);
    assert_eq!(listed.authorize_calls()[0]["scope"], "mcp:tools");
    let on = listed.manager(&clock()).build().unwrap();
    on.authorize(None).await.unwrap();
    assert_eq!(
        listed.authorize_calls()[1]["scope"],
        "mcp:tools offline_access"
    );
}

#[tokio::test]
async fn cimd_is_preferred_over_dcr_and_dcr_stays_the_fallback() {
    let cimd = "https://app.example.com/oauth/client.json";
    let both = Fake::start(Knobs {
        cimd_supported: true,
        registration: true,
        ..Knobs::default()
    })
    .await;
    let manager = both
        .manager(&clock())
        .client_id_metadata_document(cimd)
        .build()
        .unwrap();
    assert_eq!(call(&manager, &both, "tools/list").await.status(), 200);
    assert!(
        both.registrations().is_empty(),
        "no DCR when CIMD is advertised"
    );
    assert_eq!(both.authorize_calls()[0]["client_id"], cimd);

    // Not advertised: the same configuration registers dynamically.
    let dcr_only = Fake::start(Knobs::default()).await;
    let manager = dcr_only
        .manager(&clock())
        .client_id_metadata_document(cimd)
        .build()
        .unwrap();
    assert_eq!(call(&manager, &dcr_only, "tools/list").await.status(), 200);
    assert_eq!(dcr_only.registrations().len(), 1);
    assert_ne!(dcr_only.authorize_calls()[0]["client_id"], cimd);
}

#[tokio::test]
async fn a_machine_client_uses_the_client_credentials_grant_and_steps_up_with_it() {
    let fake = Fake::start(Knobs {
        registration: false,
        challenge_scope: Some("mcp:tools".into()),
        auth_methods_supported: vec!["client_secret_basic".into()],
        required: HashMap::from([(
            "tools/call".to_owned(),
            vec!["mcp:tools".to_owned(), "mcp:admin".to_owned()],
        )]),
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .client_credentials(ClientCredentials::new("machine-1").secret("machine-secret"))
        .client_credentials_grant(true)
        .interactive(false)
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(call(&manager, &fake, "tools/call").await.status(), 200);

    assert!(
        fake.authorize_calls().is_empty(),
        "no browser, no /authorize"
    );
    let calls = fake.token_calls();
    let scopes: Vec<_> = calls.iter().map(|c| c.form["scope"].clone()).collect();
    assert_eq!(scopes, ["mcp:tools", "mcp:tools mcp:admin"]);
    for c in &calls {
        assert_eq!(c.form["grant_type"], "client_credentials");
        assert_eq!(c.form["resource"], fake.mcp_url());
        assert!(c.authorization.as_deref().unwrap().starts_with("Basic "));
        assert!(!c.form.contains_key("client_secret"), "one method only");
    }

    // Without a secret there is no machine grant: a registration error, nothing sent.
    let no_secret = fake
        .manager(&clock())
        .client_credentials(ClientCredentials::new("machine-2"))
        .client_credentials_grant(true)
        .build()
        .unwrap();
    let error = no_secret.authorize(None).await.unwrap_err();
    assert_eq!(error.kind(), mcp_auth_client::AuthErrorKind::Registration);
    assert_eq!(fake.token_calls().len(), 2);
}

/// A P-256 key made for this test only (`openssl ecparam -name prime256v1 -genkey`).
#[cfg(feature = "private-key-jwt")]
const TEST_EC_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgu8EP56LzTUuRDV/U\noer7Y0KutRrQ9lDDQb4/KTmW/EWhRANCAATDY/tmPRP4kwpT9jEswaEOWAf17W4A\nFjfJQPqnJZ2dwAI35cRUMm+PJagTazN1y7Tm0WHVWgbvIBY4Rno5rQAZ\n-----END PRIVATE KEY-----";
#[cfg(feature = "private-key-jwt")]
const TEST_EC_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEw2P7Zj0T+JMKU/YxLMGhDlgH9e1u\nABY3yUD6pyWdncACN+XEVDJvjyWoE2szdcu05tFh1VoG7yAWOEZ6Oa0AGQ==\n-----END PUBLIC KEY-----";

#[cfg(feature = "private-key-jwt")]
#[tokio::test]
async fn a_machine_client_can_authenticate_with_a_signed_assertion() {
    let fake = Fake::start(Knobs {
        registration: false,
        auth_methods_supported: vec!["private_key_jwt".into()],
        ..Knobs::default()
    })
    .await;
    let credentials = ClientCredentials::new("machine-jwt")
        .private_key_jwt(TEST_EC_KEY, "ES256")
        .unwrap();
    assert!(!format!("{credentials:?}").contains("PRIVATE KEY"));
    let manager = fake
        .manager(&clock())
        .client_credentials(credentials)
        .client_credentials_grant(true)
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);

    let calls = fake.token_calls();
    let form = &calls[0].form;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(calls[0].authorization.is_none() && !form.contains_key("client_secret"));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[fake.issuer()]);
    validation.validate_exp = false; // the manual clock is in 2023
    let key = jsonwebtoken::DecodingKey::from_ec_pem(TEST_EC_PUBLIC_KEY.as_bytes()).unwrap();
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(&form["client_assertion"], &key, &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["iss"], "machine-jwt");
    assert_eq!(claims["sub"], "machine-jwt");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // A key that is not one, or an algorithm that cannot sign with it, is refused at once.
    assert!(
        ClientCredentials::new("x")
            .private_key_jwt("not a key", "ES256")
            .is_err()
    );
    assert!(
        ClientCredentials::new("x")
            .private_key_jwt(TEST_EC_KEY, "HS256")
            .is_err()
    );
}

#[tokio::test]
async fn a_workload_uses_the_jwt_bearer_grant_and_a_rejection_is_not_retried() {
    let fake = Fake::start(Knobs {
        registration: false,
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .client_credentials(ClientCredentials::new("workload-1"))
        .jwt_bearer_grant("eyJ.platform-issued.jwt")
        .interactive(false)
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let form = &fake.token_calls()[0].form;
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(form["assertion"], "eyJ.platform-issued.jwt");
    assert_eq!(form["client_id"], "workload-1");
    assert_eq!(form["resource"], fake.mcp_url());
    assert!(fake.authorize_calls().is_empty());

    let refused = Fake::start(Knobs {
        registration: false,
        ..Knobs::default()
    })
    .await;
    let manager = refused
        .manager(&clock())
        .client_credentials(ClientCredentials::new("workload-1"))
        .jwt_bearer_grant("expired")
        .build()
        .unwrap();
    let response = call(&manager, &refused, "tools/list").await;
    assert_eq!(response.status(), 401);
    let error = response
        .extensions()
        .get::<mcp_auth_client::AuthError>()
        .unwrap();
    assert_eq!(error.kind(), mcp_auth_client::AuthErrorKind::Rejected);
    assert_eq!(refused.token_calls().len(), 1, "no retry, no other grant");
    assert!(refused.authorize_calls().is_empty());
}

/// An enterprise IdP's token endpoint (RFC 8693) that records each exchange and issues an
/// identity assertion grant.
async fn enterprise_idp() -> (String, Arc<std::sync::Mutex<Vec<HashMap<String, String>>>>) {
    use axum::{Form, Json, Router, extract::State, routing::post};
    type Seen = Arc<std::sync::Mutex<Vec<HashMap<String, String>>>>;
    async fn exchange(
        State(seen): State<Seen>,
        Form(form): Form<HashMap<String, String>>,
    ) -> Json<serde_json::Value> {
        seen.lock().unwrap().push(form);
        Json(serde_json::json!({
            "access_token": "id-jag-for-alice",
            "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag",
            "token_type": "N_A",
        }))
    }
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/token", post(exchange))
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn enterprise_managed_authorization_exchanges_the_id_token_then_presents_the_grant() {
    let (idp, exchanges) = enterprise_idp().await;
    let fake = Fake::start(Knobs {
        registration: false,
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .client_credentials(ClientCredentials::new("mcp-client").secret("mcp-secret"))
        .enterprise_managed_authorization(&idp, "idp-client", "alice-id-token")
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);

    let exchange = exchanges.lock().unwrap()[0].clone();
    assert_eq!(
        exchange["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(
        exchange["requested_token_type"],
        "urn:ietf:params:oauth:token-type:id-jag"
    );
    assert_eq!(exchange["subject_token"], "alice-id-token");
    assert_eq!(
        exchange["subject_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    assert_eq!(exchange["audience"], fake.issuer());
    assert_eq!(exchange["resource"], fake.mcp_url());
    assert_eq!(exchange["client_id"], "idp-client");
    assert!(
        !exchange.contains_key("client_secret"),
        "the MCP client's secret stays with its AS"
    );

    let call = &fake.token_calls()[0];
    assert_eq!(
        call.form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(call.form["assertion"], "id-jag-for-alice");
    assert!(call.authorization.as_deref().unwrap().starts_with("Basic "));
    assert!(fake.authorize_calls().is_empty(), "no browser");
}
