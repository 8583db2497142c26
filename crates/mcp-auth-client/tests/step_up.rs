//! Step-up on 403 `insufficient_scope` through the layer: scope union, refresh tokens, the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue, StatusCode};
use mcp_auth_client::{
    AuthError, AuthErrorKind, OAuthLayer, Operation, TokenManager, is_insufficient_scope,
    store::{MemoryTokenStore, TokenKey, TokenStore},
};
use support::{Fake, Knobs, Transport, clock, rpc};
use tower::{ServiceBuilder, ServiceExt};

async fn call(manager: &TokenManager, fake: &Fake, method: &str) -> http::Response<String> {
    ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default())
        .oneshot(
            http::Request::post(fake.mcp_url())
                .body(rpc(method))
                .unwrap(),
        )
        .await
        .unwrap()
}

fn knobs(issue_refresh: bool) -> Knobs {
    Knobs {
        issue_refresh,
        challenge_scope: Some("mcp:basic".into()),
        required: HashMap::from([
            ("tools/list".to_owned(), vec!["mcp:basic".to_owned()]),
            // The server names only the missing scope: the client must keep mcp:basic.
            ("tools/call".to_owned(), vec!["mcp:write".to_owned()]),
        ]),
        ..Knobs::default()
    }
}

fn scopes(fake: &Fake) -> Vec<String> {
    fake.authorize_calls()
        .iter()
        .map(|q| q.get("scope").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn step_up_without_a_refresh_token_asks_for_the_union() {
    let fake = Fake::start(knobs(false)).await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(call(&manager, &fake, "tools/call").await.status(), 200);
    assert_eq!(scopes(&fake), ["mcp:basic", "mcp:basic mcp:write"]);
    // The earlier grant was kept: tools/list still works without another authorization.
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(fake.authorize_calls().len(), 2);
}

#[tokio::test]
async fn step_up_while_holding_a_refresh_token_reauthorizes_instead_of_refreshing() {
    let fake = Fake::start(knobs(true)).await;
    let store = MemoryTokenStore::new();
    let manager = fake.manager(&clock()).store(store.clone()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let before = store.load_tokens(&key).await.unwrap().unwrap();
    assert!(before.refresh_token.is_some());

    assert_eq!(call(&manager, &fake, "tools/call").await.status(), 200);
    let grants: Vec<_> = fake
        .token_calls()
        .iter()
        .map(|c| c.form["grant_type"].clone())
        .collect();
    assert_eq!(grants, ["authorization_code", "authorization_code"]);
    assert_eq!(scopes(&fake), ["mcp:basic", "mcp:basic mcp:write"]);
    let after = store.load_tokens(&key).await.unwrap().unwrap();
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the new grant replaced the old one"
    );
    assert_eq!(after.scope.to_string(), "mcp:basic mcp:write");
}

#[tokio::test]
async fn step_up_stops_after_three_authorization_attempts() {
    let fake = Fake::start(Knobs {
        always_403: true,
        challenge_scope: Some("mcp:admin".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/call").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(AuthErrorKind::StepUpLimit)
    );
    // 401 → authorization 1; 403 → 2; 403 → 3; 403 → stop.
    assert_eq!(fake.authorize_calls().len(), 3);
    let mcp = fake.log().iter().filter(|l| *l == "POST /mcp").count();
    assert_eq!(mcp, 4);

    // The next request for the same operation does not start the loop again.
    let res = call(&manager, &fake, "tools/call").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(fake.authorize_calls().len(), 3);
}

#[tokio::test]
async fn attempts_are_counted_per_operation_and_reset_by_a_success() {
    let fake = Fake::start(Knobs {
        always_403: true,
        challenge_scope: Some("mcp:admin".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .max_authorization_attempts(2)
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default());
    let send = |op: &'static str| {
        let mut req = http::Request::post(fake.mcp_url()).body(rpc(op)).unwrap();
        req.extensions_mut().insert(Operation::new(op));
        client.clone().oneshot(req)
    };
    send("a").await.unwrap();
    assert_eq!(fake.authorize_calls().len(), 2);
    send("b").await.unwrap();
    assert_eq!(
        fake.authorize_calls().len(),
        4,
        "another operation has its own budget"
    );
    send("a").await.unwrap();
    assert_eq!(fake.authorize_calls().len(), 4);
    manager.operation_succeeded("a");
    send("a").await.unwrap();
    assert_eq!(fake.authorize_calls().len(), 6);
}

#[test]
fn step_up_challenges_are_recognised_with_or_without_an_error_code() {
    let headers = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert("www-authenticate", HeaderValue::from_static(v));
        h
    };
    let forbidden = StatusCode::FORBIDDEN;
    assert!(is_insufficient_scope(
        forbidden,
        &headers(r#"Bearer error="insufficient_scope", scope="a b""#)
    ));
    // The conformance suite's step-up scenario sends scope without error.
    assert!(is_insufficient_scope(
        forbidden,
        &headers(r#"Basic realm="x", Bearer scope="a b", resource_metadata="https://x/y""#)
    ));
    assert!(!is_insufficient_scope(
        forbidden,
        &headers(r#"Bearer error="invalid_token""#)
    ));
    assert!(!is_insufficient_scope(forbidden, &headers("Bearer")));
    assert!(!is_insufficient_scope(
        StatusCode::UNAUTHORIZED,
        &headers(r#"Bearer error="insufficient_scope", scope="a""#)
    ));
}
