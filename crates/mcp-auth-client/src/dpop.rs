//! DPoP (RFC 9449) on the client side: the proof key, server nonces, and reading DPoP challenges.
//!
//! The proofs themselves are made by [`mcp_auth_jwt::dpop::DpopKey`], the one implementation of
//! DPoP proof code in the workspace (the resource and authorization servers check them with its
//! sibling `DpopVerifier`). This module adds what a client needs around it:
//!
//! - [`ProofKey`]: the client's key, persisted in the [`TokenStore`](crate::store::TokenStore)
//!   next to the tokens it binds (base64url PKCS#8 in [`StoredTokens::dpop_key`](crate::store::StoredTokens::dpop_key));
//! - [`Nonces`]: the last `DPoP-Nonce` of each origin (authorization server, MCP server);
//! - the checks on a `DPoP-Nonce` header (RFC 9449 §8.1: `1*NQCHAR`) and on `DPoP` challenges.
//!
//! Without the `dpop` feature a [`ProofKey`] cannot be made: the manager then never sends a
//! proof and uses bearer tokens, and an MCP server that demands DPoP gets a clear error.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use http::{HeaderMap, HeaderValue};
use mcp_auth_core::{
    Clock, Secret,
    challenge::{BearerChallenge, DpopChallenge, parse},
    error::ErrorCode,
};

use crate::error::{AuthError, AuthErrorKind};

/// The `DPoP` request header (proofs) and the `DPoP-Nonce` response header.
pub(crate) const DPOP: &str = "dpop";
/// The response header carrying a server nonce (RFC 9449 §8.1, §9).
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";
/// The token type of a DPoP-bound access token (RFC 9449 §5).
pub(crate) const TOKEN_TYPE_DPOP: &str = "DPoP";
/// The only proof algorithm this client signs with.
pub(crate) const ALGORITHM: &str = "ES256";
/// The longest nonce kept, in bytes.
const MAX_NONCE_BYTES: usize = 512;
/// The most origins whose nonce is remembered (the cache is emptied when it is full).
const MAX_ORIGINS: usize = 256;

/// An error about DPoP.
pub(crate) fn error(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::Dpop).with_detail(detail)
}

/// A `DPoP-Nonce` value if it is one (RFC 9449 §8.1: `nonce = 1*NQCHAR`, at most 512 bytes here).
pub(crate) fn valid_nonce(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_NONCE_BYTES
        && bytes
            .iter()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    if ok { value.to_str().ok() } else { None }
}

/// What a response says about the server's nonce.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NonceHeader<'a> {
    /// No `DPoP-Nonce` header.
    Absent,
    /// A valid nonce.
    Valid(&'a str),
    /// A header that is not a nonce (bad characters, empty, too long, several headers).
    Malformed,
}

/// Reads the `DPoP-Nonce` header of a response.
pub(crate) fn nonce_header(headers: &HeaderMap) -> NonceHeader<'_> {
    let mut values = headers.get_all(DPOP_NONCE).iter();
    match (values.next(), values.next()) {
        (None, _) => NonceHeader::Absent,
        (Some(value), None) => {
            valid_nonce(value).map_or(NonceHeader::Malformed, NonceHeader::Valid)
        }
        (Some(_), Some(_)) => NonceHeader::Malformed,
    }
}

/// The `DPoP` challenges of a response.
fn dpop_challenges(headers: &HeaderMap) -> impl Iterator<Item = DpopChallenge> + '_ {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse(v).ok())
        .flat_map(|all| all.into_iter().filter_map(DpopChallenge::from_challenge))
}

/// Whether a resource server's 401 asks for a nonce: a `DPoP` challenge with
/// `error="use_dpop_nonce"` (RFC 9449 §9).
pub(crate) fn asks_for_nonce(headers: &HeaderMap) -> bool {
    dpop_challenges(headers).any(|c| c.error_code() == Some(ErrorCode::UseDpopNonce))
}

/// Whether a response challenges with `DPoP` only (no `Bearer` challenge): the server accepts
/// DPoP-bound tokens and nothing else.
pub(crate) fn demands_dpop(headers: &HeaderMap) -> bool {
    let any_bearer = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse(v).ok())
        .any(|all| BearerChallenge::find(&all).is_some());
    !any_bearer && dpop_challenges(headers).next().is_some()
}

/// The first `DPoP` challenge read as a `Bearer` one (the parameters the manager uses are the
/// same: `resource_metadata`, `scope`, `error`), for a server that only challenges with `DPoP`.
pub(crate) fn dpop_as_bearer(headers: &HeaderMap) -> Option<BearerChallenge> {
    let dpop = dpop_challenges(headers).next()?;
    let mut bearer = BearerChallenge::new();
    if let Some(url) = dpop.resource_metadata_url() {
        bearer = bearer.resource_metadata(url);
    }
    if let Some(scopes) = dpop.scopes() {
        bearer = bearer.scope(&scopes);
    }
    if let Some(code) = dpop.error_code() {
        bearer = bearer.error(code);
    }
    Some(bearer)
}

/// The origin (`scheme://host:port`) a nonce belongs to.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The last nonce each server gave (RFC 9449 §8, §9), by origin. Bounded: emptied when it holds
/// [`MAX_ORIGINS`] origins.
#[derive(Default)]
pub(crate) struct Nonces(Mutex<HashMap<String, String>>);

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Nonces").field("origins", &count).finish()
    }
}

impl Nonces {
    /// The nonce to put in a proof for `url`.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    pub(crate) fn get(&self, url: &str) -> Option<String> {
        let origin = origin_of(url)?;
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin)
            .cloned()
    }

    /// Remembers `nonce` for the origin of `url`.
    pub(crate) fn set(&self, url: &str, nonce: &str) {
        let Some(origin) = origin_of(url) else {
            return;
        };
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ORIGINS && !map.contains_key(&origin) {
            map.clear();
        }
        map.insert(origin, nonce.to_owned());
    }

    /// Picks up a fresh nonce from any response of the server at `url` (a malformed header is
    /// ignored here; it only matters when the server asks for a nonce). Whether one was taken.
    pub(crate) fn observe(&self, url: &str, headers: &HeaderMap) -> bool {
        match nonce_header(headers) {
            NonceHeader::Valid(nonce) => {
                self.set(url, nonce);
                true
            }
            NonceHeader::Absent | NonceHeader::Malformed => false,
        }
    }
}

/// The client's DPoP key (ES256). Cheap to clone. `Debug` shows the thumbprint only.
#[derive(Clone)]
pub(crate) struct ProofKey {
    #[cfg(feature = "dpop")]
    key: Arc<mcp_auth_jwt::dpop::DpopKey>,
}

impl fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProofKey");
        #[cfg(feature = "dpop")]
        d.field("jkt", &self.key.thumbprint());
        d.finish_non_exhaustive()
    }
}

#[cfg(feature = "dpop")]
impl ProofKey {
    /// A new random key.
    pub(crate) fn generate() -> Result<Self, AuthError> {
        let key = mcp_auth_jwt::dpop::DpopKey::generate()
            .map_err(|_| error("a DPoP key could not be generated"))?;
        Ok(Self { key: Arc::new(key) })
    }

    /// The key kept in a store (base64url of its PKCS#8 DER).
    pub(crate) fn from_stored(stored: &Secret) -> Result<Self, AuthError> {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(stored.expose())
            .map_err(|_| error("the stored DPoP key is not base64url"))?;
        let key = mcp_auth_jwt::dpop::DpopKey::from_pkcs8_der(&der)
            .map_err(|_| error("the stored DPoP key is not a P-256 PKCS#8 key"))?;
        Ok(Self { key: Arc::new(key) })
    }

    /// The key as kept in a store.
    pub(crate) fn to_stored(&self) -> Result<Secret, AuthError> {
        use base64::Engine as _;
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|_| error("the DPoP key could not be encoded"))?;
        Ok(Secret::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der),
        ))
    }

    /// The JWK SHA-256 thumbprint (what the server puts in `cnf.jkt`).
    pub(crate) fn thumbprint(&self) -> &str {
        self.key.thumbprint()
    }

    /// A proof for a `method` request to `url` (query and fragment left out of `htu`), bound to
    /// `access_token` (`ath`) on resource requests, with the nonce last given for `url`'s origin.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &str,
        now_unix: u64,
        access_token: Option<&str>,
        nonces: &Nonces,
    ) -> Result<HeaderValue, AuthError> {
        let nonce = nonces.get(url);
        let mut claims = mcp_auth_jwt::dpop::ProofClaims::new(method, url, now_unix);
        if let Some(token) = access_token {
            claims = claims.access_token(token);
        }
        if let Some(nonce) = nonce.as_deref() {
            claims = claims.nonce(nonce);
        }
        let proof = self
            .key
            .proof(&claims)
            .map_err(|_| error("the DPoP proof could not be signed"))?;
        let mut value =
            HeaderValue::try_from(proof).map_err(|_| error("the DPoP proof is not a header"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(not(feature = "dpop"))]
impl ProofKey {
    pub(crate) fn generate() -> Result<Self, AuthError> {
        Err(error("DPoP support is not compiled in (feature `dpop`)"))
    }

    pub(crate) fn from_stored(_stored: &Secret) -> Result<Self, AuthError> {
        Self::generate()
    }

    pub(crate) fn to_stored(&self) -> Result<Secret, AuthError> {
        Err(error("DPoP support is not compiled in (feature `dpop`)"))
    }

    pub(crate) fn thumbprint(&self) -> &str {
        ""
    }

    pub(crate) fn proof(
        &self,
        _method: &str,
        _url: &str,
        _now_unix: u64,
        _access_token: Option<&str>,
        _nonces: &Nonces,
    ) -> Result<HeaderValue, AuthError> {
        Err(error("DPoP support is not compiled in (feature `dpop`)"))
    }
}

/// What a DPoP-bound access token needs to be presented: the key, the nonces, the clock.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) key: ProofKey,
    pub(crate) nonces: Arc<Nonces>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Binding {
    pub(crate) fn now_unix(&self) -> u64 {
        self.clock.unix_seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_nqchar_and_bounded() {
        let ok = HeaderValue::from_static("eyJ7S_zG.9-~!");
        assert_eq!(valid_nonce(&ok), Some("eyJ7S_zG.9-~!"));
        for bad in ["", "a b", "a\"b", "a\\b"] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert_eq!(valid_nonce(&value), None, "{bad:?}");
        }
        let long = HeaderValue::from_str(&"n".repeat(MAX_NONCE_BYTES + 1)).unwrap();
        assert_eq!(valid_nonce(&long), None);

        let mut headers = HeaderMap::new();
        assert_eq!(nonce_header(&headers), NonceHeader::Absent);
        headers.append(DPOP_NONCE, HeaderValue::from_static("n1"));
        assert_eq!(nonce_header(&headers), NonceHeader::Valid("n1"));
        headers.append(DPOP_NONCE, HeaderValue::from_static("n2"));
        assert_eq!(nonce_header(&headers), NonceHeader::Malformed);
    }

    #[test]
    fn nonces_are_kept_per_origin() {
        let nonces = Nonces::default();
        nonces.set("https://as.example.com/token", "a");
        nonces.set("https://mcp.example.com:443/mcp?x=1", "m");
        assert_eq!(
            nonces.get("https://as.example.com/other").as_deref(),
            Some("a")
        );
        assert_eq!(
            nonces.get("https://mcp.example.com/mcp").as_deref(),
            Some("m")
        );
        assert_eq!(nonces.get("https://mcp.example.com:8443/mcp"), None);
        assert!(!format!("{nonces:?}").contains("example"));
    }

    #[test]
    fn challenges_are_read_whatever_the_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"DPoP error="use_dpop_nonce", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
            ),
        );
        assert!(asks_for_nonce(&headers));
        assert!(demands_dpop(&headers));
        let bearer = dpop_as_bearer(&headers).unwrap();
        assert_eq!(
            bearer.resource_metadata_url(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        headers.append(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer resource_metadata="x""#),
        );
        assert!(!demands_dpop(&headers));
    }
}
