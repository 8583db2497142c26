//! Per-request cost of DPoP at the bearer layer, beside one raw ES256 verification.
//!
//! Issue 14's measure: a repeated DPoP-bound token (answered by the token cache) with a **new**
//! ES256 proof on every request must cost at most 1.2× one raw aws-lc-rs ES256 verification.
//! The proofs are signed in criterion's untimed set-up (`iter_batched`), so only the layer's
//! work is timed: the token cache hit, the proof's header gate, JWK parse, signature, claims,
//! `htu`, `ath`, thumbprint and replay-cache insert.
//!
//! | id | what it measures |
//! | --- | --- |
//! | `raw_aws_lc_rs_es256` | `UnparsedPublicKey::verify` of one ES256 signature: the floor |
//! | `dpop_cached_token_new_proof` | `BearerAuthLayer` + `CachedVerifier<JwtVerifier>` + `dpop(..)`, the same `cnf.jkt` token and a fresh proof per request |
//! | `bearer_cached` | the same layer, a plain bearer token answered by the cache (no proof) |
//!
//! Run with `cargo bench -p mcp-auth-resource --bench dpop` (append `-- --quick` for a fast pass).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::{hint::black_box, sync::Arc, time::Duration};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    },
};
use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_auth_core::{Clock, SystemClock};
use mcp_auth_jwt::dpop::{DpopKey, ProofClaims};
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, DpopConfig, DpopVerifier, JwsAlgorithm, JwtVerifier,
    ProtectedResource,
};
use serde_json::json;
use tower::{Layer, Service, ServiceExt, service_fn};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Issuer {
    key: EcdsaKeyPair,
    jwks: String,
}

impl Issuer {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "as-1",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..]),
        });
        Self {
            key,
            jwks: json!({ "keys": [jwk] }).to_string(),
        }
    }

    fn token(&self, jkt: Option<&str>) -> String {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": "as-1" });
        let mut claims = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "user-1", "client_id": "bench",
            "scope": "mcp:tools", "exp": 4_102_444_800_u64, "iat": 1_000_000_000_u64,
            "jti": "bench-token",
        });
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

fn resource() -> ProtectedResource {
    ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap()
}

fn request(authorization: &HeaderValue, proof: Option<String>) -> Request<Body> {
    let mut request = Request::post("/mcp").body(Body::empty()).unwrap();
    request
        .headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    if let Some(proof) = proof {
        request
            .headers_mut()
            .insert("dpop", HeaderValue::try_from(proof).unwrap());
    }
    request
}

fn dpop(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = Issuer::new();
    let client = DpopKey::generate().unwrap();
    let bound = issuer.token(Some(client.thumbprint()));
    let plain = issuer.token(None);
    let mut group = c.benchmark_group("dpop");

    // The floor: one raw ES256 verification (a proof signed once).
    let proof = client
        .proof(&ProofClaims::new("POST", RESOURCE, 1))
        .unwrap();
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let sig = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap()
    };
    let jwk = client.public_jwk();
    let point = {
        use base64::Engine as _;
        let d = |s: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.as_str().unwrap())
                .unwrap()
        };
        let mut p = vec![4u8];
        p.extend(d(&jwk["x"]));
        p.extend(d(&jwk["y"]));
        p
    };
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
    key.verify(input.as_bytes(), &sig).unwrap();
    group.bench_function("raw_aws_lc_rs_es256", |b| {
        b.iter(|| {
            black_box(&key)
                .verify(black_box(input.as_bytes()), black_box(&sig))
                .unwrap();
        });
    });

    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let verifier = DpopVerifier::with_settings(
        Arc::clone(&clock),
        &[JwsAlgorithm::ES256],
        Duration::from_secs(60),
        Duration::from_secs(30),
        4_000_000,
    );
    let jwt = JwtVerifier::for_resource(ISSUER, &resource())
        .jwks_json(&issuer.jwks)
        .build()
        .unwrap();
    let layer = BearerAuthLayer::new(CachedVerifier::new(jwt), resource())
        .dpop(DpopConfig::with_verifier(verifier));
    let service = layer.layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
    }));

    let dpop_auth = HeaderValue::try_from(format!("DPoP {bound}")).unwrap();
    let fresh = || {
        client
            .proof(&ProofClaims::new("POST", RESOURCE, clock.unix_seconds()).access_token(&bound))
            .unwrap()
    };
    // Warm the token cache; check the path answers 200.
    for _ in 0..2 {
        let response = runtime
            .block_on(service.clone().oneshot(request(&dpop_auth, Some(fresh()))))
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    group.bench_function("dpop_cached_token_new_proof", |b| {
        let mut service = service.clone();
        b.iter_batched(
            || request(&dpop_auth, Some(fresh())),
            |req| {
                runtime.block_on(async {
                    let response = service.ready().await.unwrap().call(req).await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                });
            },
            BatchSize::SmallInput,
        );
    });

    let bearer_auth = HeaderValue::try_from(format!("Bearer {plain}")).unwrap();
    let response = runtime
        .block_on(service.clone().oneshot(request(&bearer_auth, None)))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    group.bench_function("bearer_cached", |b| {
        let mut service = service.clone();
        b.iter_batched(
            || request(&bearer_auth, None),
            |req| {
                runtime.block_on(async {
                    let response = service.ready().await.unwrap().call(req).await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                });
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = dpop
}
criterion_main!(benches);
