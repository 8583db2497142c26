#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The upstream token vault against a real token endpoint: a small upstream provider on
//! loopback (an axum app with `/token` for refresh grants and `/userinfo`) that counts the
//! refreshes it saw, rotates refresh tokens, and can refuse them (`invalid_grant`) or be down.
//! The vault's `UpstreamClient` here talks to it over HTTP, as the OIDC login does.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mcp_auth_core::{Clock, ManualClock, Secret, SystemClock};
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::Revocable;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use mcp_auth_server::login::{LocalLogin, LoginFuture};
use mcp_auth_server::store::{MemoryStore, SqliteStore, Store};
use mcp_auth_server::upstream::{RefreshError, UpstreamClient, UpstreamTokens};
use mcp_auth_server::vault::{UpstreamAccess, Vault, VaultError, VaultKey};
use mcp_auth_server::{AuthorizationServer, ConfigError};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const KEY_A: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// How long the upstream's access tokens live (the vault refreshes 30 s before).
const UPSTREAM_TTL: u64 = 60;

// ----- the upstream provider -----

#[derive(Default)]
struct Provider {
    /// Refresh requests seen at `/token`.
    refreshes: AtomicUsize,
    state: Mutex<ProviderState>,
    /// Every bearer token `/userinfo` was called with.
    bearers: Mutex<Vec<String>>,
}

#[derive(Default)]
struct ProviderState {
    refresh_tokens: HashSet<String>,
    access_tokens: HashSet<String>,
    issued: usize,
    /// Issue a new refresh token with every refresh (and retire the old one).
    rotate: bool,
    /// Answer 503 to every token request.
    down: bool,
}

impl Provider {
    /// What a sign-in would have issued: an access and a refresh token.
    fn sign_in(&self) -> (String, String) {
        let mut state = self.state.lock().unwrap();
        state.issued += 1;
        let n = state.issued;
        let (at, rt) = (format!("upstream-at-{n}"), format!("upstream-rt-{n}"));
        state.access_tokens.insert(at.clone());
        state.refresh_tokens.insert(rt.clone());
        (at, rt)
    }

    fn revoke_refresh_tokens(&self) {
        self.state.lock().unwrap().refresh_tokens.clear();
    }
}

async fn token_endpoint(
    State(provider): State<Arc<Provider>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    provider.refreshes.fetch_add(1, Ordering::SeqCst);
    // Slow enough that concurrent callers pile up behind the one refresh.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut state = provider.state.lock().unwrap();
    if state.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || !state.refresh_tokens.contains(&presented)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    state.issued += 1;
    let n = state.issued;
    let access = format!("upstream-at-{n}");
    state.access_tokens.insert(access.clone());
    let mut body =
        json!({"access_token": access, "token_type": "Bearer", "expires_in": UPSTREAM_TTL});
    if state.rotate {
        state.refresh_tokens.remove(&presented);
        let rt = format!("upstream-rt-{n}");
        state.refresh_tokens.insert(rt.clone());
        body["refresh_token"] = json!(rt);
    }
    Json(body).into_response()
}

async fn userinfo(State(provider): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    provider.bearers.lock().unwrap().push(bearer.clone());
    if provider
        .state
        .lock()
        .unwrap()
        .access_tokens
        .contains(&bearer)
    {
        Json(json!({"sub": "upstream-alice", "name": "Alice Upstream"})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// Start a provider on loopback; its base URL is also its upstream id.
async fn start_provider(rotate: bool) -> (Arc<Provider>, String) {
    let provider = Arc::new(Provider::default());
    provider.state.lock().unwrap().rotate = rotate;
    let app = Router::new()
        .route("/token", post(token_endpoint))
        .route("/userinfo", get(userinfo))
        .with_state(provider.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (provider, base)
}

// ----- the vault's client for it, over HTTP -----

#[derive(Debug)]
struct HttpUpstream {
    base: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl HttpUpstream {
    fn new(base: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            clock,
        }
    }
}

impl UpstreamClient for HttpUpstream {
    fn upstream_id(&self) -> &str {
        &self.base
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
        Box::pin(async move {
            let response = self
                .http
                .post(format!("{}/token", self.base))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose()),
                ])
                .send()
                .await
                .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant" {
                return Err(RefreshError::Rejected);
            }
            if status != StatusCode::OK {
                return Err(RefreshError::Unavailable(format!("status {status}")));
            }
            let access = body["access_token"].as_str().unwrap_or_default();
            let mut tokens = UpstreamTokens::new(access).with_expires_at(
                self.clock.unix_seconds() + body["expires_in"].as_u64().unwrap_or(0),
            );
            if let Some(rt) = body["refresh_token"].as_str() {
                tokens = tokens.with_refresh_token(rt);
            }
            Ok(tokens)
        })
    }
}

// ----- setup -----

fn key(text: &str) -> VaultKey {
    text.parse().unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(SystemClock::default().now())
}

async fn server(
    store: Arc<dyn Store>,
    clock: &ManualClock,
    vault: mcp_auth_server::vault::VaultBuilder,
) -> AuthorizationServer {
    AuthorizationServer::builder("http://127.0.0.1:1")
        .resource("http://127.0.0.1:1/mcp")
        .shared_store(store)
        .clock(clock.clone())
        .vault(vault)
        .build()
        .await
        .unwrap()
}

fn vault_of(server: &AuthorizationServer) -> Vault {
    server.vault().expect("configured").clone()
}

/// The sign-in: the provider issues tokens, the login stores them.
async fn sign_in(vault: &Vault, provider: &Provider, base: &str, clock: &ManualClock) -> String {
    let (at, rt) = provider.sign_in();
    let tokens = UpstreamTokens::new(&at)
        .with_refresh_token(rt)
        .with_expires_at(clock.unix_seconds() + UPSTREAM_TTL)
        .with_scope("openid profile");
    vault.put("alice", base, tokens).await.unwrap();
    at
}

async fn concurrent_tokens(vault: &Vault, base: &str, n: usize) -> Vec<Result<String, String>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let vault = vault.clone();
            let base = base.to_owned();
            tokio::spawn(async move {
                vault
                    .access_token("alice", &base)
                    .await
                    .map(|t| t.expose().to_owned())
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

// ----- tests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_token_is_served_without_the_upstream_and_an_expiring_one_is_refreshed_once_for_100_callers()
 {
    let (provider, base) = start_provider(true).await;
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = server(
        Arc::new(MemoryStore::new()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    let vault = vault_of(&server);
    let first = sign_in(&vault, &provider, &base, &clock).await;

    for _ in 0..10 {
        assert_eq!(
            vault.access_token("alice", &base).await.unwrap().expose(),
            first
        );
    }
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 0);

    // 29 s left: inside the 30 s margin, so it is refreshed, once for 100 callers.
    clock.advance(Duration::from_secs(UPSTREAM_TTL - 29));
    let got = concurrent_tokens(&vault, &base, 100).await;
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
    let second = got[0].clone().unwrap();
    assert_ne!(second, first);
    assert!(got.iter().all(|t| t.as_ref() == Ok(&second)), "{got:?}");
    // Cached again: no more refreshes.
    assert_eq!(
        vault.access_token("alice", &base).await.unwrap().expose(),
        second
    );
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);

    // The rotated refresh token was kept: the next refresh presents it and succeeds (the
    // provider retired the first one).
    clock.advance(Duration::from_secs(UPSTREAM_TTL));
    let third = vault.access_token("alice", &base).await.unwrap();
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 2);
    assert_ne!(third.expose(), second);

    // Nothing in the store, or in any Debug output, shows a token.
    let record = server
        .store()
        .get_upstream_tokens("alice", &base)
        .await
        .unwrap()
        .unwrap();
    let stored = String::from_utf8_lossy(&record.ciphertext).into_owned();
    let shown = format!("{vault:?} {record:?} {server:?}");
    for secret in ["upstream-at", "upstream-rt"] {
        assert!(
            !stored.contains(secret) && !shown.contains(secret),
            "{shown}"
        );
    }
    assert_eq!(record.nonce.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_that_goes_away_does_not_cut_the_refresh_short_and_no_refresh_token_means_sign_in()
{
    let (provider, base) = start_provider(true).await;
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = server(
        Arc::new(MemoryStore::new()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    let vault = vault_of(&server);
    sign_in(&vault, &provider, &base, &clock).await;
    clock.advance(Duration::from_secs(UPSTREAM_TTL));
    // The only caller gives up while the provider is still answering (it takes 150 ms).
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        vault.access_token("alice", &base),
    )
    .await;
    assert!(gave_up.is_err());
    // The refresh finished anyway: the rotated refresh token was not lost.
    let mut refreshed = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let record = server
            .store()
            .get_upstream_tokens("alice", &base)
            .await
            .unwrap();
        // Seen by the provider, and finished (the lease is gone).
        if provider.refreshes.load(Ordering::SeqCst) == 1
            && record.is_some_and(|r| r.refresh_lease.is_none())
        {
            refreshed = Some(vault.access_token("alice", &base).await.unwrap());
            break;
        }
    }
    assert!(refreshed.is_some());
    assert_eq!(
        provider.refreshes.load(Ordering::SeqCst),
        1,
        "no second refresh"
    );

    // Tokens without a refresh token: once expired, the user must sign in again.
    let (at, _) = provider.sign_in();
    let tokens = UpstreamTokens::new(at).with_expires_at(clock.unix_seconds() + UPSTREAM_TTL);
    vault.put("bob", &base, tokens).await.unwrap();
    assert!(vault.access_token("bob", &base).await.is_ok());
    clock.advance(Duration::from_secs(UPSTREAM_TTL));
    assert!(matches!(
        vault.access_token("bob", &base).await,
        Err(VaultError::SignInRequired)
    ));
    assert!(
        server
            .store()
            .get_upstream_tokens("bob", &base)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_does_not_rotate_keeps_the_first_refresh_token_working() {
    let (provider, base) = start_provider(false).await;
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = server(
        Arc::new(MemoryStore::new()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    let vault = vault_of(&server);
    sign_in(&vault, &provider, &base, &clock).await;
    let mut seen = HashSet::new();
    for round in 1..=3 {
        clock.advance(Duration::from_secs(UPSTREAM_TTL));
        seen.insert(
            vault
                .access_token("alice", &base)
                .await
                .unwrap()
                .expose()
                .to_owned(),
        );
        assert_eq!(provider.refreshes.load(Ordering::SeqCst), round);
    }
    assert_eq!(seen.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_provider_is_down_callers_get_unavailable_the_tokens_stay_and_it_recovers() {
    let (provider, base) = start_provider(true).await;
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = server(
        Arc::new(MemoryStore::new()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    let vault = vault_of(&server);
    sign_in(&vault, &provider, &base, &clock).await;
    provider.state.lock().unwrap().down = true;
    clock.advance(Duration::from_secs(UPSTREAM_TTL));

    let got = concurrent_tokens(&vault, &base, 20).await;
    assert!(
        got.iter()
            .all(|r| r.as_ref().is_err_and(|e| e == "Unavailable")),
        "{got:?}"
    );
    assert_eq!(
        provider.refreshes.load(Ordering::SeqCst),
        1,
        "one refresh for the wave"
    );
    assert!(
        server
            .store()
            .get_upstream_tokens("alice", &base)
            .await
            .unwrap()
            .is_some_and(|r| r.refresh_lease.is_none()),
        "tokens kept, lease released"
    );

    provider.state.lock().unwrap().down = false;
    assert!(vault.access_token("alice", &base).await.is_ok());
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_sharing_one_sqlite_file_refresh_once_between_them() {
    let (provider, base) = start_provider(true).await;
    let dir =
        std::env::temp_dir().join(format!("mcp-auth-vault-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vault.db");
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let one = server(
        Arc::new(SqliteStore::open(&path).await.unwrap()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared.clone())),
    )
    .await;
    let two = server(
        Arc::new(SqliteStore::open(&path).await.unwrap()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    let (v1, v2) = (vault_of(&one), vault_of(&two));
    sign_in(&v1, &provider, &base, &clock).await;
    // The second process reads it from the shared file.
    assert!(v2.access_token("alice", &base).await.is_ok());

    clock.advance(Duration::from_secs(UPSTREAM_TTL));
    let (a, b) = tokio::join!(
        concurrent_tokens(&v1, &base, 30),
        concurrent_tokens(&v2, &base, 30)
    );
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
    let token = a[0].clone().unwrap();
    assert!(a.iter().chain(&b).all(|t| t.as_ref() == Ok(&token)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_with_a_rotated_key_old_records_decrypt_and_a_refresh_reencrypts_them() {
    let (provider, base) = start_provider(true).await;
    let dir =
        std::env::temp_dir().join(format!("mcp-auth-vault-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vault.db");
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let first_token = {
        let store = SqliteStore::open(&path).await.unwrap();
        let before = server(
            Arc::new(store.clone()),
            &clock,
            Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared.clone())),
        )
        .await;
        let token = sign_in(&vault_of(&before), &provider, &base, &clock).await;
        store.close().await;
        token
    };

    // Restart: a new store on the same file, key B current, key A old.
    let store = SqliteStore::open(&path).await.unwrap();
    let after = server(
        Arc::new(store.clone()),
        &clock,
        Vault::builder(key(KEY_B))
            .old_key(key(KEY_A))
            .upstream(HttpUpstream::new(&base, shared.clone())),
    )
    .await;
    let vault = vault_of(&after);
    assert_eq!(
        vault.access_token("alice", &base).await.unwrap().expose(),
        first_token
    );
    let record = store
        .get_upstream_tokens("alice", &base)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.key_id, key(KEY_A).id());

    clock.advance(Duration::from_secs(UPSTREAM_TTL));
    vault.access_token("alice", &base).await.unwrap();
    let record = store
        .get_upstream_tokens("alice", &base)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.key_id,
        key(KEY_B).id(),
        "re-encrypted with the current key"
    );

    // A server that lost key B cannot read it, and says so.
    let (_, other_base) = start_provider(true).await;
    let without_b = server(
        Arc::new(store.clone()),
        &clock,
        Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&base, shared)),
    )
    .await;
    assert!(matches!(
        vault_of(&without_b).access_token("alice", &base).await,
        Err(VaultError::Undecryptable)
    ));
    assert!(matches!(
        vault.access_token("alice", &other_base).await,
        Err(VaultError::UnknownUpstream(_))
    ));
    assert!(matches!(
        vault.access_token("bob", &base).await,
        Err(VaultError::NotFound)
    ));
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_vault_configuration_is_checked_when_the_server_is_built() {
    let clock: Arc<dyn Clock> = Arc::new(clock());
    let build = |vault| async {
        AuthorizationServer::builder("http://127.0.0.1:1")
            .resource("http://127.0.0.1:1/mcp")
            .vault(vault)
            .build()
            .await
    };
    let none = build(Vault::builder(key(KEY_A))).await.unwrap_err();
    assert!(matches!(none, ConfigError::Invalid(_)), "{none}");
    let twice = build(
        Vault::builder(key(KEY_A))
            .upstream(HttpUpstream::new("http://127.0.0.1:9", clock.clone()))
            .upstream(HttpUpstream::new("http://127.0.0.1:9", clock.clone())),
    )
    .await
    .unwrap_err();
    assert!(matches!(twice, ConfigError::Invalid(_)), "{twice}");
    let margin = build(
        Vault::builder(key(KEY_A))
            .upstream(HttpUpstream::new("http://127.0.0.1:9", clock.clone()))
            .refresh_margin(Duration::from_secs(7200)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(margin, ConfigError::InvalidLifetime(_)),
        "{margin}"
    );
    let timeout = build(
        Vault::builder(key(KEY_A))
            .upstream(HttpUpstream::new("http://127.0.0.1:9", clock))
            .refresh_timeout(Duration::from_millis(10)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(timeout, ConfigError::InvalidLifetime(_)),
        "{timeout}"
    );
}

// ----- with the MCP side: our AS, a resource server in the process, a tool -----

struct Mcp {
    harness: common::Harness,
    provider: Arc<Provider>,
    upstream: String,
    clock: ManualClock,
    vault: Vault,
}

/// The tool: calls the provider's userinfo as the user, with the upstream token.
async fn profile_tool(
    access: UpstreamAccess,
    Extension(upstream): Extension<UpstreamBase>,
) -> Result<Json<Value>, VaultError> {
    let token = access.access_token(&upstream.0).await?;
    let response = reqwest::Client::new()
        .get(format!("{}/userinfo", upstream.0))
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|_| VaultError::Unavailable)?;
    let body: Value = response.json().await.map_err(|_| VaultError::Unavailable)?;
    Ok(Json(
        json!({"subject": access.subject(), "upstream_profile": body}),
    ))
}

#[derive(Clone)]
struct UpstreamBase(String);

async fn start_mcp() -> Mcp {
    let (provider, upstream) = start_provider(true).await;
    let clock = clock();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let server = AuthorizationServer::builder(&base)
        .resource(&resource)
        .scopes(["mcp:tools"])
        .login(LocalLogin::new().user(common::USER, common::PASSWORD))
        .clock(clock.clone())
        .vault(Vault::builder(key(KEY_A)).upstream(HttpUpstream::new(&upstream, shared)))
        .build()
        .await
        .unwrap();
    let vault = vault_of(&server);
    let protected = ProtectedResource::builder(&resource)
        .authorization_server(&base)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&base, &protected)
        .discover_jwks()
        .build()
        .unwrap();
    let verifier = Revocable::new(verifier, server.revocations());
    let mcp = Router::new()
        .route("/mcp", get(profile_tool))
        .layer(Extension(vault.clone()))
        .layer(Extension(UpstreamBase(upstream.clone())))
        .layer(BearerAuthLayer::new(verifier, protected.clone()).with_subject_extension(true));
    let app = Router::new()
        .merge(server.router())
        .merge(protected.metadata_router())
        .merge(mcp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Mcp {
        harness: common::Harness {
            base,
            resource,
            server,
            http,
            cookies: Default::default(),
        },
        provider,
        upstream,
        clock,
        vault,
    }
}

/// An MCP client signs alice in (our login), and the upstream sign-in stores her tokens.
async fn connect(mcp: &Mcp) -> (String, String, String) {
    let h = &mcp.harness;
    let redirect = "http://127.0.0.1:41999/callback";
    let client_id = h.register_public(redirect).await;
    let (verifier, challenge) = common::pkce();
    let code = h
        .authorize(&client_id, redirect, &challenge, "mcp:tools")
        .await;
    let response = h.exchange(&client_id, &code, redirect, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    sign_in(&mcp.vault, &mcp.provider, &mcp.upstream, &mcp.clock).await;
    (
        client_id,
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_provider_refuses_the_refresh_the_user_is_signed_out_and_the_next_mcp_request_gets_401()
 {
    let mcp = start_mcp().await;
    let (client_id, access, refresh) = connect(&mcp).await;
    let h = &mcp.harness;

    // The tool calls the provider as alice, with the upstream token only.
    let response = h.call_mcp(&access).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Alice Upstream"), "{body}");
    assert!(
        !body.contains("upstream-at") && !body.contains("upstream-rt"),
        "{body}"
    );
    // Refreshed without the MCP client noticing.
    mcp.clock.advance(Duration::from_secs(UPSTREAM_TTL - 10));
    assert_eq!(h.call_mcp(&access).await.status(), 200);
    assert_eq!(mcp.provider.refreshes.load(Ordering::SeqCst), 1);
    let bearers = mcp.provider.bearers.lock().unwrap().clone();
    assert_eq!(bearers.len(), 2);
    assert!(
        bearers
            .iter()
            .all(|b| b.starts_with("upstream-at-") && *b != access)
    );

    // The provider revokes the refresh token; the upstream access token expires.
    mcp.provider.revoke_refresh_tokens();
    mcp.clock.advance(Duration::from_secs(UPSTREAM_TTL));
    let response = h.call_mcp(&access).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The next request: the bearer layer itself refuses the revoked grant.
    let response = h.call_mcp(&access).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata")
    );
    assert_eq!(
        mcp.provider.refreshes.load(Ordering::SeqCst),
        2,
        "no refresh after"
    );
    // The MCP refresh token is refused too, so the client signs in again.
    let response = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert!(
        h.server
            .store()
            .get_upstream_tokens(common::USER, &mcp.upstream)
            .await
            .unwrap()
            .is_none()
    );

    // Signing in again works end to end (the resource server reads the real clock: bring the
    // server's back so the new access token is not issued in its future).
    mcp.clock.set(
        std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(SystemClock::default().unix_seconds()),
    );
    let (_, access, _) = connect(&mcp).await;
    assert_eq!(h.call_mcp(&access).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_the_mcp_grant_or_signing_out_deletes_the_upstream_tokens() {
    let mcp = start_mcp().await;
    let h = &mcp.harness;
    let stored = || async {
        h.server
            .store()
            .get_upstream_tokens(common::USER, &mcp.upstream)
            .await
            .unwrap()
            .is_some()
    };

    // RFC 7009 revocation of the refresh token revokes the grant.
    let (client_id, access, refresh) = connect(&mcp).await;
    assert_eq!(h.call_mcp(&access).await.status(), 200);
    assert!(stored().await);
    assert_eq!(
        h.token_revoke(&[("client_id", &client_id), ("token", &refresh)])
            .await,
        200
    );
    assert!(!stored().await);
    assert_eq!(h.call_mcp(&access).await.status(), 401);

    // Refresh-token reuse revokes the family, and the upstream tokens with it.
    let (client_id, _, refresh) = connect(&mcp).await;
    assert!(stored().await);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    let rotated: serde_json::Value = h.token(&form).await.json().await.unwrap();
    // Reuse after the successor was used (no grace window then).
    let successor = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
    ];
    assert_eq!(h.token(&successor).await.status(), 200);
    assert_eq!(h.token(&form).await.status(), 400);
    assert!(!stored().await);

    // Signing out revokes every grant of the user.
    let (_, first, _) = connect(&mcp).await;
    let (_, second, _) = connect(&mcp).await;
    assert_eq!(h.server.sign_out(common::USER).await.unwrap(), 2);
    assert!(!stored().await);
    assert_eq!(h.call_mcp(&first).await.status(), 401);
    assert_eq!(h.call_mcp(&second).await.status(), 401);
    assert!(matches!(
        mcp.vault.access_token(common::USER, &mcp.upstream).await,
        Err(VaultError::NotFound)
    ));
}

// ----- inside an rmcp tool handler -----

mod rmcp_tool {
    use rmcp::handler::server::router::tool::ToolRouter;
    use rmcp::handler::server::tool::Extension as Context;
    use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

    use super::*;

    #[derive(Debug, Clone)]
    struct Tools {
        upstream: String,
        tool_router: ToolRouter<Self>,
    }

    #[tool_router]
    impl Tools {
        /// One call from the request's parts to a fresh upstream token.
        #[tool(description = "The user's profile at the upstream provider.")]
        async fn upstream_profile(
            &self,
            Context(parts): Context<http::request::Parts>,
        ) -> Result<CallToolResult, ErrorData> {
            let token = UpstreamAccess::from_parts(&parts)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
                .access_token(&self.upstream)
                .await
                .map_err(|e| ErrorData::invalid_request(e.to_string(), None))?;
            let body = reqwest::Client::new()
                .get(format!("{}/userinfo", self.upstream))
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
                .text()
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(CallToolResult::success(vec![ContentBlock::text(body)]))
        }
    }

    #[tool_handler(router = self.tool_router)]
    impl ServerHandler for Tools {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        }
    }

    async fn call(http: &reqwest::Client, url: &str, token: &str) -> (u16, String) {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upstream_profile","arguments":{}}}"#;
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(call)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_rmcp_tool_gets_the_upstream_token_from_its_request_context_and_a_refused_refresh_ends_in_401()
     {
        let mcp = start_mcp().await;
        let (_, access, _) = connect(&mcp).await;
        let h = &mcp.harness;

        // The same server, with rmcp's Streamable HTTP service at /rmcp behind the bearer layer.
        let protected = ProtectedResource::builder(&h.resource)
            .authorization_server(&h.base)
            .scopes_supported("mcp:tools".parse().unwrap())
            .build()
            .unwrap();
        let verifier = JwtVerifier::for_resource(&h.base, &protected)
            .discover_jwks()
            .build()
            .unwrap();
        let upstream = mcp.upstream.clone();
        let service = StreamableHttpService::new(
            move || {
                Ok(Tools {
                    upstream: upstream.clone(),
                    tool_router: Tools::tool_router(),
                })
            },
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default()
                .with_legacy_session_mode(false)
                .with_json_response(true),
        );
        let app = Router::new()
            .route_service("/rmcp", service)
            .layer(Extension(mcp.vault.clone()))
            .layer(
                BearerAuthLayer::new(Revocable::new(verifier, h.server.revocations()), protected)
                    .with_subject_extension(true),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/rmcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let (status, body) = call(&h.http, &url, &access).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Alice Upstream"), "{body}");
        assert!(!body.contains("upstream-at"), "{body}");

        mcp.provider.revoke_refresh_tokens();
        mcp.clock.advance(Duration::from_secs(UPSTREAM_TTL));
        let (status, body) = call(&h.http, &url, &access).await;
        assert_eq!(status, 200, "the JSON-RPC error travels in a 200: {body}");
        assert!(body.contains("sign in again"), "{body}");
        let (status, _) = call(&h.http, &url, &access).await;
        assert_eq!(status, 401, "the next request");
    }
}
