//! JWK Set documents (mcp-auth-jwt `KeySet::parse`, `jwk_thumbprint`), then key selection and
//! signature checks of a token against whatever keys were accepted.
//!
//! Properties: the size and count caps hold; every entry is either a key or counted as
//! skipped; a thumbprint is 43 base64url characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{fields, text};
use mcp_auth_jwt::{
    HeaderPolicy, JwsAlgorithm, JwsVerifier, KeySet, KeySource, MAX_JWKS_BYTES, MAX_KEYS,
    dpop::jwk_thumbprint,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (document, token) = (f[0], text(f[1]));
    let parsed = KeySet::parse(document);
    if document.len() > MAX_JWKS_BYTES {
        assert!(parsed.is_err());
        return;
    }
    if let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(document)
        && let Some(Value::Array(entries)) = doc.get("keys")
    {
        for entry in entries.iter().take(MAX_KEYS + 1) {
            if let Some(t) = jwk_thumbprint(entry) {
                assert_eq!(t.len(), 43, "{t}");
                assert!(
                    t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
        }
        if let Ok((set, skipped)) = &parsed {
            assert_eq!(set.len() + skipped, entries.len());
        }
    }
    let Ok((set, _)) = parsed else {
        return;
    };
    assert!(!set.is_empty() && set.len() <= MAX_KEYS);
    let verifier = JwsVerifier::new(
        HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), true),
        KeySource::Static(set),
        None,
    );
    if let Some(Ok(claims)) = verifier.verify_cached(&token) {
        // Nobody holds the private keys of fuzzed public keys: a forged signature verified.
        panic!("a token verified against fuzzed keys: {claims:?}");
    }
});
