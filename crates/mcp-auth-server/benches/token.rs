//! The token endpoint with the SQLite store: `authorization_code` and `refresh_token` grants,
//! through the real router (form parsing, client authentication, store, signing, JSON), and
//! their parts measured alone so the report can say where the time goes.
//!
//! Run with `cargo bench -p mcp-auth-server --bench token` (or `cargo xtask bench`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use mcp_auth_core::metadata::ClientMetadata;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::store::{
    ClientRecord, CodeRecord, Durability, GrantRecord, MemoryStore, RefreshRecord, RefreshState,
    SqliteStore, Store, TokenHash,
};
use tower::ServiceExt;

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const REDIRECT: &str = "http://127.0.0.1/callback";
const CLIENT: &str = "bench-client";

struct Setup {
    server: AuthorizationServer,
    app: axum::Router,
    store: Arc<dyn Store>,
    verifier: String,
    challenge: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn setup(durability: Option<Durability>) -> Setup {
    let dir = std::env::temp_dir().join(format!("mcp-auth-bench-{}", random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> = match durability {
        Some(durability) => Arc::new(
            SqliteStore::open_with(dir.join("bench.db"), durability)
                .await
                .unwrap(),
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let server = AuthorizationServer::builder(ISSUER)
        .resource(RESOURCE)
        .scopes(["mcp:tools"])
        .shared_store(store.clone())
        .build()
        .await
        .unwrap();
    let mut metadata = ClientMetadata::default();
    metadata.redirect_uris = vec![REDIRECT.into()];
    metadata.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    store
        .put_client(ClientRecord::public(CLIENT, metadata, 0))
        .await
        .unwrap();
    let verifier = CodeVerifier::generate();
    let challenge = CodeChallenge::s256(&verifier).as_str().to_owned();
    Setup {
        app: server.router(),
        server,
        store,
        verifier: verifier.expose().to_owned(),
        challenge,
        _dir: TempDir(dir),
    }
}

fn code_record(s: &Setup, code: &str, now: u64) -> CodeRecord {
    CodeRecord {
        hash: TokenHash::of(code),
        client_id: CLIENT.into(),
        redirect_uri: REDIRECT.into(),
        redirect_uri_in_request: true,
        code_challenge: s.challenge.clone(),
        resource: RESOURCE.into(),
        scope: "mcp:tools".into(),
        subject: "alice".into(),
        grant_id: random_token(),
        issued_at: now,
        expires_at: now + 600,
    }
}

fn now() -> u64 {
    use mcp_auth_core::Clock;
    mcp_auth_core::SystemClock::default().unix_seconds()
}

async fn post(app: &axum::Router, body: String) -> serde_json::Value {
    let request = http::Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn bench(c: &mut Criterion) {
    bench_with(
        c,
        Some(Durability::Full),
        "token (sqlite, synchronous=FULL)",
    );
    bench_with(
        c,
        Some(Durability::Normal),
        "token (sqlite, synchronous=NORMAL)",
    );
    bench_with(c, None, "token (memory store)");
}

fn bench_with(c: &mut Criterion, durability: Option<Durability>, name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup(durability));
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(8));

    // authorization_code: codes are inserted before the clock starts; each iteration redeems one.
    group.bench_function("authorization_code", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let now = now();
                let mut codes = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    let code = random_token();
                    s.store.put_code(code_record(&s, &code, now)).await.unwrap();
                    codes.push(code);
                }
                let start = Instant::now();
                for code in &codes {
                    let body = form(&[
                        ("grant_type", "authorization_code"),
                        ("client_id", CLIENT),
                        ("code", code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", &s.verifier),
                        ("resource", RESOURCE),
                    ]);
                    std::hint::black_box(post(&s.app, body).await);
                }
                start.elapsed()
            })
        });
    });

    // refresh_token: a chain of rotations, each iteration uses the token the previous returned.
    let first = rt.block_on(async {
        let code = random_token();
        s.store
            .put_code(code_record(&s, &code, now()))
            .await
            .unwrap();
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &s.verifier),
        ]);
        post(&s.app, body).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let mut refresh = first;
    group.bench_function("refresh_token", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let body = form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", CLIENT),
                        ("refresh_token", &refresh),
                        ("resource", RESOURCE),
                    ]);
                    let t = post(&s.app, body).await;
                    refresh = t["refresh_token"].as_str().unwrap().to_owned();
                }
                start.elapsed()
            })
        });
    });

    // Where the time goes: the parts alone.
    // The router and its guards (CORS, the body limit, the timeout, the rejection shaper, the
    // loopback Host guard), the form and the client lookup, with no grant: a refused grant type.
    group.bench_function("part: router and guards (unsupported_grant_type)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let request = http::Request::post("/token")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(Body::from(
                            "grant_type=urn%3Aexample%3Anone&client_id=bench-client",
                        ))
                        .unwrap();
                    let response = s.app.clone().oneshot(request).await.unwrap();
                    assert_eq!(response.status(), 400);
                    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                        .await
                        .unwrap();
                    std::hint::black_box(bytes);
                }
                start.elapsed()
            })
        });
    });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": CLIENT, "scope": "mcp:tools",
        "jti": "0123456789abcdefghijkl", "iat": 1_700_000_000u64, "exp": 1_700_000_900u64, "sid": "grant",
    });
    group.bench_function("part: sign access token (ES256)", |b| {
        b.iter(|| std::hint::black_box(s.server.keys().sign("at+jwt", &claims, now()).unwrap()));
    });
    group.bench_function("part: store take_code + create_grant", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let now = now();
                let mut codes = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    let code = random_token();
                    s.store.put_code(code_record(&s, &code, now)).await.unwrap();
                    codes.push(code);
                }
                let start = Instant::now();
                for code in &codes {
                    let taken = s.store.take_code(&TokenHash::of(code)).await.unwrap();
                    std::hint::black_box(&taken);
                    let grant = GrantRecord {
                        grant_id: random_token(),
                        client_id: CLIENT.into(),
                        subject: "alice".into(),
                        scope: "mcp:tools".into(),
                        resource: RESOURCE.into(),
                        created_at: now,
                        expires_at: now + 3600,
                        revoked_at: None,
                    };
                    let refresh = RefreshRecord {
                        hash: TokenHash::of(&random_token()),
                        grant_id: grant.grant_id.clone(),
                        scope: "mcp:tools".into(),
                        issued_at: now,
                        expires_at: now + 3600,
                        state: RefreshState::Active,
                        parent: None,
                        rotated_at: None,
                        dpop_jkt: None,
                    };
                    s.store.create_grant(grant, Some(refresh)).await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
