//! DPoP proofs (mcp-auth-jwt `dpop::DpopVerifier`, RFC 9449 §4.3).
//!
//! Three modes: the input as a whole proof; a header and a payload (any bytes) signed by the
//! harness's ES256 key; or a payload signed under the standard header (`typ` `dpop+jwt`, `alg`
//! `ES256`, the key's public `jwk`), so the claim checks see every payload.
//! Properties: an accepted proof has the checked method, a URL that is the request URL up to
//! normalisation, an `iat` in the window, a non-empty `jti`, the access token's `ath`, and the
//! thumbprint of its header `jwk`; the same proof is refused a second time (replay).
#![no_main]

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use libfuzzer_sys::fuzz_target;
use mcp_auth_core::ManualClock;
use mcp_auth_fuzz::{b64url, fields, text};
use mcp_auth_jwt::{
    JwsAlgorithm,
    dpop::{DpopKey, DpopVerifier, ProofCheck, access_token_hash, jwk_thumbprint},
};
use serde_json::{Map, Value, json};

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://mcp.example.com/mcp";
const ACCESS_TOKEN: &str = "access-token-0123456789";

struct Signer {
    pair: EcdsaKeyPair,
    header: String,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = DpopKey::generate().expect("key");
        let der = key.to_pkcs8_der().expect("der");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).expect("pair");
        let header =
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}).to_string();
        Signer { pair, header }
    })
}

fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(payload));
    let signature = signer()
        .pair
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("sign");
    format!("{input}.{}", b64url(signature.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 3);
    let flags = f[0].first().copied().unwrap_or(0);
    let proof = match flags % 3 {
        0 => text(&data[1.min(data.len())..]),
        1 => sign(f[1], f[2]),
        _ => sign(signer().header.as_bytes(), f[1]),
    };
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
    ));
    let verifier = DpopVerifier::with_settings(
        clock,
        &JwsAlgorithm::ASYMMETRIC,
        Duration::from_secs(60),
        Duration::from_secs(30),
        16,
    );
    let method = if flags & 0x10 != 0 { "GET" } else { "POST" };
    let mut check = ProofCheck::new(method, URL);
    if flags & 0x20 != 0 {
        check = check.access_token(ACCESS_TOKEN);
    }
    let Ok(verified) = verifier.verify(&proof, &check) else {
        return;
    };
    let mut parts = proof.split('.');
    let decode = |s: Option<&str>| -> Map<String, Value> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.expect("segment"))
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("a JSON object")
    };
    let header = decode(parts.next());
    let claims = decode(parts.next());
    assert_eq!(claims.get("htm"), Some(&Value::from(method)));
    let htu = claims["htu"].as_str().expect("htu");
    let (a, b) = (
        url::Url::parse(htu).expect("htu parses"),
        url::Url::parse(URL).expect("url"),
    );
    assert_eq!(
        (a.scheme(), a.host_str(), a.port_or_known_default()),
        (b.scheme(), b.host_str(), b.port_or_known_default()),
        "{htu}"
    );
    let iat = claims["iat"].as_u64().expect("iat");
    assert!(iat <= NOW + 30 && iat + 90 >= NOW, "iat {iat}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    if flags & 0x20 != 0 {
        assert_eq!(
            claims["ath"].as_str(),
            Some(access_token_hash(ACCESS_TOKEN).as_str())
        );
    }
    assert_eq!(
        Some(verified.jkt()),
        jwk_thumbprint(&header["jwk"]).as_deref()
    );
    assert!(
        verifier.verify(&proof, &check).is_err(),
        "a proof was accepted twice"
    );
});
