#![allow(clippy::unwrap_used, clippy::expect_used)]
// The record types are `#[non_exhaustive]`: outside the crate they can only be built with
// `Default` and field assignment (the struct literal clippy suggests does not compile).
#![allow(clippy::field_reassign_with_default)]
//! One suite every `Store` backend passes: each case is an `async fn(Arc<dyn Store>)`, and
//! `every_backend!` instantiates it as `memory::<case>`, `sqlite::<case>` (a fresh temp file
//! per test) and `postgres::<case>` (a fresh schema per test, dropped afterwards, in the
//! database at `MCP_AUTH_TEST_POSTGRES_URL`; unset or unreachable, the PostgreSQL tests print
//! that they skipped, or fail when `CI` is set). SQLite-only cases (restart, migrations) are in
//! `sqlite_file`, PostgreSQL-only ones (two pools as two processes, bounds) in `postgres_db`.

use std::sync::Arc;

use mcp_auth_core::metadata::ClientMetadata;
use mcp_auth_server::store::{
    ClientAuthMethod, ClientRecord, ClientSource, CodeRecord, CodeTake, ConsentRecord, FlowKind,
    FlowRecord, GrantRecord, LeaseTake, MemoryStore, RefreshLease, RefreshRecord, RefreshState,
    Revoked, Rotation, Store, StoredKey, TokenHash, UpstreamTokenRecord, Window,
};

const NOW: u64 = 1_700_000_000;

// ----- fixtures -----

/// A store plus whatever must live as long as it (the SQLite temp file, the PostgreSQL schema).
struct Fixture {
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _guard: Box::new(()),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite() -> Fixture {
    let file = TempDb::new("store-test");
    let store = mcp_auth_server::store::SqliteStore::open(&file.0)
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        _guard: Box::new(file),
    }
}

/// A store in a schema of its own, or `None` (skipped) when no PostgreSQL is reachable and `CI`
/// is not set.
#[cfg(feature = "postgres")]
async fn postgres() -> Option<Fixture> {
    let schema = pg::Schema::new().await?;
    let store = schema.connect().await;
    Some(Fixture {
        store: Arc::new(store),
        _guard: Box::new(schema),
    })
}

/// A database file in the temp dir, deleted (with its WAL files) on drop.
#[cfg(feature = "sqlite")]
#[path = "common/temp_db.rs"]
mod temp_db;
#[cfg(feature = "sqlite")]
use temp_db::TempDb;

/// The test database: its URL, a schema per test, raw connections.
#[cfg(feature = "postgres")]
#[path = "common/pg.rs"]
mod pg;

fn metadata() -> ClientMetadata {
    serde_json::from_value(serde_json::json!({
        "redirect_uris": ["http://127.0.0.1:33418/callback", "https://app.example/cb?x=1"],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "Test Client ✓",
        "scope": "mcp:tools mcp:read",
        "software_statement_extra": {"nested": [1, 2, 3]},
    }))
    .unwrap()
}

fn code(secret: &str, grant_id: &str, expires_at: u64) -> CodeRecord {
    let mut code = CodeRecord::default();
    code.hash = TokenHash::of(secret);
    code.client_id = "client-1".into();
    code.redirect_uri = "http://127.0.0.1:33418/callback".into();
    code.redirect_uri_in_request = true;
    code.code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into();
    code.resource = "https://mcp.example.com/mcp".into();
    code.scope = "mcp:tools".into();
    code.subject = "alice".into();
    code.grant_id = grant_id.into();
    code.issued_at = NOW;
    code.expires_at = expires_at;
    code
}

fn grant(grant_id: &str, expires_at: u64) -> GrantRecord {
    let mut grant = GrantRecord::default();
    grant.grant_id = grant_id.into();
    grant.client_id = "client-1".into();
    grant.subject = "alice".into();
    grant.scope = "mcp:tools mcp:read".into();
    grant.resource = "https://mcp.example.com/mcp".into();
    grant.created_at = NOW;
    grant.expires_at = expires_at;
    grant
}

fn refresh(secret: &str, grant_id: &str, expires_at: u64) -> RefreshRecord {
    let mut refresh = RefreshRecord::default();
    refresh.hash = TokenHash::of(secret);
    refresh.grant_id = grant_id.into();
    refresh.scope = "mcp:tools mcp:read".into();
    refresh.issued_at = NOW;
    refresh.expires_at = expires_at;
    refresh.state = RefreshState::Active;
    refresh
}

fn consent(resource: &str, scope: &str, updated_at: u64) -> ConsentRecord {
    let mut consent = ConsentRecord::default();
    consent.subject = "alice".into();
    consent.client_id = "client-1".into();
    consent.resource = resource.into();
    consent.scope = scope.into();
    consent.updated_at = updated_at;
    consent
}

const KEY_BYTES: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x5e, 0xc2, 0xe7, 0x42];

fn key(kid: &str, created_at: u64) -> StoredKey {
    let mut key = StoredKey::default();
    key.kid = kid.into();
    key.alg = "ES256".into();
    key.pkcs8 = zeroize::Zeroizing::new(KEY_BYTES.to_vec());
    key.created_at = created_at;
    key.activates_at = created_at + 60;
    key
}

/// Rotate with strict reuse detection (no grace window).
async fn rotate(
    store: &dyn Store,
    old: &str,
    new: RefreshRecord,
    now: u64,
) -> Result<Rotation, mcp_auth_server::store::StoreError> {
    rotate_within(store, old, new, now, 0).await
}

/// Rotate with a grace window of `grace` seconds.
async fn rotate_within(
    store: &dyn Store,
    old: &str,
    new: RefreshRecord,
    now: u64,
    grace: u64,
) -> Result<Rotation, mcp_auth_server::store::StoreError> {
    store
        .rotate_refresh(&TokenHash::of(old), new, now, grace)
        .await
}

async fn state_of(store: &dyn Store, secret: &str) -> Option<RefreshState> {
    store
        .get_refresh(&TokenHash::of(secret))
        .await
        .unwrap()
        .map(|(r, _)| r.state)
}

// ----- cases -----

async fn a_refresh_tokens_dpop_binding_is_kept_through_rotation(store: Arc<dyn Store>) {
    let g = grant("grant-dpop", NOW + 10_000);
    let mut r = refresh("dpop-rt-1", "grant-dpop", NOW + 5_000);
    r.dpop_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
    store.create_grant(g, Some(r.clone())).await.unwrap();
    let (stored, _) = store
        .get_refresh(&TokenHash::of("dpop-rt-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.dpop_jkt, r.dpop_jkt);
    let mut next = refresh("dpop-rt-2", "grant-dpop", NOW + 5_000);
    next.dpop_jkt = r.dpop_jkt.clone();
    assert_eq!(
        rotate(store.as_ref(), "dpop-rt-1", next, NOW + 1)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    let (stored, _) = store
        .get_refresh(&TokenHash::of("dpop-rt-2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.dpop_jkt, r.dpop_jkt);
    // An unbound token stays unbound.
    let g = grant("grant-plain", NOW + 10_000);
    store
        .create_grant(g, Some(refresh("plain-rt", "grant-plain", NOW + 5_000)))
        .await
        .unwrap();
    let (stored, _) = store
        .get_refresh(&TokenHash::of("plain-rt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.dpop_jkt, None);
}

async fn client_round_trip_keeps_metadata_secret_hash_method_and_source(store: Arc<dyn Store>) {
    let mut confidential = ClientRecord::confidential(
        "client-1",
        ClientAuthMethod::ClientSecretPost,
        TokenHash::of("s3cret"),
        metadata(),
        NOW,
    )
    .with_source(ClientSource::Static);
    confidential.secret_expires_at = NOW + 86_400;
    store.put_client(confidential.clone()).await.unwrap();
    let public = ClientRecord::public("client-2", ClientMetadata::default(), NOW + 1);
    store.put_client(public.clone()).await.unwrap();

    let got = store.get_client("client-1").await.unwrap().unwrap();
    assert_eq!(got, confidential);
    assert!(got.secret_hash.unwrap().verify("s3cret"));
    assert!(!got.is_public());
    assert_eq!(store.get_client("client-2").await.unwrap(), Some(public));
    assert_eq!(store.get_client("nobody").await.unwrap(), None);

    // put replaces.
    let mut replaced = confidential.clone();
    replaced.metadata.client_name = Some("Renamed".into());
    replaced.auth_method = ClientAuthMethod::ClientSecretBasic;
    replaced.source = ClientSource::Dynamic;
    store.put_client(replaced.clone()).await.unwrap();
    assert_eq!(store.get_client("client-1").await.unwrap(), Some(replaced));

    assert!(store.delete_client("client-1").await.unwrap());
    assert!(!store.delete_client("client-1").await.unwrap());
    assert_eq!(store.get_client("client-1").await.unwrap(), None);
    assert!(store.get_client("client-2").await.unwrap().is_some());
}

async fn code_is_fresh_then_replayed_and_other_hashes_are_unknown(store: Arc<dyn Store>) {
    let issued = code("code-1", "grant-1", NOW + 60);
    store.put_code(issued.clone()).await.unwrap();

    let hash = TokenHash::of("code-1");
    assert_eq!(
        store.take_code(&hash).await.unwrap(),
        CodeTake::Fresh(issued.clone())
    );
    assert_eq!(
        store.take_code(&hash).await.unwrap(),
        CodeTake::Replayed(issued.clone())
    );
    assert_eq!(
        store.take_code(&hash).await.unwrap(),
        CodeTake::Replayed(issued)
    );
    assert_eq!(
        store.take_code(&TokenHash::of("code-2")).await.unwrap(),
        CodeTake::Unknown
    );
}

async fn storing_a_code_twice_is_refused_so_a_used_code_cannot_become_fresh(store: Arc<dyn Store>) {
    let issued = code("code-1", "grant-1", NOW + 60);
    store.put_code(issued.clone()).await.unwrap();
    let hash = TokenHash::of("code-1");
    assert!(matches!(
        store.take_code(&hash).await.unwrap(),
        CodeTake::Fresh(_)
    ));
    assert!(store.put_code(issued).await.is_err());
    assert!(matches!(
        store.take_code(&hash).await.unwrap(),
        CodeTake::Replayed(_)
    ));
}

async fn code_is_consumed_exactly_once_by_64_concurrent_takes(store: Arc<dyn Store>) {
    store
        .put_code(code("raced", "grant-1", NOW + 60))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_code(&TokenHash::of("raced")).await.unwrap() })
        })
        .collect();
    let (mut fresh, mut replayed) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            CodeTake::Fresh(_) => fresh += 1,
            CodeTake::Replayed(_) => replayed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((fresh, replayed), (1, 63));
}

async fn grant_is_stored_with_its_first_refresh_token(store: Arc<dyn Store>) {
    let g = grant("grant-1", NOW + 86_400);
    let r = refresh("rt-1", "grant-1", NOW + 3_600);
    store
        .create_grant(g.clone(), Some(r.clone()))
        .await
        .unwrap();
    assert_eq!(store.get_grant("grant-1").await.unwrap(), Some(g.clone()));
    assert_eq!(
        store.get_refresh(&TokenHash::of("rt-1")).await.unwrap(),
        Some((r, g))
    );
    assert_eq!(
        store.get_refresh(&TokenHash::of("rt-x")).await.unwrap(),
        None
    );
    assert_eq!(store.get_grant("grant-x").await.unwrap(), None);

    // client credentials: a grant without a refresh token.
    let cc = grant("grant-cc", NOW + 3_600);
    store.create_grant(cc.clone(), None).await.unwrap();
    assert_eq!(store.get_grant("grant-cc").await.unwrap(), Some(cc));
}

async fn a_grant_or_refresh_token_cannot_be_stored_twice_or_under_another_grant(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 60)),
        )
        .await
        .unwrap();
    assert!(
        store
            .create_grant(grant("grant-1", NOW + 86_400), None)
            .await
            .is_err()
    );
    assert!(
        store
            .create_grant(
                grant("grant-2", NOW + 86_400),
                Some(refresh("rt-1", "grant-2", NOW + 60))
            )
            .await
            .is_err()
    );
    assert!(
        store
            .create_grant(
                grant("grant-3", NOW + 86_400),
                Some(refresh("rt-3", "grant-1", NOW + 60))
            )
            .await
            .is_err()
    );
    // A failed create leaves nothing behind.
    assert_eq!(store.get_grant("grant-2").await.unwrap(), None);
    assert_eq!(store.get_grant("grant-3").await.unwrap(), None);
    assert_eq!(state_of(&*store, "rt-3").await, None);
}

async fn reusing_a_rotated_refresh_token_revokes_the_grant_and_its_successor(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let old = TokenHash::of("rt-1");

    let successor = refresh("rt-2", "grant-1", NOW + 7_200);
    assert_eq!(
        store
            .rotate_refresh(&old, successor.clone(), NOW + 10, 0)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(state_of(&*store, "rt-1").await, Some(RefreshState::Rotated));
    let (stored, g) = store
        .get_refresh(&TokenHash::of("rt-2"))
        .await
        .unwrap()
        .unwrap();
    let mut expected = successor.clone();
    expected.parent = Some(old);
    assert_eq!(
        stored, expected,
        "the store links the successor to its parent"
    );
    assert!(g.is_active(NOW + 10));
    let (rotated, _) = store.get_refresh(&old).await.unwrap().unwrap();
    assert_eq!(rotated.rotated_at, Some(NOW + 10));

    // The old token again: reuse. The whole family goes.
    let reused = store.rotate_refresh(&old, refresh("rt-3", "grant-1", NOW + 7_200), NOW + 20, 0);
    assert_eq!(
        reused.await.unwrap(),
        Rotation::Reused {
            grant_id: "grant-1".into()
        }
    );
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 20));
    assert!(!g.is_active(NOW + 20));
    assert_eq!(state_of(&*store, "rt-1").await, Some(RefreshState::Revoked));
    assert_eq!(state_of(&*store, "rt-2").await, Some(RefreshState::Revoked));
    assert_eq!(
        state_of(&*store, "rt-3").await,
        None,
        "no successor stored on reuse"
    );

    // The successor is now unusable, and so is the old token.
    let next = refresh("rt-4", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate(&*store, "rt-2", next.clone(), NOW + 30)
            .await
            .unwrap(),
        Rotation::Revoked
    );
    assert_eq!(
        store.rotate_refresh(&old, next, NOW + 30, 0).await.unwrap(),
        Rotation::Revoked
    );
    assert_eq!(state_of(&*store, "rt-4").await, None);
    // The revocation time is the first one.
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 20));
}

async fn rotating_an_unknown_token_or_into_another_grant_changes_nothing(store: Arc<dyn Store>) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let unknown = rotate(&*store, "rt-x", refresh("rt-y", "grant-1", NOW), NOW);
    assert_eq!(unknown.await.unwrap(), Rotation::Unknown);
    assert_eq!(state_of(&*store, "rt-y").await, None);

    let foreign = refresh("rt-2", "grant-other", NOW + 3_600);
    assert!(rotate(&*store, "rt-1", foreign, NOW).await.is_err());
    assert_eq!(state_of(&*store, "rt-1").await, Some(RefreshState::Active));
    assert_eq!(state_of(&*store, "rt-2").await, None);
}

async fn refresh_token_is_rotated_exactly_once_by_64_concurrent_rotations(store: Arc<dyn Store>) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-0", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = refresh(&format!("rt-next-{i}"), "grant-1", NOW + 7_200);
                rotate(&*store, "rt-0", new, NOW + 1).await.unwrap()
            })
        })
        .collect();
    let (mut rotated, mut reused, mut revoked) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated => rotated += 1,
            Rotation::Reused { grant_id } => {
                assert_eq!(grant_id, "grant-1");
                reused += 1;
            }
            Rotation::Revoked => revoked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The winner rotates, the next caller is a reuse that revokes the family, the rest find it
    // revoked.
    assert_eq!((rotated, reused, revoked), (1, 1, 62));
    assert!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let mut stored_successors = 0;
    for i in 0..64 {
        if let Some(state) = state_of(&*store, &format!("rt-next-{i}")).await {
            assert_eq!(state, RefreshState::Revoked);
            stored_successors += 1;
        }
    }
    assert_eq!(stored_successors, 1);
}

const GRACE: u64 = 30;

async fn twenty_concurrent_refreshes_with_one_token_inside_the_grace_window_all_succeed_in_one_family(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-0", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = refresh(&format!("rt-next-{i}"), "grant-1", NOW + 7_200);
                rotate_within(&*store, "rt-0", new, NOW + 1, GRACE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut rotated, mut within_grace) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated => rotated += 1,
            Rotation::WithinGrace => within_grace += 1,
            other => panic!("a concurrent refresh failed: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    // One rotation, the other 19 inside the window: every caller gets a token, nothing revoked.
    assert_eq!((rotated, within_grace), (1, 19));
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, None);
    let mut distinct = std::collections::HashSet::new();
    for i in 0..20 {
        let (token, g) = store
            .get_refresh(&TokenHash::of(&format!("rt-next-{i}")))
            .await
            .unwrap()
            .expect("every successor stored");
        assert_eq!(token.state, RefreshState::Active);
        assert_eq!(g.grant_id, "grant-1", "one family");
        assert_eq!(token.parent, Some(TokenHash::of("rt-0")));
        distinct.insert(token.hash);
    }
    assert_eq!(distinct.len(), 20);
    println!(
        "20 concurrent refreshes with one token: {rotated} rotated + {within_grace} within grace, \
         {} distinct successors, 0 revoked, {:.1} ms",
        distinct.len(),
        elapsed.as_secs_f64() * 1000.0
    );

    // The first successor used wins: its siblings are superseded (one live branch), so a
    // sibling presented later is reuse, and so is the original token now.
    let next = refresh("rt-after", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-next-7", next, NOW + 2, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(
        state_of(&*store, "rt-next-3").await,
        Some(RefreshState::Rotated)
    );
    let sibling = refresh("rt-sibling", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-next-3", sibling, NOW + 3, GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: "grant-1".into()
        }
    );
    assert_eq!(
        state_of(&*store, "rt-after").await,
        Some(RefreshState::Revoked)
    );
    assert_eq!(state_of(&*store, "rt-sibling").await, None);
}

async fn a_replay_after_the_successor_was_used_revokes_the_family_even_inside_the_window(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let r2 = refresh("rt-2", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", r2, NOW + 10, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    let r3 = refresh("rt-3", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-2", r3, NOW + 11, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    // rt-1 again, 2 s after its rotation, but its successor rt-2 was used: reuse.
    let replay = refresh("rt-x", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", replay, NOW + 12, GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: "grant-1".into()
        }
    );
    assert!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    for secret in ["rt-1", "rt-2", "rt-3"] {
        assert_eq!(
            state_of(&*store, secret).await,
            Some(RefreshState::Revoked),
            "{secret}"
        );
    }
    assert_eq!(state_of(&*store, "rt-x").await, None);
}

async fn the_grace_window_counts_from_the_first_rotation_and_ends_after_its_last_second(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let first = refresh("rt-2", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", first, NOW + 10, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    // Exactly `GRACE` seconds later: still inside.
    let edge = refresh("rt-3", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", edge, NOW + 10 + GRACE, GRACE)
            .await
            .unwrap(),
        Rotation::WithinGrace
    );
    // One second more (a grace replay does not extend the window): reuse.
    let late = refresh("rt-4", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", late, NOW + 11 + GRACE, GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: "grant-1".into()
        }
    );
    assert_eq!(state_of(&*store, "rt-3").await, Some(RefreshState::Revoked));
    assert_eq!(state_of(&*store, "rt-4").await, None);
}

async fn a_replay_inside_the_window_for_a_revoked_grant_is_refused_without_a_successor(
    store: Arc<dyn Store>,
) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let r2 = refresh("rt-2", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", r2, NOW + 10, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert!(store.revoke_grant("grant-1", NOW + 11).await.unwrap());
    let replay = refresh("rt-3", "grant-1", NOW + 7_200);
    assert_eq!(
        rotate_within(&*store, "rt-1", replay, NOW + 12, GRACE)
            .await
            .unwrap(),
        Rotation::Revoked
    );
    assert_eq!(state_of(&*store, "rt-3").await, None);

    // A grant past its end is not active either: no grace, reuse.
    store
        .create_grant(
            grant("grant-2", NOW + 20),
            Some(refresh("rt-a", "grant-2", NOW + 20)),
        )
        .await
        .unwrap();
    let b = refresh("rt-b", "grant-2", NOW + 20);
    assert_eq!(
        rotate_within(&*store, "rt-a", b, NOW + 10, GRACE)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    let c = refresh("rt-c", "grant-2", NOW + 20);
    assert_eq!(
        rotate_within(&*store, "rt-a", c, NOW + 20, GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: "grant-2".into()
        }
    );
    assert_eq!(state_of(&*store, "rt-c").await, None);
}

async fn revoking_a_grant_revokes_every_refresh_token_of_its_family(store: Arc<dyn Store>) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-1", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    let rotation = rotate(
        &*store,
        "rt-1",
        refresh("rt-2", "grant-1", NOW + 3_600),
        NOW,
    );
    assert_eq!(rotation.await.unwrap(), Rotation::Rotated);
    store
        .create_grant(
            grant("grant-2", NOW + 86_400),
            Some(refresh("rt-other", "grant-2", NOW + 3_600)),
        )
        .await
        .unwrap();

    assert!(store.revoke_grant("grant-1", NOW + 5).await.unwrap());
    assert!(
        !store.revoke_grant("grant-1", NOW + 6).await.unwrap(),
        "already revoked"
    );
    assert!(
        !store.revoke_grant("grant-x", NOW + 6).await.unwrap(),
        "unknown"
    );
    assert_eq!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 5)
    );
    assert_eq!(state_of(&*store, "rt-1").await, Some(RefreshState::Revoked));
    assert_eq!(state_of(&*store, "rt-2").await, Some(RefreshState::Revoked));
    let again = rotate(
        &*store,
        "rt-2",
        refresh("rt-3", "grant-1", NOW + 3_600),
        NOW + 7,
    );
    assert_eq!(again.await.unwrap(), Rotation::Revoked);

    // Other families are untouched.
    assert_eq!(
        state_of(&*store, "rt-other").await,
        Some(RefreshState::Active)
    );
    assert!(
        store
            .get_grant("grant-2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );

    // An expired grant was not active, but is still marked revoked.
    store
        .create_grant(grant("grant-old", NOW + 10), None)
        .await
        .unwrap();
    assert!(!store.revoke_grant("grant-old", NOW + 10).await.unwrap());
    assert_eq!(
        store
            .get_grant("grant-old")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 10)
    );
}

async fn revoked_access_tokens_are_deny_listed_by_jti(store: Arc<dyn Store>) {
    assert!(!store.is_access_token_revoked("jti-1").await.unwrap());
    store
        .revoke_access_token("jti-1", NOW + 300, NOW)
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", NOW + 300, NOW)
        .await
        .unwrap(); // idempotent
    assert!(store.is_access_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_access_token_revoked("jti-2").await.unwrap());
}

async fn consent_merges_scopes_in_order_without_duplicates(store: Arc<dyn Store>) {
    let mcp = "https://mcp.example.com/mcp";
    assert_eq!(
        store.get_consent("alice", "client-1", mcp).await.unwrap(),
        None
    );
    store
        .put_consent(consent(mcp, "mcp:read mcp:tools", NOW))
        .await
        .unwrap();
    store
        .put_consent(consent(
            mcp,
            "mcp:tools  mcp:admin mcp:read mcp:admin",
            NOW + 9,
        ))
        .await
        .unwrap();
    let merged = store
        .get_consent("alice", "client-1", mcp)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(merged.scope, "mcp:read mcp:tools mcp:admin");
    assert_eq!(merged.updated_at, NOW + 9);
    assert_eq!(
        (merged.subject.as_str(), merged.client_id.as_str()),
        ("alice", "client-1")
    );
    assert_eq!(merged.resource, mcp);

    // Another resource, client or subject is another consent.
    let other = "https://other.example.com/mcp";
    store.put_consent(consent(other, "x", NOW)).await.unwrap();
    assert_eq!(
        store
            .get_consent("alice", "client-1", other)
            .await
            .unwrap()
            .unwrap()
            .scope,
        "x"
    );
    assert_eq!(
        store.get_consent("alice", "client-2", mcp).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_consent("bob", "client-1", mcp).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_consent("alice", "client-1", mcp)
            .await
            .unwrap()
            .unwrap()
            .scope,
        "mcp:read mcp:tools mcp:admin"
    );
}

async fn keys_are_listed_oldest_first_and_never_shown_in_debug(store: Arc<dyn Store>) {
    for (kid, created_at) in [("k3", 300), ("k1", 100), ("kb", 200), ("ka", 200)] {
        store.put_key(key(kid, created_at)).await.unwrap();
    }
    let kids = |keys: Vec<StoredKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    assert_eq!(
        kids(store.list_keys().await.unwrap()),
        ["k1", "ka", "kb", "k3"]
    );

    // put replaces (retiring a key).
    let mut retired = key("k1", 100);
    retired.retired_at = Some(400);
    store.put_key(retired.clone()).await.unwrap();
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[0], retired);
    assert_eq!(keys[0].pkcs8.as_slice(), KEY_BYTES);
    assert_eq!(keys[0].activates_at, 160);

    for shown in [
        format!("{keys:?}"),
        format!("{keys:#?}"),
        format!("{store:?}"),
    ] {
        for bytes in [
            "deadbeef".to_owned(),
            "de ad be ef".to_owned(),
            format!("{:?}", &KEY_BYTES[..4]),
            format!("{:?}", &KEY_BYTES[..]),
        ] {
            assert!(
                !shown.to_lowercase().contains(&bytes),
                "{shown} shows {bytes}"
            );
        }
    }
    assert!(format!("{keys:?}").contains("REDACTED"));

    assert!(store.delete_key("ka").await.unwrap());
    assert!(!store.delete_key("ka").await.unwrap());
    assert_eq!(kids(store.list_keys().await.unwrap()), ["k1", "kb", "k3"]);
}

async fn purge_expired_removes_exactly_what_expired(store: Arc<dyn Store>) {
    let now = NOW + 1_000;
    // Codes: expired unused, expired used, live unused, live used.
    for (secret, expires_at) in [
        ("c-old", now),
        ("c-old-used", now - 1),
        ("c-live", now + 1),
        ("c-live-used", now + 60),
    ] {
        store
            .put_code(code(secret, "grant-x", expires_at))
            .await
            .unwrap();
    }
    for used in ["c-old-used", "c-live-used"] {
        assert!(matches!(
            store.take_code(&TokenHash::of(used)).await.unwrap(),
            CodeTake::Fresh(_)
        ));
    }
    // An expired grant whose refresh tokens have not expired yet: all go.
    store
        .create_grant(
            grant("g-old", now),
            Some(refresh("rt-old-1", "g-old", now + 500)),
        )
        .await
        .unwrap();
    let r = rotate(
        &*store,
        "rt-old-1",
        refresh("rt-old-2", "g-old", now + 600),
        NOW,
    );
    assert_eq!(r.await.unwrap(), Rotation::Rotated);
    // A live grant with one expired and one live refresh token (rotated earlier).
    store
        .create_grant(
            grant("g-live", now + 86_400),
            Some(refresh("rt-live-1", "g-live", now)),
        )
        .await
        .unwrap();
    let r = rotate(
        &*store,
        "rt-live-1",
        refresh("rt-live-2", "g-live", now + 1),
        NOW,
    );
    assert_eq!(r.await.unwrap(), Rotation::Rotated);
    // A revoked, live grant stays (reuse must keep being detected).
    store
        .create_grant(
            grant("g-revoked", now + 5),
            Some(refresh("rt-revoked", "g-revoked", now + 5)),
        )
        .await
        .unwrap();
    assert!(store.revoke_grant("g-revoked", NOW).await.unwrap());
    // Deny list.
    store
        .revoke_access_token("jti-old", now, NOW)
        .await
        .unwrap();
    store
        .revoke_access_token("jti-live", now + 1, NOW)
        .await
        .unwrap();
    // Things without expiry.
    store
        .put_client(ClientRecord::public(
            "client-1",
            ClientMetadata::default(),
            0,
        ))
        .await
        .unwrap();
    store
        .put_consent(consent("https://mcp.example.com/mcp", "mcp:tools", 0))
        .await
        .unwrap();
    store.put_key(key("k1", 0)).await.unwrap();

    // 2 codes + 2 refresh tokens of g-old + rt-live-1 + g-old + jti-old.
    assert_eq!(store.purge_expired(now).await.unwrap(), 7);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);

    assert_eq!(
        store.take_code(&TokenHash::of("c-old")).await.unwrap(),
        CodeTake::Unknown
    );
    assert_eq!(
        store.take_code(&TokenHash::of("c-old-used")).await.unwrap(),
        CodeTake::Unknown
    );
    assert!(matches!(
        store.take_code(&TokenHash::of("c-live")).await.unwrap(),
        CodeTake::Fresh(_)
    ));
    assert!(matches!(
        store
            .take_code(&TokenHash::of("c-live-used"))
            .await
            .unwrap(),
        CodeTake::Replayed(_)
    ));
    assert_eq!(store.get_grant("g-old").await.unwrap(), None);
    assert_eq!(state_of(&*store, "rt-old-1").await, None);
    assert_eq!(state_of(&*store, "rt-old-2").await, None);
    assert_eq!(state_of(&*store, "rt-live-1").await, None);
    assert_eq!(
        state_of(&*store, "rt-live-2").await,
        Some(RefreshState::Active)
    );
    assert!(store.get_grant("g-live").await.unwrap().is_some());
    assert_eq!(
        state_of(&*store, "rt-revoked").await,
        Some(RefreshState::Revoked)
    );
    assert!(!store.is_access_token_revoked("jti-old").await.unwrap());
    assert!(store.is_access_token_revoked("jti-live").await.unwrap());
    assert!(store.get_client("client-1").await.unwrap().is_some());
    assert!(
        store
            .get_consent("alice", "client-1", "https://mcp.example.com/mcp")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list_keys().await.unwrap().len(), 1);

    // A rotation of an expired-then-purged token is unknown; the rest expire later.
    let r = rotate(
        &*store,
        "rt-live-1",
        refresh("rt-z", "g-live", now + 9),
        now,
    );
    assert_eq!(r.await.unwrap(), Rotation::Unknown);
    // c-live + g-revoked and its token + rt-live-2 + jti-live; c-live-used lasts until now + 60.
    assert_eq!(store.purge_expired(now + 5).await.unwrap(), 5);
    assert!(matches!(
        store
            .take_code(&TokenHash::of("c-live-used"))
            .await
            .unwrap(),
        CodeTake::Replayed(_)
    ));
    assert_eq!(store.purge_expired(now + 60).await.unwrap(), 1);
}

fn upstream_record(subject: &str, upstream: &str, ciphertext: &[u8]) -> UpstreamTokenRecord {
    let mut record = UpstreamTokenRecord::default();
    record.subject = subject.into();
    record.upstream = upstream.into();
    record.key_id = "key-1".into();
    record.nonce = vec![7; 12];
    record.ciphertext = ciphertext.to_vec();
    record.updated_at = NOW;
    record
}

fn lease(holder: &str, until: u64) -> RefreshLease {
    let mut lease = RefreshLease::default();
    lease.holder = holder.into();
    lease.until = until;
    lease
}

const IDP: &str = "https://idp.example.com";

async fn upstream_tokens_are_kept_per_subject_and_upstream_replaced_and_deleted_per_subject(
    store: Arc<dyn Store>,
) {
    let alice = upstream_record("alice", IDP, b"\x00alice-sealed\xff");
    store.put_upstream_tokens(alice.clone()).await.unwrap();
    store
        .put_upstream_tokens(upstream_record("alice", "https://other.example", b"other"))
        .await
        .unwrap();
    store
        .put_upstream_tokens(upstream_record("bob", IDP, b"bob"))
        .await
        .unwrap();
    assert_eq!(
        store.get_upstream_tokens("alice", IDP).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.get_upstream_tokens("carol", IDP).await.unwrap(), None);
    assert_eq!(
        store
            .get_upstream_tokens("alice", "https://nope.example")
            .await
            .unwrap(),
        None
    );

    // Replacing (a new sign-in) ends a lease someone held on the old record.
    let granted = store
        .lease_upstream_refresh("alice", IDP, lease("h1", NOW + 30), NOW)
        .await
        .unwrap();
    assert!(matches!(granted, LeaseTake::Granted(_)));
    let mut newer = upstream_record("alice", IDP, b"newer");
    newer.key_id = "key-2".into();
    newer.updated_at = NOW + 5;
    store.put_upstream_tokens(newer.clone()).await.unwrap();
    let stored = store
        .get_upstream_tokens("alice", IDP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, newer);
    assert_eq!(stored.refresh_lease, None);
    assert!(
        !store
            .finish_upstream_refresh(upstream_record("alice", IDP, b"stale"), "h1")
            .await
            .unwrap(),
        "the old holder cannot overwrite what a sign-in put"
    );

    // Debug shows neither the nonce nor the ciphertext.
    let shown = format!("{stored:?}");
    assert!(!shown.contains("110, 101, 119"), "{shown}"); // b"new"
    assert!(
        shown.contains("alice") && shown.contains("key-2"),
        "{shown}"
    );

    assert_eq!(store.delete_upstream_tokens("alice").await.unwrap(), 2);
    assert_eq!(store.delete_upstream_tokens("alice").await.unwrap(), 0);
    assert_eq!(store.get_upstream_tokens("alice", IDP).await.unwrap(), None);
    assert!(
        store
            .get_upstream_tokens("bob", IDP)
            .await
            .unwrap()
            .is_some()
    );
}

async fn the_refresh_lease_goes_to_one_of_64_concurrent_callers_until_it_ends_or_is_released(
    store: Arc<dyn Store>,
) {
    assert_eq!(
        store
            .lease_upstream_refresh("alice", IDP, lease("h0", NOW + 30), NOW)
            .await
            .unwrap(),
        LeaseTake::Missing
    );
    store
        .put_upstream_tokens(upstream_record("alice", IDP, b"v1"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let holder = format!("h{i}");
                let take = store
                    .lease_upstream_refresh("alice", IDP, lease(&holder, NOW + 30), NOW)
                    .await
                    .unwrap();
                (holder, take)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (holder, LeaseTake::Granted(record)) => {
                assert_eq!(record.ciphertext, b"v1");
                assert_eq!(record.refresh_lease, Some(lease(&holder, NOW + 30)));
                winners.push(holder);
            }
            (_, LeaseTake::Busy { until }) => assert_eq!(until, NOW + 30),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners.remove(0);

    // Only the holder may finish; finishing stores the tokens and frees the lease.
    let mut v2 = upstream_record("alice", IDP, b"v2");
    v2.updated_at = NOW + 1;
    assert!(
        !store
            .finish_upstream_refresh(v2.clone(), "somebody-else")
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_upstream_refresh(v2.clone(), &winner)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_upstream_tokens("alice", IDP).await.unwrap(),
        Some(v2)
    );
    assert!(
        !store
            .finish_upstream_refresh(upstream_record("alice", IDP, b"v3"), &winner)
            .await
            .unwrap(),
        "a finished lease cannot finish twice"
    );

    // A lease that ran out is taken over; a released one at once.
    assert!(matches!(
        store
            .lease_upstream_refresh("alice", IDP, lease("a", NOW + 30), NOW + 2)
            .await
            .unwrap(),
        LeaseTake::Granted(_)
    ));
    assert_eq!(
        store
            .lease_upstream_refresh("alice", IDP, lease("b", NOW + 60), NOW + 29)
            .await
            .unwrap(),
        LeaseTake::Busy { until: NOW + 30 }
    );
    assert!(matches!(
        store
            .lease_upstream_refresh("alice", IDP, lease("b", NOW + 60), NOW + 30)
            .await
            .unwrap(),
        LeaseTake::Granted(_)
    ));
    assert!(
        !store
            .finish_upstream_refresh(upstream_record("alice", IDP, b"late"), "a")
            .await
            .unwrap(),
        "the holder whose lease ran out lost it"
    );
    store
        .release_upstream_refresh("alice", IDP, "a")
        .await
        .unwrap();
    assert_eq!(
        store
            .lease_upstream_refresh("alice", IDP, lease("c", NOW + 90), NOW + 31)
            .await
            .unwrap(),
        LeaseTake::Busy { until: NOW + 60 },
        "only the holder releases"
    );
    store
        .release_upstream_refresh("alice", IDP, "b")
        .await
        .unwrap();
    let stored = store
        .get_upstream_tokens("alice", IDP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_lease, None);
    assert_eq!(stored.ciphertext, b"v2", "releasing keeps the tokens");
    assert!(matches!(
        store
            .lease_upstream_refresh("alice", IDP, lease("c", NOW + 90), NOW + 31)
            .await
            .unwrap(),
        LeaseTake::Granted(_)
    ));
    // Deleting ends everything: the holder finds nothing to finish.
    store.delete_upstream_tokens("alice").await.unwrap();
    assert!(
        !store
            .finish_upstream_refresh(upstream_record("alice", IDP, b"v4"), "c")
            .await
            .unwrap()
    );
    assert_eq!(store.get_upstream_tokens("alice", IDP).await.unwrap(), None);
}

async fn active_grants_of_a_subject_exclude_revoked_expired_and_other_users(store: Arc<dyn Store>) {
    store
        .create_grant(grant("g-b", NOW + 100), None)
        .await
        .unwrap();
    store
        .create_grant(grant("g-a", NOW + 100), None)
        .await
        .unwrap();
    store
        .create_grant(grant("g-expired", NOW + 10), None)
        .await
        .unwrap();
    store
        .create_grant(grant("g-revoked", NOW + 100), None)
        .await
        .unwrap();
    store.revoke_grant("g-revoked", NOW).await.unwrap();
    let mut bobs = grant("g-bob", NOW + 100);
    bobs.subject = "bob".into();
    store.create_grant(bobs, None).await.unwrap();

    let ids = |grants: Vec<GrantRecord>| -> Vec<String> {
        grants.into_iter().map(|g| g.grant_id).collect()
    };
    assert_eq!(
        ids(store.list_active_grants("alice", NOW + 5).await.unwrap()),
        ["g-a", "g-b", "g-expired"]
    );
    assert_eq!(
        ids(store.list_active_grants("alice", NOW + 10).await.unwrap()),
        ["g-a", "g-b"]
    );
    assert_eq!(
        ids(store.list_active_grants("bob", NOW).await.unwrap()),
        ["g-bob"]
    );
    assert!(
        store
            .list_active_grants("carol", NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn public_clients_are_stored_once_per_registration_key_even_by_64_concurrent_puts(
    store: Arc<dyn Store>,
) {
    let key = TokenHash::of("canonical metadata A");
    assert_eq!(store.find_public_client(&key).await.unwrap(), None);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let client = ClientRecord::public(format!("pub-{i}"), metadata(), NOW + i);
                store.put_public_client(client, key).await.unwrap()
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut returned = std::collections::HashSet::new();
    for task in tasks {
        let (client, new) = task.await.unwrap();
        if new {
            created.push(client.client_id.clone());
        }
        returned.insert(client.client_id);
    }
    assert_eq!(created.len(), 1, "exactly one put creates the client");
    assert_eq!(returned.len(), 1, "every put returns that client");
    let winner = store.find_public_client(&key).await.unwrap().unwrap();
    assert_eq!(winner.client_id, created[0]);
    assert_eq!(
        store.get_client(&created[0]).await.unwrap(),
        Some(winner.clone())
    );
    for i in 0..64 {
        let id = format!("pub-{i}");
        assert_eq!(
            store.get_client(&id).await.unwrap().is_some(),
            id == created[0]
        );
    }

    // Another key is another client; a client_id already taken is refused.
    let other = TokenHash::of("canonical metadata B");
    let (b, new) = store
        .put_public_client(ClientRecord::public("pub-b", metadata(), NOW), other)
        .await
        .unwrap();
    assert!(new);
    assert_eq!(b.client_id, "pub-b");
    assert!(
        store
            .put_public_client(
                ClientRecord::public("pub-b", metadata(), NOW),
                TokenHash::of("canonical metadata C")
            )
            .await
            .is_err()
    );

    // Deleting the client frees its key.
    assert!(store.delete_client(&winner.client_id).await.unwrap());
    assert_eq!(store.find_public_client(&key).await.unwrap(), None);
    let (again, new) = store
        .put_public_client(ClientRecord::public("pub-again", metadata(), NOW), key)
        .await
        .unwrap();
    assert!(new);
    assert_eq!(again.client_id, "pub-again");
}

async fn unused_public_clients_are_purged_unless_recently_authorized_or_holding_an_active_grant(
    store: Arc<dyn Store>,
) {
    const DAY: u64 = 86_400;
    let public = |id: &str| ClientRecord::public(id, metadata(), NOW);
    // Never authorized, registered long ago: goes.
    store.put_client(public("never")).await.unwrap();
    // Authorized recently: stays; authorized long ago: goes.
    store.put_client(public("recent")).await.unwrap();
    store
        .client_authorized("recent", NOW + 35 * DAY)
        .await
        .unwrap();
    store.put_client(public("stale")).await.unwrap();
    store.client_authorized("stale", NOW + DAY).await.unwrap();
    // Registered recently, never authorized yet: stays.
    store
        .put_client(ClientRecord::public("young", metadata(), NOW + 30 * DAY))
        .await
        .unwrap();
    // An active grant keeps it; a revoked or expired one does not.
    store.put_client(public("granted")).await.unwrap();
    let mut active = grant("g-active", NOW + 90 * DAY);
    active.client_id = "granted".into();
    store.create_grant(active, None).await.unwrap();
    store.put_client(public("revoked")).await.unwrap();
    let mut revoked = grant("g-revoked", NOW + 90 * DAY);
    revoked.client_id = "revoked".into();
    store.create_grant(revoked, None).await.unwrap();
    assert!(store.revoke_grant("g-revoked", NOW + DAY).await.unwrap());
    store.put_client(public("expired")).await.unwrap();
    let mut expired = grant("g-expired", NOW + 2 * DAY);
    expired.client_id = "expired".into();
    store.create_grant(expired, None).await.unwrap();
    // Never removed this way: confidential, operator-registered, metadata-document clients.
    store
        .put_client(ClientRecord::confidential(
            "confidential",
            ClientAuthMethod::ClientSecretBasic,
            TokenHash::of("s"),
            metadata(),
            NOW,
        ))
        .await
        .unwrap();
    store
        .put_client(public("static").with_source(ClientSource::Static))
        .await
        .unwrap();
    // Registered by the idempotent path: its registration key goes with it.
    let key = TokenHash::of("canonical");
    store.put_public_client(public("keyed"), key).await.unwrap();

    let now = NOW + 40 * DAY;
    let removed = store
        .purge_unused_public_clients(now - 30 * DAY, now)
        .await
        .unwrap();
    assert_eq!(removed, 5);
    for gone in ["never", "stale", "revoked", "expired", "keyed"] {
        assert_eq!(store.get_client(gone).await.unwrap(), None, "{gone}");
    }
    for kept in ["recent", "young", "granted", "confidential", "static"] {
        assert!(store.get_client(kept).await.unwrap().is_some(), "{kept}");
    }
    assert_eq!(store.find_public_client(&key).await.unwrap(), None);
    let recent = store.get_client("recent").await.unwrap().unwrap();
    assert_eq!(recent.last_authorized_at, Some(NOW + 35 * DAY));
    // Unknown clients are no error; a second purge finds nothing more.
    store.client_authorized("nobody", now).await.unwrap();
    assert_eq!(
        store
            .purge_unused_public_clients(now - 30 * DAY, now)
            .await
            .unwrap(),
        0
    );
}

// ----- shared state for replicas: flows, rate-limit windows, leases, revocations -----

fn flow(kind: FlowKind, secret: &str, subject: Option<&str>, expires_at: u64) -> FlowRecord {
    let mut record = FlowRecord::default();
    record.kind = kind;
    record.key = TokenHash::of(secret);
    record.subject = subject.map(str::to_owned);
    record.value = vec![0, 1, 2, 255, b'"', b'\\'];
    record.expires_at = expires_at;
    record
}

async fn flows_are_kept_per_kind_and_key_taken_once_and_ended_per_subject(store: Arc<dyn Store>) {
    let tx = flow(FlowKind::Transaction, "tx", None, NOW + 600);
    store.put_flow(tx.clone(), NOW).await.unwrap();
    let session = flow(FlowKind::Session, "tx", Some("alice"), NOW + 600);
    store.put_flow(session.clone(), NOW).await.unwrap();
    let bobs = flow(FlowKind::Session, "bob-cookie", Some("bob"), NOW + 600);
    store.put_flow(bobs.clone(), NOW).await.unwrap();
    let key = TokenHash::of("tx");
    assert_eq!(
        store
            .get_flow(FlowKind::Transaction, &key, NOW)
            .await
            .unwrap(),
        Some(tx.clone())
    );
    assert_eq!(
        store.get_flow(FlowKind::Session, &key, NOW).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        store
            .get_flow(FlowKind::PendingUpstream, &key, NOW)
            .await
            .unwrap(),
        None
    );
    // Expired records are not returned, not even by take (which still removes them).
    assert_eq!(
        store
            .get_flow(FlowKind::Transaction, &key, NOW + 600)
            .await
            .unwrap(),
        None
    );
    // Replace.
    let mut replaced = tx.clone();
    replaced.value = b"v2".to_vec();
    store.put_flow(replaced.clone(), NOW).await.unwrap();
    assert_eq!(
        store
            .take_flow(FlowKind::Transaction, &key, NOW)
            .await
            .unwrap(),
        Some(replaced)
    );
    assert_eq!(
        store
            .take_flow(FlowKind::Transaction, &key, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_flows_of(FlowKind::Session, "alice")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_flow(FlowKind::Session, &key, NOW).await.unwrap(),
        None
    );
    assert!(
        store
            .get_flow(FlowKind::Session, &TokenHash::of("bob-cookie"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(format!("{bobs:?}").contains("value_len"));
}

async fn a_flow_is_taken_by_exactly_one_of_64_concurrent_takes(store: Arc<dyn Store>) {
    let record = flow(FlowKind::PendingUpstream, "state", None, NOW + 600);
    store.put_flow(record, NOW).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .take_flow(FlowKind::PendingUpstream, &TokenHash::of("state"), NOW)
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap());
    }
    assert_eq!(taken, 1);
}

async fn rate_windows_count_per_key_restart_when_over_and_clear(store: Arc<dyn Store>) {
    for n in 1..=3 {
        assert_eq!(
            store.count_event("k", 60, NOW + n).await.unwrap(),
            Window {
                count: u32::try_from(n).unwrap(),
                ends_at: NOW + 61
            }
        );
    }
    assert_eq!(
        store.get_window("k", NOW + 10).await.unwrap(),
        Some(Window {
            count: 3,
            ends_at: NOW + 61
        })
    );
    assert_eq!(store.get_window("other", NOW).await.unwrap(), None);
    assert_eq!(store.get_window("k", NOW + 61).await.unwrap(), None);
    assert_eq!(
        store.count_event("k", 60, NOW + 61).await.unwrap(),
        Window {
            count: 1,
            ends_at: NOW + 121
        }
    );
    store.clear_window("k").await.unwrap();
    assert_eq!(store.get_window("k", NOW + 62).await.unwrap(), None);
}

async fn sixty_four_concurrent_events_are_all_counted(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.count_event("burst", 60, NOW).await.unwrap().count
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=64).collect::<Vec<u32>>());
}

async fn a_lease_goes_to_one_of_64_concurrent_holders_until_it_ends_or_is_released(
    store: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for n in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let holder = format!("h{n}");
            store
                .try_lease("keys", &holder, NOW + 30, NOW)
                .await
                .unwrap()
                .then_some(holder)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1);
    let winner = &winners[0];
    // The holder may extend it; others wait until it ends.
    assert!(
        store
            .try_lease("keys", winner, NOW + 60, NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease("keys", "late", NOW + 90, NOW + 59)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease("upkeep", "late", NOW + 90, NOW + 59)
            .await
            .unwrap()
    );
    // Releasing by someone else does nothing; by the holder frees it.
    store.release_lease("keys", "late").await.unwrap();
    assert!(
        !store
            .try_lease("keys", "late", NOW + 90, NOW + 2)
            .await
            .unwrap()
    );
    store.release_lease("keys", winner).await.unwrap();
    assert!(
        store
            .try_lease("keys", "late", NOW + 90, NOW + 2)
            .await
            .unwrap()
    );
    // An ended lease can be taken over.
    assert!(
        store
            .try_lease("keys", "third", NOW + 200, NOW + 90)
            .await
            .unwrap()
    );
}

async fn revocations_are_listed_by_when_they_were_made(store: Arc<dyn Store>) {
    store
        .revoke_access_token("early", NOW + 900, NOW)
        .await
        .unwrap();
    store
        .revoke_access_token("late", NOW + 900, NOW + 10)
        .await
        .unwrap();
    store
        .revoke_access_token("expired", NOW + 5, NOW + 10)
        .await
        .unwrap();
    store
        .create_grant(grant("g1", NOW + 3_600), None)
        .await
        .unwrap();
    store
        .create_grant(grant("g2", NOW + 3_600), None)
        .await
        .unwrap();
    assert!(store.revoke_grant("g1", NOW).await.unwrap());
    assert!(store.revoke_grant("g2", NOW + 10).await.unwrap());
    let mut all = store.list_revocations(NOW + 6, NOW).await.unwrap();
    all.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(all.len(), 4, "{all:?}");
    let recent = store.list_revocations(NOW + 6, NOW + 10).await.unwrap();
    let mut names: Vec<String> = recent
        .iter()
        .map(|r| match r {
            Revoked::AccessToken { jti, .. } => jti.clone(),
            Revoked::Grant { grant_id, .. } => grant_id.clone(),
            _ => String::new(),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["g2", "late"]);
}

async fn purge_expired_drops_expired_flows_windows_and_leases(store: Arc<dyn Store>) {
    store
        .put_flow(flow(FlowKind::Transaction, "old", None, NOW + 10), NOW)
        .await
        .unwrap();
    store
        .put_flow(flow(FlowKind::Session, "live", Some("a"), NOW + 100), NOW)
        .await
        .unwrap();
    store.count_event("old", 10, NOW).await.unwrap();
    store.count_event("live", 100, NOW).await.unwrap();
    assert!(store.try_lease("old", "h", NOW + 10, NOW).await.unwrap());
    assert!(store.try_lease("live", "h", NOW + 100, NOW).await.unwrap());
    assert_eq!(store.purge_expired(NOW + 10).await.unwrap(), 3);
    assert!(
        store
            .get_flow(FlowKind::Session, &TokenHash::of("live"), NOW + 10)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .get_window("live", NOW + 10)
            .await
            .unwrap()
            .unwrap()
            .count,
        1
    );
    assert!(
        !store
            .try_lease("live", "other", NOW + 200, NOW + 10)
            .await
            .unwrap()
    );
}

async fn a_failed_rotation_changes_nothing(store: Arc<dyn Store>) {
    store
        .create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-0", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
    // Two successors of rt-0, siblings (a retried refresh inside the grace window).
    let r = rotate_within(
        &*store,
        "rt-0",
        refresh("rt-a", "grant-1", NOW + 7_200),
        NOW + 1,
        GRACE,
    );
    assert_eq!(r.await.unwrap(), Rotation::Rotated);
    let r = rotate_within(
        &*store,
        "rt-0",
        refresh("rt-b", "grant-1", NOW + 7_200),
        NOW + 2,
        GRACE,
    );
    assert_eq!(r.await.unwrap(), Rotation::WithinGrace);
    // Rotating rt-a into a hash that is already stored (rt-b's) fails ...
    let r = rotate_within(
        &*store,
        "rt-a",
        refresh("rt-b", "grant-1", NOW + 7_200),
        NOW + 3,
        GRACE,
    );
    assert!(r.await.is_err());
    // ... and supersedes nothing: both siblings are as they were.
    assert_eq!(state_of(&*store, "rt-a").await, Some(RefreshState::Active));
    assert_eq!(state_of(&*store, "rt-b").await, Some(RefreshState::Active));
    let r = rotate_within(
        &*store,
        "rt-a",
        refresh("rt-c", "grant-1", NOW + 7_200),
        NOW + 4,
        GRACE,
    );
    assert_eq!(r.await.unwrap(), Rotation::Rotated);
    assert_eq!(state_of(&*store, "rt-b").await, Some(RefreshState::Rotated));
}

async fn sixty_four_concurrent_consents_for_one_triple_keep_every_scope(store: Arc<dyn Store>) {
    let mcp = "https://mcp.example.com/mcp";
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_consent(consent(mcp, &format!("scope-{i} shared"), NOW + i))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stored = store
        .get_consent("alice", "client-1", mcp)
        .await
        .unwrap()
        .unwrap();
    let scopes: std::collections::HashSet<&str> = stored.scope.split(' ').collect();
    assert_eq!(scopes.len(), 65, "{}", stored.scope);
    assert_eq!(stored.scope.split(' ').count(), 65, "no duplicates");
    for i in 0..64 {
        assert!(scopes.contains(format!("scope-{i}").as_str()));
    }
}

async fn ids_with_a_nul_character_are_found_nowhere(store: Arc<dyn Store>) {
    store
        .put_client(ClientRecord::public("client-1", metadata(), NOW))
        .await
        .unwrap();
    store
        .create_grant(grant("grant-1", NOW + 86_400), None)
        .await
        .unwrap();
    let mcp = "https://mcp.example.com/mcp";
    store.put_consent(consent(mcp, "x", NOW)).await.unwrap();
    // What a request may carry (a client id, a resource) finds nothing, and is no error.
    assert_eq!(store.get_client("client-1\0").await.unwrap(), None);
    assert!(!store.delete_client("client-1\0x").await.unwrap());
    assert_eq!(store.get_grant("grant-1\0").await.unwrap(), None);
    assert!(!store.revoke_grant("grant-1\0", NOW).await.unwrap());
    assert_eq!(
        store.get_consent("alice", "client-1", "\0").await.unwrap(),
        None
    );
    assert!(!store.is_access_token_revoked("jti\0").await.unwrap());
    assert!(
        store
            .list_active_grants("alice\0", NOW)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_upstream_tokens("alice", "\0").await.unwrap(),
        None
    );
    assert_eq!(store.get_window("key\0", NOW).await.unwrap(), None);
    assert!(store.get_client("client-1").await.unwrap().is_some());
    assert!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .is_active(NOW)
    );
}

// ----- instantiation -----

macro_rules! every_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture = super::memory().await;
                    super::$case(fixture.store.clone()).await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture = super::sqlite().await;
                    super::$case(fixture.store.clone()).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(fixture) = super::postgres().await else {
                        return;
                    };
                    super::$case(fixture.store.clone()).await;
                }
            )*
        }
    };
}

every_backend!(
    a_refresh_tokens_dpop_binding_is_kept_through_rotation,
    client_round_trip_keeps_metadata_secret_hash_method_and_source,
    code_is_fresh_then_replayed_and_other_hashes_are_unknown,
    storing_a_code_twice_is_refused_so_a_used_code_cannot_become_fresh,
    code_is_consumed_exactly_once_by_64_concurrent_takes,
    grant_is_stored_with_its_first_refresh_token,
    a_grant_or_refresh_token_cannot_be_stored_twice_or_under_another_grant,
    reusing_a_rotated_refresh_token_revokes_the_grant_and_its_successor,
    rotating_an_unknown_token_or_into_another_grant_changes_nothing,
    refresh_token_is_rotated_exactly_once_by_64_concurrent_rotations,
    twenty_concurrent_refreshes_with_one_token_inside_the_grace_window_all_succeed_in_one_family,
    a_replay_after_the_successor_was_used_revokes_the_family_even_inside_the_window,
    the_grace_window_counts_from_the_first_rotation_and_ends_after_its_last_second,
    a_replay_inside_the_window_for_a_revoked_grant_is_refused_without_a_successor,
    revoking_a_grant_revokes_every_refresh_token_of_its_family,
    revoked_access_tokens_are_deny_listed_by_jti,
    consent_merges_scopes_in_order_without_duplicates,
    keys_are_listed_oldest_first_and_never_shown_in_debug,
    purge_expired_removes_exactly_what_expired,
    upstream_tokens_are_kept_per_subject_and_upstream_replaced_and_deleted_per_subject,
    the_refresh_lease_goes_to_one_of_64_concurrent_callers_until_it_ends_or_is_released,
    active_grants_of_a_subject_exclude_revoked_expired_and_other_users,
    public_clients_are_stored_once_per_registration_key_even_by_64_concurrent_puts,
    unused_public_clients_are_purged_unless_recently_authorized_or_holding_an_active_grant,
    flows_are_kept_per_kind_and_key_taken_once_and_ended_per_subject,
    a_flow_is_taken_by_exactly_one_of_64_concurrent_takes,
    rate_windows_count_per_key_restart_when_over_and_clear,
    sixty_four_concurrent_events_are_all_counted,
    a_lease_goes_to_one_of_64_concurrent_holders_until_it_ends_or_is_released,
    revocations_are_listed_by_when_they_were_made,
    purge_expired_drops_expired_flows_windows_and_leases,
    a_failed_rotation_changes_nothing,
    sixty_four_concurrent_consents_for_one_triple_keep_every_scope,
    ids_with_a_nul_character_are_found_nowhere,
);

// ----- SQLite only: the file outlives the process -----

#[cfg(feature = "sqlite")]
mod sqlite_file {
    use super::*;
    use mcp_auth_server::store::SqliteStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_refresh_family_consent_key_and_deny_list_survive_a_reopen() {
        let file = TempDb::new("store-test");
        let client = ClientRecord::confidential(
            "client-1",
            ClientAuthMethod::ClientSecretBasic,
            TokenHash::of("s3cret"),
            metadata(),
            NOW,
        );
        let mcp = "https://mcp.example.com/mcp";
        {
            let store = SqliteStore::open(&file.0).await.unwrap();
            store.put_client(client.clone()).await.unwrap();
            store
                .put_code(code("code-1", "grant-1", NOW + 60))
                .await
                .unwrap();
            assert!(matches!(
                store.take_code(&TokenHash::of("code-1")).await.unwrap(),
                CodeTake::Fresh(_)
            ));
            store
                .create_grant(
                    grant("grant-1", NOW + 86_400),
                    Some(refresh("rt-1", "grant-1", NOW + 3_600)),
                )
                .await
                .unwrap();
            let r = rotate(&store, "rt-1", refresh("rt-2", "grant-1", NOW + 3_600), NOW);
            assert_eq!(r.await.unwrap(), Rotation::Rotated);
            store
                .put_consent(consent(mcp, "mcp:tools", NOW))
                .await
                .unwrap();
            store.put_key(key("k1", NOW)).await.unwrap();
            store
                .revoke_access_token("jti-1", NOW + 300, NOW)
                .await
                .unwrap();
            store.close().await;
        }

        let store = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(store.get_client("client-1").await.unwrap(), Some(client));
        assert!(matches!(
            store.take_code(&TokenHash::of("code-1")).await.unwrap(),
            CodeTake::Replayed(_)
        ));
        assert_eq!(state_of(&store, "rt-1").await, Some(RefreshState::Rotated));
        assert_eq!(state_of(&store, "rt-2").await, Some(RefreshState::Active));
        // Reuse detection works across the restart.
        let r = rotate(
            &store,
            "rt-1",
            refresh("rt-3", "grant-1", NOW + 3_600),
            NOW + 1,
        );
        assert_eq!(
            r.await.unwrap(),
            Rotation::Reused {
                grant_id: "grant-1".into()
            }
        );
        assert_eq!(
            store
                .get_consent("alice", "client-1", mcp)
                .await
                .unwrap()
                .unwrap()
                .scope,
            "mcp:tools"
        );
        assert_eq!(store.list_keys().await.unwrap(), vec![key("k1", NOW)]);
        assert!(store.is_access_token_revoked("jti-1").await.unwrap());
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upstream_tokens_and_a_pending_refresh_lease_survive_a_reopen() {
        let file = TempDb::new("store-test");
        let ciphertext = [0u8, 1, 2, 250, 251, 255];
        {
            let store = SqliteStore::open(&file.0).await.unwrap();
            store
                .put_upstream_tokens(upstream_record("alice", IDP, &ciphertext))
                .await
                .unwrap();
            store
                .put_upstream_tokens(upstream_record("bob", IDP, b"bob"))
                .await
                .unwrap();
            // A refresh was in flight when the process stopped.
            assert!(matches!(
                store
                    .lease_upstream_refresh("bob", IDP, lease("before-restart", NOW + 30), NOW)
                    .await
                    .unwrap(),
                LeaseTake::Granted(_)
            ));
            store.close().await;
        }

        let store = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(
            store.get_upstream_tokens("alice", IDP).await.unwrap(),
            Some(upstream_record("alice", IDP, &ciphertext))
        );
        let bob = store
            .get_upstream_tokens("bob", IDP)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.refresh_lease, Some(lease("before-restart", NOW + 30)));
        // The new process waits for the lease to end before refreshing itself.
        assert_eq!(
            store
                .lease_upstream_refresh("bob", IDP, lease("after-restart", NOW + 40), NOW + 10)
                .await
                .unwrap(),
            LeaseTake::Busy { until: NOW + 30 }
        );
        assert!(matches!(
            store
                .lease_upstream_refresh("bob", IDP, lease("after-restart", NOW + 60), NOW + 30)
                .await
                .unwrap(),
            LeaseTake::Granted(_)
        ));
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_are_idempotent_when_the_same_file_is_opened_again() {
        let file = TempDb::new("store-test");
        let first = SqliteStore::open(&file.0).await.unwrap();
        first.put_key(key("k1", NOW)).await.unwrap();
        // A second store on the same file while the first is open, then after it closed.
        let second = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(second.list_keys().await.unwrap().len(), 1);
        second.put_key(key("k2", NOW + 1)).await.unwrap();
        assert_eq!(first.list_keys().await.unwrap().len(), 2);
        first.close().await;
        second.close().await;
        let third = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(third.list_keys().await.unwrap().len(), 2);
        third.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_accepts_a_file_url_and_an_in_memory_url_shared_by_the_pool() {
        let file = TempDb::new("store-test");
        let url = format!("sqlite://{}?mode=rwc", file.0.display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.put_key(key("k1", NOW)).await.unwrap();
        store.close().await;
        assert_eq!(
            SqliteStore::open(&file.0)
                .await
                .unwrap()
                .list_keys()
                .await
                .unwrap()
                .len(),
            1
        );

        let store = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        store
            .put_code(code("code-1", "grant-1", NOW + 60))
            .await
            .unwrap();
        // Several pool connections at once all see the one in-memory database.
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.take_code(&TokenHash::of("code-1")).await.unwrap() },
                )
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), CodeTake::Fresh(_)) {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);

        assert!(SqliteStore::connect("postgres://nope").await.is_err());
    }

    #[tokio::test]
    async fn a_database_from_a_newer_server_is_refused_with_the_versions_named() {
        let file = TempDb::new("store-test");
        SqliteStore::open(&file.0).await.unwrap().close().await;
        {
            use sqlx::Connection;
            let url = format!("sqlite://{}", file.0.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (9, 'from the future', TRUE, X'00', 0)",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let error = SqliteStore::open(&file.0).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "storage error: the database schema is at version 9, newer than this \
             mcp-auth-server (which knows up to 8): upgrade the server"
        );
    }

    /// sqlx's migrator over the shipped SQLite scripts: what versions before the rusqlite
    /// backend did to a database.
    async fn sqlx_migrator() -> sqlx::migrate::Migrator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        sqlx::migrate::Migrator::new(dir).await.unwrap()
    }

    async fn sqlx_connection(file: &TempDb, create: bool) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let mode = if create { "?mode=rwc" } else { "" };
        let url = format!("sqlite://{}{mode}", file.0.display());
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    async fn versions(conn: &mut sqlx::SqliteConnection) -> Vec<(i64, i64)> {
        sqlx::query_as("SELECT version, execution_time FROM _sqlx_migrations ORDER BY version")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_database_migrated_by_sqlx_opens_without_migrating_again() {
        let file = TempDb::new("store-test");
        {
            use sqlx::Connection;
            let mut conn = sqlx_connection(&file, true).await;
            sqlx_migrator().await.run(&mut conn).await.unwrap();
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, pkcs8, created_at, activates_at) \
                         VALUES ('k0', 'ES256', X'00', 1, 1)",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let before = versions(&mut sqlx_connection(&file, false).await).await;
        assert_eq!(before.len(), 8);
        let store = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(store.list_keys().await.unwrap()[0].kid, "k0");
        store.put_key(key("k1", NOW)).await.unwrap();
        store.close().await;
        // Not one script ran again: the rows are sqlx's, untouched.
        assert_eq!(
            versions(&mut sqlx_connection(&file, false).await).await,
            before
        );
    }

    #[tokio::test]
    async fn sqlx_accepts_a_database_this_store_migrated() {
        let file = TempDb::new("store-test");
        let store = SqliteStore::open(&file.0).await.unwrap();
        store.put_key(key("k1", NOW)).await.unwrap();
        store.close().await;
        let mut conn = sqlx_connection(&file, false).await;
        let before = versions(&mut conn).await;
        assert_eq!(
            before.iter().map(|v| v.0).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
        // Checksums and descriptions match: sqlx's migrator finds nothing to do or complain of.
        sqlx_migrator().await.run(&mut conn).await.unwrap();
        assert_eq!(versions(&mut conn).await, before);
    }

    #[tokio::test]
    async fn a_changed_or_failed_migration_is_refused() {
        let file = TempDb::new("store-test");
        SqliteStore::open(&file.0).await.unwrap().close().await;
        let mut conn = sqlx_connection(&file, false).await;
        sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 3")
            .execute(&mut conn)
            .await
            .unwrap();
        let error = SqliteStore::open(&file.0).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "storage error: migration 3 of the SQLite database differs from the one this \
             mcp-auth-server embeds"
        );
        sqlx::query("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 8")
            .execute(&mut conn)
            .await
            .unwrap();
        let error = SqliteStore::open(&file.0).await.unwrap_err();
        assert!(error.to_string().contains("migration 8"), "{error}");
    }

    #[tokio::test]
    async fn connect_rejects_urls_it_does_not_understand() {
        for url in [
            "postgres://nope",
            "sqlite://file.db?cache=shared",
            "sqlite://file.db?mode=rwx",
            "sqlite://",
        ] {
            let error = SqliteStore::connect(url).await.unwrap_err();
            assert!(
                error.to_string().contains("invalid SQLite URL"),
                "{url}: {error}"
            );
        }
        // mode=rw (the default) does not create a missing file.
        let file = TempDb::new("store-test");
        let url = format!("sqlite://{}", file.0.display());
        assert!(SqliteStore::connect(&url).await.is_err());
        assert!(!file.0.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_write_in_a_group_commit_fails_alone() {
        let file = TempDb::new("store-test");
        let store = SqliteStore::open(&file.0).await.unwrap();
        store
            .put_code(code("taken", "grant-0", NOW + 60))
            .await
            .unwrap();
        // Writes arriving together share transactions; the duplicates must fail by themselves.
        let writes: Vec<_> = (0..48)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    if i % 4 == 0 {
                        store.put_code(code("taken", "grant-0", NOW + 60)).await
                    } else {
                        let id = format!("grant-{i}");
                        store
                            .create_grant(
                                grant(&id, NOW + 86_400),
                                Some(refresh(&format!("rt-{i}"), &id, NOW + 3_600)),
                            )
                            .await
                    }
                })
            })
            .collect();
        for (i, write) in writes.into_iter().enumerate() {
            let result = write.await.unwrap();
            assert_eq!(result.is_err(), i % 4 == 0, "write {i}: {result:?}");
        }
        for i in (0..48).filter(|i| i % 4 != 0) {
            assert!(
                store
                    .get_refresh(&TokenHash::of(&format!("rt-{i}")))
                    .await
                    .unwrap()
                    .is_some(),
                "grant {i}"
            );
        }
        store.close().await;
    }

    #[tokio::test]
    async fn calls_after_close_fail_and_writes_before_it_are_kept() {
        let file = TempDb::new("store-test");
        let store = SqliteStore::open(&file.0).await.unwrap();
        let clone = store.clone();
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.put_key(key(&format!("k{i}"), NOW + i)).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        store.close().await;
        assert!(clone.list_keys().await.is_err());
        assert!(clone.put_key(key("late", NOW)).await.is_err());
        let again = SqliteStore::open(&file.0).await.unwrap();
        assert_eq!(again.list_keys().await.unwrap().len(), 20);
        again.close().await;
    }

    #[tokio::test]
    async fn debug_shows_the_location_and_no_records() {
        let file = TempDb::new("store-test");
        let store = SqliteStore::open(&file.0).await.unwrap();
        store.put_key(key("k1", NOW)).await.unwrap();
        let shown = format!("{store:?}");
        assert!(shown.starts_with("SqliteStore"), "{shown}");
        assert!(shown.contains("mcp-auth-store-test-"), "{shown}");
        assert!(!shown.contains("k1"), "{shown}");
        store.close().await;
    }

    #[tokio::test]
    async fn store_errors_do_not_leak_sql_values() {
        let file = TempDb::new("store-test");
        let store = SqliteStore::open(&file.0).await.unwrap();
        store
            .put_code(code("code-secret", "grant-1", NOW + 60))
            .await
            .unwrap();
        let error = store
            .put_code(code("code-secret", "grant-1", NOW + 60))
            .await
            .unwrap_err();
        let shown = format!("{error} {error:?}");
        let hash = TokenHash::of("code-secret");
        let hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.to_lowercase().contains(&hex), "{shown}");
        assert!(std::error::Error::source(&error).is_some());
        store.close().await;
    }
}

// ----- PostgreSQL only: several pools (processes) on one schema, bounds, migrations -----

#[cfg(feature = "postgres")]
mod postgres_db {
    use std::time::{Duration, Instant};

    use super::*;
    use mcp_auth_server::store::{PostgresOptions, PostgresStore};

    /// Two pools on one schema: what two replicas of the server are to each other.
    async fn two_processes() -> Option<(pg::Schema, Arc<dyn Store>, Arc<dyn Store>)> {
        let schema = pg::Schema::new().await?;
        let a: Arc<dyn Store> = Arc::new(schema.connect().await);
        let b: Arc<dyn Store> = Arc::new(schema.connect().await);
        Some((schema, a, b))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_redemptions_of_one_code_split_across_two_processes_give_exactly_one_fresh() {
        let Some((_schema, a, b)) = two_processes().await else {
            return;
        };
        a.put_code(code("code-1", "grant-1", NOW + 60))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(
                    async move { store.take_code(&TokenHash::of("code-1")).await.unwrap() },
                )
            })
            .collect();
        let (mut fresh, mut replayed) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                CodeTake::Fresh(c) => {
                    assert_eq!(c.grant_id, "grant-1");
                    fresh += 1;
                }
                CodeTake::Replayed(_) => replayed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((fresh, replayed), (1, 49));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_refresh_token_rotates_once_across_two_processes_and_reuse_on_the_other_revokes_the_family()
     {
        let Some((_schema, a, b)) = two_processes().await else {
            return;
        };
        a.create_grant(
            grant("grant-1", NOW + 86_400),
            Some(refresh("rt-0", "grant-1", NOW + 3_600)),
        )
        .await
        .unwrap();
        // 50 concurrent rotations of one token, half through each process.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let new = refresh(&format!("rt-next-{i}"), "grant-1", NOW + 7_200);
                    rotate(&*store, "rt-0", new, NOW + 1).await.unwrap()
                })
            })
            .collect();
        let (mut rotated, mut reused, mut revoked) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Rotation::Rotated => rotated += 1,
                Rotation::Reused { .. } => reused += 1,
                Rotation::Revoked => revoked += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((rotated, reused, revoked), (1, 1, 48));

        // A fresh family: rotated on one process, the old token reused on the other.
        a.create_grant(
            grant("grant-2", NOW + 86_400),
            Some(refresh("rt-2-0", "grant-2", NOW + 3_600)),
        )
        .await
        .unwrap();
        let r = rotate(
            &*a,
            "rt-2-0",
            refresh("rt-2-1", "grant-2", NOW + 7_200),
            NOW + 1,
        );
        assert_eq!(r.await.unwrap(), Rotation::Rotated);
        let r = rotate(
            &*b,
            "rt-2-0",
            refresh("rt-2-x", "grant-2", NOW + 7_200),
            NOW + 2,
        );
        assert_eq!(
            r.await.unwrap(),
            Rotation::Reused {
                grant_id: "grant-2".into()
            }
        );
        assert!(
            a.get_grant("grant-2")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert_eq!(state_of(&*a, "rt-2-1").await, Some(RefreshState::Revoked));
        let r = rotate(
            &*a,
            "rt-2-1",
            refresh("rt-2-2", "grant-2", NOW + 7_200),
            NOW + 3,
        );
        assert_eq!(r.await.unwrap(), Rotation::Revoked);

        // Inside the grace window, a retry on the other process gets a sibling, not a revocation.
        a.create_grant(
            grant("grant-3", NOW + 86_400),
            Some(refresh("rt-3-0", "grant-3", NOW + 3_600)),
        )
        .await
        .unwrap();
        let r = rotate_within(
            &*a,
            "rt-3-0",
            refresh("rt-3-1", "grant-3", NOW + 7_200),
            NOW + 1,
            30,
        );
        assert_eq!(r.await.unwrap(), Rotation::Rotated);
        let r = rotate_within(
            &*b,
            "rt-3-0",
            refresh("rt-3-2", "grant-3", NOW + 7_200),
            NOW + 2,
            30,
        );
        assert_eq!(r.await.unwrap(), Rotation::WithinGrace);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_replicas_starting_at_once_on_a_new_schema_create_and_migrate_it_once() {
        let Some(schema) = pg::Schema::new().await else {
            return;
        };
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let options = schema.options();
                tokio::spawn(async move { PostgresStore::connect_with(options).await })
            })
            .collect();
        let mut stores = Vec::new();
        for task in tasks {
            stores.push(task.await.unwrap().unwrap());
        }
        let mut conn = schema.raw().await;
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2]);
        stores[0].put_key(key("k1", NOW)).await.unwrap();
        assert_eq!(stores[3].list_keys().await.unwrap().len(), 1);
        for store in stores {
            store.close().await;
        }
        // Connecting again to an up-to-date schema changes nothing.
        let again = schema.connect().await;
        assert_eq!(again.list_keys().await.unwrap().len(), 1);
        again.close().await;
    }

    #[tokio::test]
    async fn a_database_from_a_newer_server_is_refused_with_the_versions_named() {
        let Some(schema) = pg::Schema::new().await else {
            return;
        };
        schema.connect().await.close().await;
        let mut conn = schema.raw().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES (9, 'from the future', TRUE, $1, 0)",
        )
        .bind(vec![0u8])
        .execute(&mut conn)
        .await
        .unwrap();
        let error = PostgresStore::connect_with(schema.options())
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "storage error: the database schema is at version 9, newer than this \
             mcp-auth-server (which knows up to 2): upgrade the server"
        );
    }

    #[tokio::test]
    async fn a_database_that_is_down_fails_within_the_acquire_timeout() {
        // Nothing listens on port 9 of loopback: connections are refused, and retried until
        // the acquire timeout.
        let started = Instant::now();
        let error = PostgresStore::connect_with(
            PostgresOptions::new("postgres://postgres:s3cret@127.0.0.1:9/test")
                .acquire_timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            PostgresStore::connect("mysql://127.0.0.1/test")
                .await
                .unwrap_err()
                .to_string()
                .contains("invalid PostgreSQL URL")
        );
        assert!(
            PostgresStore::connect_with(
                PostgresOptions::new("postgres://127.0.0.1:9/test").schema("a; DROP TABLE x")
            )
            .await
            .unwrap_err()
            .to_string()
            .contains("schema name")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_slow_database_fails_calls_within_the_timeouts_without_piling_up_connections() {
        let Some(schema) = pg::Schema::new().await else {
            return;
        };
        let app = format!("mcp-auth-slow-{}-{}", std::process::id(), schema.name);
        let separator = if schema.url.contains('?') { '&' } else { '?' };
        let store = PostgresStore::connect_with(
            PostgresOptions::new(format!("{}{separator}application_name={app}", schema.url))
                .schema(&schema.name)
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(1))
                .statement_timeout(Some(Duration::from_millis(300))),
        )
        .await
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        store
            .put_code(code("code-1", "grant-1", NOW + 60))
            .await
            .unwrap();

        // Another session holds the table: every statement on it waits.
        let mut blocker = schema.raw().await;
        sqlx::raw_sql("BEGIN; LOCK TABLE codes IN ACCESS EXCLUSIVE MODE")
            .execute(&mut blocker)
            .await
            .unwrap();
        let started = Instant::now();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_code(&TokenHash::of("code-1")).await })
            })
            .collect();
        let mut watcher = schema.raw().await;
        let mut most = 0;
        for _ in 0..10 {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&app)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            most = most.max(open);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut failed = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                failed += 1;
            }
        }
        let elapsed = started.elapsed();
        println!(
            "12 calls on a locked table: {failed} failed in {elapsed:?}, at most {most} connections"
        );
        assert_eq!(failed, 12);
        assert!(most <= 2, "{most} connections");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

        // The database is back: the same store serves again, and nothing was half-done.
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut blocker)
            .await
            .unwrap();
        assert!(matches!(
            store.take_code(&TokenHash::of("code-1")).await.unwrap(),
            CodeTake::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn debug_shows_where_and_never_the_password() {
        let Some(schema) = pg::Schema::new().await else {
            return;
        };
        // Trust authentication ignores the password; the store must not show it either way.
        let mut url = url::Url::parse(&schema.url).unwrap();
        url.set_password(Some("s3cret-pw")).unwrap();
        let options = PostgresOptions::new(url.as_str()).schema(&schema.name);
        assert!(!format!("{options:?}").contains("s3cret-pw"));
        let store = PostgresStore::connect_with(options).await.unwrap();
        store.put_key(key("k1", NOW)).await.unwrap();
        let shown = format!("{store:?}");
        assert!(shown.starts_with("PostgresStore"), "{shown}");
        assert!(shown.contains(&schema.name), "{shown}");
        assert!(
            !shown.contains("s3cret-pw") && !shown.contains("k1"),
            "{shown}"
        );
        store.close().await;
    }
}
