//! [`JwsVerifier`]: the signature half of JWT validation, shared by the resource server's
//! access-token verifier and the authorization server's ID-token check.

use std::{fmt, sync::Arc};

use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

#[cfg(feature = "remote")]
use crate::remote::RemoteJwks;
use crate::{
    alg::JwsAlgorithm,
    error::{VerifyError, VerifyErrorKind},
    jwks::{KeySet, Selected, VerifyKey},
    token::{self, HeaderPolicy, Token},
};

/// The largest decoded signature: RSA with an 8192-bit modulus.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Where a [`JwsVerifier`] finds its asymmetric keys.
#[non_exhaustive]
pub enum KeySource {
    /// None: only the HMAC secret verifies.
    HmacOnly,
    /// A fixed JWK Set.
    Static(KeySet),
    /// A JWK Set fetched over HTTP and cached (see [`RemoteJwks`]).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    Remote(Arc<RemoteJwks>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HmacOnly => f.write_str("HmacOnly"),
            Self::Static(set) => f.debug_tuple("Static").field(&set.len()).finish(),
            #[cfg(feature = "remote")]
            Self::Remote(remote) => f.debug_tuple("Remote").field(remote).finish(),
        }
    }
}

/// Verifies a compact JWS: the header gate (size, shape, `alg` allow-list, never `none`, `crit`,
/// `typ`), the key (by `kid`, bound to the key's type and declared `alg`; HMAC only with the
/// configured secret, never with a public key), and the signature. It returns the payload as a
/// JSON object; the claims (`iss`, `aud`, `exp`, ...) are the caller's business.
///
/// Cheap to clone (clones share the key cache).
///
/// # Example
///
/// ```
/// use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
/// use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
/// use mcp_auth_jwt::{HeaderPolicy, JwsAlgorithm, JwsVerifier, KeySet, KeySource, VerifyErrorKind};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?.to_pkcs8v1()?;
/// let key = EncodingKey::from_ec_der(pkcs8.as_ref());
/// let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256)?)?;
/// jwk["kid"] = json!("k1");
/// let (keys, _skipped) = KeySet::parse(json!({ "keys": [jwk] }).to_string().as_bytes())?;
///
/// let verifier = JwsVerifier::new(
///     HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), true),
///     KeySource::Static(keys),
///     None,
/// );
/// let mut header = Header::new(Algorithm::ES256);
/// header.kid = Some("k1".into());
/// let token = jsonwebtoken::encode(&header, &json!({ "sub": "alice" }), &key)?;
/// let claims = verifier.verify(&token).await?;
/// assert_eq!(claims["sub"], "alice");
///
/// // `alg: none` never passes.
/// let none = format!("eyJhbGciOiJub25lIn0.{}.", token.split('.').nth(1).unwrap());
/// assert_eq!(verifier.verify(&none).await.unwrap_err().kind(), VerifyErrorKind::Algorithm);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JwsVerifier(Arc<Inner>);

struct Inner {
    header: HeaderPolicy,
    hmac: Option<DecodingKey>,
    keys: KeySource,
}

impl fmt::Debug for JwsVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwsVerifier")
            .field("header", &self.0.header)
            .field("hmac_secret", &self.0.hmac.as_ref().map(|_| "[REDACTED]"))
            .field("keys", &self.0.keys)
            .finish()
    }
}

/// What one pass over the cached keys decided.
enum Step {
    Done(Result<Map<String, Value>, VerifyError>),
    /// The token's key is not cached (or no keys are usable): a fetch may help.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    NeedKeys,
}

impl JwsVerifier {
    /// A verifier with this header policy, these keys and, optionally, an HMAC secret (only
    /// ever used for `HS*` tokens, and only when the policy allows them).
    #[must_use]
    pub fn new(header: HeaderPolicy, keys: KeySource, hmac_secret: Option<&[u8]>) -> Self {
        Self(Arc::new(Inner {
            header,
            hmac: hmac_secret.map(DecodingKey::from_secret),
            keys,
        }))
    }

    /// The header policy.
    #[must_use]
    pub fn header_policy(&self) -> &HeaderPolicy {
        &self.0.header
    }

    /// How many usable keys are cached now. The HMAC secret is not counted.
    #[must_use]
    pub fn key_count(&self) -> usize {
        match &self.0.keys {
            KeySource::HmacOnly => 0,
            KeySource::Static(set) => set.len(),
            #[cfg(feature = "remote")]
            KeySource::Remote(remote) => remote.key_count(),
        }
    }

    /// Whether an HMAC secret is configured.
    #[must_use]
    pub fn has_hmac_secret(&self) -> bool {
        self.0.hmac.is_some()
    }

    /// Fetches a remote key set now, ignoring the cool-down (joining a fetch already running).
    /// Static keys answer `Ok` at once.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](VerifyErrorKind::Unavailable) when the key set could not be fetched.
    pub async fn refresh_keys(&self) -> Result<(), VerifyError> {
        match &self.0.keys {
            #[cfg(feature = "remote")]
            KeySource::Remote(remote) => remote.refresh_now().await,
            _ => Ok(()),
        }
    }

    /// Verifies `token` and returns its payload, fetching the key set when the token names a
    /// key not cached (at most once per cool-down).
    ///
    /// # Errors
    ///
    /// The first check that failed; [`Unavailable`](VerifyErrorKind::Unavailable) when the keys
    /// cannot be fetched.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let token = token::parse(token, &self.0.header)?;
        match self.step(&token, false) {
            Step::Done(result) => result,
            Step::NeedKeys => {
                #[cfg(feature = "remote")]
                if let KeySource::Remote(remote) = &self.0.keys {
                    event!(debug, "token key not cached; refreshing the JWK Set");
                    remote.refresh_for_unknown_key().await?;
                    return match self.step(&token, true) {
                        Step::Done(result) => result,
                        Step::NeedKeys => Err(VerifyError::new(VerifyErrorKind::UnknownKey)),
                    };
                }
                Err(VerifyError::new(VerifyErrorKind::UnknownKey))
            }
        }
    }

    /// Answers without I/O when it can: `None` when the token's key must be fetched first.
    #[must_use]
    pub fn verify_cached(&self, token: &str) -> Option<Result<Map<String, Value>, VerifyError>> {
        match token::parse(token, &self.0.header) {
            Ok(token) => match self.step(&token, false) {
                Step::Done(result) => Some(result),
                Step::NeedKeys => None,
            },
            Err(error) => Some(Err(error)),
        }
    }

    fn check_hmac(
        token: &Token<'_>,
        secret: &DecodingKey,
    ) -> Result<Map<String, Value>, VerifyError> {
        match jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            secret,
            token.alg.to_jwt(),
        ) {
            Ok(true) => token::decode_object(token.payload),
            Ok(false) | Err(_) => Err(VerifyError::new(VerifyErrorKind::InvalidSignature)),
        }
    }

    pub(crate) fn check(
        token: &Token<'_>,
        key: &VerifyKey,
    ) -> Result<Map<String, Value>, VerifyError> {
        use base64::Engine as _;
        // The largest signature is an RSA-8192 one (1024 bytes); the base64 engine wants room
        // for its estimate (a multiple of 3). Anything larger cannot verify.
        let mut buf = [0u8; MAX_SIGNATURE_BYTES + 3];
        let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(token.signature, &mut buf)
            .is_ok_and(|len| key.verify(token.alg, token.signing_input.as_bytes(), &buf[..len]));
        if !verified {
            return Err(VerifyError::new(VerifyErrorKind::InvalidSignature));
        }
        token::decode_object(token.payload)
    }

    fn with_selected(
        selected: Selected<'_>,
        token: &Token<'_>,
    ) -> Option<Result<Map<String, Value>, VerifyError>> {
        match selected {
            Selected::Key(key) => Some(Self::check(token, key)),
            Selected::WrongAlgorithm => Some(Err(VerifyError::new(VerifyErrorKind::Algorithm))),
            Selected::Ambiguous => Some(Err(VerifyError::new(VerifyErrorKind::UnknownKey))),
            Selected::Unknown => None,
        }
    }

    /// One pass over the keys cached now. `after_fetch`: a fetch has just been tried, so a key
    /// still missing is unknown.
    fn step(&self, token: &Token<'_>, after_fetch: bool) -> Step {
        if token.alg.is_hmac() {
            return Step::Done(match &self.0.hmac {
                Some(secret) => Self::check_hmac(token, secret),
                None => Err(VerifyError::new(VerifyErrorKind::Algorithm)),
            });
        }
        let _ = after_fetch;
        match &self.0.keys {
            KeySource::HmacOnly => Step::Done(Err(VerifyError::new(VerifyErrorKind::UnknownKey))),
            KeySource::Static(set) => Step::Done(
                Self::with_selected(set.select(token.kid.as_deref(), token.alg), token)
                    .unwrap_or_else(|| Err(VerifyError::new(VerifyErrorKind::UnknownKey))),
            ),
            #[cfg(feature = "remote")]
            KeySource::Remote(remote) => {
                let snapshot = remote.snapshot();
                if !remote.is_usable(&snapshot) {
                    return if after_fetch {
                        Step::Done(Err(VerifyError::unavailable(None)))
                    } else {
                        Step::NeedKeys
                    };
                }
                match Self::with_selected(
                    snapshot.set.select(token.kid.as_deref(), token.alg),
                    token,
                ) {
                    Some(result) => Step::Done(result),
                    None if after_fetch => {
                        Step::Done(Err(VerifyError::new(VerifyErrorKind::UnknownKey)))
                    }
                    None => Step::NeedKeys,
                }
            }
        }
    }
}

impl JwsAlgorithm {
    /// Whether `self` may verify with a key of the JWK Set (every asymmetric algorithm).
    #[must_use]
    pub const fn is_asymmetric(self) -> bool {
        !self.is_hmac()
    }
}
