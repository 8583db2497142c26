//! Signed access tokens for the benchmarks: one key per algorithm, generated with aws-lc-rs at
//! start-up, and a token of realistic size signed with it.
//!
//! | name | algorithm | token |
//! | --- | --- | --- |
//! | `es256` | ES256 (P-256) | `typ: at+jwt`, `kid`, `iss`, `aud`, `sub`, `client_id`, `scope`, `exp`, `iat`, `jti` (444 bytes) |
//! | `rs256` | RS256 (2048-bit) | the same claims (700 bytes) |
//! | `eddsa` | EdDSA (Ed25519) | the same claims (444 bytes) |
//! | `large` | RS256 (2048-bit) | an Entra ID / Okta-sized token: 36 claims, 24 group ids, roles, `amr`, names (3.7 KB) |

// Shared by several bench targets; each uses part of it.
#![allow(dead_code)]

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
        VerificationAlgorithm,
    },
};
use http::HeaderValue;
use serde_json::{Value, json};

pub(crate) const ISSUER: &str = "https://auth.example.com";
pub(crate) const RESOURCE: &str = "https://mcp.example.com/mcp";
/// 2001-09-09; a fixed `iat` keeps the tokens identical from run to run apart from the keys.
pub(crate) const IAT: u64 = 1_000_000_000;
/// 2100-01-01: far enough that no verifier ever sees the token expire.
pub(crate) const EXP: u64 = 4_102_444_800;

/// One algorithm's key, its published JWK Set and a token signed with it.
pub(crate) struct Fixture {
    /// `es256`, `rs256`, `eddsa` or `large`: the criterion group name.
    pub(crate) name: &'static str,
    /// The signed access token.
    pub(crate) token: String,
    /// The same token with one bit of its signature flipped.
    pub(crate) tampered: String,
    /// `{"keys":[<the public JWK>]}`.
    pub(crate) jwks: String,
    /// `base64url(header) "." base64url(claims)`.
    pub(crate) signing_input: Vec<u8>,
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
    /// The public key as aws-lc-rs takes it (an uncompressed point, PKCS#1 `RSAPublicKey` or
    /// the raw Ed25519 key).
    pub(crate) public_key: Vec<u8>,
    pub(crate) verification: &'static dyn VerificationAlgorithm,
}

/// The claims every small token carries.
fn small_claims(name: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "user-1234",
        "client_id": "bench-client",
        "scope": "mcp:tools",
        "exp": EXP,
        "iat": IAT,
        "jti": format!("{name}-0b6f3c1e-5b1a-4c55-9d2e-1f0a7a3b9c11"),
    })
}

/// A deterministic GUID-shaped string (Entra's ids are GUIDs).
fn guid(n: u32) -> String {
    format!("{n:08x}-4c55-4d2e-9f0a-{:012x}", u64::from(n) * 0x9e37_79b9)
}

/// An access token shaped like the ones Entra ID and Okta issue to an enterprise user: many
/// claims, names, group and role lists.
fn large_claims() -> Value {
    let groups: Vec<String> = (0..24).map(|i| guid(0x1000 + i)).collect();
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "client_id": "8f2c6f5e-2b1c-4d8a-9e77-3c0f5f1b2a90",
        "azp": "8f2c6f5e-2b1c-4d8a-9e77-3c0f5f1b2a90",
        "azpacr": "1",
        "scope": "mcp:tools files:read files:write calendar:read mail:send",
        "scp": "Files.ReadWrite Calendars.Read Mail.Send User.Read openid profile email",
        "exp": EXP,
        "iat": IAT,
        "nbf": IAT,
        "jti": "large-0b6f3c1e-5b1a-4c55-9d2e-1f0a7a3b9c11",
        "uti": "q8ERtvGnkEuZZ9DsqWQUAA",
        "ver": "2.0",
        "acr": "1",
        "aio": "AWQAm/8aAAAAq7Zt3K3y0wJ5q2U6nD5bG9Yc8t2X1pQv0r7mQeS3oLhF4kJdA9zW6yB1vN0cT2uR5xE8sI7",
        "amr": ["pwd", "mfa", "rsa"],
        "auth_time": IAT,
        "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "ipaddr": "203.0.113.42",
        "name": "Alexandra Example-Longname",
        "given_name": "Alexandra",
        "family_name": "Example-Longname",
        "email": "alexandra.example-longname@contoso.example.com",
        "preferred_username": "alexandra.example-longname@contoso.example.com",
        "upn": "alexandra.example-longname@contoso.example.com",
        "unique_name": "alexandra.example-longname@contoso.example.com",
        "oid": guid(0x4242),
        "tid": guid(0x7272),
        "rh": "0.AXEAv4j5cvGGr0GRqy180BHbR6Bfp2V8wX5Lk3v9Y0Jq2V1xAAA.",
        "sid": guid(0x5151),
        "wids": [guid(0x6262), guid(0x6363)],
        "roles": ["Notes.Admin", "Notes.Reader", "Reports.Generate", "Tools.Invoke"],
        "groups": groups,
        "xms_tcdt": 1_289_241_547_u64,
        "xms_pl": "en-GB",
    })
}

impl Fixture {
    pub(crate) fn es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref().to_vec();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "es256-1",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..]),
        });
        Self::sign(
            "es256",
            "ES256",
            jwk,
            small_claims("es256"),
            point,
            &ECDSA_P256_SHA256_FIXED,
            |msg| key.sign(&rng, msg).unwrap().as_ref().to_vec(),
        )
    }

    pub(crate) fn rs256() -> Self {
        Self::rsa("rs256", small_claims("rs256"))
    }

    /// An Entra ID / Okta-sized RS256 token.
    pub(crate) fn large() -> Self {
        Self::rsa("large", large_claims())
    }

    fn rsa(name: &'static str, claims: Value) -> Self {
        let rng = SystemRandom::new();
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = key.public_key();
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": format!("{name}-1"),
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        });
        let public_key = public.as_ref().to_vec();
        Self::sign(
            name,
            "RS256",
            jwk,
            claims,
            public_key,
            &RSA_PKCS1_2048_8192_SHA256,
            |msg| {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut signature)
                    .unwrap();
                signature
            },
        )
    }

    pub(crate) fn eddsa() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public_key = key.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "eddsa-1",
            "x": b64url(&public_key),
        });
        Self::sign(
            "eddsa",
            "EdDSA",
            jwk,
            small_claims("eddsa"),
            public_key,
            &ED25519,
            |msg| key.sign(msg).as_ref().to_vec(),
        )
    }

    /// Every fixture, in table order.
    pub(crate) fn all() -> [Self; 4] {
        [Self::es256(), Self::rs256(), Self::eddsa(), Self::large()]
    }

    fn sign(
        name: &'static str,
        alg: &str,
        jwk: Value,
        claims: Value,
        public_key: Vec<u8>,
        verification: &'static dyn VerificationAlgorithm,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Self {
        let kid = jwk["kid"].as_str().unwrap().to_owned();
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = sign(signing_input.as_bytes());
        let mut flipped = signature.clone();
        flipped[signature.len() / 2] ^= 0x01;
        Self {
            name,
            token: format!("{signing_input}.{}", b64url(&signature)),
            tampered: format!("{signing_input}.{}", b64url(&flipped)),
            jwks: json!({ "keys": [jwk] }).to_string(),
            signing_input: signing_input.into_bytes(),
            signature,
            public_key,
            verification,
        }
    }

    pub(crate) fn bearer(token: &str) -> HeaderValue {
        HeaderValue::try_from(format!("Bearer {token}")).unwrap()
    }
}

/// Unpadded base64url (RFC 7515 §2).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
