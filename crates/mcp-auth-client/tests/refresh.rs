//! Refresh: single flight, rejected vs transient, registered secrets, persistence, principals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use mcp_auth_client::{
    AuthErrorKind, OAuthLayer, Principal, TokenManager,
    store::{
        FileTokenStore, MemoryTokenStore, StoreFuture, StoreLock, StoredClient, TokenKey,
        TokenStore,
    },
};
use support::{Fake, Knobs, TokenMode, Transport, clock, rpc};
use tower::{ServiceBuilder, ServiceExt};

fn temp_file(name: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::env::temp_dir()
        .join(format!(
            "mcp-auth-client-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
        .join("tokens.json")
}

fn grant_types(fake: &Fake) -> Vec<String> {
    fake.token_calls()
        .iter()
        .map(|c| c.form["grant_type"].clone())
        .collect()
}

async fn stored(
    manager: &TokenManager,
    store: &dyn TokenStore,
) -> Option<mcp_auth_client::store::StoredTokens> {
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    store.load_tokens(&key).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_storm_of_1000_callers_makes_exactly_one_refresh_request() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    let first = manager.access_token().await.unwrap();
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 1);

    clock.advance(Duration::from_secs(3600)); // expired
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let m = manager.clone();
            tokio::spawn(async move { m.access_token().await.map(|t| t.expose().to_owned()) })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(
        fake.token_hits.load(Ordering::SeqCst),
        2,
        "one refresh for 1000 callers"
    );
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
    assert_eq!(tokens.len(), 1);
    assert!(!tokens.contains(first.expose()));
}

#[tokio::test]
async fn refresh_happens_ahead_of_expiry_within_the_buffer() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake
        .manager(&clock)
        .refresh_buffer(Duration::from_secs(120))
        .build()
        .unwrap();
    let first = manager.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3600 - 121));
    assert_eq!(manager.access_token().await.unwrap(), first);
    clock.advance(Duration::from_secs(2)); // 119 s left: inside the buffer
    assert_ne!(manager.access_token().await.unwrap(), first);
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
}

#[tokio::test]
async fn rejected_refresh_leads_to_reauthorization() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let store = MemoryTokenStore::new();
    let manager = fake.manager(&clock).store(store.clone()).build().unwrap();
    manager.access_token().await.unwrap();
    fake.set(|k| k.refresh_mode = TokenMode::InvalidGrant);
    clock.advance(Duration::from_secs(3600));

    // Non-interactive view: the grant is gone, no token, and the refresh token was discarded.
    assert!(manager.cached_token().await.unwrap().is_none());
    assert!(stored(&manager, &store).await.is_none());
    assert_eq!(fake.token_calls().len(), 2, "a rejection is not retried");

    // Interactive: a new authorization.
    fake.set(|k| k.refresh_mode = TokenMode::Ok);
    manager.access_token().await.unwrap();
    assert_eq!(fake.authorize_calls().len(), 2);
    assert_eq!(
        grant_types(&fake),
        ["authorization_code", "refresh_token", "authorization_code"]
    );
}

#[tokio::test]
async fn rejected_refresh_in_access_token_reauthorizes_at_once() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    manager.access_token().await.unwrap();
    fake.set(|k| k.refresh_mode = TokenMode::InvalidGrant);
    clock.advance(Duration::from_secs(3600));
    manager.access_token().await.unwrap();
    assert_eq!(fake.authorize_calls().len(), 2);
}

#[tokio::test]
async fn transient_refresh_failures_are_retried_and_never_mistaken_for_rejection() {
    for mode in [TokenMode::Unavailable, TokenMode::Drop] {
        let fake = Fake::start(Knobs::default()).await;
        let clock = clock();
        let store = MemoryTokenStore::new();
        let manager = fake.manager(&clock).store(store.clone()).build().unwrap();
        manager.access_token().await.unwrap();
        fake.set(|k| k.refresh_mode = mode);
        clock.advance(Duration::from_secs(3600));

        let err = manager.access_token().await.unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::Transient, "{mode:?}: {err:?}");
        assert!(err.is_transient() && !err.is_rejected());
        // 1 authorization_code + 3 refresh attempts (RetryPolicy::new(3)), no new authorization.
        assert_eq!(fake.token_hits.load(Ordering::SeqCst), 4, "{mode:?}");
        assert_eq!(fake.authorize_calls().len(), 1);
        let kept = stored(&manager, &store).await.unwrap();
        assert!(kept.refresh_token.is_some(), "the refresh token is kept");

        // The server recovers: the kept refresh token works.
        fake.set(|k| k.refresh_mode = TokenMode::Ok);
        manager.access_token().await.unwrap();
        assert_eq!(fake.authorize_calls().len(), 1);
        assert_eq!(grant_types(&fake).last().unwrap(), "refresh_token");
    }
}

#[tokio::test]
async fn dcr_secret_and_returned_method_are_used_on_refresh() {
    for method in ["client_secret_post", "client_secret_basic"] {
        let fake = Fake::start(Knobs {
            registration_secret: Some("dcr-secret".into()),
            registration_method: Some(method.into()),
            ..Knobs::default()
        })
        .await;
        let clock = clock();
        let path = temp_file("dcr");
        let manager = fake
            .manager(&clock)
            .store(FileTokenStore::new(&path))
            .build()
            .unwrap();
        manager.access_token().await.unwrap();
        // A new process: only the file remembers the registration.
        let again = fake
            .manager(&clock)
            .store(FileTokenStore::new(&path))
            .build()
            .unwrap();
        clock.advance(Duration::from_secs(3600));
        again.access_token().await.unwrap();
        let calls = fake.token_calls();
        assert_eq!(calls.len(), 2);
        for call in &calls {
            match method {
                "client_secret_post" => {
                    assert_eq!(call.form["client_secret"], "dcr-secret");
                    assert!(call.form["client_id"].starts_with("dcr-"));
                    assert!(call.authorization.is_none());
                }
                _ => {
                    assert!(call.authorization.as_deref().unwrap().starts_with("Basic "));
                    assert!(!call.form.contains_key("client_secret"));
                }
            }
        }
        assert_eq!(calls[1].form["grant_type"], "refresh_token");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

#[tokio::test]
async fn file_store_survives_a_restart_and_is_owner_only() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let path = temp_file("restart");
    {
        let manager = fake
            .manager(&clock)
            .store(FileTokenStore::new(&path))
            .build()
            .unwrap();
        manager.access_token().await.unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir & 0o777, 0o700);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"expires_at\": 1700003600"),
        "absolute expiry: {text}"
    );

    // Restart: a new manager on the same file, still valid: no request at all.
    let restarted = fake
        .manager(&clock)
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    restarted.access_token().await.unwrap();
    assert_eq!(fake.token_calls().len(), 1);

    // Expired: the stored refresh token is used, without re-authorizing or re-registering.
    clock.advance(Duration::from_secs(4000));
    let restarted = fake
        .manager(&clock)
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    restarted.access_token().await.unwrap();
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
    assert_eq!(fake.authorize_calls().len(), 1);
    assert_eq!(fake.registrations().len(), 1);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_file_refresh_once_and_the_other_adopts() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let path = temp_file("adopt");
    let a = fake
        .manager(&clock)
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    a.access_token().await.unwrap();
    // B loads the same tokens (as another process would).
    let b = fake
        .manager(&clock)
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    b.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    // Both need a refresh at once; refresh tokens rotate, so a second refresh with the old one
    // would be rejected (invalid_grant) and force a new authorization.
    let (ta, tb) = tokio::join!(a.access_token(), b.access_token());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta, tb);
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
    assert_eq!(fake.authorize_calls().len(), 1);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// B's view of the shared token file: a store whose lock does not reach the other process (a
/// file share where locks do not work), and which lets the other process refresh between B's read
/// of the file and B's refresh request — the race the lock normally prevents.
struct RacingView {
    inner: FileTokenStore,
    in_refresh: std::sync::atomic::AtomicBool,
    other: tokio::sync::Mutex<Option<TokenManager>>,
}

impl std::fmt::Debug for RacingView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RacingView").finish_non_exhaustive()
    }
}

impl TokenStore for RacingView {
    fn load_tokens<'a>(
        &'a self,
        key: &'a TokenKey,
    ) -> StoreFuture<'a, Option<mcp_auth_client::store::StoredTokens>> {
        Box::pin(async move {
            let read = self.inner.load_tokens(key).await?;
            if self.in_refresh.swap(false, Ordering::SeqCst)
                && let Some(other) = self.other.lock().await.take()
            {
                // The other process refreshes (under the real file lock) and stores its result.
                other.access_token().await.unwrap();
            }
            Ok(read)
        })
    }
    fn save_tokens<'a>(
        &'a self,
        key: &'a TokenKey,
        tokens: &'a mcp_auth_client::store::StoredTokens,
    ) -> StoreFuture<'a, ()> {
        self.inner.save_tokens(key, tokens)
    }
    fn remove_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, ()> {
        self.inner.remove_tokens(key)
    }
    fn load_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, Option<StoredClient>> {
        self.inner.load_client(issuer)
    }
    fn save_client<'a>(&'a self, client: &'a StoredClient) -> StoreFuture<'a, ()> {
        self.inner.save_client(client)
    }
    fn remove_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, ()> {
        self.inner.remove_client(issuer)
    }
    fn lock<'a>(&'a self, _key: &'a TokenKey) -> StoreFuture<'a, StoreLock> {
        self.in_refresh.store(true, Ordering::SeqCst);
        Box::pin(async { Ok(StoreLock::none()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_grant_after_another_process_refreshed_adopts_the_stored_token() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let path = temp_file("race");
    let a = fake
        .manager(&clock)
        .store(FileTokenStore::new(&path))
        .build()
        .unwrap();
    a.access_token().await.unwrap();
    let view = Arc::new(RacingView {
        inner: FileTokenStore::new(&path),
        in_refresh: false.into(),
        other: tokio::sync::Mutex::new(None),
    });
    let b = fake
        .manager(&clock)
        .shared_store(Arc::clone(&view) as Arc<dyn TokenStore>)
        .build()
        .unwrap();
    b.access_token().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    *view.other.lock().await = Some(a.clone());

    // B reads the file, A refreshes and stores, B presents the rotated refresh token: the server
    // answers invalid_grant, B reads the file again and adopts A's token — no new authorization.
    let tb = b.access_token().await.unwrap();
    let ta = a.access_token().await.unwrap();
    assert_eq!(ta, tb);
    assert_eq!(
        grant_types(&fake),
        ["authorization_code", "refresh_token", "refresh_token"]
    );
    assert_eq!(fake.authorize_calls().len(), 1, "no browser was opened");
    let on_file = stored(&b, &FileTokenStore::new(&path)).await.unwrap();
    assert_eq!(on_file.access_token.expose(), tb.expose());
    assert!(on_file.refresh_token.is_some(), "A's refresh token is kept");

    // The adopted refresh token works for B's next refresh.
    clock.advance(Duration::from_secs(3600));
    b.access_token().await.unwrap();
    assert_eq!(grant_types(&fake).len(), 4);
    assert_eq!(fake.authorize_calls().len(), 1);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn principals_never_share_tokens() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let store = MemoryTokenStore::new();
    let alice = fake
        .manager(&clock)
        .store(store.clone())
        .principal("alice")
        .build()
        .unwrap();
    let bob = alice.for_principal("bob");
    let shared = alice.for_principal(Principal::shared());

    let alice_token = alice.access_token().await.unwrap();
    assert!(bob.cached_token().await.unwrap().is_none());
    assert!(shared.cached_token().await.unwrap().is_none());
    let bob_token = bob.access_token().await.unwrap();
    assert_ne!(alice_token, bob_token);
    assert_eq!(alice.cached_token().await.unwrap().unwrap(), alice_token);
    // Same principal again: same tokens, same single flight.
    assert_eq!(
        alice
            .for_principal("alice")
            .cached_token()
            .await
            .unwrap()
            .unwrap(),
        alice_token
    );

    // Through the layer: the request's Principal extension picks the tokens.
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(shared.clone()))
        .service(Transport::default());
    for (who, token) in [("alice", &alice_token), ("bob", &bob_token)] {
        let mut req = http::Request::post(fake.mcp_url())
            .body(rpc("tools/list"))
            .unwrap();
        req.extensions_mut().insert(Principal::new(who));
        let res = client.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.body(), &format!("ok {}", token.expose()));
    }
    // Forgetting one principal leaves the other.
    bob.forget().await.unwrap();
    assert!(bob.cached_token().await.unwrap().is_none());
    assert_eq!(alice.cached_token().await.unwrap().unwrap(), alice_token);
    assert_eq!(fake.authorize_calls().len(), 2);
}

#[tokio::test]
async fn a_401_on_a_valid_looking_token_refreshes_and_retries_once() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default());
    let send = || {
        client.clone().oneshot(
            http::Request::post(fake.mcp_url())
                .body(rpc("tools/list"))
                .unwrap(),
        )
    };
    assert_eq!(send().await.unwrap().status(), 200);
    fake.revoke_all_access_tokens();
    let res = send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
    assert_eq!(fake.authorize_calls().len(), 1);
    let mcp_calls = fake.log().iter().filter(|l| *l == "POST /mcp").count();
    assert_eq!(mcp_calls, 4, "first: 401 + retry; second: 401 + retry");
}

#[tokio::test]
async fn concurrent_401s_share_one_refresh() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    let sent = manager.access_token().await.unwrap();
    fake.revoke_all_access_tokens();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "www-authenticate",
        http::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    let headers = Arc::new(headers);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (m, h, s) = (manager.clone(), Arc::clone(&headers), sent.clone());
            tokio::spawn(async move { m.on_unauthorized(&h, Some(&s), "POST /mcp").await })
        })
        .collect();
    for t in tasks {
        assert_ne!(t.await.unwrap().unwrap(), sent);
    }
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
}

#[tokio::test]
async fn a_token_shorter_lived_than_the_buffer_is_not_refreshed_on_every_call() {
    let fake = Fake::start(Knobs {
        expires_in: 30,
        ..Knobs::default()
    })
    .await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap(); // buffer 60 s > lifetime 30 s
    let first = manager.access_token().await.unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(manager.access_token().await.unwrap(), first);
    clock.advance(Duration::from_secs(6)); // past half its lifetime
    assert_ne!(manager.access_token().await.unwrap(), first);
    assert_eq!(grant_types(&fake), ["authorization_code", "refresh_token"]);
}
