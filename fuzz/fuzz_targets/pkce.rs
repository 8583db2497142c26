//! PKCE (mcp-auth-core `pkce`): verifier and challenge syntax against RFC 7636 §4.1/§4.2 read
//! independently, S256 against an independent SHA-256, and no verifier in `Debug`.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use mcp_auth_fuzz::{fields, text};

/// `43*128unreserved`, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
fn reference(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (v, c) = (text(f[0]), text(f[1]));
    let verifier = CodeVerifier::new(v.clone());
    assert_eq!(verifier.is_ok(), reference(&v), "{v:?}");
    let challenge = CodeChallenge::new(c.clone());
    assert_eq!(challenge.is_ok(), reference(&c), "{c:?}");
    if let Ok(verifier) = verifier {
        assert!(!format!("{verifier:?}").contains(&v), "verifier in Debug");
        let s256 = CodeChallenge::s256(&verifier);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        assert_eq!(s256.as_str(), expected);
        assert!(s256.verify(&verifier));
        assert!(CodeChallenge::new(s256.as_str()).is_ok());
        if let Ok(challenge) = challenge {
            assert_eq!(challenge.verify(&verifier), c == expected);
        }
    }
});
