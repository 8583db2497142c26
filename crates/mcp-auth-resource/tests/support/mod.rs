//! Test support shared by the integration tests: a fake identity provider on loopback and a
//! token factory.
//!
//! - [`FakeIdp`]: an axum server on `127.0.0.1:0` serving RFC 8414 and OpenID Connect discovery
//!   metadata and a JWK Set, counting hits per endpoint, with switches for outages (500, slow
//!   responses, the server dropped), key rotation and raw JWK Set bodies.
//! - [`SigningKey`]: ES256, RS256/PS256, EdDSA and HS256 keys (aws-lc-rs) that sign JWS.
//! - [`TokenBuilder`]: RFC 9068 access tokens with any header or claim changed, plus unsigned
//!   (`alg: none`) and [`malformed_tokens`].
//!
//! Use it from a test crate with `mod support;`.
// Test support: a panic is how a broken fixture fails the test.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    hmac,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
    },
};
use axum::{
    Router,
    body::Body,
    extract::State,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use mcp_auth_core::ManualClock;
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The fixed "now" of test clocks, in Unix seconds.
pub const NOW: u64 = 1_700_000_000;

/// A manual clock stopped at [`NOW`].
pub fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

// ---------------------------------------------------------------------------------------------
// base64

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Unpadded base64url.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    encode(bytes.as_ref(), B64URL, false)
}

/// Padded standard base64.
pub fn b64std(bytes: impl AsRef<[u8]>) -> String {
    encode(bytes.as_ref(), B64STD, true)
}

// ---------------------------------------------------------------------------------------------
// keys

#[derive(Clone)]
enum Material {
    Ec(Arc<EcdsaKeyPair>),
    Rsa(Arc<RsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
    Hmac(Vec<u8>),
}

/// A signing key with a `kid` and an `alg`, and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: Option<String>,
    alg: &'static str,
    material: Material,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// One RSA key pair per test binary: generating RSA keys is slow, and the tests that need two
/// distinct RSA keys use [`SigningKey::rsa_fresh`].
fn shared_rsa() -> Arc<RsaKeyPair> {
    static KEY: OnceLock<Arc<RsaKeyPair>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()))
        .clone()
}

impl SigningKey {
    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            alg: "ES256",
            material: Material::Ec(Arc::new(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            )),
        }
    }

    /// A fresh P-384 key for ES384.
    pub fn es384(kid: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            alg: "ES384",
            material: Material::Ec(Arc::new(
                EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
            )),
        }
    }

    /// The test binary's shared RSA key, for RS256.
    pub fn rs256(kid: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            alg: "RS256",
            material: Material::Rsa(shared_rsa()),
        }
    }

    /// A newly generated RSA key, for RS256.
    pub fn rsa_fresh(kid: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            alg: "RS256",
            material: Material::Rsa(Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())),
        }
    }

    /// A fresh Ed25519 key, for EdDSA.
    pub fn eddsa(kid: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            alg: "EdDSA",
            material: Material::Ed(Arc::new(Ed25519KeyPair::generate().unwrap())),
        }
    }

    /// An HS256 shared secret (no `kid`).
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self {
            kid: None,
            alg: "HS256",
            material: Material::Hmac(secret.as_ref().to_vec()),
        }
    }

    /// The same key material under another `alg` (e.g. an RSA key signing PS256).
    pub fn with_alg(mut self, alg: &'static str) -> Self {
        self.alg = alg;
        self
    }

    /// The same key material under another `kid` (`None`: no `kid`).
    pub fn with_kid(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(str::to_owned);
        self
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The public JWK (`use: sig`, with `kid` and `alg`).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                json!({
                    "kty": "EC",
                    "crv": if size == 32 { "P-256" } else { "P-384" },
                    "x": b64url(&point[1..=size]),
                    "y": b64url(&point[1 + size..]),
                })
            }
            Material::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Material::Ed(pair) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64url(pair.public_key().as_ref()),
            }),
            Material::Hmac(secret) => json!({"kty": "oct", "k": b64url(secret)}),
        };
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg);
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The RSA public key as SubjectPublicKeyInfo DER.
    pub fn rsa_public_der(&self) -> Vec<u8> {
        let Material::Rsa(pair) = &self.material else {
            panic!("not an RSA key");
        };
        pair.public_key().as_der().unwrap().as_ref().to_vec()
    }

    /// The RSA public key as a PEM `PUBLIC KEY` block, as an attacker would download it.
    pub fn rsa_public_pem(&self) -> String {
        let b64 = b64std(self.rsa_public_der());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// The raw RSA modulus bytes (what a JWK's `n` decodes to).
    pub fn rsa_modulus(&self) -> Vec<u8> {
        let Material::Rsa(pair) = &self.material else {
            panic!("not an RSA key");
        };
        pair.public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// Signs a JWS signing input with this key's `alg`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (&self.material, self.alg) {
            (Material::Ec(pair), _) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            (Material::Ed(pair), _) => pair.sign(message).as_ref().to_vec(),
            (Material::Rsa(pair), alg) => {
                let padding = match alg {
                    "PS256" => &RSA_PSS_SHA256 as &'static dyn aws_lc_rs::signature::RsaEncoding,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            (Material::Hmac(secret), alg) => {
                let algorithm = match alg {
                    "HS384" => hmac::HMAC_SHA384,
                    "HS512" => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac::sign(&hmac::Key::new(algorithm, secret), message)
                    .as_ref()
                    .to_vec()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tokens

/// Builds a compact JWS access token. Starts as a valid RFC 9068 token for `issuer` and
/// `audience` at [`NOW`]: `typ: at+jwt`, `sub`, `client_id`, `scope`, `iat`, `exp = NOW + 300`,
/// `jti`.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    no_kid: bool,
}

impl TokenBuilder {
    pub fn new(issuer: &str, audience: &str) -> Self {
        let claims = json!({
            "iss": issuer,
            "aud": audience,
            "sub": "alice",
            "client_id": "client-1",
            "scope": "mcp:tools files:read",
            "iat": NOW,
            "exp": NOW + 300,
            "jti": "jti-1",
        });
        Self {
            header: json!({"typ": "at+jwt"}).as_object().unwrap().clone(),
            claims: claims.as_object().unwrap().clone(),
            no_kid: false,
        }
    }

    /// Sets a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header parameter (`alg` and `kid` set here win over the key's).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header parameter.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Leaves `kid` out even if the key has one.
    pub fn no_kid(mut self) -> Self {
        self.no_kid = true;
        self
    }

    fn signing_input(&self, key: Option<&SigningKey>) -> String {
        let mut header = self.header.clone();
        if let Some(key) = key {
            header
                .entry("alg")
                .or_insert_with(|| Value::from(key.alg()));
            if let (Some(kid), false) = (key.kid(), self.no_kid) {
                header.entry("kid").or_insert_with(|| Value::from(kid));
            }
        }
        format!(
            "{}.{}",
            b64url(serde_json::to_vec(&header).unwrap()),
            b64url(serde_json::to_vec(&self.claims).unwrap())
        )
    }

    /// Signs with `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let input = self.signing_input(Some(key));
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", b64url(sig))
    }

    /// An unsigned token: `alg: none` and an empty signature.
    pub fn unsigned(&self) -> String {
        let mut b = self.clone();
        b.header.insert("alg".to_owned(), json!("none"));
        format!("{}.", b.signing_input(None))
    }
}

/// Tokens that are not well-formed compact JWS.
pub fn malformed_tokens() -> Vec<String> {
    let header = b64url(br#"{"alg":"ES256","typ":"at+jwt","kid":"k"}"#);
    let claims = b64url(br#"{"sub":"x"}"#);
    vec![
        String::new(),
        "not-a-jwt".to_owned(),
        format!("{header}.{claims}"),
        format!("{header}.{claims}.c2ln.extra"),
        format!("{header}.{claims}.c2ln="),
        format!("{header}=.{claims}.c2ln"),
        format!("{}.{claims}.c2ln", b64url(b"not json")),
        format!("{}.{claims}.c2ln", b64url(b"[1,2]")),
        format!("{}.{claims}.c2ln", b64url(br#"{"typ":"at+jwt"}"#)),
        format!("{header}.{claims}.{}", "A".repeat(20 * 1024)),
        format!(".{claims}.c2ln"),
        format!("{header}..c2ln"),
        "\u{0}.\u{1}.\u{2}".to_owned(),
    ]
}

// ---------------------------------------------------------------------------------------------
// the fake identity provider

struct IdpState {
    issuer: String,
    base: String,
    keys: Mutex<Vec<SigningKey>>,
    extra_entries: Mutex<Vec<Value>>,
    jwks_body: Mutex<Option<Vec<u8>>>,
    cache_control: Mutex<Option<String>>,
    metadata_issuer: Mutex<Option<String>>,
    serve_oauth_metadata: AtomicBool,
    serve_openid_configuration: AtomicBool,
    serve_openid_inserted: AtomicBool,
    failing: AtomicBool,
    delay_ms: AtomicU64,
    jwks_hits: AtomicUsize,
    oauth_metadata_hits: AtomicUsize,
    openid_configuration_hits: AtomicUsize,
    openid_appended_hits: AtomicUsize,
    other_hits: AtomicUsize,
}

/// A fake authorization server on loopback: metadata, a JWK Set, hit counters and outages.
///
/// The issuer is `http://127.0.0.1:<port>` plus an optional path; the JWK Set is at
/// `<origin>/jwks`. It starts publishing three keys: ES256 `es-1`, RS256 `rs-1`, EdDSA `ed-1`.
pub struct FakeIdp {
    addr: SocketAddr,
    state: Arc<IdpState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeIdp")
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}

impl FakeIdp {
    /// An IdP whose issuer is the bare origin.
    pub async fn start() -> Self {
        Self::start_with_path("").await
    }

    /// An IdP whose issuer has a path, e.g. `/realms/mcp`. A terminating `/` (e.g. `"/"` for
    /// Auth0's `https://<tenant>/`) stays in the issuer but not in the metadata URLs, as the
    /// well-known URL rules remove it.
    pub async fn start_with_path(issuer_path: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let state = Arc::new(IdpState {
            issuer: format!("{base}{issuer_path}"),
            base,
            keys: Mutex::new(vec![
                SigningKey::es256("es-1"),
                SigningKey::rs256("rs-1"),
                SigningKey::eddsa("ed-1"),
            ]),
            extra_entries: Mutex::new(Vec::new()),
            jwks_body: Mutex::new(None),
            cache_control: Mutex::new(None),
            metadata_issuer: Mutex::new(None),
            serve_oauth_metadata: AtomicBool::new(true),
            serve_openid_configuration: AtomicBool::new(true),
            serve_openid_inserted: AtomicBool::new(true),
            failing: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            jwks_hits: AtomicUsize::new(0),
            oauth_metadata_hits: AtomicUsize::new(0),
            openid_configuration_hits: AtomicUsize::new(0),
            openid_appended_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The JWK Set URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state.base)
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.base)
    }

    /// A token builder for this issuer and `audience`.
    pub fn token(&self, audience: &str) -> TokenBuilder {
        TokenBuilder::new(self.issuer(), audience)
    }

    /// A published key by `kid`.
    pub fn key(&self, kid: &str) -> SigningKey {
        self.state
            .keys
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.kid() == Some(kid))
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// Publishes another key (rotation: the new key appears).
    pub fn add_key(&self, key: SigningKey) {
        self.state.keys.lock().unwrap().push(key);
    }

    /// Stops publishing a key (rotation: the old key is withdrawn).
    pub fn withdraw_key(&self, kid: &str) {
        self.state
            .keys
            .lock()
            .unwrap()
            .retain(|k| k.kid() != Some(kid));
    }

    /// Replaces every published key.
    pub fn set_keys(&self, keys: Vec<SigningKey>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    /// Adds raw entries to the `keys` array after the published keys (bad keys, `use: enc`...).
    pub fn add_raw_jwk(&self, entry: Value) {
        self.state.extra_entries.lock().unwrap().push(entry);
    }

    /// Serves exactly these bytes as the JWK Set (`None`: back to the published keys).
    pub fn set_jwks_body(&self, body: Option<Vec<u8>>) {
        *self.state.jwks_body.lock().unwrap() = body;
    }

    /// The `Cache-Control` header of the JWK Set response.
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// The `issuer` written into the metadata documents (`None`: the real issuer).
    pub fn set_metadata_issuer(&self, issuer: Option<&str>) {
        *self.state.metadata_issuer.lock().unwrap() = issuer.map(str::to_owned);
    }

    /// Whether `/.well-known/oauth-authorization-server...` is served (else 404).
    pub fn serve_oauth_metadata(&self, on: bool) {
        self.state.serve_oauth_metadata.store(on, Ordering::SeqCst);
    }

    /// Whether `.../.well-known/openid-configuration` is served (else 404).
    pub fn serve_openid_configuration(&self, on: bool) {
        self.state
            .serve_openid_configuration
            .store(on, Ordering::SeqCst);
    }

    /// Whether the inserted OpenID Connect form `/.well-known/openid-configuration<path>` is
    /// served (else 404; still counted in [`openid_configuration_hits`](Self::openid_configuration_hits)).
    /// Only matters for an issuer with a path: without one both forms are the same URL. Off: the
    /// IdP serves only `<issuer>/.well-known/openid-configuration` (Keycloak, Entra ID, Okta).
    pub fn serve_openid_inserted(&self, on: bool) {
        self.state.serve_openid_inserted.store(on, Ordering::SeqCst);
    }

    /// Outage switch: every endpoint answers 500.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Delays every response.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Stops the server: new connections are refused, idle ones are closed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn oauth_metadata_hits(&self) -> usize {
        self.state.oauth_metadata_hits.load(Ordering::SeqCst)
    }

    /// Hits on both OpenID Connect forms (inserted and appended).
    pub fn openid_configuration_hits(&self) -> usize {
        self.state.openid_configuration_hits.load(Ordering::SeqCst)
    }

    /// Hits on the appended OpenID Connect form `<issuer>/.well-known/openid-configuration` only
    /// (a subset of [`openid_configuration_hits`](Self::openid_configuration_hits)).
    pub fn openid_appended_hits(&self) -> usize {
        self.state.openid_appended_hits.load(Ordering::SeqCst)
    }

    /// Hits on any other path.
    pub fn other_hits(&self) -> usize {
        self.state.other_hits.load(Ordering::SeqCst)
    }

    /// Waits (polling, bounded by `max`) until `jwks_hits() >= n`; returns whether it got there.
    pub async fn wait_for_jwks_hits(&self, n: usize, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        while self.jwks_hits() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The issuer's path without a terminating `/` (how the well-known URLs are built).
fn issuer_path(state: &IdpState) -> &str {
    let path = &state.issuer[state.base.len()..];
    path.strip_suffix('/').unwrap_or(path)
}

async fn handle(State(state): State<Arc<IdpState>>, uri: Uri) -> Response {
    let path = uri.path();
    let issuer_path = issuer_path(&state);
    enum Endpoint {
        Jwks,
        OAuth,
        OpenId,
        OpenIdInserted,
        Other,
    }
    let endpoint = if path == "/jwks" {
        Endpoint::Jwks
    } else if path == format!("/.well-known/oauth-authorization-server{issuer_path}") {
        Endpoint::OAuth
    } else if path == format!("{issuer_path}/.well-known/openid-configuration") {
        state.openid_appended_hits.fetch_add(1, Ordering::SeqCst);
        Endpoint::OpenId
    } else if path == format!("/.well-known/openid-configuration{issuer_path}") {
        Endpoint::OpenIdInserted
    } else {
        Endpoint::Other
    };
    let counter = match endpoint {
        Endpoint::Jwks => &state.jwks_hits,
        Endpoint::OAuth => &state.oauth_metadata_hits,
        Endpoint::OpenId | Endpoint::OpenIdInserted => &state.openid_configuration_hits,
        Endpoint::Other => &state.other_hits,
    };
    counter.fetch_add(1, Ordering::SeqCst);

    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "outage").into_response();
    }
    match endpoint {
        Endpoint::Jwks => {
            let body = state.jwks_body.lock().unwrap().clone().unwrap_or_else(|| {
                let mut keys: Vec<Value> = state
                    .keys
                    .lock()
                    .unwrap()
                    .iter()
                    .map(SigningKey::jwk)
                    .collect();
                keys.extend(state.extra_entries.lock().unwrap().iter().cloned());
                serde_json::to_vec(&json!({ "keys": keys })).unwrap()
            });
            let mut response =
                Response::builder().header(header::CONTENT_TYPE, "application/jwk-set+json");
            if let Some(cc) = state.cache_control.lock().unwrap().as_deref() {
                response = response.header(header::CACHE_CONTROL, cc);
            }
            response.body(Body::from(body)).unwrap()
        }
        Endpoint::OAuth if !state.serve_oauth_metadata.load(Ordering::SeqCst) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Endpoint::OpenId | Endpoint::OpenIdInserted
            if !state.serve_openid_configuration.load(Ordering::SeqCst) =>
        {
            StatusCode::NOT_FOUND.into_response()
        }
        Endpoint::OpenIdInserted if !state.serve_openid_inserted.load(Ordering::SeqCst) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Endpoint::OAuth | Endpoint::OpenId | Endpoint::OpenIdInserted => {
            let issuer = state
                .metadata_issuer
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| state.issuer.clone());
            let doc = json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{}/authorize", state.base),
                "token_endpoint": format!("{}/token", state.base),
                "jwks_uri": format!("{}/jwks", state.base),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_vec(&doc).unwrap(),
            )
                .into_response()
        }
        Endpoint::Other => StatusCode::NOT_FOUND.into_response(),
    }
}
