//! Unused dynamically registered public clients expire (SPEC AS-46): over real HTTP on loopback,
//! with an injected clock, `AuthorizationServer::maintain` removes a public client that has not
//! completed an authorization for `unused_public_client_ttl` (30 days by default) and holds no
//! active grant; confidential clients and clients in use stay.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{Harness, pkce, start};
use mcp_auth_core::{Clock, ManualClock, SystemClock};
use serde_json::Value;

const DAY: Duration = Duration::from_secs(24 * 3600);
const REDIRECT: &str = "http://127.0.0.1:45678/callback";

/// A full authorization of `client_id`: consent, code, exchange.
async fn authorize(h: &Harness, client_id: &str) {
    let (verifier, challenge) = pkce();
    let code = h
        .authorize(client_id, REDIRECT, &challenge, "mcp:tools")
        .await;
    let response = h.exchange(client_id, &code, REDIRECT, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["access_token"].is_string());
}

async fn exists(h: &Harness, client_id: &str) -> bool {
    h.server
        .store()
        .get_client(client_id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_public_client_is_removed_by_maintain_and_one_in_use_stays() {
    let clock = ManualClock::new(SystemClock::default().now());
    let h = start({
        let clock = clock.clone();
        move |b| {
            b.clock(clock)
                .grant_ttl(7 * DAY)
                .refresh_token_ttl(7 * DAY)
                .public_refresh_token_ttl(7 * DAY)
        }
    })
    .await;
    let idle = h.register_public(REDIRECT).await;
    let used = h.register_public(REDIRECT).await;
    let (confidential, _secret) = h
        .register_confidential(REDIRECT, "client_secret_basic", &["authorization_code"])
        .await;
    authorize(&h, &used).await;
    let record = h.server.store().get_client(&used).await.unwrap().unwrap();
    assert!(
        record.last_authorized_at.is_some(),
        "the exchange is recorded"
    );

    // Day 20: nobody is 30 days unused yet.
    clock.advance(20 * DAY);
    h.server.maintain().await.unwrap();
    for id in [&idle, &used, &confidential] {
        assert!(exists(&h, id).await);
    }
    authorize(&h, &used).await;

    // Day 31: the client registered on day 0 and never authorized goes.
    clock.advance(11 * DAY);
    h.server.maintain().await.unwrap();
    assert!(!exists(&h, &idle).await, "unused for 31 days");
    assert!(exists(&h, &used).await, "authorized on day 20");
    assert!(
        exists(&h, &confidential).await,
        "confidential clients never expire"
    );
    // The removed client is unknown now: its authorization request is refused.
    let (_, challenge) = pkce();
    let url = h.authorize_url(&h.params(&idle, REDIRECT, &challenge, "mcp:tools"));
    assert_eq!(h.browse(&url).await.status(), 400);

    // Day 51: 31 days after its last authorization, its grant (7 days) long over.
    clock.advance(20 * DAY);
    h.server.maintain().await.unwrap();
    assert!(!exists(&h, &used).await);
    assert!(exists(&h, &confidential).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_grant_keeps_its_client_and_a_zero_ttl_keeps_every_client() {
    let clock = ManualClock::new(SystemClock::default().now());
    let h = start({
        let clock = clock.clone();
        move |b| b.clock(clock)
    })
    .await;
    let client = h.register_public(REDIRECT).await;
    authorize(&h, &client).await;
    // Day 40: not authorized for 40 days, but its grant (90 days by default) is still active.
    clock.advance(40 * DAY);
    h.server.maintain().await.unwrap();
    assert!(exists(&h, &client).await);

    let clock = ManualClock::new(SystemClock::default().now());
    let h = start({
        let clock = clock.clone();
        move |b| b.clock(clock).unused_public_client_ttl(Duration::ZERO)
    })
    .await;
    let idle = h.register_public(REDIRECT).await;
    clock.advance(400 * DAY);
    h.server.maintain().await.unwrap();
    assert!(exists(&h, &idle).await, "expiry turned off");
}
