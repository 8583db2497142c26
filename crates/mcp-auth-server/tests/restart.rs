//! A restart loses nothing: clients, refresh tokens, consents and signing keys live in the
//! SQLite file, and a second server on the same file carries on where the first stopped.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::body::Body;
use http::{Request, StatusCode};
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::login::LocalLogin;
use mcp_auth_server::store::{SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn server(path: &std::path::Path) -> (AuthorizationServer, axum::Router, SqliteStore) {
    let store = SqliteStore::open(path).await.unwrap();
    let server = AuthorizationServer::builder(ISSUER)
        .resource(RESOURCE)
        .scopes(["mcp:tools"])
        .store(store.clone())
        .login(LocalLogin::new().user("alice", "pw"))
        .build()
        .await
        .unwrap();
    let app = server.router();
    (server, app, store)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn form(uri: &str, pairs: &[(&str, &str)], cookie: Option<&str>) -> Request<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut b = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn a_restart_on_the_same_file_keeps_clients_refresh_tokens_consents_and_keys() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("as.db");
    let _ = std::fs::remove_file(&db);

    // First life: register, consent through the page, get tokens.
    let (first, app, store) = server(&db).await;
    let jwks_before = first.keys().jwks_json();
    let register = Request::post("/register")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"client_name": "Restarted", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).to_string(),
        ))
        .unwrap();
    let (status, _, body) = send(&app, register).await;
    assert_eq!(status, 201, "{body}");
    let client_id = serde_json::from_str::<Value>(&body).unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let verifier = CodeVerifier::generate();
    let challenge = CodeChallenge::s256(&verifier);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
            ("scope", "mcp:tools"),
        ])
        .finish();
    let (status, headers, page) = send(
        &app,
        Request::get(format!("/authorize?{query}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let cookie = headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, headers, _) = send(
        &app,
        form(
            "/authorize",
            &[
                (
                    "transaction",
                    &common::hidden_field(&page, "transaction").unwrap(),
                ),
                ("csrf", &common::hidden_field(&page, "csrf").unwrap()),
                ("username", "alice"),
                ("password", "pw"),
                ("decision", "approve"),
            ],
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(status, 303);
    let location = url::Url::parse(headers["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, _, body) = send(
        &app,
        form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.expose()),
            ],
            None,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    drop((first, app));
    store.close().await;

    // Second life on the same file.
    let (second, app, store) = server(&db).await;
    assert_eq!(
        second.keys().jwks_json(),
        jwks_before,
        "the same signing keys"
    );
    assert!(
        second.keys().verify(&access).is_some(),
        "tokens signed before the restart still verify"
    );
    assert!(
        store.get_client(&client_id).await.unwrap().is_some(),
        "the client survived"
    );
    let consent = store
        .get_consent("alice", &client_id, RESOURCE)
        .await
        .unwrap()
        .expect("the consent survived");
    assert_eq!(consent.scope, "mcp:tools");
    let (status, _, body) = send(
        &app,
        form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", &refresh),
            ],
            None,
        ),
    )
    .await;
    assert_eq!(status, 200, "the refresh token survived: {body}");
    // Its successor works, and then the pre-restart token is spent (reuse after the successor
    // was used, so no grace window).
    let rotated: Value = serde_json::from_str(&body).unwrap();
    let successor = rotated["refresh_token"].as_str().unwrap();
    let (status, _, body) = send(
        &app,
        form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", successor),
            ],
            None,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = send(
        &app,
        form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", &refresh),
            ],
            None,
        ),
    )
    .await;
    assert_eq!(status, 400);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
