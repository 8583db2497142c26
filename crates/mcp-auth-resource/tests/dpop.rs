//! DPoP at the bearer layer (RFC 9449 §7): every bad input of issue 14 is a request here, with the
//! RFC's status and error code, and the inner service never called.
#![cfg(feature = "dpop")]
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use aws_lc_rs::{
    hmac,
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header::WWW_AUTHENTICATE};
use http_body_util::Full;
use mcp_auth_core::{
    ManualClock,
    challenge::{BearerChallenge, DpopChallenge, parse},
    error::ErrorCode,
};
use mcp_auth_jwt::dpop::{DpopKey, ProofClaims};
use mcp_auth_resource::{
    AuthInfo, BearerAuthLayer, BearerError, BearerErrorKind, DpopConfig, DpopErrorKind, DpopNonces,
    DpopRejection, DpopVerifier, JwsAlgorithm, ProtectedResource, TokenVerifier, VerifyError,
    VerifyErrorKind,
};
use serde_json::{Value, json};
use tower::{BoxError, Layer as _, ServiceExt as _, service_fn};

type Body = Full<Bytes>;

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://mcp.example.com/mcp";
const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// Tokens: `bound.<jkt>` (answered from the cache), `slow.<jkt>` (answered by `verify`),
/// `plain` (a bearer token), `expired`.
#[derive(Debug, Default)]
struct Table {
    cached: AtomicUsize,
    verified: AtomicUsize,
}

fn info(token: &str) -> Result<AuthInfo, VerifyError> {
    let builder = AuthInfo::builder()
        .subject("alice")
        .scopes("mcp:tools".parse().unwrap());
    if let Some(jkt) = token
        .strip_prefix("bound.")
        .or_else(|| token.strip_prefix("slow."))
    {
        return Ok(builder.dpop_jkt(jkt).build());
    }
    match token {
        "plain" => Ok(builder.build()),
        _ => Err(VerifyErrorKind::Expired.into()),
    }
}

impl TokenVerifier for Table {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        self.verified.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        info(token)
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        self.cached.fetch_add(1, Ordering::SeqCst);
        (!token.starts_with("slow.")).then(|| info(token))
    }
}

struct Harness {
    clock: ManualClock,
    calls: Arc<AtomicUsize>,
    verifier: Arc<Table>,
    layer: BearerAuthLayer<Arc<Table>>,
}

fn resource() -> ProtectedResource {
    ProtectedResource::builder(URL)
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().unwrap())
        .dpop_signing_alg_values_supported("ES256")
        .build()
        .unwrap()
}

fn harness(configure: impl FnOnce(DpopConfig, &ManualClock) -> DpopConfig) -> Harness {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW));
    let verifier = DpopVerifier::with_settings(
        Arc::new(clock.clone()),
        &[JwsAlgorithm::ES256],
        Duration::from_secs(60),
        Duration::from_secs(30),
        1000,
    );
    let config = configure(DpopConfig::with_verifier(verifier), &clock);
    let table = Arc::new(Table::default());
    Harness {
        clock,
        calls: Arc::new(AtomicUsize::new(0)),
        verifier: Arc::clone(&table),
        layer: BearerAuthLayer::new(table, resource()).dpop(config),
    }
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> Response<Body> {
        let calls = Arc::clone(&self.calls);
        let service = self.layer.layer(service_fn(move |req: Request<Body>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let jkt = req
                .extensions()
                .get::<AuthInfo>()
                .and_then(AuthInfo::dpop_jkt)
                .unwrap_or("-")
                .to_owned();
            async move { Ok::<_, BoxError>(Response::new(Body::from(jkt))) }
        }));
        service.oneshot(req).await.unwrap()
    }

    fn called(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn request(method: &str, path: &str, auth: Option<&str>, proofs: &[&str]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    for proof in proofs {
        builder = builder.header("dpop", *proof);
    }
    builder.body(Body::default()).unwrap()
}

fn proof(key: &DpopKey, method: &str, url: &str, iat: u64, token: Option<&str>) -> String {
    let mut claims = ProofClaims::new(method, url, iat);
    if let Some(token) = token {
        claims = claims.access_token(token);
    }
    key.proof(&claims).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A proof with any header and payload, signed by `key` (for proofs `DpopKey` never makes).
fn raw_proof(key: &DpopKey, header: &Value, payload: &Value) -> String {
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.to_pkcs8_der().unwrap(),
    )
    .unwrap();
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

fn good_payload(token: &str) -> Value {
    json!({
        "jti": format!("{:x}", rand_u64()),
        "htm": "POST",
        "htu": URL,
        "iat": NOW,
        "ath": mcp_auth_resource::dpop::access_token_hash(token),
    })
}

fn rand_u64() -> u64 {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut b = [0u8; 8];
    SystemRandom::new().fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn challenges(response: &Response<Body>) -> (Option<BearerChallenge>, Option<DpopChallenge>) {
    let all: Vec<_> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .flat_map(|v| parse(v.to_str().unwrap()).unwrap())
        .collect();
    (BearerChallenge::find(&all), DpopChallenge::find(&all))
}

fn rejection(response: &Response<Body>) -> BearerErrorKind {
    response.extensions().get::<BearerError>().unwrap().kind()
}

/// Asserts a 401 whose `DPoP` challenge carries `code`, and that nothing was called.
#[track_caller]
fn assert_dpop_401(h: &Harness, response: &Response<Body>, code: ErrorCode, kind: BearerErrorKind) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejection(response), kind);
    let (bearer, dpop) = challenges(response);
    let dpop = dpop.expect("a DPoP challenge");
    assert_eq!(dpop.error_code(), Some(code));
    assert_eq!(dpop.algs_value(), Some("ES256"));
    assert_eq!(dpop.resource_metadata_url(), Some(PRM));
    // The Bearer challenge stays, bare: where the metadata is.
    let bearer = bearer.expect("a Bearer challenge");
    assert_eq!(bearer.error_code(), None);
    assert_eq!(bearer.resource_metadata_url(), Some(PRM));
    let _ = h;
}

#[tokio::test]
async fn a_bound_token_with_a_valid_proof_passes_and_the_proof_is_checked_every_time() {
    let h = harness(|c, _| c);
    let key = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());
    for _ in 0..3 {
        let p = proof(&key, "POST", URL, NOW, Some(&token));
        let response = h
            .send(request(
                "POST",
                "/mcp?session=1",
                Some(&format!("DPoP {token}")),
                &[&p],
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(h.called(), 3);
    // The token came from the verifier's cache each time; the proof was checked each time (a
    // replay of the last one is refused).
    assert_eq!(h.verifier.cached.load(Ordering::SeqCst), 3);
    assert_eq!(h.verifier.verified.load(Ordering::SeqCst), 0);

    // The asynchronous path (token not cached) checks the binding the same way.
    let slow = format!("slow.{}", key.thumbprint());
    let p = proof(&key, "GET", URL, NOW, Some(&slow));
    let response = h
        .send(request("GET", "/mcp", Some(&format!("dpop {slow}")), &[&p]))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let other = DpopKey::generate().unwrap();
    let p = proof(&other, "GET", URL, NOW, Some(&slow));
    let response = h
        .send(request("GET", "/mcp", Some(&format!("DPoP {slow}")), &[&p]))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidDpopProof,
        BearerErrorKind::Dpop(DpopRejection::Proof(DpopErrorKind::KeyMismatch)),
    );
    assert_eq!(h.called(), 4);
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let h = harness(|c, _| c);
    let key = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());
    let p = proof(&key, "POST", URL, NOW, Some(&token));
    let auth = format!("DPoP {token}");
    assert_eq!(
        h.send(request("POST", "/mcp", Some(&auth), &[&p]))
            .await
            .status(),
        StatusCode::OK
    );
    let response = h.send(request("POST", "/mcp", Some(&auth), &[&p])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        rejection(&response),
        BearerErrorKind::Dpop(DpopRejection::Proof(DpopErrorKind::Replay))
    );
    assert_eq!(h.called(), 1);
}

#[tokio::test]
async fn each_bad_proof_is_a_401_invalid_dpop_proof() {
    let key = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());
    let auth = format!("DPoP {token}");
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});

    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let alg_none = format!(
        "{}.{}.",
        b64(none_header.to_string().as_bytes()),
        b64(good_payload(&token).to_string().as_bytes())
    );
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let hs_input = format!(
        "{}.{}",
        b64(hs_header.to_string().as_bytes()),
        b64(good_payload(&token).to_string().as_bytes())
    );
    let hs_tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"k"),
        hs_input.as_bytes(),
    );
    let hmac_proof = format!("{hs_input}.{}", b64(hs_tag.as_ref()));
    let mut private_header = header.clone();
    private_header["jwk"]["d"] = json!("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI");
    let mut no_ath = good_payload(&token);
    no_ath.as_object_mut().unwrap().remove("ath");

    use DpopErrorKind::*;
    let cases: Vec<(&str, String, DpopErrorKind)> = vec![
        (
            "another method",
            proof(&key, "GET", URL, NOW, Some(&token)),
            Method,
        ),
        (
            "another URL",
            proof(
                &key,
                "POST",
                "https://mcp.example.com/other",
                NOW,
                Some(&token),
            ),
            Url,
        ),
        (
            "another host",
            proof(
                &key,
                "POST",
                "https://evil.example.com/mcp",
                NOW,
                Some(&token),
            ),
            Url,
        ),
        (
            "iat too old",
            proof(&key, "POST", URL, NOW - 120, Some(&token)),
            IssuedAt,
        ),
        (
            "iat in the future",
            proof(&key, "POST", URL, NOW + 120, Some(&token)),
            IssuedAt,
        ),
        (
            "signed by another key than cnf.jkt",
            proof(&other, "POST", URL, NOW, Some(&token)),
            KeyMismatch,
        ),
        (
            "missing ath",
            raw_proof(&key, &header, &no_ath),
            AccessTokenHash,
        ),
        (
            "wrong ath",
            proof(&key, "POST", URL, NOW, Some("another-token")),
            AccessTokenHash,
        ),
        ("alg none", alg_none, Algorithm),
        ("HMAC", hmac_proof, Algorithm),
        (
            "private key in the header",
            raw_proof(&key, &private_header, &good_payload(&token)),
            PrivateKey,
        ),
        ("not a JWS", "not-a-proof".to_owned(), Malformed),
    ];
    for (what, p, want) in cases {
        let h = harness(|c, _| c);
        let response = h.send(request("POST", "/mcp", Some(&auth), &[&p])).await;
        assert_dpop_401(
            &h,
            &response,
            ErrorCode::InvalidDpopProof,
            BearerErrorKind::Dpop(DpopRejection::Proof(want)),
        );
        assert_eq!(h.called(), 0, "{what}");
    }
}

#[tokio::test]
async fn proof_header_count_and_scheme_binding() {
    let key = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());

    // DPoP scheme without a proof, or with two.
    let h = harness(|c, _| c);
    let response = h
        .send(request("POST", "/mcp", Some(&format!("DPoP {token}")), &[]))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidDpopProof,
        BearerErrorKind::Dpop(DpopRejection::MissingProof),
    );
    let a = proof(&key, "POST", URL, NOW, Some(&token));
    let b = proof(&key, "POST", URL, NOW, Some(&token));
    let response = h
        .send(request(
            "POST",
            "/mcp",
            Some(&format!("DPoP {token}")),
            &[&a, &b],
        ))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidDpopProof,
        BearerErrorKind::Dpop(DpopRejection::MultipleProofs),
    );

    // A DPoP-bound token presented as Bearer (even with a valid proof beside it).
    let p = proof(&key, "POST", URL, NOW, Some(&token));
    let response = h
        .send(request(
            "POST",
            "/mcp",
            Some(&format!("Bearer {token}")),
            &[&p],
        ))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidToken,
        BearerErrorKind::Dpop(DpopRejection::BoundTokenAsBearer),
    );

    // A bearer token with the DPoP scheme.
    let p = proof(&key, "POST", URL, NOW, Some("plain"));
    let response = h
        .send(request("POST", "/mcp", Some("DPoP plain"), &[&p]))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidToken,
        BearerErrorKind::Dpop(DpopRejection::UnboundToken),
    );

    // A bad token with a good proof: invalid_token, told in the DPoP challenge.
    let p = proof(&key, "POST", URL, NOW, Some("expired"));
    let response = h
        .send(request("POST", "/mcp", Some("DPoP expired"), &[&p]))
        .await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::InvalidToken,
        BearerErrorKind::InvalidToken(VerifyErrorKind::Expired),
    );

    // Plain Bearer still works beside DPoP.
    let response = h
        .send(request("POST", "/mcp", Some("Bearer plain"), &[]))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_credentials_both_challenges_are_sent() {
    let h = harness(|c, _| c);
    let response = h.send(request("POST", "/mcp", None, &[])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let values: Vec<_> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        values,
        [
            format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools""#),
            format!(r#"DPoP resource_metadata="{PRM}", algs="ES256""#),
        ]
    );
    assert!(response.headers().get("dpop-nonce").is_none());
}

#[tokio::test]
async fn required_dpop_refuses_bearer_tokens_and_drops_the_bearer_challenge() {
    let h = harness(|c, _| c.require_dpop(true));
    let response = h
        .send(request("POST", "/mcp", Some("Bearer plain"), &[]))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        rejection(&response),
        BearerErrorKind::Dpop(DpopRejection::BearerNotAccepted)
    );
    let (bearer, dpop) = challenges(&response);
    assert!(bearer.is_none());
    assert_eq!(dpop.unwrap().error_code(), Some(ErrorCode::InvalidToken));

    let response = h.send(request("POST", "/mcp", None, &[])).await;
    let values: Vec<_> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        values,
        [format!(
            r#"DPoP resource_metadata="{PRM}", scope="mcp:tools", algs="ES256""#
        )]
    );
    assert_eq!(h.called(), 0);
}

#[tokio::test]
async fn nonces_use_dpop_nonce_then_a_retry_with_the_nonce_passes() {
    let h = harness(|c, clock| {
        c.nonces(DpopNonces::with_secret(
            b"secret",
            Duration::from_secs(300),
            Arc::new(clock.clone()),
        ))
    });
    let key = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());
    let auth = format!("DPoP {token}");
    let p = proof(&key, "POST", URL, NOW, Some(&token));
    let response = h.send(request("POST", "/mcp", Some(&auth), &[&p])).await;
    assert_dpop_401(
        &h,
        &response,
        ErrorCode::UseDpopNonce,
        BearerErrorKind::Dpop(DpopRejection::Proof(DpopErrorKind::UseNonce)),
    );
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();

    let p = key
        .proof(
            &ProofClaims::new("POST", URL, NOW)
                .access_token(&token)
                .nonce(&nonce),
        )
        .unwrap();
    let response = h.send(request("POST", "/mcp", Some(&auth), &[&p])).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Ten minutes later the nonce is stale: a new challenge with a new nonce.
    h.clock.advance(Duration::from_secs(600));
    let later = NOW + 600;
    let p = key
        .proof(
            &ProofClaims::new("POST", URL, later)
                .access_token(&token)
                .nonce(&nonce),
        )
        .unwrap();
    let response = h.send(request("POST", "/mcp", Some(&auth), &[&p])).await;
    assert_eq!(
        rejection(&response),
        BearerErrorKind::Dpop(DpopRejection::Proof(DpopErrorKind::UseNonce))
    );
    assert_ne!(response.headers()["dpop-nonce"], nonce.as_str());
}

#[tokio::test]
async fn without_the_dpop_setting_bound_tokens_and_the_dpop_scheme_are_refused() {
    let layer = BearerAuthLayer::new(Table::default(), resource());
    let service = layer.layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, BoxError>(Response::new(Body::default()))
    }));
    let key = DpopKey::generate().unwrap();
    let token = format!("bound.{}", key.thumbprint());
    let p = proof(&key, "POST", URL, NOW, Some(&token));
    let response = service
        .clone()
        .oneshot(request(
            "POST",
            "/mcp",
            Some(&format!("Bearer {token}")),
            &[&p],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        rejection(&response),
        BearerErrorKind::Dpop(DpopRejection::BoundTokenAsBearer)
    );
    let response = service
        .oneshot(request(
            "POST",
            "/mcp",
            Some(&format!("DPoP {token}")),
            &[&p],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn metadata_publishes_the_dpop_settings() {
    let resource = ProtectedResource::builder(URL)
        .authorization_server("https://auth.example.com")
        .dpop_signing_alg_values_supported("ES256 EdDSA")
        .dpop_bound_access_tokens_required(true)
        .build()
        .unwrap();
    let doc: Value = serde_json::from_slice(resource.metadata_json()).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], json!(true));
    let plain: Value = serde_json::from_slice(super_resource().metadata_json()).unwrap();
    assert!(plain.get("dpop_bound_access_tokens_required").is_none());
}

fn super_resource() -> ProtectedResource {
    ProtectedResource::builder(URL)
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap()
}
