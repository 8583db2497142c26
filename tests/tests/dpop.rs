//! DPoP (RFC 9449) end to end over loopback (issue 14): `mcp-auth-client` against
//! `mcp-auth-server` with `.dpop(true).dpop_nonces(true)` and a resource behind
//! `BearerAuthLayer::dpop` with nonces, all real:
//! (a) a public client's authorization code flow — DPoP-bound access and refresh tokens, both
//!     servers' `use_dpop_nonce` answered with one retry, a refresh after a restart with the key
//!     from the store, and a stolen token or refresh token refused without the key;
//! (b) client credentials with a DPoP-bound token.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod outbound;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use http::{Request, StatusCode};
use mcp_auth_client::HeadlessBrowser;
use mcp_auth_client::store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore};
use mcp_auth_client::{ClientCredentials, OAuthLayer, TokenManager};
use mcp_auth_core::{Secret, SystemClock};
use mcp_auth_jwt::dpop::{DpopKey, ProofClaims};
use mcp_auth_resource::Auth;
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use mcp_auth_resource::{DpopConfig, DpopNonces};
use mcp_auth_server::login::HeadlessLogin;
use mcp_auth_server::{AuthorizationServer, MachineClient};
use serde_json::Value;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

const MACHINE: &str = "dpop-machine";
const MACHINE_SECRET: &str = "dpop-machine-secret-0123456789abcdef0123";

struct Stack {
    base: String,
    url: String,
    /// Requests to `/token`, and those answered `use_dpop_nonce`.
    token_requests: Arc<AtomicUsize>,
    /// Requests to `/mcp`.
    mcp_requests: Arc<AtomicUsize>,
}

/// Our authorization server (DPoP with nonces) and our resource (DPoP with nonces) at one
/// origin.
async fn stack() -> Stack {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/mcp");
    let server = AuthorizationServer::builder(&base)
        .resource(&url)
        .scopes(["notes:read"])
        .login(HeadlessLogin::new("alice"))
        .dpop(true)
        .dpop_nonces(true)
        .client_credentials(true)
        .machine_client(
            MachineClient::new(MACHINE, Secret::new(MACHINE_SECRET)).scopes(["notes:read"]),
        )
        .build()
        .await
        .unwrap();
    let resource = ProtectedResource::builder(&url)
        .authorization_server(&base)
        .scopes_supported("notes:read".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&base, &resource)
        .discover_jwks()
        .build()
        .unwrap();
    let nonces = DpopNonces::new(Arc::new(SystemClock::default())).unwrap();
    let mcp = Router::new()
        .route(
            "/mcp",
            post(|auth: Auth, body: String| async move {
                format!(
                    "{body} ok for {} via {}",
                    auth.subject().unwrap_or("?"),
                    auth.client_id().unwrap_or("?"),
                )
            }),
        )
        .layer(
            BearerAuthLayer::new(verifier, resource.clone()).dpop(DpopConfig::new().nonces(nonces)),
        );
    let token_requests = Arc::new(AtomicUsize::new(0));
    let mcp_requests = Arc::new(AtomicUsize::new(0));
    let (tokens, mcps) = (token_requests.clone(), mcp_requests.clone());
    let app = Router::new()
        .merge(server.router())
        .merge(resource.metadata_router())
        .merge(mcp)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let (tokens, mcps) = (tokens.clone(), mcps.clone());
                async move {
                    match req.uri().path() {
                        "/token" => tokens.fetch_add(1, Ordering::SeqCst),
                        "/mcp" => mcps.fetch_add(1, Ordering::SeqCst),
                        _ => 0,
                    };
                    next.run(req).await
                }
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stack {
        base,
        url,
        token_requests,
        mcp_requests,
    }
}

async fn call(manager: &TokenManager, url: &str) -> (StatusCode, String) {
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(outbound::http_service());
    let request = Request::post(url)
        .header("content-type", "text/plain")
        .body("read".to_owned())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    (response.status(), response.into_body())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn key_of(record: &StoredTokens) -> DpopKey {
    let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(record.dpop_key.as_ref().unwrap().expose())
        .unwrap();
    DpopKey::from_pkcs8_der(&der).unwrap()
}

fn now() -> u64 {
    use mcp_auth_core::Clock as _;
    SystemClock::default().unix_seconds()
}

/// A refresh request with `refresh_token`, and a proof by `key` if any (after learning the
/// authorization server's nonce, as a thief with a key of their own would).
async fn steal(
    stack: &Stack,
    record: &StoredTokens,
    refresh_token: &str,
    key: Option<&DpopKey>,
) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let token_url = format!("{}/token", stack.base);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", record.client_id.as_str()),
        ("resource", record.resource.as_str()),
    ];
    let mut nonce: Option<String> = None;
    for _ in 0..2 {
        let mut request = http.post(&token_url).form(&form);
        if let Some(key) = key {
            let mut claims = ProofClaims::new("POST", &token_url, now());
            if let Some(nonce) = nonce.as_deref() {
                claims = claims.nonce(nonce);
            }
            request = request.header("dpop", key.proof(&claims).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let header = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.unwrap();
        if body["error"] == "use_dpop_nonce" && nonce.is_none() {
            nonce = header;
            continue;
        }
        return (status, body);
    }
    unreachable!("the authorization server asked for a nonce twice")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_gets_dpop_bound_tokens_refreshes_with_its_key_and_nonces_are_answered() {
    let stack = stack().await;
    let store = MemoryTokenStore::new();
    let manager = TokenManager::builder(&stack.url)
        .client_name("dpop e2e client")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .store(store.clone())
        .build()
        .unwrap();

    // 401 → discovery → DCR → authorize → token (use_dpop_nonce, retried) → the resource
    // (use_dpop_nonce, retried) → 200.
    let (status, body) = call(&manager, &stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("read ok for alice"), "{body}");
    assert_eq!(
        stack.token_requests.load(Ordering::SeqCst),
        2,
        "one nonce retry at /token"
    );
    assert_eq!(
        stack.mcp_requests.load(Ordering::SeqCst),
        3,
        "no token, then a nonce retry at /mcp"
    );

    // The tokens are DPoP-bound to the key kept in the store.
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let record = store.load_tokens(&key).await.unwrap().unwrap();
    assert_eq!(record.token_type.as_deref(), Some("DPoP"));
    let dpop_key = key_of(&record);
    let access = record.access_token.expose().to_owned();
    assert_eq!(claims(&access)["cnf"]["jkt"], dpop_key.thumbprint());
    assert!(
        record.refresh_token.is_some(),
        "a public client gets a refresh token"
    );
    assert!(!format!("{record:?}").contains(record.dpop_key.as_ref().unwrap().expose()));
    let token = manager.cached_token().await.unwrap().unwrap();
    assert!(token.is_dpop());
    assert!(!format!("{token:?}").contains(&access));

    // The next call needs one request: the nonce is remembered.
    let (status, _) = call(&manager, &stack.url).await;
    assert_eq!(status, 200);
    assert_eq!(stack.mcp_requests.load(Ordering::SeqCst), 4);

    // The same token presented as a bearer token, or with the DPoP scheme and no proof, is
    // refused.
    let http = reqwest::Client::new();
    for scheme in ["Bearer", "DPoP"] {
        let response = http
            .post(&stack.url)
            .header("authorization", format!("{scheme} {access}"))
            .body("read")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{scheme} without the key");
    }

    // A restart with an expired access token: the refresh carries a proof by the stored key
    // (the refresh token is bound to it) and brings a new DPoP-bound token.
    let mut expired = record.clone();
    expired.expires_at = expired.obtained_at;
    store.save_tokens(&key, &expired).await.unwrap();
    let restarted = TokenManager::builder(&stack.url)
        .allow_insecure_loopback(true)
        .interactive(false)
        .store(store.clone())
        .build()
        .unwrap();
    let before = stack.token_requests.load(Ordering::SeqCst);
    let (status, body) = call(&restarted, &stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        stack.token_requests.load(Ordering::SeqCst) > before,
        "refreshed"
    );
    let refreshed = store.load_tokens(&key).await.unwrap().unwrap();
    assert_ne!(refreshed.access_token.expose(), access);
    assert_eq!(refreshed.token_type.as_deref(), Some("DPoP"));
    assert_eq!(key_of(&refreshed).thumbprint(), dpop_key.thumbprint());
    assert_eq!(
        claims(refreshed.access_token.expose())["cnf"]["jkt"],
        dpop_key.thumbprint()
    );

    // A stolen refresh token is refused without the key: no proof, or a proof by another key.
    let stolen = refreshed
        .refresh_token
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    let thief = DpopKey::generate().unwrap();
    for key in [None, Some(&thief)] {
        let (status, body) = steal(&stack, &refreshed, &stolen, key).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.get("access_token").is_none(), "{body}");
        assert_ne!(body["error"], "use_dpop_nonce", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_get_a_dpop_bound_token() {
    let stack = stack().await;
    let store = MemoryTokenStore::new();
    let manager = TokenManager::builder(&stack.url)
        .allow_insecure_loopback(true)
        .client_credentials(ClientCredentials::new(MACHINE).secret(MACHINE_SECRET))
        .client_credentials_grant(true)
        .interactive(false)
        .store(store.clone())
        .build()
        .unwrap();
    let (status, body) = call(&manager, &stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(MACHINE), "{body}");
    assert_eq!(
        stack.token_requests.load(Ordering::SeqCst),
        2,
        "one nonce retry"
    );
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let record = store.load_tokens(&key).await.unwrap().unwrap();
    assert!(record.is_dpop());
    assert_eq!(
        claims(record.access_token.expose())["cnf"]["jkt"],
        key_of(&record).thumbprint()
    );
    let response = reqwest::Client::new()
        .post(&stack.url)
        .bearer_auth(record.access_token.expose())
        .body("read")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a DPoP-bound token as a bearer token"
    );
}
