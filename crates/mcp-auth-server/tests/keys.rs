//! `KeySet` against the resource server's `JwtVerifier`: tokens of every algorithm verify with
//! nothing but the published JWKS, forgeries do not, and rotation keeps every token verifiable
//! for as long as it lives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mcp_auth_core::{ManualClock, ResourceId};
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{TokenVerifier, VerifyErrorKind};
use mcp_auth_server::keys::{KeyPolicy, KeySet, SigningAlgorithm};
use mcp_auth_server::store::{MemoryStore, Store};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const ALGS: [SigningAlgorithm; 3] = [
    SigningAlgorithm::Es256,
    SigningAlgorithm::EdDsa,
    SigningAlgorithm::Rs256,
];

fn policy(alg: SigningAlgorithm) -> KeyPolicy {
    KeyPolicy::default()
        .with_algorithm(alg)
        .with_publish_ahead(Duration::from_secs(3600))
        .with_rotate_after(Some(Duration::from_secs(30 * 86_400)))
        .with_keep_after_retire(Duration::from_secs(86_400))
}

fn claims(now: u64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "exp": now + 900,
        "iat": now,
        "jti": format!("jti-{now}"),
        "scope": "mcp:tools files:read",
        "client_id": "client-1",
    })
}

/// A resource server that knows the keys published now, with its clock at `now`.
fn resource_server(keys: &KeySet, now: u64) -> (JwtVerifier, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(now));
    let jwks = String::from_utf8(keys.jwks_json().to_vec()).unwrap();
    let verifier = JwtVerifier::builder(ISSUER, &ResourceId::parse(RESOURCE).unwrap())
        .jwks_json(&jwks)
        .clock(clock.clone())
        .build()
        .unwrap();
    (verifier, clock)
}

fn set_time(clock: &ManualClock, now: u64) {
    clock.set(UNIX_EPOCH + Duration::from_secs(now));
}

fn published(keys: &KeySet) -> Vec<String> {
    let doc: Value = serde_json::from_slice(&keys.jwks_json()).unwrap();
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// `token` with its header replaced (the signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", B64.encode(header.to_string()))
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_at_the_resource_server() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let keys = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let token = keys.sign("at+jwt", &claims(NOW), NOW).unwrap();
        assert_eq!(header(&token)["alg"], alg.as_str());

        let (verifier, clock) = resource_server(&keys, NOW);
        let info = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(info.subject(), Some("alice"));
        assert_eq!(info.client_id(), Some("client-1"));
        assert_eq!(info.issuer(), Some(ISSUER));
        assert_eq!(info.audience(), [RESOURCE]);
        assert!(info.has_scope("mcp:tools") && info.has_scope("files:read"));
        assert_eq!(info.expires_at_unix(), Some(NOW + 900));
        assert_eq!(info.issued_at_unix(), Some(NOW));
        assert_eq!(info.jwt_id(), Some(format!("jti-{NOW}").as_str()));

        // Expiry is the resource server's business, with the injected clock.
        set_time(&clock, NOW + 900 + 61);
        let error = verifier.verify(&token).await.unwrap_err();
        assert_eq!(error.kind(), VerifyErrorKind::Expired);
        // `KeySet::verify` checks the signature only.
        assert!(keys.verify(&token).is_some());
    }
}

#[tokio::test]
async fn forged_tokens_are_rejected_on_both_sides() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let keys = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let token = keys.sign("at+jwt", &claims(NOW), NOW).unwrap();
        let (verifier, _clock) = resource_server(&keys, NOW);
        let kid = keys.active_kid(NOW).unwrap();

        // Tampered payload.
        let (h, rest) = token.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let mut forged_claims = claims(NOW);
        forged_claims["scope"] = json!("admin");
        let tampered = format!("{h}.{}.{s}", B64.encode(forged_claims.to_string()));
        assert!(keys.verify(&tampered).is_none(), "{alg}");
        let kind = verifier.verify(&tampered).await.unwrap_err().kind();
        assert_eq!(kind, VerifyErrorKind::InvalidSignature);

        // Wrong kid.
        let wrong_kid = with_header(
            &token,
            &json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": "other"}),
        );
        assert!(keys.verify(&wrong_kid).is_none());
        let kind = verifier.verify(&wrong_kid).await.unwrap_err().kind();
        assert_eq!(kind, VerifyErrorKind::UnknownKey);

        // alg: none, with and without the signature.
        let none = with_header(&token, &json!({"alg": "none", "typ": "at+jwt", "kid": kid}));
        let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
        for bad in [&none, &unsigned] {
            assert!(keys.verify(bad).is_none());
            assert!(verifier.verify(bad).await.is_err());
        }

        // Another algorithm for our key.
        let other = if alg == SigningAlgorithm::Es256 {
            "RS256"
        } else {
            "ES256"
        };
        let confused = with_header(&token, &json!({"alg": other, "typ": "at+jwt", "kid": kid}));
        assert!(keys.verify(&confused).is_none());
        assert!(verifier.verify(&confused).await.is_err());

        assert!(keys.verify(&token).is_some());
        assert!(verifier.verify(&token).await.is_ok());
    }
}

#[tokio::test]
async fn rotation_publishes_ahead_and_keeps_retired_keys_until_their_tokens_expire() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let old = keys.active_kid(NOW).unwrap();
    let old_token = keys.sign("at+jwt", &claims(NOW), NOW).unwrap();

    // Rotation at T: the new key is in the JWKS at once, but does not sign yet.
    let t = NOW + 1000;
    let new = keys.rotate(&store, t).await.unwrap();
    assert_eq!(published(&keys), [old.clone(), new.clone()]);
    let before = keys.sign("at+jwt", &claims(t + 3599), t + 3599).unwrap();
    assert_eq!(header(&before)["kid"], old.as_str());

    // A resource server that fetched the JWKS right after the rotation (and never again)
    // verifies tokens signed by the new key once it activates.
    let (early, clock) = resource_server(&keys, t);
    let after = keys.sign("at+jwt", &claims(t + 3600), t + 3600).unwrap();
    assert_eq!(header(&after)["kid"], new.as_str());
    set_time(&clock, t + 3600);
    early.verify(&after).await.unwrap();
    early.verify(&before).await.unwrap();

    // Periodic maintenance: the old key is retired at t + 3600 and stays published for
    // keep_after_retire (1 day), so tokens it signed last still verify.
    for step in (t..t + 3600 + 86_400).step_by(600) {
        keys.maintain(&store, step).await.unwrap();
        assert_eq!(published(&keys), [old.clone(), new.clone()], "at {step}");
    }
    let listed = store.list_keys().await.unwrap();
    let retired = listed.iter().find(|k| k.kid == old).unwrap();
    assert_eq!(retired.retired_at, Some(t + 3600));
    let (late, clock) = resource_server(&keys, t + 3599);
    late.verify(&before).await.unwrap();
    set_time(&clock, t + 3600);
    late.verify(&after).await.unwrap();

    // Then it goes, from the JWKS and from the store.
    keys.maintain(&store, t + 3600 + 86_400).await.unwrap();
    assert_eq!(published(&keys), std::slice::from_ref(&new));
    let stored: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(stored, std::slice::from_ref(&new));
    assert!(keys.verify(&old_token).is_none());
    assert!(keys.verify(&after).is_some());
    let (now_rs, _clock) = resource_server(&keys, NOW);
    let kind = now_rs.verify(&old_token).await.unwrap_err().kind();
    assert_eq!(kind, VerifyErrorKind::UnknownKey);
}

#[tokio::test]
async fn keys_persist_across_restarts() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let first = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let kid = first.active_kid(NOW).unwrap();
        let token = first.sign("at+jwt", &claims(NOW), NOW).unwrap();
        let pending = first.rotate(&store, NOW + 10).await.unwrap();
        drop(first);

        // "Restart": a new KeySet on the same store.
        let restarted = KeySet::load_or_create(&store, policy(alg), NOW + 20)
            .await
            .unwrap();
        assert_eq!(restarted.active_kid(NOW + 20), Some(kid.clone()), "{alg}");
        assert_eq!(restarted.active_kid(NOW + 10 + 3600), Some(pending.clone()));
        assert_eq!(published(&restarted), [kid, pending]);
        assert_eq!(restarted.verify(&token).unwrap()["sub"], "alice");
        let (verifier, _clock) = resource_server(&restarted, NOW);
        verifier.verify(&token).await.unwrap();
        assert_eq!(store.list_keys().await.unwrap().len(), 2);
    }
}

/// 70 days of two servers sharing one store, each running `maintain` every 10 minutes (offset
/// by 5): they always sign with the same key, every key is published by both at least
/// `publish_ahead` (minus one maintenance interval) before it signs, and stays published by both
/// for `keep_after_retire` after it last signed.
#[tokio::test]
async fn two_servers_rotate_together_for_seventy_days() {
    let store = MemoryStore::new();
    let policy = policy(SigningAlgorithm::Es256);
    let a = KeySet::load_or_create(&store, policy.clone(), NOW)
        .await
        .unwrap();
    let b = KeySet::load_or_create(&store, policy.clone(), NOW + 1)
        .await
        .unwrap();
    let first_key = a.active_kid(NOW).unwrap();
    assert_eq!(b.active_kid(NOW + 1).as_ref(), Some(&first_key));

    let interval = 600;
    let mut published_by_both_since: HashMap<String, u64> = HashMap::new();
    let mut first_signed: HashMap<String, u64> = HashMap::new();
    let mut last_signed: HashMap<String, u64> = HashMap::new();
    let mut gone_at: HashMap<String, u64> = HashMap::new();
    let mut t = NOW + interval;
    while t < NOW + 70 * 86_400 {
        a.maintain(&store, t).await.unwrap();
        b.maintain(&store, t + interval / 2).await.unwrap();
        let now = t + interval / 2;
        let by_a: BTreeSet<String> = published(&a).into_iter().collect();
        let by_b: BTreeSet<String> = published(&b).into_iter().collect();
        assert!(by_a.len() <= 3, "{by_a:?}");
        for kid in by_a.intersection(&by_b) {
            published_by_both_since.entry(kid.clone()).or_insert(now);
        }
        for kid in published_by_both_since.keys() {
            if !by_a.contains(kid) && !by_b.contains(kid) {
                gone_at.entry(kid.clone()).or_insert(now);
            }
        }
        for probe in [t, now] {
            let signer = a.active_kid(probe).unwrap();
            assert_eq!(b.active_kid(probe).as_ref(), Some(&signer), "at {probe}");
            assert!(by_a.contains(&signer) && by_b.contains(&signer));
            first_signed.entry(signer.clone()).or_insert(probe);
            last_signed.insert(signer, probe);
        }
        t += interval;
    }

    assert_eq!(
        first_signed.len(),
        3,
        "a first key and two rotations: {first_signed:?}"
    );
    let publish_ahead = policy.publish_ahead.as_secs();
    let keep = policy.keep_after_retire.as_secs();
    for (kid, signs_from) in &first_signed {
        let since = published_by_both_since[kid];
        if *kid != first_key {
            assert!(*signs_from + interval >= since + publish_ahead, "{kid}");
        }
        if let Some(gone) = gone_at.get(kid) {
            assert!(gone - last_signed[kid] >= keep, "{kid}");
        }
    }
    // Keys created at day 0, 30 and 60: the first two retired (days 30 and 60) and are gone.
    assert_eq!(gone_at.len(), 2, "{gone_at:?}");
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
}
