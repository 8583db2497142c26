use std::time::{Duration, UNIX_EPOCH};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use mcp_auth_core::ManualClock;
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://mcp.example.com/mcp";

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn verifier(clock: &ManualClock) -> DpopVerifier {
    DpopVerifier::new(Arc::new(clock.clone()))
}

fn kind(result: Result<VerifiedProof, DpopError>) -> DpopErrorKind {
    result.unwrap_err().kind()
}

/// Signs any header and payload with `key`'s private key (for proofs `DpopKey` never makes).
fn sign_raw(key: &DpopKey, header: &Value, payload: &Value) -> String {
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

fn header(key: &DpopKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()})
}

fn payload(jti: &str) -> Value {
    json!({"jti": jti, "htm": "POST", "htu": URL, "iat": NOW})
}

#[test]
fn a_proof_made_by_the_key_verifies_and_binds_to_its_thumbprint() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let proof = key
        .proof(
            &ProofClaims::new("POST", "https://mcp.example.com/mcp?q=1#f", NOW).access_token("at"),
        )
        .unwrap();
    let check = ProofCheck::new("POST", URL)
        .access_token("at")
        .expected_jkt(key.thumbprint());
    let ok = v.verify(&proof, &check).unwrap();
    assert_eq!(ok.jkt(), key.thumbprint());
    assert_eq!(ok.issued_at(), NOW);
    // The header carries the public key only.
    let jwk = key.public_jwk().as_object().unwrap();
    assert!(!jwk.contains_key("d"));
    assert_eq!(jwk_thumbprint(key.public_jwk()).unwrap(), key.thumbprint());
}

#[test]
fn keys_round_trip_through_pkcs8_and_never_print_the_private_key() {
    let key = DpopKey::generate().unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let again = DpopKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.thumbprint(), key.thumbprint());
    let debug = format!("{key:?}");
    assert!(debug.contains(key.thumbprint()));
    assert!(!debug.contains(&b64(&der)));
    assert!(DpopKey::from_pkcs8_der(b"not a key").is_err());
}

#[test]
fn a_replayed_proof_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let proof = key.proof(&ProofClaims::new("POST", URL, NOW)).unwrap();
    let check = ProofCheck::new("POST", URL);
    v.verify(&proof, &check).unwrap();
    assert_eq!(kind(v.verify(&proof, &check)), DpopErrorKind::Replay);
    // Clones share the cache.
    let shared = v.clone();
    assert_eq!(kind(shared.verify(&proof, &check)), DpopErrorKind::Replay);
    drop(v);
    // The same jti from another key is another proof.
    let other = DpopKey::generate().unwrap();
    let a = sign_raw(&other, &header(&other), &payload("same"));
    let b = sign_raw(&key, &header(&key), &payload("same"));
    shared.verify(&a, &check).unwrap();
    shared.verify(&b, &check).unwrap();
}

#[test]
fn a_proof_for_another_method_or_url_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let proof = || key.proof(&ProofClaims::new("POST", URL, NOW)).unwrap();
    assert_eq!(
        kind(v.verify(&proof(), &ProofCheck::new("GET", URL))),
        DpopErrorKind::Method
    );
    assert_eq!(
        kind(v.verify(&proof(), &ProofCheck::new("post", URL))),
        DpopErrorKind::Method
    );
    for other in [
        "https://mcp.example.com/other",
        "http://mcp.example.com/mcp",
        "https://evil.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
        "https://mcp.example.com/mcp/",
    ] {
        assert_eq!(
            kind(v.verify(&proof(), &ProofCheck::new("POST", other))),
            DpopErrorKind::Url,
            "{other}"
        );
    }
    // RFC 3986 normalisation, query and fragment ignored.
    for same in [
        "https://MCP.example.com/mcp",
        "HTTPS://mcp.example.com:443/mcp",
        "https://mcp.example.com/%6Dcp",
        "https://mcp.example.com/mcp?x=1",
        "https://mcp.example.com/mcp#frag",
    ] {
        v.verify(&proof(), &ProofCheck::new("POST", same))
            .unwrap_or_else(|e| panic!("{same}: {e}"));
    }
}

#[test]
fn iat_too_old_or_in_the_future_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL);
    let at = |iat: u64| key.proof(&ProofClaims::new("POST", URL, iat)).unwrap();
    assert_eq!(
        kind(v.verify(&at(NOW - 91), &check)),
        DpopErrorKind::IssuedAt
    );
    assert_eq!(
        kind(v.verify(&at(NOW + 31), &check)),
        DpopErrorKind::IssuedAt
    );
    assert_eq!(kind(v.verify(&at(0), &check)), DpopErrorKind::IssuedAt);
    v.verify(&at(NOW - 90), &check).unwrap();
    v.verify(&at(NOW + 30), &check).unwrap();
    // `iat` as a string or a float is malformed.
    let mut p = payload("x");
    p["iat"] = json!(NOW.to_string());
    assert_eq!(
        kind(v.verify(&sign_raw(&key, &header(&key), &p), &check)),
        DpopErrorKind::Malformed
    );
}

#[test]
fn a_proof_by_another_key_than_cnf_jkt_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let bound = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap();
    let proof = other.proof(&ProofClaims::new("POST", URL, NOW)).unwrap();
    assert_eq!(
        kind(v.verify(
            &proof,
            &ProofCheck::new("POST", URL).expected_jkt(bound.thumbprint())
        )),
        DpopErrorKind::KeyMismatch
    );
}

#[test]
fn missing_or_wrong_ath_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL).access_token("the-token");
    let none = key.proof(&ProofClaims::new("POST", URL, NOW)).unwrap();
    assert_eq!(
        kind(v.verify(&none, &check)),
        DpopErrorKind::AccessTokenHash
    );
    let wrong = key
        .proof(&ProofClaims::new("POST", URL, NOW).access_token("another-token"))
        .unwrap();
    assert_eq!(
        kind(v.verify(&wrong, &check)),
        DpopErrorKind::AccessTokenHash
    );
    let right = key
        .proof(&ProofClaims::new("POST", URL, NOW).access_token("the-token"))
        .unwrap();
    v.verify(&right, &check).unwrap();
}

#[test]
fn alg_none_and_hmac_proofs_are_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL);
    let body = b64(payload("n").to_string().as_bytes());
    let mut h = header(&key);
    h["alg"] = json!("none");
    let none = format!("{}.{body}.", b64(h.to_string().as_bytes()));
    assert_eq!(kind(v.verify(&none, &check)), DpopErrorKind::Algorithm);
    for alg in ["HS256", "HS384", "HS512"] {
        h["alg"] = json!(alg);
        let input = format!("{}.{body}", b64(h.to_string().as_bytes()));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, b"secret"),
            input.as_bytes(),
        );
        let proof = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(
            kind(v.verify(&proof, &check)),
            DpopErrorKind::Algorithm,
            "{alg}"
        );
    }
    // A verifier configured with HMAC algorithms drops them.
    let v = DpopVerifier::with_settings(
        Arc::new(clock),
        &[JwsAlgorithm::HS256, JwsAlgorithm::ES256],
        DEFAULT_MAX_AGE,
        DEFAULT_LEEWAY,
        10,
    );
    assert_eq!(v.algorithms(), [JwsAlgorithm::ES256]);
    assert_eq!(v.algorithm_names(), "ES256");
    // An algorithm that does not fit the key.
    let mut h = header(&key);
    h["alg"] = json!("ES384");
    let v2 = verifier(&self::clock());
    assert_eq!(
        kind(v2.verify(&sign_raw(&key, &h, &payload("a")), &check)),
        DpopErrorKind::Algorithm
    );
}

#[test]
fn a_proof_with_a_private_key_in_its_header_is_refused() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let mut h = header(&key);
    h["jwk"]["d"] = json!("c2VjcmV0");
    assert_eq!(
        kind(v.verify(
            &sign_raw(&key, &h, &payload("p")),
            &ProofCheck::new("POST", URL)
        )),
        DpopErrorKind::PrivateKey
    );
    let mut h = header(&key);
    h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert_eq!(
        kind(v.verify(
            &sign_raw(&key, &h, &payload("o")),
            &ProofCheck::new("POST", URL)
        )),
        DpopErrorKind::PrivateKey
    );
}

#[test]
fn header_and_claim_shape_is_checked() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL);
    let with = |f: &dyn Fn(&mut Value, &mut Value)| {
        let mut h = header(&key);
        let mut p = payload("s");
        f(&mut h, &mut p);
        v.verify(&sign_raw(&key, &h, &p), &check)
    };
    use DpopErrorKind::*;
    assert_eq!(kind(with(&|h, _| h["typ"] = json!("JWT"))), TokenType);
    assert_eq!(kind(with(&|h, _| h["typ"] = json!("at+jwt"))), TokenType);
    assert_eq!(
        kind(with(&|h, _| {
            h.as_object_mut().unwrap().remove("typ");
        })),
        TokenType
    );
    assert_eq!(
        kind(with(&|h, _| {
            h.as_object_mut().unwrap().remove("jwk");
        })),
        BadKey
    );
    assert_eq!(kind(with(&|h, _| h["jwk"] = json!("x"))), BadKey);
    assert_eq!(kind(with(&|h, _| h["jwk"]["x"] = json!("AAAA"))), BadKey);
    // Signed by another key than the one in the header.
    assert_eq!(
        kind(with(&|h, _| h["jwk"] = other.public_jwk().clone())),
        InvalidSignature
    );
    assert_eq!(kind(with(&|h, _| h["crit"] = json!(["x"]))), Malformed);
    for claim in ["jti", "htm", "htu", "iat"] {
        assert_eq!(
            kind(with(&|_, p| {
                p.as_object_mut().unwrap().remove(claim);
            })),
            Malformed,
            "{claim}"
        );
    }
    assert_eq!(kind(with(&|_, p| p["jti"] = json!(""))), Malformed);
    assert_eq!(
        kind(with(&|_, p| p["jti"] = json!("j".repeat(300)))),
        Malformed
    );
    // `application/dpop+jwt` is the same media type.
    with(&|h, p| {
        h["typ"] = json!("application/DPoP+JWT");
        p["jti"] = json!("t2");
    })
    .unwrap();
    for bad in ["", "a.b", "a.b.c", "..."] {
        assert_eq!(kind(v.verify(bad, &check)), Malformed, "{bad}");
    }
}

#[test]
fn nonces_are_required_when_asked_and_expire() {
    let clock = clock();
    let v = verifier(&clock);
    let nonces = DpopNonces::with_secret(b"k", Duration::from_secs(300), Arc::new(clock.clone()));
    let key = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL).nonce(&nonces);
    let without = key.proof(&ProofClaims::new("POST", URL, NOW)).unwrap();
    assert_eq!(kind(v.verify(&without, &check)), DpopErrorKind::UseNonce);
    assert_eq!(DpopErrorKind::UseNonce.error_code(), "use_dpop_nonce");
    assert_eq!(DpopErrorKind::Replay.error_code(), "invalid_dpop_proof");
    let forged = key
        .proof(&ProofClaims::new("POST", URL, NOW).nonce("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .unwrap();
    assert_eq!(kind(v.verify(&forged, &check)), DpopErrorKind::UseNonce);
    let other_secret =
        DpopNonces::with_secret(b"other", Duration::from_secs(300), Arc::new(clock.clone()));
    let foreign = key
        .proof(&ProofClaims::new("POST", URL, NOW).nonce(&other_secret.current()))
        .unwrap();
    assert_eq!(kind(v.verify(&foreign, &check)), DpopErrorKind::UseNonce);

    let nonce = nonces.current();
    let good = key
        .proof(&ProofClaims::new("POST", URL, NOW).nonce(&nonce))
        .unwrap();
    v.verify(&good, &check).unwrap();
    // Valid for one more step, then stale.
    clock.advance(Duration::from_secs(300));
    assert!(nonces.is_valid(&nonce));
    clock.advance(Duration::from_secs(300));
    assert!(!nonces.is_valid(&nonce));
    assert!(nonces.is_valid(&nonces.current()));
}

#[test]
fn the_replay_cache_is_bounded_in_memory_and_time() {
    let cache = ReplayCache::new(3, 10);
    for jti in ["a", "b", "c"] {
        cache.insert("k", jti, 100).unwrap();
    }
    assert_eq!(
        cache.insert("k", "d", 100).unwrap_err().kind(),
        DpopErrorKind::Busy
    );
    assert_eq!(
        cache.insert("k", "a", 105).unwrap_err().kind(),
        DpopErrorKind::Replay
    );
    // One generation later: still remembered (previous generation), room for new ones.
    cache.insert("k", "d", 110).unwrap();
    assert_eq!(
        cache.insert("k", "a", 115).unwrap_err().kind(),
        DpopErrorKind::Replay
    );
    // Two generations later: forgotten (the verifier's `iat` window refuses such proofs anyway).
    cache.insert("k", "a", 131).unwrap();
}

#[test]
fn the_verifier_remembers_a_jti_as_long_as_its_proof_is_acceptable() {
    let clock = clock();
    let v = verifier(&clock);
    let key = DpopKey::generate().unwrap();
    let check = ProofCheck::new("POST", URL);
    let proof = key.proof(&ProofClaims::new("POST", URL, NOW + 30)).unwrap();
    v.verify(&proof, &check).unwrap();
    for step in [30, 60, 59] {
        clock.advance(Duration::from_secs(step));
        let expected = if clock.unix_seconds() <= NOW + 30 + 90 {
            DpopErrorKind::Replay
        } else {
            DpopErrorKind::IssuedAt
        };
        assert_eq!(kind(v.verify(&proof, &check)), expected);
    }
}

#[test]
fn thumbprints_follow_rfc7638() {
    // EC key: members in lexicographic order, no whitespace.
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "ignored"});
    let canonical = r#"{"crv":"P-256","kty":"EC","x":"a","y":"b"}"#;
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    assert!(jwk_thumbprint(&json!({"kty": "oct", "k": "x"})).is_none());
    assert!(jwk_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "a"})).is_none());
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}
