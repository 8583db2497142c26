//! Client assertions (`private_key_jwt`, RFC 7523 §3) as the token endpoint reads them before
//! and after the signature (mcp-auth-server `assertion.rs`): the unverified claims, then the
//! claim rules.
//!
//! Two modes: the input as a whole assertion; or a payload (any bytes) put between a fixed
//! header and signature. Properties: an accepted assertion has `iss` the client, a non-empty
//! `sub`, an audience naming this server, an `exp` within the leeway and the lifetime cap,
//! no `nbf`/`iat` in the future, and a `jti` of 1 to 256 characters.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{b64url, block_on, fields, text};
use mcp_auth_server::{
    __fuzz::client_assertion, AuthorizationServer, login::LocalLogin, store::MemoryStore,
};
use serde_json::{Map, Value};

const ISSUER: &str = "https://as.example.com";
const CLIENT: &str = "client-1";
const NOW: u64 = 1_700_000_000;

fn server() -> &'static AuthorizationServer {
    static SERVER: OnceLock<AuthorizationServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        block_on(
            AuthorizationServer::builder(ISSUER)
                .resource("https://mcp.example.com/mcp")
                .store(MemoryStore::new())
                .login(LocalLogin::new().user("alice", "correct horse battery staple"))
                .client_id_metadata_documents(None)
                .build(),
        )
        .expect("server")
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let flags = f[0].first().copied().unwrap_or(0);
    let (assertion, payload) = if flags & 1 == 0 {
        (text(&data[1.min(data.len())..]), None)
    } else {
        let header = b64url(br#"{"alg":"ES256","typ":"JWT"}"#);
        (format!("{header}.{}.c2ln", b64url(f[1])), Some(f[1]))
    };
    let Ok(jti) = client_assertion(server(), CLIENT, &assertion, NOW) else {
        return;
    };
    let Some(payload) = payload else {
        return;
    };
    let claims: Map<String, Value> = serde_json::from_slice(payload).expect("claims are an object");
    assert_eq!(claims["iss"], CLIENT);
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    let ours = |a: &str| a == ISSUER || a == format!("{ISSUER}/") || a == format!("{ISSUER}/token");
    match &claims["aud"] {
        Value::String(a) => assert!(ours(a), "{a}"),
        Value::Array(list) => assert!(list.iter().filter_map(Value::as_str).any(ours)),
        other => panic!("aud {other}"),
    }
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp + 60 > NOW && exp <= NOW + 600 + 60, "exp {exp}");
    for name in ["nbf", "iat"] {
        if let Some(t) = claims.get(name) {
            assert!(t.as_u64().expect("numeric") <= NOW + 60);
        }
    }
    let j = jti.expect("a jti is required");
    assert!(!j.is_empty() && j.len() <= 256);
    assert_eq!(claims["jti"], Value::from(j));
});
