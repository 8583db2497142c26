//! The server of `cargo xtask bench-rs` (issue 18): one handler, reachable three ways.
//!
//! | route | stack |
//! | --- | --- |
//! | `POST /bare` | the handler alone |
//! | `POST /bearer` | `BearerAuthLayer` + `CachedVerifier<JwtVerifier>` (static JWK Set) → the handler |
//! | `POST /full` | `BearerAuthLayer` → `SessionBindingLayer` → `ToolScopesLayer` → the handler: the demo's resource stack |
//!
//! The handler reads the whole body and answers a small JSON-RPC result, the same on every
//! route, so the differences between routes are the layers alone. At start the server makes a
//! P-256 key, signs one ES256 access token (`typ: at+jwt`, `scope: mcp:tools`, about 450 bytes),
//! binds `127.0.0.1:0` and prints one line on stdout: the address and the token, separated by
//! a space (`127.0.0.1:PORT eyJ…`). It runs on a current-thread runtime (the xtask
//! pins it to one core) until killed.
//!
//! Run it through `cargo xtask bench-rs`, which drives it with `wrk`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark server: set-up fails loudly and the address goes to stdout"
)]

use std::{convert::Infallible, io::Write as _};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use axum::Router;
use bytes::Bytes;
use http::{Request, Response, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::{BodyExt as _, Full};
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource, SessionBindingLayer,
    ToolScopesLayer,
};
use serde_json::json;
use tower::{ServiceBuilder, service_fn};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
/// The JSON-RPC answer of every route.
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh P-256 key's JWK Set and an ES256 access token signed with it.
fn key_and_token() -> (String, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = key.public_key().as_ref();
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "bench-1",
        "x": b64url(&point[1..33]), "y": b64url(&point[33..]),
    }]});
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": "bench-1" });
    let claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "user-1234", "client_id": "bench-client",
        "scope": "mcp:tools", "exp": 4_102_444_800_u64, "iat": 1_000_000_000_u64,
        "jti": "bench-rs-0b6f3c1e-5b1a-4c55-9d2e-1f0a7a3b9c11",
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = key.sign(&rng, input.as_bytes()).unwrap();
    let token = format!("{input}.{}", b64url(signature.as_ref()));
    (jwks.to_string(), token)
}

/// Reads the whole body, answers [`RESULT`].
async fn handle<B: Body>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request.into_body().collect().await.map(|c| c.to_bytes());
    std::hint::black_box(body.ok());
    let mut response = Response::new(Full::from(RESULT));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (jwks, token) = key_and_token();
    let resource = ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let verifier = CachedVerifier::new(
        JwtVerifier::for_resource(ISSUER, &resource)
            .jwks_json(&jwks)
            .build()
            .unwrap(),
    );
    let bearer = BearerAuthLayer::new(verifier, resource.clone());
    let tool_scopes = ToolScopesLayer::new(resource.clone())
        .default_scopes("mcp:tools".parse::<mcp_auth_resource::ScopeSet>().unwrap())
        .tool(
            "notes_admin",
            "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        );

    let app = Router::new()
        .route_service("/bare", service_fn(handle::<axum::body::Body>))
        .route_service(
            "/bearer",
            ServiceBuilder::new()
                .layer(bearer.clone())
                .service(service_fn(handle::<axum::body::Body>)),
        )
        .route_service(
            "/full",
            ServiceBuilder::new()
                .layer(bearer)
                .layer(SessionBindingLayer::new())
                .layer(tool_scopes)
                .service(service_fn(handle)),
        );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{addr} {token}").unwrap();
    stdout.flush().unwrap();
    axum::serve(listener, app).await.unwrap();
}
