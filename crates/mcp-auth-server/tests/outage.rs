#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The database goes away and comes back: the server answers 503 with `Retry-After` meanwhile
//! (never a half-written grant), the resource server keeps accepting the tokens it can check by
//! itself, and everything works again once the database returns, without a restart.
//!
//! PostgreSQL (at `MCP_AUTH_TEST_POSTGRES_URL`) is reached through a TCP proxy written here,
//! which the test cuts (every open connection dropped, new ones refused) and restores.

mod common;

#[path = "common/pg.rs"]
mod pg;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcp_auth_core::Secret;
use mcp_auth_server::MachineClient;
use mcp_auth_server::store::{PostgresOptions, PostgresStore};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const MACHINE_ID: &str = "nightly-report";
const MACHINE_SECRET: &str = "nightly-report-secret-0123456789abcdef";

/// A TCP proxy that can be cut and restored.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: open connections end.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (accept_up, accept_cuts) = (up.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = accept_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cuts }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn machine_token(h: &common::Harness) -> reqwest::Response {
    h.http
        .post(h.url("/token"))
        .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_gives_503_keeps_jwts_valid_and_heals_by_itself() {
    let Some(schema) = pg::Schema::new().await else {
        return;
    };
    let mut url = url::Url::parse(&schema.url).unwrap();
    let target: SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let store = PostgresStore::connect_with(
        PostgresOptions::new(url.as_str())
            .schema(&schema.name)
            .acquire_timeout(Duration::from_secs(1))
            .statement_timeout(Some(Duration::from_secs(2))),
    )
    .await
    .unwrap();
    let h = common::start_with_store(Arc::new(store), |b| {
        b.client_credentials(true)
            .machine_client(
                MachineClient::new(MACHINE_ID, Secret::new(MACHINE_SECRET)).scopes(["mcp:tools"]),
            )
            .revocation_poll_interval(Duration::from_millis(200))
    })
    .await;

    let response = machine_token(&h).await;
    assert_eq!(response.status(), 200);
    let token = response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.call_mcp(&token).await.status(), 200);

    proxy.cut();
    // Bounded: every request below gives up within the pool's 1 s acquire timeout.
    let started = Instant::now();
    let response = machine_token(&h).await;
    assert_eq!(response.status(), 503);
    let retry = common::retry_after(&response);
    assert!((1..=60).contains(&retry));
    assert_eq!(response.headers()["cache-control"], "no-store");
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"] == "temporarily_unavailable" || error["error"] == "server_error",
        "{error}"
    );
    let response = h
        .http
        .post(h.url("/register"))
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let response = h
        .http
        .get(h.url("/authorize?response_type=code&client_id=someone&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        503,
        "a page that says try again, not an unknown client"
    );
    assert!(response.headers().contains_key("retry-after"));
    // The resource server checks the JWT itself: still accepted, while the database is away.
    assert_eq!(h.call_mcp(&token).await.status(), 200);
    // Metadata and keys are served from memory.
    let jwks = h.http.get(h.url("/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the outage answers came slowly: {:?}",
        started.elapsed()
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = machine_token(&h).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A whole browser flow works again.
    let client_id = h.register_public("http://127.0.0.1:9/cb").await;
    let (verifier, challenge) = common::pkce();
    let code = h
        .authorize(&client_id, "http://127.0.0.1:9/cb", &challenge, "mcp:tools")
        .await;
    let response = h
        .exchange(&client_id, &code, "http://127.0.0.1:9/cb", &verifier)
        .await;
    assert_eq!(response.status(), 200);
}
