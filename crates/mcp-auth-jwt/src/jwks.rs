//! JWK Set parsing (RFC 7517) with key hygiene, and key selection for a token.
//!
//! Each entry of `keys` is parsed on its own, so one malformed or unsupported key never sinks the
//! set. An entry is skipped when:
//!
//! - `use` is present and is not `sig` (e.g. `enc`);
//! - `key_ops` is present and does not contain `verify`;
//! - `kty` is `oct` (a shared secret never comes from a JWK Set: that would re-open the
//!   HMAC/public-key algorithm confusion) or is unknown;
//! - `alg` is present but is not an asymmetric JWS algorithm, or does not fit the key type and
//!   curve (an `RS256` key is not a `PS256` key, a P-384 key is not an `ES256` key);
//! - the key parameters do not decode or have the wrong size (RSA below 2048 or above 8192 bits,
//!   EC coordinates not the curve size, Ed25519 keys not 32 bytes);
//! - `kid` is present but not a string.
//!
//! A whole set is refused only when it is not a JSON object with a `keys` array, is larger than
//! [`MAX_JWKS_BYTES`], has more than [`MAX_KEYS`] entries, or has no usable key at all.

use std::fmt;

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::alg::JwsAlgorithm;

/// The largest JWK Set document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The largest number of entries in a JWK Set.
pub const MAX_KEYS: usize = 64;

/// Decodes unpadded base64url (RFC 7515 §2), strictly: no padding, no whitespace, no
/// non-canonical trailing bits (the `base64` crate's `URL_SAFE_NO_PAD` engine).
pub(crate) fn b64url_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(input)
        .ok()
}

/// The type (and curve) of a verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind can verify `alg`.
    const fn allows(self, alg: JwsAlgorithm) -> bool {
        matches!(
            (self, alg),
            (
                Self::Rsa,
                JwsAlgorithm::RS256
                    | JwsAlgorithm::RS384
                    | JwsAlgorithm::RS512
                    | JwsAlgorithm::PS256
                    | JwsAlgorithm::PS384
                    | JwsAlgorithm::PS512
            ) | (Self::P256, JwsAlgorithm::ES256)
                | (Self::P384, JwsAlgorithm::ES384)
                | (Self::Ed25519, JwsAlgorithm::EdDSA)
        )
    }
}

/// One usable verification key, pre-parsed.
pub(crate) struct VerifyKey {
    kid: Option<String>,
    /// The declared `alg`; `None` means any algorithm of the key type.
    alg: Option<JwsAlgorithm>,
    kind: KeyKind,
    /// The aws-lc public key, parsed once per algorithm the key accepts (an aws-lc key is bound
    /// to one algorithm; only RSA keys without a declared `alg` have more than one). An algorithm
    /// missing here (aws-lc rejected the key material, e.g. a point not on the curve) verifies
    /// nothing, exactly as when the key was parsed on every verification.
    parsed: Box<[(JwsAlgorithm, ParsedPublicKey)]>,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn accepts(&self, alg: JwsAlgorithm) -> bool {
        self.kind.allows(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Whether `signature` (decoded) is a valid `alg` signature of `message` under this key.
    pub(crate) fn verify(&self, alg: JwsAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why one JWK entry was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant is described by `as_str`.
pub enum SkipReason {
    NotObject,
    NotForSignatures,
    NoVerifyOperation,
    SymmetricKey,
    UnsupportedKeyType,
    UnsupportedAlgorithm,
    AlgorithmMismatch,
    BadParameters,
    KeySize,
    BadKid,
}

impl SkipReason {
    /// A fixed description (used in configuration errors and logs).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotObject => "a JWK is not a JSON object",
            Self::NotForSignatures => "the JWK `use` is not `sig`",
            Self::NoVerifyOperation => "the JWK `key_ops` does not allow `verify`",
            Self::SymmetricKey => "symmetric (`oct`) JWKs are never used; configure an HMAC secret",
            Self::UnsupportedKeyType => "unsupported JWK key type or curve",
            Self::UnsupportedAlgorithm => "the JWK `alg` is not an allowed JWS signature algorithm",
            Self::AlgorithmMismatch => "the JWK `alg` does not fit its key type",
            Self::BadParameters => "the JWK parameters are missing or do not decode",
            Self::KeySize => "the JWK key size is not supported",
            Self::BadKid => "the JWK `kid` is not a string",
        }
    }
}

/// Why a whole JWK Set was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant is described by `as_str`.
pub enum JwksError {
    TooLarge,
    NotJson,
    NoKeysArray,
    TooManyKeys,
    NoUsableKey,
}

impl JwksError {
    /// A fixed description.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "the JWK Set is larger than 256 KiB",
            Self::NotJson => "the JWK Set is not a JSON object",
            Self::NoKeysArray => "the JWK Set has no `keys` array",
            Self::TooManyKeys => "the JWK Set has more than 64 keys",
            Self::NoUsableKey => "the JWK Set has no usable signature verification key",
        }
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for JwksError {}

/// The outcome of looking up the key for a token.
#[derive(Debug)]
pub(crate) enum Selected<'a> {
    /// The key to verify with.
    Key(&'a VerifyKey),
    /// No key has the token's `kid` (or, for a token without `kid`, no key fits its `alg`).
    Unknown,
    /// A key has the token's `kid` but does not fit its `alg`.
    WrongAlgorithm,
    /// The token has no `kid` and more than one key fits its `alg`.
    Ambiguous,
}

/// A parsed JWK Set: the usable keys, in document order.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Parses a JWK Set document, with the size and count caps.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), JwksError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|_| JwksError::NotJson)?;
        Self::from_document(&doc)
    }

    /// Builds a set from a JWK Set document already parsed. Returns the set and the number of
    /// skipped entries.
    pub fn from_document(doc: &Map<String, Value>) -> Result<(Self, usize), JwksError> {
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NoKeysArray);
        };
        if entries.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut set = Self::default();
        let mut skipped = 0;
        for entry in entries {
            match parse_jwk(entry) {
                Ok(key) => set.keys.push(key),
                Err(_reason) => {
                    skipped += 1;
                    event!(debug, reason = _reason.as_str(), "JWK entry skipped");
                }
            }
        }
        if set.keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok((set, skipped))
    }

    /// Adds one JWK.
    pub fn push_jwk(&mut self, jwk: &Value) -> Result<(), SkipReason> {
        if self.keys.len() >= MAX_KEYS {
            return Err(SkipReason::KeySize);
        }
        self.keys.push(parse_jwk(jwk)?);
        Ok(())
    }

    /// Appends every key of `other`.
    pub fn extend(&mut self, other: Self) {
        self.keys.extend(other.keys);
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Finds the key for a token with this `kid` and `alg`.
    ///
    /// A token that names a `kid` is verified only with a key of that `kid`: never with "the only
    /// key" of the set. A token without `kid` uses the one key that fits its `alg`, if there is
    /// exactly one.
    pub(crate) fn select(&self, kid: Option<&str>, alg: JwsAlgorithm) -> Selected<'_> {
        if let Some(kid) = kid {
            let mut named = false;
            for key in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                if key.accepts(alg) {
                    return Selected::Key(key);
                }
                named = true;
            }
            return if named {
                Selected::WrongAlgorithm
            } else {
                Selected::Unknown
            };
        }
        let mut fitting = self.keys.iter().filter(|k| k.accepts(alg));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => Selected::Key(key),
            (None, _) => Selected::Unknown,
            (Some(_), Some(_)) => Selected::Ambiguous,
        }
    }
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, SkipReason> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(SkipReason::BadParameters),
    }
}

fn decode_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, SkipReason> {
    b64url_decode(string_member(jwk, name)?).ok_or(SkipReason::BadParameters)
}

/// Parses one JWK entry into a verification key, or says why it is not usable.
pub(crate) fn parse_jwk(entry: &Value) -> Result<VerifyKey, SkipReason> {
    let Value::Object(jwk) = entry else {
        return Err(SkipReason::NotObject);
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(SkipReason::NotForSignatures),
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
        Some(_) => return Err(SkipReason::NoVerifyOperation),
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(SkipReason::BadKid),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => match JwsAlgorithm::from_name(name) {
            Some(alg) if !alg.is_hmac() => Some(alg),
            _ => return Err(SkipReason::UnsupportedAlgorithm),
        },
        Some(_) => return Err(SkipReason::UnsupportedAlgorithm),
    };
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let (kind, parsed) = match kty {
        "RSA" => {
            let n = decode_member(jwk, "n")?;
            let e = decode_member(jwk, "e")?;
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            // aws-lc verifies RSA signatures for 2048..=8192-bit moduli.
            if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 8 {
                return Err(SkipReason::KeySize);
            }
            let components = RsaPublicKeyComponents { n, e };
            let parsed = JwsAlgorithm::RSA
                .into_iter()
                .filter(|a| alg.is_none_or(|declared| declared == *a))
                .filter_map(|a| {
                    let params = a.rsa_parameters()?;
                    // The size range is enforced by `verify_sig`, as it was on every call.
                    Some((a, components.to_parsed_public_key(params).ok()?))
                })
                .collect();
            (KeyKind::Rsa, parsed)
        }
        "EC" => {
            let (kind, size) = match jwk.get("crv").and_then(Value::as_str) {
                Some("P-256") => (KeyKind::P256, 32),
                Some("P-384") => (KeyKind::P384, 48),
                _ => return Err(SkipReason::UnsupportedKeyType),
            };
            let x = decode_member(jwk, "x")?;
            let y = decode_member(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err(SkipReason::KeySize);
            }
            // The uncompressed point (SEC 1 §2.3.3): 0x04 || x || y.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let jws = if kind == KeyKind::P256 {
                JwsAlgorithm::ES256
            } else {
                JwsAlgorithm::ES384
            };
            (kind, parse_single(jws, &point))
        }
        "OKP" => {
            if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err(SkipReason::UnsupportedKeyType);
            }
            let x = decode_member(jwk, "x")?;
            if x.len() != 32 {
                return Err(SkipReason::KeySize);
            }
            (KeyKind::Ed25519, parse_single(JwsAlgorithm::EdDSA, &x))
        }
        "oct" => return Err(SkipReason::SymmetricKey),
        _ => return Err(SkipReason::UnsupportedKeyType),
    };
    if let Some(alg) = alg
        && !kind.allows(alg)
    {
        return Err(SkipReason::AlgorithmMismatch);
    }
    Ok(VerifyKey {
        kid,
        alg,
        kind,
        parsed,
    })
}

/// Parses an EC or Ed25519 public key for its one algorithm (none if aws-lc rejects it).
fn parse_single(alg: JwsAlgorithm, bytes: &[u8]) -> Box<[(JwsAlgorithm, ParsedPublicKey)]> {
    alg.verification_algorithm()
        .and_then(|verification| ParsedPublicKey::new(verification, bytes).ok())
        .map(|key| (alg, key))
        .into_iter()
        .collect()
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // A valid P-256 point (the generator).
    const P256_X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const P256_Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": kid})
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("").unwrap(), b"");
        assert_eq!(b64url_decode("Zg").unwrap(), b"f");
        assert_eq!(b64url_decode("Zm8").unwrap(), b"fo");
        assert_eq!(b64url_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(b64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(b64url_decode("Zg==").is_none());
        assert!(b64url_decode("Zh").is_none(), "non-canonical trailing bits");
        assert!(b64url_decode("Z").is_none());
        assert!(b64url_decode("Zm9v+/").is_none());
        assert!(b64url_decode("Zm 9").is_none());
    }

    #[test]
    fn one_bad_key_does_not_sink_the_set() {
        let doc = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "!!", "y": P256_Y, "kid": "bad"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "ops", "key_ops": ["encrypt"]},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-521", "x": P256_X, "y": P256_Y},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "alg": "ES384"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "alg": "RSA-OAEP"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": 7},
            "not an object",
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "ed", "key_ops": ["verify"]},
            ec("good"),
        ]});
        let (set, skipped) = KeySet::from_document(doc.as_object().unwrap()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(skipped, 9);
        assert!(matches!(
            set.select(Some("good"), JwsAlgorithm::ES256),
            Selected::Key(_)
        ));
        assert!(matches!(
            set.select(Some("ed"), JwsAlgorithm::EdDSA),
            Selected::Key(_)
        ));
        assert!(matches!(
            set.select(Some("enc"), JwsAlgorithm::ES256),
            Selected::Unknown
        ));
        assert!(matches!(
            set.select(Some("hmac"), JwsAlgorithm::HS256),
            Selected::Unknown
        ));
    }

    #[test]
    fn a_named_kid_never_falls_back_to_the_only_key() {
        let (set, _) =
            KeySet::from_document(json!({"keys": [ec("a")]}).as_object().unwrap()).unwrap();
        assert!(matches!(
            set.select(Some("b"), JwsAlgorithm::ES256),
            Selected::Unknown
        ));
        assert!(matches!(
            set.select(None, JwsAlgorithm::ES256),
            Selected::Key(_)
        ));
        assert!(matches!(
            set.select(None, JwsAlgorithm::RS256),
            Selected::Unknown
        ));
        assert!(matches!(
            set.select(Some("a"), JwsAlgorithm::ES384),
            Selected::WrongAlgorithm
        ));

        let (two, _) =
            KeySet::from_document(json!({"keys": [ec("a"), ec("b")]}).as_object().unwrap())
                .unwrap();
        assert!(matches!(
            two.select(None, JwsAlgorithm::ES256),
            Selected::Ambiguous
        ));
    }

    #[test]
    fn declared_alg_binds_the_key() {
        let rsa_n = format!("{}Q", "q".repeat(341)); // 2048-bit modulus, value irrelevant here
        let doc =
            json!({"keys": [{"kty": "RSA", "n": rsa_n, "e": "AQAB", "alg": "RS256", "kid": "r"}]});
        let (set, _) = KeySet::from_document(doc.as_object().unwrap()).unwrap();
        assert!(matches!(
            set.select(Some("r"), JwsAlgorithm::RS256),
            Selected::Key(_)
        ));
        assert!(matches!(
            set.select(Some("r"), JwsAlgorithm::PS256),
            Selected::WrongAlgorithm
        ));
    }

    #[test]
    fn whole_set_limits() {
        let many: Vec<Value> = (0..=MAX_KEYS).map(|i| ec(&i.to_string())).collect();
        assert_eq!(
            KeySet::from_document(json!({"keys": many}).as_object().unwrap()).unwrap_err(),
            JwksError::TooManyKeys
        );
        assert_eq!(
            KeySet::parse(&vec![b' '; MAX_JWKS_BYTES + 1]).unwrap_err(),
            JwksError::TooLarge
        );
        assert_eq!(KeySet::parse(b"[]").unwrap_err(), JwksError::NotJson);
        assert_eq!(KeySet::parse(b"{}").unwrap_err(), JwksError::NoKeysArray);
        assert_eq!(
            KeySet::parse(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).unwrap_err(),
            JwksError::NoUsableKey
        );
    }

    #[test]
    fn small_rsa_keys_are_skipped() {
        let n = format!("{}Q", "q".repeat(169)); // 1024 bits
        let doc = json!({"keys": [{"kty": "RSA", "n": n, "e": "AQAB"}]});
        assert_eq!(
            KeySet::from_document(doc.as_object().unwrap()).unwrap_err(),
            JwksError::NoUsableKey
        );
    }
}
