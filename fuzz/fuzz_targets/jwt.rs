//! The JWT readers: the header gate (mcp-auth-jwt `token.rs`: shape, base64url, header JSON,
//! `alg`, `crit`, `typ`, `kid`) and the claims checks of mcp-auth-resource's `JwtVerifier`
//! (`iss`, `aud`, `exp`, `nbf`, `iat`, `cnf`, scopes, client), through the public verifier.
//!
//! Two modes: the input as a whole token; or a header and a payload (any bytes) that the
//! harness signs with the verifier's HMAC secret, so the claims readers see every payload.
//! Properties: an accepted token has a JSON object header with `alg` `HS256` and no `crit`,
//! and claims with exactly the configured issuer, the audience, and an `exp` not past.
#![no_main]

use std::{
    sync::OnceLock,
    time::{Duration, SystemTime},
};

use libfuzzer_sys::fuzz_target;
use mcp_auth_core::{ManualClock, ResourceId};
use mcp_auth_fuzz::{b64url, block_on, fields, text};
use mcp_auth_resource::{JwsAlgorithm, JwtVerifier, TokenVerifier};
use serde_json::{Map, Value};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
const SECRET: &[u8] = b"fuzz-hmac-secret-0123456789abcdef";
const NOW: u64 = 1_700_000_000;

fn verifier(strict_typ: bool) -> &'static JwtVerifier {
    static STRICT: OnceLock<JwtVerifier> = OnceLock::new();
    static LAX: OnceLock<JwtVerifier> = OnceLock::new();
    let make = |strict: bool| {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW));
        let mut b = JwtVerifier::builder(ISSUER, &ResourceId::parse(AUDIENCE).expect("audience"))
            .hmac_secret(SECRET)
            .algorithms([JwsAlgorithm::HS256])
            .clock(clock);
        if !strict {
            b = b.accept_jwt_typ();
        }
        b.build().expect("verifier")
    };
    if strict_typ {
        STRICT.get_or_init(|| make(true))
    } else {
        LAX.get_or_init(|| make(false))
    }
}

fn sign(input: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    b64url(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 3);
    let flags = f[0].first().copied().unwrap_or(0);
    let v = verifier(flags & 1 == 0);
    if flags & 2 != 0 {
        // The whole rest as a token.
        let token = text(&data[1.min(data.len())..]);
        let _ = block_on(v.verify(&token));
        return;
    }
    let (header, payload) = (f[1], f[2]);
    let signing_input = format!("{}.{}", b64url(header), b64url(payload));
    let token = format!("{signing_input}.{}", sign(&signing_input));
    let Ok(info) = block_on(v.verify(&token)) else {
        return;
    };
    let header: Map<String, Value> =
        serde_json::from_slice(header).expect("an accepted token's header is a JSON object");
    assert_eq!(header.get("alg"), Some(&Value::from("HS256")));
    assert!(!header.contains_key("crit"));
    let claims: Map<String, Value> =
        serde_json::from_slice(payload).expect("an accepted token's claims are a JSON object");
    assert_eq!(claims.get("iss"), Some(&Value::from(ISSUER)));
    let exp = number(claims.get("exp")).expect("an accepted token has a numeric exp");
    assert!(
        exp + 60.0 >= NOW as f64,
        "accepted an expired token: exp {exp}"
    );
    for name in ["nbf", "iat"] {
        if let Some(t) = number(claims.get(name)) {
            assert!(
                t <= (NOW + 60) as f64 + 1.0,
                "accepted {name} in the future: {t}"
            );
        }
    }
    match claims.get("aud") {
        Some(Value::String(_)) => {}
        Some(Value::Array(list)) => assert!(!list.is_empty()),
        other => panic!("accepted aud {other:?}"),
    }
    assert_eq!(info.issuer(), Some(ISSUER));
    for scope in info.scopes() {
        assert!(mcp_auth_core::is_scope_token(scope.as_str()));
    }
    let _ = (
        info.subject(),
        info.client_id(),
        info.jwt_id(),
        info.dpop_jkt(),
    );
});
