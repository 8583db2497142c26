//! DPoP (RFC 9449) against a loopback MCP server and authorization server written for these
//! tests: proofs on token and resource requests, nonce retries, and the bad input (a nonce asked
//! for twice, a malformed `DPoP-Nonce`, a server that demands DPoP its authorization server does
//! not issue).
#![cfg(feature = "dpop")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::Engine;
use mcp_auth_client::{
    AuthError, AuthErrorKind, ClientCredentials, OAuthLayer, TokenManager,
    store::{MemoryTokenStore, TokenKey, TokenStore},
};
use serde_json::{Value, json};
use sha2::Digest;
use support::{Transport, rpc};
use tower::{ServiceBuilder, ServiceExt};

/// How the fake servers behave.
#[derive(Debug, Clone)]
struct Behaviour {
    /// `dpop_signing_alg_values_supported` in the AS metadata (empty: not advertised).
    as_algs: Vec<&'static str>,
    /// The token endpoint demands this nonce (`None`: no nonce).
    as_nonce: Option<&'static str>,
    /// The token endpoint answers `use_dpop_nonce` to every request, with these nonces in turn.
    as_always_nonce: bool,
    /// The `DPoP-Nonce` value the token endpoint sends with `use_dpop_nonce`.
    as_nonce_header: &'static str,
    /// The MCP endpoint demands this nonce.
    rs_nonce: Option<&'static str>,
    /// The MCP endpoint answers `use_dpop_nonce` to every request.
    rs_always_nonce: bool,
    /// The MCP endpoint accepts DPoP only (its challenges are `DPoP` ones).
    rs_dpop_only: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            as_algs: vec!["ES256"],
            as_nonce: None,
            as_always_nonce: false,
            as_nonce_header: "as-nonce-1",
            rs_nonce: None,
            rs_always_nonce: false,
            rs_dpop_only: true,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    /// The proof's payload, decoded (not verified: the end-to-end tests verify with the servers'
    /// real checks).
    proof: Option<Value>,
    proof_header: Option<Value>,
}

struct Fake {
    base: String,
    behaviour: Behaviour,
    seen: Mutex<Vec<Seen>>,
}

fn part(jws: &str, index: usize) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jws.split('.').nth(index)?)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn ath(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token))
}

async fn handle(State(fake): State<Arc<Fake>>, uri: Uri, headers: HeaderMap) -> Response {
    let b = &fake.behaviour;
    let proof_jws = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let seen = Seen {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        proof: proof_jws.as_deref().and_then(|p| part(p, 1)),
        proof_header: proof_jws.as_deref().and_then(|p| part(p, 0)),
    };
    fake.seen.lock().unwrap().push(seen.clone());
    let nonce_of = |seen: &Seen| {
        seen.proof
            .as_ref()
            .and_then(|p| p.get("nonce"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", fake.base);
    match uri.path() {
        "/.well-known/oauth-protected-resource/mcp" => axum::Json(json!({
            "resource": format!("{}/mcp", fake.base),
            "authorization_servers": [fake.base],
        }))
        .into_response(),
        "/.well-known/oauth-authorization-server" => {
            let mut doc = json!({
                "issuer": fake.base,
                "authorization_endpoint": format!("{}/authorize", fake.base),
                "token_endpoint": format!("{}/token", fake.base),
                "response_types_supported": ["code"],
                "grant_types_supported": ["client_credentials"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            });
            if !b.as_algs.is_empty() {
                doc["dpop_signing_alg_values_supported"] = json!(b.as_algs);
            }
            axum::Json(doc).into_response()
        }
        "/token" => {
            let use_nonce = || {
                (
                    StatusCode::BAD_REQUEST,
                    [
                        ("dpop-nonce", b.as_nonce_header),
                        ("cache-control", "no-store"),
                    ],
                    axum::Json(json!({"error": "use_dpop_nonce"})),
                )
                    .into_response()
            };
            if seen.proof.is_some()
                && (b.as_always_nonce
                    || b.as_nonce
                        .is_some_and(|n| nonce_of(&seen).as_deref() != Some(n)))
            {
                return use_nonce();
            }
            let dpop = seen.proof.is_some();
            let n = fake.seen.lock().unwrap().len();
            axum::Json(json!({
                "access_token": format!("at-{n}"),
                "token_type": if dpop { "DPoP" } else { "Bearer" },
                "expires_in": 3600,
            }))
            .into_response()
        }
        "/mcp" => {
            let challenge = |error: Option<&str>| {
                let scheme = if b.rs_dpop_only { "DPoP" } else { "Bearer" };
                let mut value = format!(r#"{scheme} resource_metadata="{prm_url}""#);
                if let Some(error) = error {
                    value = format!(r#"{scheme} error="{error}", resource_metadata="{prm_url}""#);
                }
                if b.rs_dpop_only {
                    value.push_str(r#", algs="ES256""#);
                }
                value
            };
            let Some(authorization) = seen.authorization.as_deref() else {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", challenge(None))],
                )
                    .into_response();
            };
            let Some((scheme, token)) = authorization.split_once(' ') else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            if b.rs_dpop_only
                && (!scheme.eq_ignore_ascii_case("dpop")
                    || seen
                        .proof
                        .as_ref()
                        .and_then(|p| p.get("ath"))
                        .and_then(Value::as_str)
                        != Some(ath(token).as_str()))
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", challenge(Some("invalid_token")))],
                )
                    .into_response();
            }
            if seen.proof.is_some()
                && (b.rs_always_nonce
                    || b.rs_nonce
                        .is_some_and(|n| nonce_of(&seen).as_deref() != Some(n)))
            {
                let nonce = b.rs_nonce.unwrap_or("rs-nonce");
                return (
                    StatusCode::UNAUTHORIZED,
                    [
                        (
                            "www-authenticate",
                            r#"DPoP error="use_dpop_nonce", algs="ES256""#.to_owned(),
                        ),
                        ("dpop-nonce", nonce.to_owned()),
                    ],
                )
                    .into_response();
            }
            (StatusCode::OK, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Fake {
    async fn start(behaviour: Behaviour) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(Self {
            base: format!("http://{}", listener.local_addr().unwrap()),
            behaviour,
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&fake));
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// A machine client (client credentials with a secret) for this server.
    fn manager(&self, store: &MemoryTokenStore) -> TokenManager {
        TokenManager::builder(&format!("{}/mcp", self.base))
            .allow_insecure_loopback(true)
            .client_credentials(ClientCredentials::new("machine").secret("s3cr3t"))
            .client_credentials_grant(true)
            .interactive(false)
            .store(store.clone())
            .build()
            .unwrap()
    }
}

async fn call(manager: &TokenManager, url: &str) -> http::Response<String> {
    ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default())
        .oneshot(
            http::Request::post(format!("{url}?session=1"))
                .header("content-type", "application/json")
                .body(rpc("tools/list"))
                .unwrap(),
        )
        .await
        .unwrap()
}

fn error_of(response: &http::Response<String>) -> &AuthError {
    response
        .extensions()
        .get::<AuthError>()
        .expect("the layer records why it gave up")
}

#[tokio::test]
async fn proofs_go_on_token_and_resource_requests_and_nonces_are_retried_once() {
    let fake = Fake::start(Behaviour {
        as_nonce: Some("as-nonce-1"),
        rs_nonce: Some("rs-nonce-1"),
        ..Behaviour::default()
    })
    .await;
    let store = MemoryTokenStore::new();
    let manager = fake.manager(&store);
    let url = format!("{}/mcp", fake.base);

    let res = call(&manager, &url).await;
    assert_eq!(
        res.status(),
        200,
        "{:?}",
        res.extensions().get::<AuthError>()
    );

    // Token endpoint: a proof without a nonce, `use_dpop_nonce`, the same key again with it.
    let token = fake.seen("/token");
    assert_eq!(token.len(), 2);
    let jkt = |s: &Seen| s.proof_header.as_ref().unwrap()["jwk"].clone();
    assert_eq!(jkt(&token[0]), jkt(&token[1]));
    assert_eq!(token[0].proof_header.as_ref().unwrap()["typ"], "dpop+jwt");
    assert_eq!(token[0].proof_header.as_ref().unwrap()["alg"], "ES256");
    assert!(
        token[0].proof_header.as_ref().unwrap()["jwk"]
            .get("d")
            .is_none()
    );
    for (i, seen) in token.iter().enumerate() {
        let proof = seen.proof.as_ref().unwrap();
        assert_eq!(proof["htm"], "POST");
        assert_eq!(proof["htu"], format!("{}/token", fake.base));
        assert!(proof.get("ath").is_none());
        assert_eq!(proof.get("nonce").is_some(), i == 1);
    }
    assert_ne!(
        token[0].proof.as_ref().unwrap()["jti"],
        token[1].proof.as_ref().unwrap()["jti"]
    );

    // MCP endpoint: no token, then the DPoP token with a proof (use_dpop_nonce), then with the
    // nonce; `htu` without the query, `ath` the token's hash, the key the token request's.
    let mcp = fake.seen("/mcp");
    assert_eq!(mcp.len(), 3, "{mcp:?}");
    assert!(mcp[0].authorization.is_none());
    for seen in &mcp[1..] {
        let (scheme, value) = seen
            .authorization
            .as_deref()
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(scheme, "DPoP");
        let proof = seen.proof.as_ref().unwrap();
        assert_eq!(proof["htu"], url);
        assert_eq!(proof["htm"], "POST");
        assert_eq!(proof["ath"], ath(value));
        assert!(proof["iat"].as_u64().is_some());
        assert_eq!(jkt(seen), jkt(&token[0]));
    }
    // Nonces are kept per origin, and the fake's authorization server shares the MCP server's:
    // the first proof carries the authorization server's nonce, refused here.
    assert_eq!(mcp[1].proof.as_ref().unwrap()["nonce"], "as-nonce-1");
    assert_eq!(mcp[2].proof.as_ref().unwrap()["nonce"], "rs-nonce-1");
    assert_ne!(
        mcp[1].proof.as_ref().unwrap()["jti"],
        mcp[2].proof.as_ref().unwrap()["jti"]
    );

    // The key is kept with the tokens, and the record says DPoP.
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let record = store.load_tokens(&key).await.unwrap().unwrap();
    assert!(record.is_dpop());
    let stored_key = record.dpop_key.as_ref().unwrap().expose().to_owned();
    assert!(!format!("{record:?}").contains(&stored_key));

    // The next request uses the remembered nonce at once: one round trip.
    let res = call(&manager, &url).await;
    assert_eq!(res.status(), 200);
    let mcp = fake.seen("/mcp");
    assert_eq!(mcp.len(), 4);
    assert_eq!(mcp[3].proof.as_ref().unwrap()["nonce"], "rs-nonce-1");

    // A manager started later on the same store reuses the key.
    let again = fake.manager(&store);
    assert!(again.access_token().await.unwrap().is_dpop());
    let res = call(&again, &url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(jkt(fake.seen("/mcp").last().unwrap()), jkt(&token[0]));
}

#[tokio::test]
async fn an_authorization_server_asking_for_a_nonce_twice_gets_one_retry_and_a_clear_error() {
    let fake = Fake::start(Behaviour {
        as_always_nonce: true,
        ..Behaviour::default()
    })
    .await;
    let store = MemoryTokenStore::new();
    let manager = fake.manager(&store);
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    assert_eq!(res.status(), 401);
    let error = error_of(&res);
    assert_eq!(error.kind(), AuthErrorKind::Dpop, "{error:?}");
    assert_eq!(
        error.oauth_error(),
        Some(&mcp_auth_core::error::ErrorCode::UseDpopNonce)
    );
    assert!(error.to_string().contains("nonce"), "{error}");
    assert_eq!(fake.seen("/token").len(), 2, "exactly one retry");
}

#[tokio::test]
async fn a_malformed_dpop_nonce_is_a_clear_error_not_a_retry() {
    let fake = Fake::start(Behaviour {
        as_always_nonce: true,
        as_nonce_header: "not a \"nonce\"",
        ..Behaviour::default()
    })
    .await;
    let manager = fake.manager(&MemoryTokenStore::new());
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    let error = error_of(&res);
    assert_eq!(error.kind(), AuthErrorKind::Dpop);
    assert!(
        error.to_string().contains("malformed DPoP-Nonce"),
        "{error}"
    );
    assert_eq!(fake.seen("/token").len(), 1);
}

#[tokio::test]
async fn an_mcp_server_asking_for_a_nonce_twice_gets_one_retry_and_a_clear_error() {
    let fake = Fake::start(Behaviour {
        rs_always_nonce: true,
        ..Behaviour::default()
    })
    .await;
    let manager = fake.manager(&MemoryTokenStore::new());
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    assert_eq!(res.status(), 401);
    let error = error_of(&res);
    assert_eq!(error.kind(), AuthErrorKind::Dpop, "{error:?}");
    // No token, then the token with a proof, then one retry with the nonce.
    assert_eq!(fake.seen("/mcp").len(), 3);
    assert_eq!(
        fake.seen("/token").len(),
        1,
        "a nonce never triggers a new grant"
    );
}

#[tokio::test]
async fn an_mcp_server_demanding_dpop_the_authorization_server_does_not_issue_is_a_clear_error() {
    let fake = Fake::start(Behaviour {
        as_algs: Vec::new(),
        ..Behaviour::default()
    })
    .await;
    let manager = fake.manager(&MemoryTokenStore::new());
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    assert_eq!(res.status(), 401);
    let error = error_of(&res);
    assert_eq!(error.kind(), AuthErrorKind::Dpop, "{error:?}");
    assert!(
        error
            .to_string()
            .contains("dpop_signing_alg_values_supported"),
        "{error}"
    );
    assert!(
        fake.seen("/token").is_empty(),
        "no grant for a token the server would refuse"
    );
}

#[tokio::test]
async fn without_dpop_advertised_tokens_stay_bearer_tokens() {
    let fake = Fake::start(Behaviour {
        as_algs: Vec::new(),
        rs_dpop_only: false,
        ..Behaviour::default()
    })
    .await;
    let manager = fake.manager(&MemoryTokenStore::new());
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    assert_eq!(res.status(), 200);
    assert!(fake.seen("/token")[0].proof.is_none());
    let last = fake.seen("/mcp").pop().unwrap();
    assert!(last.authorization.unwrap().starts_with("Bearer "));
    assert!(last.proof.is_none());

    // And with DPoP advertised but turned off in the builder.
    let fake = Fake::start(Behaviour {
        rs_dpop_only: false,
        ..Behaviour::default()
    })
    .await;
    let manager = TokenManager::builder(&format!("{}/mcp", fake.base))
        .allow_insecure_loopback(true)
        .client_credentials(ClientCredentials::new("machine").secret("s3cr3t"))
        .client_credentials_grant(true)
        .dpop(false)
        .build()
        .unwrap();
    let res = call(&manager, &format!("{}/mcp", fake.base)).await;
    assert_eq!(res.status(), 200);
    assert!(fake.seen("/token")[0].proof.is_none());
}

#[tokio::test]
async fn the_key_is_kept_in_the_owner_only_token_file_and_reused_after_a_restart() {
    use mcp_auth_client::store::FileTokenStore;

    let fake = Fake::start(Behaviour::default()).await;
    let dir = std::env::temp_dir().join(format!("mcp-auth-dpop-{}", std::process::id()));
    let path = dir.join("tokens.json");
    let manager = |store: FileTokenStore| {
        TokenManager::builder(&format!("{}/mcp", fake.base))
            .allow_insecure_loopback(true)
            .client_credentials(ClientCredentials::new("machine").secret("s3cr3t"))
            .client_credentials_grant(true)
            .store(store)
            .build()
            .unwrap()
    };
    let first = manager(FileTokenStore::new(&path));
    assert_eq!(
        call(&first, &format!("{}/mcp", fake.base)).await.status(),
        200
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"dpop_key\"") && text.contains("\"token_type\": \"DPoP\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!format!("{first:?}").contains("dpop_key"));

    // Another process (a new manager on the same file) presents the token with the same key.
    let second = manager(FileTokenStore::new(&path));
    assert_eq!(
        call(&second, &format!("{}/mcp", fake.base)).await.status(),
        200
    );
    let mcp = fake.seen("/mcp");
    let jwk = |s: &Seen| s.proof_header.as_ref().unwrap()["jwk"].clone();
    assert_eq!(jwk(&mcp[1]), jwk(mcp.last().unwrap()));
    assert_eq!(
        fake.seen("/token").len(),
        1,
        "no new grant after the restart"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
