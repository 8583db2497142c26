//! DPoP (RFC 9449): proofs made by a client ([`DpopKey`]) and checked by an authorization or
//! resource server ([`DpopVerifier`]), key thumbprints (RFC 7638) and server nonces
//! ([`DpopNonces`]).
//!
//! A proof is a compact JWS with `typ: dpop+jwt` whose header carries the public key (`jwk`)
//! that signed it. [`DpopVerifier::verify`] runs the checks of RFC 9449 §4.3, in this order:
//!
//! 1. one well-formed JWS (the header gate shared with access tokens: size, shape, never
//!    `none`, no `crit`), `typ` = `dpop+jwt`, `alg` an allowed **asymmetric** algorithm (HMAC
//!    and `none` are refused);
//! 2. `jwk` a public key of a supported type that fits `alg` (the JWK rules of [`KeySet`](crate::KeySet));
//!    a `jwk` with private parts (`d`, `p`, `q`, ...) is refused;
//! 3. the signature, by that key;
//! 4. `htm` = the request method, `htu` = the request URL without query and fragment
//!    (compared after RFC 3986 normalisation);
//! 5. `iat` within the window (by default at most 60 s old, 30 s of clock skew either way);
//! 6. `ath` = base64url(SHA-256(access token)) when a token is presented;
//! 7. the key's thumbprint = the token's `cnf.jkt` when one is expected;
//! 8. `nonce`, when the server asks for one ([`ProofCheck::nonce`]);
//! 9. `jti` never seen before for this key while the proof could still be accepted (a replay
//!    cache bounded in time and in memory).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use mcp_auth_core::{Clock, SystemClock};
//! use mcp_auth_jwt::dpop::{DpopErrorKind, DpopKey, DpopVerifier, ProofCheck, ProofClaims};
//!
//! let key = DpopKey::generate()?;
//! let now = SystemClock::default().unix_seconds();
//! let proof = key.proof(&ProofClaims::new("POST", "https://mcp.example.com/mcp", now).access_token("tok"))?;
//!
//! let verifier = DpopVerifier::new(Arc::new(SystemClock::default()));
//! let check = ProofCheck::new("POST", "https://mcp.example.com/mcp?x=1")
//!     .access_token("tok")
//!     .expected_jkt(key.thumbprint());
//! let verified = verifier.verify(&proof, &check)?;
//! assert_eq!(verified.jkt(), key.thumbprint());
//!
//! // The same proof again is a replay.
//! assert_eq!(verifier.verify(&proof, &check).unwrap_err().kind(), DpopErrorKind::Replay);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{
    collections::HashSet,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use aws_lc_rs::{
    digest, hmac,
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use base64::Engine as _;
use mcp_auth_core::Clock;
use serde_json::{Map, Value};

pub use crate::dpop_error::{DpopError, DpopErrorKind};
use crate::{
    alg::JwsAlgorithm,
    error::VerifyErrorKind,
    jwks::{b64url_decode, parse_jwk},
    token::{self, HeaderPolicy},
    verifier::JwsVerifier,
};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";
/// The default oldest acceptable `iat`: 60 seconds before now (plus [`DEFAULT_LEEWAY`]).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// The default clock skew allowed either way on `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The default number of `jti`s remembered per generation of the replay cache (two
/// generations are kept): about 5 MB each when full.
pub const DEFAULT_REPLAY_CAPACITY: usize = 250_000;
/// How long a server nonce from [`DpopNonces`] stays valid, at least (at most twice this).
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// The largest `jti` accepted, in bytes.
const MAX_JTI_BYTES: usize = 256;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWK SHA-256 thumbprint (RFC 7638) of a public JWK, base64url: the value of `cnf.jkt`.
///
/// Only the required members of the key type take part (`EC`: `crv`, `kty`, `x`, `y`; `RSA`:
/// `e`, `kty`, `n`; `OKP`: `crv`, `kty`, `x`). `None` for another key type or a missing member.
///
/// ```
/// use mcp_auth_jwt::dpop::jwk_thumbprint;
/// use serde_json::json;
///
/// // RFC 7638 §3.1.
/// let jwk = json!({
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29",
/// });
/// assert_eq!(jwk_thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
/// ```
#[must_use]
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let jwk = jwk.as_object()?;
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::with_capacity(160);
    canonical.push('{');
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(b64(
        digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()
    ))
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    b64(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

/// The claims of a proof to make with [`DpopKey::proof`].
#[derive(Clone)]
#[must_use]
pub struct ProofClaims<'a> {
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    access_token: Option<&'a str>,
    nonce: Option<&'a str>,
}

impl fmt::Debug for ProofClaims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofClaims")
            .field("htm", &self.htm)
            .field("htu", &self.htu)
            .field("iat", &self.iat)
            .field("access_token", &self.access_token.map(|_| "[REDACTED]"))
            .field("nonce", &self.nonce)
            .finish()
    }
}

impl<'a> ProofClaims<'a> {
    /// A proof for a `htm` request to `htu` (its query and fragment are left out), made at
    /// `iat` (Unix seconds).
    pub fn new(htm: &'a str, htu: &'a str, iat: u64) -> Self {
        Self {
            htm,
            htu,
            iat,
            access_token: None,
            nonce: None,
        }
    }

    /// Binds the proof to an access token (`ath`): for requests to a resource server.
    pub fn access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// The server's last `DPoP-Nonce`.
    pub fn nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = Some(nonce);
        self
    }
}

/// The URL without its query and fragment (RFC 9449 §4.2 `htu`).
fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// A client's DPoP key: an ES256 (P-256) key pair, its public JWK and its thumbprint.
///
/// The private key never appears in `Debug` output; persist it with
/// [`to_pkcs8_der`](Self::to_pkcs8_der) and restore it with [`from_pkcs8_der`](Self::from_pkcs8_der).
pub struct DpopKey {
    pair: EcdsaKeyPair,
    /// The protected header prefix, `{"typ":"dpop+jwt","alg":"ES256","jwk":{...}}`, base64url.
    header_b64: String,
    jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &"ES256")
            .field("jkt", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new random ES256 key.
    ///
    /// # Errors
    ///
    /// When the system random source fails.
    pub fn generate() -> Result<Self, KeyError> {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| KeyError(()))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER encoding (P-256 only).
    ///
    /// # Errors
    ///
    /// When the bytes are not a P-256 PKCS#8 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| KeyError(()))?;
        let point = pair.public_key().as_ref();
        // The uncompressed point: 0x04 || x || y.
        if point.len() != 65 || point[0] != 0x04 {
            return Err(KeyError(()));
        }
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..]),
        });
        let thumbprint = jwk_thumbprint(&jwk).ok_or(KeyError(()))?;
        let header = serde_json::json!({ "typ": DPOP_TYP, "alg": "ES256", "jwk": jwk });
        Ok(Self {
            pair,
            header_b64: b64(header.to_string().as_bytes()),
            jwk,
            thumbprint,
        })
    }

    /// The private key, PKCS#8 DER, for storage. Keep it secret.
    ///
    /// # Errors
    ///
    /// When aws-lc cannot serialize the key.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        self.pair
            .to_pkcs8v1()
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| KeyError(()))
    }

    /// The public JWK (no private parts).
    #[must_use]
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The JWK SHA-256 thumbprint (RFC 7638): what an authorization server puts in `cnf.jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The JWS algorithm of the key's proofs.
    #[must_use]
    pub const fn algorithm(&self) -> JwsAlgorithm {
        JwsAlgorithm::ES256
    }

    /// A signed proof with these claims and a fresh random `jti`.
    ///
    /// # Errors
    ///
    /// When the random source or the signature fails.
    pub fn proof(&self, claims: &ProofClaims<'_>) -> Result<String, KeyError> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| KeyError(()))?;
        let mut payload = Map::new();
        payload.insert("jti".into(), Value::String(b64(&jti)));
        payload.insert("htm".into(), Value::String(claims.htm.to_owned()));
        payload.insert(
            "htu".into(),
            Value::String(strip_query(claims.htu).to_owned()),
        );
        payload.insert("iat".into(), Value::from(claims.iat));
        if let Some(token) = claims.access_token {
            payload.insert("ath".into(), Value::String(access_token_hash(token)));
        }
        if let Some(nonce) = claims.nonce {
            payload.insert("nonce".into(), Value::String(nonce.to_owned()));
        }
        let payload = Value::Object(payload).to_string();
        let mut jws = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        jws.push_str(&self.header_b64);
        jws.push('.');
        jws.push_str(&b64(payload.as_bytes()));
        let signature = self
            .pair
            .sign(&rng, jws.as_bytes())
            .map_err(|_| KeyError(()))?;
        jws.push('.');
        jws.push_str(&b64(signature.as_ref()));
        Ok(jws)
    }
}

/// A DPoP key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP key could not be created, read or used")]
pub struct KeyError(());

/// What a proof is checked against: the request, and what the server expects.
#[derive(Clone, Copy)]
#[must_use]
pub struct ProofCheck<'a> {
    method: &'a str,
    url: &'a str,
    access_token: Option<&'a str>,
    expected_jkt: Option<&'a str>,
    nonce: Option<&'a dyn NonceCheck>,
}

impl fmt::Debug for ProofCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofCheck")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("access_token", &self.access_token.map(|_| "[REDACTED]"))
            .field("expected_jkt", &self.expected_jkt)
            .field("nonce", &self.nonce.is_some())
            .finish()
    }
}

impl<'a> ProofCheck<'a> {
    /// A proof for a `method` request to `url` (the full URL the request was sent to; its query
    /// and fragment are ignored).
    pub fn new(method: &'a str, url: &'a str) -> Self {
        Self {
            method,
            url,
            access_token: None,
            expected_jkt: None,
            nonce: None,
        }
    }

    /// The access token presented with the proof: `ath` must be its hash.
    pub fn access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// The thumbprint the proof key must have (`cnf.jkt` of the token, or of a refresh token).
    pub fn expected_jkt(mut self, jkt: &'a str) -> Self {
        self.expected_jkt = Some(jkt);
        self
    }

    /// Requires a `nonce` that `nonces` accepts (RFC 9449 §8, §9).
    pub fn nonce(mut self, nonces: &'a dyn NonceCheck) -> Self {
        self.nonce = Some(nonces);
        self
    }
}

/// The nonce hook: decides whether a proof's `nonce` is one the server gave out recently.
pub trait NonceCheck: Send + Sync {
    /// Whether `nonce` is acceptable now.
    fn is_valid(&self, nonce: &str) -> bool;
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    jkt: String,
    iat: u64,
}

impl VerifiedProof {
    /// The JWK SHA-256 thumbprint of the proof key (to bind a new token to, `cnf.jkt`).
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's `iat`.
    #[must_use]
    pub const fn issued_at(&self) -> u64 {
        self.iat
    }
}

/// Private JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks DPoP proofs (RFC 9449 §4.3) and remembers their `jti`s. Cheap to clone: clones share
/// the replay cache.
///
/// See the [module docs](self) for the checks and an example.
#[derive(Clone)]
pub struct DpopVerifier(Arc<VerifierInner>);

struct VerifierInner {
    policy: HeaderPolicy,
    max_age: u64,
    leeway: u64,
    clock: Arc<dyn Clock>,
    replay: ReplayCache,
}

impl fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("algorithms", &self.0.policy.algorithms())
            .field("max_age", &self.0.max_age)
            .field("leeway", &self.0.leeway)
            .field("replay_capacity", &self.0.replay.capacity)
            .finish_non_exhaustive()
    }
}

impl DpopVerifier {
    /// A verifier with the defaults: every asymmetric algorithm, [`DEFAULT_MAX_AGE`],
    /// [`DEFAULT_LEEWAY`], [`DEFAULT_REPLAY_CAPACITY`].
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_settings(
            clock,
            &JwsAlgorithm::ASYMMETRIC,
            DEFAULT_MAX_AGE,
            DEFAULT_LEEWAY,
            DEFAULT_REPLAY_CAPACITY,
        )
    }

    /// A verifier with these algorithms (HMAC ones are dropped: a proof is always signed with
    /// an asymmetric key), `iat` window and replay-cache capacity per generation.
    #[must_use]
    pub fn with_settings(
        clock: Arc<dyn Clock>,
        algorithms: &[JwsAlgorithm],
        max_age: Duration,
        leeway: Duration,
        replay_capacity: usize,
    ) -> Self {
        let algorithms = algorithms
            .iter()
            .copied()
            .filter(|a| a.is_asymmetric())
            .collect();
        let max_age = max_age.as_secs();
        let leeway = leeway.as_secs();
        Self(Arc::new(VerifierInner {
            policy: HeaderPolicy::exact_typ(algorithms, DPOP_TYP),
            max_age,
            leeway,
            clock,
            // An entry must outlive every moment its proof could still be accepted: the
            // newest acceptable `iat` is now + leeway, accepted until max_age + leeway later.
            replay: ReplayCache::new(replay_capacity, max_age + 2 * leeway + 1),
        }))
    }

    /// The allowed algorithms (for `algs` in challenges and `dpop_signing_alg_values_supported`).
    #[must_use]
    pub fn algorithms(&self) -> &[JwsAlgorithm] {
        self.0.policy.algorithms()
    }

    /// The algorithm names joined by spaces, e.g. `"ES256 EdDSA"`.
    #[must_use]
    pub fn algorithm_names(&self) -> String {
        self.algorithms()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks `proof` against `check`; on success its `jti` is remembered.
    ///
    /// # Errors
    ///
    /// The first check that failed (see the [module docs](self) for the order).
    pub fn verify(&self, proof: &str, check: &ProofCheck<'_>) -> Result<VerifiedProof, DpopError> {
        let token = token::parse(proof, &self.0.policy).map_err(|e| {
            DpopError::new(match e.kind() {
                VerifyErrorKind::Algorithm => DpopErrorKind::Algorithm,
                VerifyErrorKind::TokenType => DpopErrorKind::TokenType,
                VerifyErrorKind::InvalidSignature => DpopErrorKind::InvalidSignature,
                _ => DpopErrorKind::Malformed,
            })
        })?;
        let jwk = token
            .jwk
            .as_ref()
            .ok_or(DpopError::new(DpopErrorKind::BadKey))?;
        let Value::Object(members) = jwk else {
            return Err(DpopErrorKind::BadKey.into());
        };
        if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err(DpopErrorKind::PrivateKey.into());
        }
        let key = parse_jwk(jwk).map_err(|_| DpopError::new(DpopErrorKind::BadKey))?;
        if !key.accepts(token.alg) {
            return Err(DpopErrorKind::Algorithm.into());
        }
        let claims = JwsVerifier::check(&token, &key)
            .map_err(|_| DpopError::new(DpopErrorKind::InvalidSignature))?;

        let string = |name: &str| match claims.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(DpopError::new(DpopErrorKind::Malformed)),
        };
        let jti = string("jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return Err(DpopErrorKind::Malformed.into());
        }
        let htm = string("htm")?;
        let htu = string("htu")?;
        let iat = claims
            .get("iat")
            .and_then(Value::as_u64)
            .ok_or(DpopError::new(DpopErrorKind::Malformed))?;

        if htm != check.method {
            return Err(DpopErrorKind::Method.into());
        }
        if !same_htu(htu, check.url) {
            return Err(DpopErrorKind::Url.into());
        }
        let now = self.0.clock.unix_seconds();
        if iat > now.saturating_add(self.0.leeway)
            || iat.saturating_add(self.0.max_age + self.0.leeway) < now
        {
            return Err(DpopErrorKind::IssuedAt.into());
        }
        match (check.access_token, claims.get("ath")) {
            (None, _) => {}
            (Some(token), Some(Value::String(ath))) if *ath == access_token_hash(token) => {}
            (Some(_), _) => return Err(DpopErrorKind::AccessTokenHash.into()),
        }
        let jkt = jwk_thumbprint(jwk).ok_or(DpopError::new(DpopErrorKind::BadKey))?;
        if let Some(expected) = check.expected_jkt
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                jkt.as_bytes(),
            )
            .is_err()
        {
            return Err(DpopErrorKind::KeyMismatch.into());
        }
        if let Some(nonces) = check.nonce {
            match claims.get("nonce") {
                Some(Value::String(nonce)) if nonces.is_valid(nonce) => {}
                _ => return Err(DpopErrorKind::UseNonce.into()),
            }
        }
        self.0.replay.insert(&jkt, jti, now)?;
        Ok(VerifiedProof { jkt, iat })
    }
}

/// `htu` against the request URL (RFC 9449 §4.3 point 9): query and fragment ignored, and the
/// URLs compared after RFC 3986 §6.2.2/§6.2.3 normalisation (case of scheme and host, default
/// port, percent-encoding case, dot segments, empty path).
fn same_htu(htu: &str, request: &str) -> bool {
    let request = strip_query(request);
    if htu == request {
        return true;
    }
    match (url::Url::parse(htu), url::Url::parse(request)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.username() == b.username()
                && a.password() == b.password()
                && normalise_percent(a.path()) == normalise_percent(b.path())
        }
        _ => false,
    }
}

/// Upper-cases percent-encoding hex digits and decodes unreserved characters (RFC 3986 §6.2.2.1,
/// §6.2.2.2).
fn normalise_percent(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            let byte = (h * 16 + l) as u8;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&format!("{byte:02X}"));
            }
            i += 3;
            continue;
        }
        // Multi-byte characters were percent-encoded by the URL parser, so this is ASCII.
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

/// Remembers `(key, jti)` pairs for at least `generation` seconds, at most `capacity` per
/// generation: two generations (current and previous) are kept and rotated, so memory is
/// bounded by `2 × capacity` entries and time by `2 × generation`.
struct ReplayCache {
    capacity: usize,
    generation: u64,
    state: Mutex<Generations>,
}

struct Generations {
    started: u64,
    current: HashSet<u128, foldhash_like::Build>,
    previous: HashSet<u128, foldhash_like::Build>,
}

/// The keys are already uniform (truncated SHA-256): hashing them again is wasted work.
mod foldhash_like {
    use std::hash::{BuildHasher, Hasher};

    #[derive(Default, Clone, Copy)]
    pub(super) struct Build;

    #[derive(Default)]
    pub(super) struct Identity(u64);

    impl Hasher for Identity {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut buf = [0u8; 8];
                buf[..chunk.len()].copy_from_slice(chunk);
                self.0 ^= u64::from_le_bytes(buf);
            }
        }
        fn write_u128(&mut self, n: u128) {
            self.0 = n as u64 ^ (n >> 64) as u64;
        }
    }

    impl BuildHasher for Build {
        type Hasher = Identity;
        fn build_hasher(&self) -> Identity {
            Identity(0)
        }
    }
}

impl ReplayCache {
    fn new(capacity: usize, generation: u64) -> Self {
        Self {
            capacity: capacity.max(1),
            generation: generation.max(1),
            state: Mutex::new(Generations {
                started: 0,
                current: HashSet::default(),
                previous: HashSet::default(),
            }),
        }
    }

    /// Records the pair; `Replay` when it was seen, `Busy` when the cache is full.
    fn insert(&self, jkt: &str, jti: &str, now: u64) -> Result<(), DpopError> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(jkt.as_bytes());
        ctx.update(&[0]);
        ctx.update(jti.as_bytes());
        let hash = ctx.finish();
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_ref()[..16]);
        let key = u128::from_le_bytes(first);

        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= state.started.saturating_add(self.generation) {
            // One generation has passed: the current one becomes the previous one; after two,
            // everything remembered is too old to be accepted again.
            if now >= state.started.saturating_add(2 * self.generation) {
                state.previous.clear();
            } else {
                let current = std::mem::take(&mut state.current);
                state.previous = current;
            }
            state.current.clear();
            state.started = now;
        }
        if state.previous.contains(&key) || state.current.contains(&key) {
            return Err(DpopErrorKind::Replay.into());
        }
        if state.current.len() >= self.capacity {
            return Err(DpopErrorKind::Busy.into());
        }
        state.current.insert(key);
        Ok(())
    }
}

/// Server nonces (RFC 9449 §8, §9) without server state: a nonce is a time step and an HMAC of
/// it under a random secret, valid in its step and the next (so at least `lifetime`, at most
/// twice that). Clones share the secret; two processes need the same secret
/// ([`with_secret`](Self::with_secret)) to accept each other's nonces.
#[derive(Clone)]
pub struct DpopNonces {
    key: hmac::Key,
    lifetime: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl DpopNonces {
    /// Nonces under a fresh random secret, each valid for [`DEFAULT_NONCE_LIFETIME`] at least.
    ///
    /// # Errors
    ///
    /// When the system random source fails.
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| KeyError(()))?;
        Ok(Self::with_secret(&secret, DEFAULT_NONCE_LIFETIME, clock))
    }

    /// Nonces under this secret, valid for `lifetime` at least.
    #[must_use]
    pub fn with_secret(secret: &[u8], lifetime: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime: lifetime.as_secs().max(1),
            clock,
        }
    }

    fn for_step(&self, step: u64) -> String {
        let tag = hmac::sign(&self.key, &step.to_be_bytes());
        let mut bytes = Vec::with_capacity(8 + 16);
        bytes.extend_from_slice(&step.to_be_bytes());
        bytes.extend_from_slice(&tag.as_ref()[..16]);
        b64(&bytes)
    }

    /// The nonce to send now in `DPoP-Nonce`.
    #[must_use]
    pub fn current(&self) -> String {
        self.for_step(self.clock.unix_seconds() / self.lifetime)
    }
}

impl NonceCheck for DpopNonces {
    fn is_valid(&self, nonce: &str) -> bool {
        let Some(bytes) = b64url_decode(nonce) else {
            return false;
        };
        if bytes.len() != 24 {
            return false;
        }
        let mut step = [0u8; 8];
        step.copy_from_slice(&bytes[..8]);
        let step = u64::from_be_bytes(step);
        let now = self.clock.unix_seconds() / self.lifetime;
        if step != now && step.saturating_add(1) != now {
            return false;
        }
        let tag = hmac::sign(&self.key, &step.to_be_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..16], &bytes[8..]).is_ok()
    }
}

#[cfg(test)]
mod tests;
