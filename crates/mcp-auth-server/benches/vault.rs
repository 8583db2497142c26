//! The upstream token vault's hot path: a tool asks for a user's upstream access token, the
//! vault has the record (encrypted) in memory and the token is not about to expire, so the call
//! is one lookup and one AES-256-GCM decryption. Measured among 10,000 users on the SQLite
//! store, next to an ES256 signature verification (what every MCP request already pays to
//! check its access token) for scale.
//!
//! Run with `cargo bench -p mcp-auth-server --bench vault` (or `cargo xtask bench`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use criterion::{Criterion, criterion_group, criterion_main};
use mcp_auth_core::{Clock, Secret, SystemClock};
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::login::LoginFuture;
use mcp_auth_server::store::SqliteStore;
use mcp_auth_server::upstream::{RefreshError, UpstreamClient, UpstreamTokens};
use mcp_auth_server::vault::{Vault, VaultKey};

const UPSTREAM: &str = "https://idp.example.com";
const USERS: usize = 10_000;

/// Never called: the tokens in this bench do not expire.
#[derive(Debug)]
struct NoRefresh;

impl UpstreamClient for NoRefresh {
    fn upstream_id(&self) -> &str {
        UPSTREAM
    }

    fn refresh<'a>(
        &'a self,
        _refresh_token: &'a Secret,
    ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
        Box::pin(async { Err(RefreshError::Unavailable("not in this bench".into())) })
    }
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce).unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "mcp-auth-bench-vault-{}",
        u64::from_le_bytes(nonce)
    )));
    std::fs::create_dir_all(&dir.0).unwrap();

    let vault = rt.block_on(async {
        let store = SqliteStore::open(dir.0.join("vault.db")).await.unwrap();
        let server = AuthorizationServer::builder("http://127.0.0.1:8080")
            .resource("http://127.0.0.1:8080/mcp")
            .store(store)
            .vault(Vault::builder(VaultKey::generate().unwrap()).upstream(NoRefresh))
            .build()
            .await
            .unwrap();
        let vault = server.vault().unwrap().clone();
        let expires = SystemClock::default().unix_seconds() + 24 * 3600;
        for user in 0..USERS {
            // Token sizes of a typical provider: a ~40-byte opaque access token... and a JWT-sized one.
            let access = if user % 2 == 0 {
                format!("gho_{user:036}")
            } else {
                format!("eyJhbGciOiJSUzI1NiJ9.{}.{}", "x".repeat(600), user)
            };
            let tokens = UpstreamTokens::new(access)
                .with_refresh_token(format!("refresh-{user:060}"))
                .with_expires_at(expires)
                .with_scope("openid profile email");
            vault
                .put(&format!("user-{user}"), UPSTREAM, tokens)
                .await
                .unwrap();
        }
        vault
    });

    let mut group = c.benchmark_group("vault");
    group.measurement_time(Duration::from_secs(5));
    for (name, subject) in [
        ("access_token cached (40-byte token)", "user-4242"),
        ("access_token cached (JWT-sized token)", "user-4243"),
    ] {
        assert!(rt.block_on(vault.access_token(subject, UPSTREAM)).is_ok());
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(
                            vault
                                .access_token(black_box(subject), UPSTREAM)
                                .await
                                .unwrap(),
                        );
                    }
                    start.elapsed()
                })
            });
        });
    }

    // For scale: one ES256 verification of a JWT-sized message, as a resource server does.
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let message = vec![b'a'; 320];
    let signature = pair.sign(&rng, &message).unwrap();
    let public = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        pair.public_key().as_ref().to_vec(),
    );
    group.bench_function("es256 verify (aws-lc-rs)", |b| {
        b.iter(|| {
            public
                .verify(black_box(&message), black_box(signature.as_ref()))
                .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
