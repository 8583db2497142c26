#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The refresh grace window over real loopback HTTP: a client's parallel refreshes with one
//! token all succeed in one family, and every other replay of a rotated token still revokes
//! the family (another client, a used successor, past the window) or is refused (a revoked
//! grant). Window edges use an injected clock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, pkce, start, start_with_store};
use mcp_auth_core::{Clock as _, ManualClock, SystemClock};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// Another client's redirect URI (distinct metadata, so registration creates another client).
const OTHER_REDIRECT: &str = "http://127.0.0.1:9/other-callback";

async fn tokens(h: &Harness, client_id: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let response = h.exchange(client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh(h: &Harness, client_id: &str, token: &str) -> (u16, Value) {
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", token),
        ])
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn refresh_of(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn twenty_concurrent_refreshes(h: Harness, backend: &str) {
    let h = Arc::new(h);
    let client_id = h.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&h, &client_id).await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (h, client_id, first) = (h.clone(), client_id.clone(), first.clone());
            tokio::spawn(async move { refresh(&h, &client_id, &first).await })
        })
        .collect();
    let mut bodies = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    let elapsed = started.elapsed();
    let refreshes: std::collections::HashSet<String> = bodies.iter().map(refresh_of).collect();
    let accesses: std::collections::HashSet<&str> = bodies
        .iter()
        .map(|b| b["access_token"].as_str().unwrap())
        .collect();
    assert_eq!((refreshes.len(), accesses.len()), (20, 20));
    // Every access token works: nothing was revoked.
    for access in &accesses {
        assert_eq!(h.call_mcp(access).await.status(), 200);
    }
    println!(
        "{backend}: 20 concurrent HTTP refreshes with one token: 20 × 200, {} distinct refresh \
         tokens, {} distinct access tokens, 0 revoked, {:.1} ms",
        refreshes.len(),
        accesses.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    // One of them continues the family; a sibling presented after that is reuse.
    let mut successors = refreshes.into_iter();
    let (a, b) = (successors.next().unwrap(), successors.next().unwrap());
    let (status, next) = refresh(&h, &client_id, &a).await;
    assert_eq!(status, 200);
    let (status, e) = refresh(&h, &client_id, &b).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&h, &client_id, &refresh_of(&next)).await;
    assert_eq!(status, 400, "the family is revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_with_one_token_all_succeed_in_memory() {
    twenty_concurrent_refreshes(start(|b| b).await, "memory").await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_with_one_token_all_succeed_in_sqlite() {
    let db = common::TempDb::new("grace");
    let store = mcp_auth_server::store::SqliteStore::open(&db.0)
        .await
        .unwrap();
    twenty_concurrent_refreshes(start_with_store(Arc::new(store), |b| b).await, "sqlite").await;
}

#[tokio::test]
async fn a_replay_from_another_client_inside_the_window_revokes_the_family() {
    let h = start(|b| b).await;
    let owner = h.register_public(REDIRECT).await;
    let thief = h.register_public(OTHER_REDIRECT).await;
    assert_ne!(owner, thief);
    let t = tokens(&h, &owner).await;
    let first = refresh_of(&t);
    let (status, t2) = refresh(&h, &owner, &first).await;
    assert_eq!(status, 200);

    let (status, e) = refresh(&h, &thief, &first).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    // The owner's successor and access token died with the family.
    let (status, _) = refresh(&h, &owner, &refresh_of(&t2)).await;
    assert_eq!(status, 400);
    let (status, _) = refresh(&h, &owner, &first).await;
    assert_eq!(status, 400, "no grace for a revoked family");
    assert_eq!(
        h.introspect(t2["access_token"].as_str().unwrap()).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn a_replay_inside_the_window_after_the_grant_was_revoked_is_refused() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&h, &client_id).await);
    let (status, t2) = refresh(&h, &client_id, &first).await;
    assert_eq!(status, 200);
    // The client signs out: revoking the successor revokes the grant.
    let revoked = h
        .token_revoke(&[("token", &refresh_of(&t2)), ("client_id", &client_id)])
        .await;
    assert_eq!(revoked, 200);
    let (status, e) = refresh(&h, &client_id, &first).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    assert!(e.get("refresh_token").is_none() && e.get("access_token").is_none());
}

#[tokio::test]
async fn a_replay_inside_the_window_after_the_successor_was_used_revokes_the_family() {
    let h = start(|b| b).await;
    let client_id = h.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&h, &client_id).await);
    let (status, t2) = refresh(&h, &client_id, &first).await;
    assert_eq!(status, 200);
    let (status, t3) = refresh(&h, &client_id, &refresh_of(&t2)).await;
    assert_eq!(status, 200);

    let (status, e) = refresh(&h, &client_id, &first).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&h, &client_id, &refresh_of(&t3)).await;
    assert_eq!(status, 400, "the newest token went with the family");
    assert_eq!(
        h.introspect(t3["access_token"].as_str().unwrap()).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn the_window_edge_with_an_injected_clock_inside_then_one_second_past() {
    let clock = ManualClock::new(SystemClock::default().now());
    let c2 = clock.clone();
    let h = start(move |b| b.clock(c2)).await;
    let client_id = h.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&h, &client_id).await);
    let (status, t2) = refresh(&h, &client_id, &first).await;
    assert_eq!(status, 200);

    // The default window: 30 s after the rotation is still inside.
    clock.advance(Duration::from_secs(30));
    let (status, t2b) = refresh(&h, &client_id, &first).await;
    assert_eq!(status, 200, "{t2b}");
    assert_ne!(refresh_of(&t2b), refresh_of(&t2));
    assert_eq!(
        h.call_mcp(t2b["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // One second past (the grace replay did not extend it): reuse, the family is revoked.
    clock.advance(Duration::from_secs(1));
    let (status, e) = refresh(&h, &client_id, &first).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    for successor in [&t2, &t2b] {
        let (status, _) = refresh(&h, &client_id, &refresh_of(successor)).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn a_configured_window_and_zero_for_strict_reuse_detection() {
    let clock = ManualClock::new(SystemClock::default().now());
    let c2 = clock.clone();
    let h = start(move |b| b.clock(c2).refresh_grace(Duration::from_secs(5))).await;
    let client_id = h.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&h, &client_id).await);
    assert_eq!(refresh(&h, &client_id, &first).await.0, 200);
    clock.advance(Duration::from_secs(5));
    assert_eq!(refresh(&h, &client_id, &first).await.0, 200);
    clock.advance(Duration::from_secs(1));
    assert_eq!(refresh(&h, &client_id, &first).await.0, 400);

    let strict = start(|b| b.refresh_grace(Duration::ZERO)).await;
    let client_id = strict.register_public(REDIRECT).await;
    let first = refresh_of(&tokens(&strict, &client_id).await);
    let (status, t2) = refresh(&strict, &client_id, &first).await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&strict, &client_id, &first).await.0, 400);
    assert_eq!(refresh(&strict, &client_id, &refresh_of(&t2)).await.0, 400);

    // Over 10 minutes is a configuration error.
    let base = "http://127.0.0.1:9";
    let too_long = mcp_auth_server::AuthorizationServer::builder(base)
        .resource(format!("{base}/mcp"))
        .refresh_grace(Duration::from_secs(601))
        .build()
        .await;
    assert!(matches!(
        too_long,
        Err(mcp_auth_server::ConfigError::InvalidLifetime(_))
    ));
}
