//! Key material: generation, PKCS#8 parsing, the public JWK, signing (rules 1 and 2 of the
//! [module docs](super)).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::policy::SigningAlgorithm;
use crate::store::StoredKey;

/// The largest signature we make or check: RSA with an 8192-bit modulus.
pub(super) const MAX_SIGNATURE_BYTES: usize = 1024;
/// Random bytes in a new `kid`.
pub(super) const KID_BYTES: usize = 16;
pub(super) const AT_JWT: &str = "at+jwt";

/// One key: its schedule and its (shared, parsed) material.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) created_at: u64,
    pub(super) activates_at: u64,
    pub(super) retired_at: Option<u64>,
    pub(super) material: Arc<Material>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.material.kid)
            .field("alg", &self.material.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl Key {
    /// Generate a key (RSA off the async thread when a Tokio runtime is there).
    pub(super) async fn generate(
        alg: SigningAlgorithm,
        created_at: u64,
        activates_at: u64,
    ) -> Result<Self, KeyError> {
        let pkcs8 = match (alg, tokio::runtime::Handle::try_current()) {
            (SigningAlgorithm::Rs256, Ok(runtime)) => runtime
                .spawn_blocking(move || generate_pkcs8(alg))
                .await
                .map_err(|_| KeyError::new("key generation did not finish"))??,
            _ => generate_pkcs8(alg)?,
        };
        let mut kid = [0u8; KID_BYTES];
        aws_lc_rs::rand::fill(&mut kid).map_err(|_| KeyError::new("no randomness for a key id"))?;
        let material = Material::parse(B64.encode(kid), alg, pkcs8)?;
        Ok(Self {
            created_at,
            activates_at,
            retired_at: None,
            material: Arc::new(material),
        })
    }

    /// Parse a stored key, reusing the material of a known key with the same `kid` and bytes.
    pub(super) fn from_stored(stored: &StoredKey, known: &[Self]) -> Result<Self, KeyError> {
        let alg = SigningAlgorithm::from_name(&stored.alg)
            .ok_or(KeyError::new("unsupported signing algorithm"))?;
        let material = match known.iter().find(|k| {
            k.material.kid == stored.kid
                && k.material.alg == alg
                && k.material.pkcs8 == stored.pkcs8
        }) {
            Some(key) => Arc::clone(&key.material),
            None => Arc::new(Material::parse(
                stored.kid.clone(),
                alg,
                stored.pkcs8.clone(),
            )?),
        };
        Ok(Self {
            created_at: stored.created_at,
            activates_at: stored.activates_at,
            retired_at: stored.retired_at,
            material,
        })
    }

    pub(super) fn to_stored(&self) -> StoredKey {
        StoredKey {
            kid: self.material.kid.clone(),
            alg: self.material.alg.as_str().to_owned(),
            pkcs8: self.material.pkcs8.clone(),
            created_at: self.created_at,
            activates_at: self.activates_at,
            retired_at: self.retired_at,
        }
    }

    /// Signing order: by activation, then creation, then `kid`.
    pub(super) fn order(&self) -> (u64, u64, &str) {
        (self.activates_at, self.created_at, &self.material.kid)
    }

    /// Whether it may sign at `now`.
    pub(super) fn signs_at(&self, now: u64) -> bool {
        self.activates_at <= now && self.usable(now)
    }

    /// Whether it signs at `now` or will later.
    pub(super) fn usable(&self, now: u64) -> bool {
        self.retired_at.is_none_or(|retired| retired > now)
    }
}

/// A parsed key pair with everything derived from it.
pub(super) struct Material {
    pub(super) kid: String,
    pub(super) alg: SigningAlgorithm,
    pub(super) signer: Signer,
    pub(super) public: ParsedPublicKey,
    /// The public JWK.
    pub(super) jwk: Value,
    /// The base64url header for `typ: at+jwt`, the common case.
    pub(super) at_jwt_header: String,
    pkcs8: Zeroizing<Vec<u8>>,
}

pub(super) enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl Material {
    pub(super) fn parse(
        kid: String,
        alg: SigningAlgorithm,
        pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, KeyError> {
        let rejected = |_| KeyError::new("the private key does not parse for its algorithm");
        let unusable = |_| KeyError::new("the public key could not be derived");
        let (signer, public, mut jwk) = match alg {
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(rejected)?;
                let point = pair.public_key().as_ref();
                // The uncompressed point (SEC 1 §2.3.3): 0x04 || x || y.
                let (Some(&0x04), Some(x), Some(y)) =
                    (point.first(), point.get(1..33), point.get(33..65))
                else {
                    return Err(KeyError::new("unexpected P-256 public key encoding"));
                };
                let jwk = serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y),
                });
                let public =
                    ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).map_err(unusable)?;
                (Signer::Es256(pair), public, jwk)
            }
            SigningAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let x = pair.public_key().as_ref();
                let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": B64.encode(x) });
                let public = ParsedPublicKey::new(&sig::ED25519, x).map_err(unusable)?;
                (Signer::EdDsa(pair), public, jwk)
            }
            SigningAlgorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let bits = pair.public_modulus_len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyError::new("RSA keys must have 2048 to 8192 bits"));
                }
                let public_key = pair.public_key();
                let jwk = serde_json::json!({
                    "kty": "RSA",
                    "n": B64.encode(public_key.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public_key.exponent().big_endian_without_leading_zero()),
                });
                let public = ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, public_key)
                    .map_err(unusable)?;
                (Signer::Rs256(pair), public, jwk)
            }
        };
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), Value::String(kid.clone()));
            members.insert("alg".into(), Value::String(alg.as_str().into()));
            members.insert("use".into(), Value::String("sig".into()));
        }
        let at_jwt_header = B64.encode(header_json(alg, AT_JWT, &kid)?);
        Ok(Self {
            kid,
            alg,
            signer,
            public,
            jwk,
            at_jwt_header,
            pkcs8,
        })
    }

    /// Sign `message` into `out`; returns the signature length.
    pub(super) fn sign(
        &self,
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_BYTES],
    ) -> Result<usize, KeyError> {
        let failed = |_| KeyError::new("signing failed");
        fn copy(signature: &[u8], out: &mut [u8]) -> Result<usize, KeyError> {
            let target = out
                .get_mut(..signature.len())
                .ok_or(KeyError::new("signature too long"))?;
            target.copy_from_slice(signature);
            Ok(signature.len())
        }
        match &self.signer {
            Signer::Es256(pair) => {
                let signature = pair.sign(&SystemRandom::new(), message).map_err(failed)?;
                copy(signature.as_ref(), out)
            }
            Signer::EdDsa(pair) => copy(pair.sign(message).as_ref(), out),
            Signer::Rs256(pair) => {
                let len = pair.public_modulus_len();
                let target = out
                    .get_mut(..len)
                    .ok_or(KeyError::new("signature too long"))?;
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    target,
                )
                .map_err(failed)?;
                Ok(len)
            }
        }
    }
}

/// Generate a private key, as PKCS#8 v1 DER.
fn generate_pkcs8(alg: SigningAlgorithm) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let failed = |_| KeyError::new("key generation failed");
    let der = match alg {
        SigningAlgorithm::Es256 => EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        SigningAlgorithm::EdDsa => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        SigningAlgorithm::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            AsDer::<Pkcs8V1Der<'static>>::as_der(&pair)
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
    };
    Ok(Zeroizing::new(der))
}

/// The JOSE header `{"alg","typ","kid"}`, as JSON.
pub(super) fn header_json(
    alg: SigningAlgorithm,
    typ: &str,
    kid: &str,
) -> Result<Vec<u8>, KeyError> {
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'static str,
        typ: &'a str,
        kid: &'a str,
    }
    serde_json::to_vec(&Header {
        alg: alg.as_str(),
        typ,
        kid,
    })
    .map_err(|_| KeyError::new("the JWS header could not be serialized"))
}

/// The header members [`KeySet::verify`] reads (`alg` and `kid` are required).
#[derive(serde::Deserialize)]
pub(super) struct JwsHeader {
    pub(super) alg: String,
    pub(super) kid: String,
    #[serde(default)]
    pub(super) crit: Option<serde::de::IgnoredAny>,
}
