//! DPoP at the token endpoint (RFC 9449 §5, §8) over loopback, and the resulting tokens at a
//! DPoP-enabled resource server: bound access tokens, bound refresh tokens of public clients,
//! nonces, and every bad proof answered 400 with nothing issued.
#![cfg(feature = "dpop")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use mcp_auth_jwt::dpop::{DpopKey, ProofClaims};
use mcp_auth_resource::Auth;
use mcp_auth_resource::DpopConfig;
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn now() -> u64 {
    use mcp_auth_core::Clock as _;
    mcp_auth_core::SystemClock::default().unix_seconds()
}

fn proof(key: &DpopKey, url: &str, nonce: Option<&str>) -> String {
    let mut claims = ProofClaims::new("POST", url, now());
    if let Some(nonce) = nonce {
        claims = claims.nonce(nonce);
    }
    key.proof(&claims).unwrap()
}

/// The `DPoP-Nonce` a `use_dpop_nonce` answer carries (it must).
fn nonce_of(response: &reqwest::Response) -> String {
    response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

impl common::Harness {
    async fn token_with_proof(
        &self,
        form: &[(&str, &str)],
        proof: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url("/token")).form(form);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send().await.unwrap()
    }

    /// A public client and a fresh authorization code for it: (client_id, code, verifier).
    async fn code(&self) -> (String, String, String) {
        let client_id = self.register_public(REDIRECT).await;
        let (verifier, challenge) = common::pkce();
        let code = self
            .authorize(&client_id, REDIRECT, &challenge, "mcp:tools")
            .await;
        (client_id, code, verifier)
    }
}

fn exchange_form<'a>(
    h: &'a common::Harness,
    client_id: &'a str,
    code: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("resource", &h.resource),
    ]
}

/// A resource server that accepts DPoP, trusting the harness's authorization server.
async fn dpop_resource(h: &common::Harness) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The audience is the harness's resource; the proofs' `htu` is this server's URL.
    let protected = ProtectedResource::builder(&h.resource)
        .authorization_server(&h.base)
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&h.base, &protected)
        .discover_jwks()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            post(|auth: Auth| async move { axum::Json(json!({ "sub": auth.subject() })) }),
        )
        .layer(BearerAuthLayer::new(verifier, protected).dpop(DpopConfig::new()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn a_proof_at_the_token_endpoint_binds_the_access_and_refresh_tokens() {
    let h = common::start(|b| b.dpop(true)).await;
    let metadata: Value = h
        .http
        .get(h.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );

    let key = DpopKey::generate().unwrap();
    let token_url = h.url("/token");
    let (client_id, code, verifier) = h.code().await;
    let response = h
        .token_with_proof(
            &exchange_form(&h, &client_id, &code, &verifier),
            Some(&proof(&key, &token_url, None)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&access)["cnf"]["jkt"], key.thumbprint());
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // The bound refresh token: no proof, or a proof by another key, is refused (and rotates
    // nothing); a proof by the same key refreshes, and the new access token is bound too.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    for bad in [
        None,
        Some(proof(&DpopKey::generate().unwrap(), &token_url, None)),
    ] {
        let response = h.token_with_proof(&form, bad.as_deref()).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof");
        assert!(body.get("access_token").is_none());
    }
    let response = h
        .token_with_proof(&form, Some(&proof(&key, &token_url, None)))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );

    // At a DPoP resource server: with the DPoP scheme and a proof, accepted; as Bearer, refused.
    let rs = dpop_resource(&h).await;
    let mcp = format!("{rs}/mcp");
    // The layer checks `htu` against the resource it protects (its identifier's origin and the
    // request path); this one stands in for the harness's resource on another port.
    let rs_proof = key
        .proof(&ProofClaims::new("POST", &h.resource, now()).access_token(&access))
        .unwrap();
    let response = h
        .http
        .post(&mcp)
        .header("Authorization", format!("DPoP {access}"))
        .header("DPoP", rs_proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = h.http.post(&mcp).bearer_auth(&access).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenges: Vec<_> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("DPoP error=\"invalid_token\"")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn without_a_proof_tokens_stay_bearer_tokens() {
    let h = common::start(|b| b.dpop(true)).await;
    let (client_id, code, verifier) = h.code().await;
    let response = h
        .token_with_proof(&exchange_form(&h, &client_id, &code, &verifier), None)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        payload(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn bad_proofs_are_400_invalid_dpop_proof_and_nothing_is_issued() {
    let h = common::start(|b| b.dpop(true)).await;
    let key = DpopKey::generate().unwrap();
    let token_url = h.url("/token");
    let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()});
    let body = json!({"jti": "x", "htm": "POST", "htu": token_url, "iat": now()});
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!("{}.{}.", b64(&header), b64(&body));
    let replayed = proof(&key, &token_url, None);
    let cases = [
        ("alg none", alg_none),
        ("another URL", proof(&key, &h.url("/other"), None)),
        (
            "another method",
            key.proof(&ProofClaims::new("GET", &token_url, now()))
                .unwrap(),
        ),
        (
            "too old",
            key.proof(&ProofClaims::new("POST", &token_url, now() - 600))
                .unwrap(),
        ),
        ("replayed", replayed.clone()),
    ];
    // Use the replayed proof once first.
    let (client_id, code, verifier) = h.code().await;
    let response = h
        .token_with_proof(
            &exchange_form(&h, &client_id, &code, &verifier),
            Some(&replayed),
        )
        .await;
    assert_eq!(response.status(), 200);
    for (what, p) in cases {
        let (client_id, code, verifier) = h.code().await;
        let response = h
            .token_with_proof(&exchange_form(&h, &client_id, &code, &verifier), Some(&p))
            .await;
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}");
        assert!(body.get("access_token").is_none(), "{what}");
        // The code was not consumed: a good proof still redeems it.
        let response = h
            .token_with_proof(
                &exchange_form(&h, &client_id, &code, &verifier),
                Some(&proof(&key, &token_url, None)),
            )
            .await;
        assert_eq!(response.status(), 200, "{what}");
    }
}

#[tokio::test]
async fn nonces_use_dpop_nonce_then_the_retry_with_the_nonce_succeeds() {
    let h = common::start(|b| b.dpop(true).dpop_nonces(true)).await;
    let key = DpopKey::generate().unwrap();
    let token_url = h.url("/token");
    let (client_id, code, verifier) = h.code().await;
    let form = exchange_form(&h, &client_id, &code, &verifier);
    let response = h
        .token_with_proof(&form, Some(&proof(&key, &token_url, None)))
        .await;
    assert_eq!(response.status(), 400);
    let nonce = nonce_of(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    assert!(body.get("access_token").is_none());

    let response = h
        .token_with_proof(&form, Some(&proof(&key, &token_url, Some("forged"))))
        .await;
    assert_eq!(response.status(), 400);

    let response = h
        .token_with_proof(&form, Some(&proof(&key, &token_url, Some(&nonce))))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn replicas_with_one_nonce_secret_accept_each_others_nonces() {
    let secret = mcp_auth_core::Secret::new("a shared secret of at least 32 bytes, not logged");
    let a = common::start(|b| b.dpop(true).dpop_nonce_secret(&secret)).await;
    let b = common::start(|b| b.dpop(true).dpop_nonce_secret(&secret)).await;
    let other = common::start(|b| b.dpop(true).dpop_nonces(true)).await;
    let key = DpopKey::generate().unwrap();

    // Replica A asks for a nonce.
    let (client_id, code, verifier) = a.code().await;
    let response = a
        .token_with_proof(
            &exchange_form(&a, &client_id, &code, &verifier),
            Some(&proof(&key, &a.url("/token"), None)),
        )
        .await;
    assert_eq!(response.status(), 400);
    let nonce = nonce_of(&response);

    // Replica B, with the same secret, takes it.
    let (client_id, code, verifier) = b.code().await;
    let form = exchange_form(&b, &client_id, &code, &verifier);
    let response = b
        .token_with_proof(&form, Some(&proof(&key, &b.url("/token"), Some(&nonce))))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["token_type"],
        "DPoP"
    );

    // A server with a secret of its own does not: a fresh challenge, nothing issued.
    let (client_id, code, verifier) = other.code().await;
    let form = exchange_form(&other, &client_id, &code, &verifier);
    let response = other
        .token_with_proof(
            &form,
            Some(&proof(&key, &other.url("/token"), Some(&nonce))),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("dpop-nonce").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_short_nonce_secret_is_refused_when_the_server_is_built() {
    let error = mcp_auth_server::AuthorizationServer::builder("http://127.0.0.1:1")
        .resource("http://127.0.0.1:1/mcp")
        .dpop(true)
        .dpop_nonce_secret(&mcp_auth_core::Secret::new("too short"))
        .build()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
    assert!(!format!("{error:?}").contains("too short"));
}
