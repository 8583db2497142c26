//! `Revocable` outside a `CachedVerifier<JwtVerifier>`, behind `BearerAuthLayer`, over real HTTP
//! on loopback: a token whose verification is cached is refused on the next request once the
//! revocation list names it (by `jti`, or by its grant's `sid`), and other tokens are not
//! affected.
#![cfg(all(feature = "jwt", feature = "remote", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use mcp_auth_core::{ManualClock, ResourceId, revocation::RevocationList};
use mcp_auth_resource::{
    Auth, BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource, Revocable,
    TokenVerifier, VerifyErrorKind,
};
use serde_json::{Map, Value};
use support::{NOW, SigningKey, TokenBuilder};
use tokio::net::TcpListener;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const NOT_ACTIVE: &str = r#"Bearer error="invalid_token", error_description="The access token is not active", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;

/// What an authorization server in the same process would share: revoked access tokens (`jti`)
/// and revoked grants (`sid`, every access token issued under them). Counts its calls.
#[derive(Debug, Default)]
struct Revoked {
    jtis: Mutex<HashSet<String>>,
    grants: Mutex<HashSet<String>>,
    calls: AtomicUsize,
}

impl Revoked {
    fn revoke_token(&self, jti: &str) {
        self.jtis.lock().unwrap().insert(jti.to_owned());
    }

    fn revoke_grant(&self, sid: &str) {
        self.grants.lock().unwrap().insert(sid.to_owned());
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl RevocationList for Revoked {
    fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let named = |name: &str, set: &Mutex<HashSet<String>>| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .is_some_and(|v| set.lock().unwrap().contains(v))
        };
        named("jti", &self.jtis) || named("sid", &self.grants)
    }
}

type Verifier = Revocable<Arc<CachedVerifier<JwtVerifier>>, Arc<Revoked>>;

struct Fixture {
    base: String,
    http: reqwest::Client,
    key: SigningKey,
    /// The JWT verifier's clock, separate from the cache's: moving it past `exp` leaves the
    /// cache as the only way a token can still be accepted.
    jwt_clock: ManualClock,
    cached: Arc<CachedVerifier<JwtVerifier>>,
    revoked: Arc<Revoked>,
    verifier: Verifier,
}

impl Fixture {
    async fn start() -> Self {
        let key = SigningKey::es256("es-1");
        let jwt_clock = support::clock();
        let jwt = JwtVerifier::builder(ISSUER, &ResourceId::parse(RESOURCE).unwrap())
            .jwk(&key.jwk())
            .clock(jwt_clock.clone())
            .build()
            .unwrap();
        let cached = Arc::new(CachedVerifier::builder(jwt).clock(support::clock()).build());
        let revoked = Arc::new(Revoked::default());
        let verifier = Revocable::new(Arc::clone(&cached), Arc::clone(&revoked));

        let resource = ProtectedResource::builder(RESOURCE)
            .authorization_server(ISSUER)
            .build()
            .unwrap();
        async fn whoami(auth: Auth) -> String {
            auth.subject().unwrap_or_default().to_owned()
        }
        let app = Router::new()
            .route("/mcp", get(whoami))
            .layer(BearerAuthLayer::new(verifier.clone(), resource));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            http: reqwest::Client::new(),
            key,
            jwt_clock,
            cached,
            revoked,
            verifier,
        }
    }

    /// A token for this resource, valid for an hour, with this `jti` and grant id.
    fn token(&self, subject: &str, jti: &str, sid: &str) -> String {
        TokenBuilder::new(ISSUER, RESOURCE)
            .claim("sub", subject)
            .claim("jti", jti)
            .claim("sid", sid)
            .claim("exp", NOW + 3600)
            .sign(&self.key)
    }

    /// `GET /mcp` with the token: the status, the challenge and the body.
    async fn call(&self, token: &str) -> (u16, Option<String>, String) {
        let resp = self
            .http
            .get(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, resp.text().await.unwrap())
    }

    /// Moves the JWT verifier's clock a day ahead, past every token's `exp`: a fresh check now
    /// refuses `token` as expired, so a 200 for it can only come from the cache.
    async fn only_the_cache_accepts(&self, token: &str) {
        self.jwt_clock.advance(Duration::from_secs(86_400));
        let fresh = self.cached.get_ref().verify(token).await.unwrap_err();
        assert_eq!(fresh.kind(), VerifyErrorKind::Expired);
    }
}

fn ok(subject: &str) -> (u16, Option<String>, String) {
    (200, None, subject.to_owned())
}

fn not_active() -> (u16, Option<String>, String) {
    (401, Some(NOT_ACTIVE.to_owned()), String::new())
}

#[tokio::test]
async fn a_cached_token_revoked_by_jti_gets_401_on_the_next_request() {
    let f = Fixture::start().await;
    let alice = f.token("alice", "jti-a", "grant-a");
    let bob = f.token("bob", "jti-b", "grant-b");
    assert_eq!(f.call(&alice).await, ok("alice"));
    assert_eq!(f.call(&bob).await, ok("bob"));
    assert_eq!(f.cached.entry_count(), 2);

    f.only_the_cache_accepts(&alice).await;
    assert_eq!(f.call(&alice).await, ok("alice"));

    f.revoked.revoke_token("jti-a");
    assert_eq!(f.call(&alice).await, not_active());
    assert_eq!(f.call(&alice).await, not_active());
    // An unrelated token is still accepted, and the cache still holds alice's answer: the 401
    // came from the list, asked on a cache hit.
    assert_eq!(f.call(&bob).await, ok("bob"));
    assert!(matches!(f.cached.verify_cached(&alice), Some(Ok(_))));
    assert_eq!(f.cached.entry_count(), 2);
}

#[tokio::test]
async fn a_revoked_grant_refuses_every_cached_token_issued_under_it() {
    let f = Fixture::start().await;
    // Two access tokens of one grant (say, before and after a refresh), one of another grant.
    let first = f.token("alice", "jti-1", "grant-1");
    let refreshed = f.token("alice", "jti-2", "grant-1");
    let other = f.token("bob", "jti-3", "grant-2");
    for (token, subject) in [(&first, "alice"), (&refreshed, "alice"), (&other, "bob")] {
        assert_eq!(f.call(token).await, ok(subject));
    }
    f.only_the_cache_accepts(&first).await;

    f.revoked.revoke_grant("grant-1");
    assert_eq!(f.call(&first).await, not_active());
    assert_eq!(f.call(&refreshed).await, not_active());
    assert_eq!(f.call(&other).await, ok("bob"));
}

#[tokio::test]
async fn verify_cached_and_verify_both_ask_the_list() {
    let f = Fixture::start().await;
    let alice = f.token("alice", "jti-a", "grant-a");
    let bob = f.token("bob", "jti-b", "grant-b");

    // Fresh: verify, which caches; then the synchronous path answers from the cache.
    assert_eq!(
        f.verifier.verify(&alice).await.unwrap().subject(),
        Some("alice")
    );
    assert_eq!(
        f.verifier.verify_cached(&alice).unwrap().unwrap().jwt_id(),
        Some("jti-a")
    );
    assert!(f.verifier.verify(&bob).await.is_ok());
    assert_eq!(f.revoked.calls(), 3);
    f.only_the_cache_accepts(&alice).await;

    f.revoked.revoke_token("jti-a");
    let cached = f.verifier.verify_cached(&alice).unwrap().unwrap_err();
    assert_eq!(cached.kind(), VerifyErrorKind::Inactive);
    let fresh = f.verifier.verify(&alice).await.unwrap_err();
    assert_eq!(fresh.kind(), VerifyErrorKind::Inactive);
    assert!(f.verifier.verify_cached(&bob).unwrap().is_ok());
    assert_eq!(f.revoked.calls(), 6);

    // A token the inner verifier refuses keeps its reason, and the list is not asked.
    let unseen = f.token("carol", "jti-c", "grant-c");
    let refused = f.verifier.verify_cached(&unseen).unwrap().unwrap_err();
    assert_eq!(refused.kind(), VerifyErrorKind::Expired);
    assert_eq!(f.revoked.calls(), 6);
}

#[tokio::test]
async fn a_refused_token_keeps_its_reason_and_the_list_is_not_asked() {
    let f = Fixture::start().await;
    let forged = TokenBuilder::new(ISSUER, RESOURCE)
        .claim("exp", NOW + 3600)
        .sign(&SigningKey::es256("es-1"));
    let (status, challenge, _) = f.call(&forged).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .contains(r#"error_description="The access token signature is invalid""#)
    );
    assert_eq!(f.revoked.calls(), 0);
}

#[test]
fn debug_shows_the_verifier_but_not_the_revoked_identifiers() {
    let revoked = Revoked::default();
    revoked.revoke_token("jti-secret-ish");
    let verifier = Revocable::new(
        CachedVerifier::new(
            JwtVerifier::builder(ISSUER, &ResourceId::parse(RESOURCE).unwrap())
                .jwk(&SigningKey::es256("es-1").jwk())
                .build()
                .unwrap(),
        ),
        Arc::new(revoked),
    );
    let printed = format!("{verifier:?}");
    assert!(printed.starts_with("Revocable"), "{printed}");
    assert!(printed.contains("CachedVerifier"), "{printed}");
    assert!(printed.contains("Revoked"), "{printed}");
    assert!(!printed.contains("jti-secret-ish"), "{printed}");
}
