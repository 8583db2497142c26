//! [`JwtVerifier`]: JWT access tokens (RFC 9068) verified against a static or remote JWK Set.
//!
//! # What is checked
//!
//! In this order; the first failure decides the [`VerifyErrorKind`] (each kind has a fixed
//! description: no library text, key id or claim ever reaches the client).
//!
//! 1. **Shape** (before any key lookup): at most [`MAX_TOKEN_BYTES`], three base64url segments,
//!    a JSON object header ⇒ [`Malformed`](VerifyErrorKind::Malformed).
//! 2. **`alg`** in the allow-list ⇒ else [`Algorithm`](VerifyErrorKind::Algorithm). The default
//!    list is every asymmetric algorithm ([`JwsAlgorithm::ASYMMETRIC`]). `none` is never
//!    accepted. HMAC (`HS*`) only with a secret set through
//!    [`hmac_secret`](JwtVerifierBuilder::hmac_secret), and an HMAC token is verified only with
//!    that secret, never with a key of the JWK Set (so a token "signed" with an RSA public key as
//!    HMAC secret fails).
//! 3. **`crit`** present ⇒ [`Unsupported`](VerifyErrorKind::Unsupported).
//! 4. **`typ`**: `at+jwt` or `application/at+jwt` (RFC 9068 §2.1, any case) ⇒ else
//!    [`TokenType`](VerifyErrorKind::TokenType). This strict default keeps ID tokens and other
//!    JWTs of the same issuer from being replayed as access tokens.
//!    [`accept_jwt_typ`](JwtVerifierBuilder::accept_jwt_typ) also accepts `JWT` and no `typ`
//!    (needed for Keycloak, Auth0 and Entra ID, which send `typ: JWT`).
//! 5. **Key**: a token with `kid` is verified only with the key of that `kid` whose type and
//!    declared `alg` fit the token's `alg` (never with "the only key"); a token without `kid`
//!    uses the one fitting key, if exactly one fits ⇒ else
//!    [`UnknownKey`](VerifyErrorKind::UnknownKey) or [`Algorithm`](VerifyErrorKind::Algorithm).
//! 6. **Signature** ⇒ [`InvalidSignature`](VerifyErrorKind::InvalidSignature).
//! 7. **`cnf`**: a DPoP binding (`{"jkt": "…"}`) is kept for the bearer layer, which requires a
//!    matching proof ([`AuthInfo::dpop_jkt`](crate::AuthInfo::dpop_jkt)); any other confirmation
//!    method (mTLS) ⇒ [`Unsupported`](VerifyErrorKind::Unsupported).
//! 8. **`iss`**: one string, exactly the configured issuer (no normalisation, arrays refused)
//!    ⇒ [`Issuer`](VerifyErrorKind::Issuer).
//! 9. **`aud`**: a string or an array with one entry that names the canonical resource by
//!    [`ResourceId::matches`] (so `https://a.example/` equals `https://a.example`, but
//!    `https://a.example/mcp/` is not `https://a.example/mcp`), or equals, byte for byte, an
//!    audience opted into with [`accept_audience`](JwtVerifierBuilder::accept_audience) (for
//!    Entra ID v2.0's client-ID audiences) ⇒ [`Audience`](VerifyErrorKind::Audience).
//! 10. **`exp`** required ⇒ [`MissingClaim`](VerifyErrorKind::MissingClaim) /
//!     [`Expired`](VerifyErrorKind::Expired); **`nbf`** enforced ⇒
//!     [`NotYetValid`](VerifyErrorKind::NotYetValid); **`iat`**, when present, must not be in
//!     the future ⇒ [`NotYetValid`](VerifyErrorKind::NotYetValid) (a non-numeric `nbf` or `iat`
//!     ⇒ [`Malformed`](VerifyErrorKind::Malformed)); all with a leeway (default 60 s, at most
//!     300 s), against the configured [`Clock`].
//! 11. Claims named by [`require_claim`](JwtVerifierBuilder::require_claim) ⇒
//!     [`MissingClaim`](VerifyErrorKind::MissingClaim).
//!
//! The [`AuthInfo`] gets `sub`, `iss`, `aud`, `exp`, `iat`, `jti`, all claims, the client
//! (`client_id`, else `azp`, else Okta's `cid`) and the scopes: `scope` and `scp`, each a
//! space-delimited string or an array; invalid scope tokens are skipped.
//!
//! # Key sets
//!
//! [`jwks`](JwtVerifierBuilder::jwks) / [`jwks_json`](JwtVerifierBuilder::jwks_json) /
//! [`jwk`](JwtVerifierBuilder::jwk) give static keys;
//! [`jwks_uri`](JwtVerifierBuilder::jwks_uri) and
//! [`discover_jwks`](JwtVerifierBuilder::discover_jwks) (feature `remote`) fetch them. Each JWK is
//! parsed on its own, so one bad key never sinks the set. Skipped: `use` other than `sig`,
//! `key_ops` without `verify`, `oct` keys, unknown key types and curves, an `alg` that is not an
//! asymmetric JWS algorithm or does not fit the key, RSA keys outside 2048–8192 bits. A set
//! larger than [`MAX_JWKS_BYTES`] or with more than [`MAX_KEYS`] entries is refused.
//!
//! # Remote key sets
//!
//! - The keys are fetched on the first verification (or by [`JwtVerifier::refresh_keys`]) and
//!   held in an [`ArcSwap`](arc_swap::ArcSwap): a token whose key is cached is verified without a
//!   lock and never waits for a fetch.
//! - A token naming an unknown `kid` triggers one fetch, shared by every request that needs it
//!   (single flight) and run on a detached task, so a cancelled request cannot wedge it. At most
//!   one such fetch per cool-down ([`unknown_kid_cooldown`](JwtVerifierBuilder::unknown_kid_cooldown),
//!   default 60 s, measured from the last attempt, failed or not).
//! - A background task refreshes the keys when their lifetime ends: `Cache-Control: max-age`
//!   clamped to [`refresh_interval`](JwtVerifierBuilder::refresh_interval) (default 5 min – 24 h),
//!   1 h without the header, up to 10 % earlier at random. It holds only a weak reference and is
//!   aborted when the last clone of the verifier is dropped. After a failure it retries after the
//!   cool-down, doubling up to the larger of the cool-down and the minimum interval.
//! - **Outage ≠ bad token**: when the authorization server is unreachable the old keys stay in
//!   use; a token with a cached key still verifies. A token whose key is unknown, or any token
//!   before the first successful fetch, gets [`Unavailable`](VerifyErrorKind::Unavailable)
//!   (503 with `Retry-After`), not 401, so clients retry instead of re-authorizing.
//! - Requests: connect timeout 5 s, total 10 s, bodies capped at 256 KiB, redirects never
//!   followed, https only (plain http on loopback).
//! - Discovery: the metadata `issuer` must equal the configured issuer byte for byte (RFC 8414
//!   §3.3).
//!
//! Keys named by the token itself (`jwk`, `jku`, `x5u`, `x5c` header parameters) are never used
//! or fetched.
//!
//! # Example
//!
//! A static JWK Set, and a token signed with ES256:
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
//! use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
//! use mcp_auth_core::{ManualClock, ResourceId};
//! use mcp_auth_resource::{JwtVerifier, TokenVerifier, VerifyErrorKind};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The authorization server's key pair and its public JWK.
//! let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?.to_pkcs8v1()?;
//! let signing_key = EncodingKey::from_ec_der(pkcs8.as_ref());
//! let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&signing_key, Algorithm::ES256)?)?;
//! jwk["kid"] = json!("key-1");
//!
//! let resource = ResourceId::parse("https://mcp.example.com/mcp")?;
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let verifier = JwtVerifier::builder("https://auth.example.com", &resource)
//!     .jwks(&json!({ "keys": [jwk] }))
//!     .clock(clock.clone())
//!     .build()?;
//!
//! // An RFC 9068 access token.
//! let mut header = Header::new(Algorithm::ES256);
//! header.typ = Some("at+jwt".into());
//! header.kid = Some("key-1".into());
//! let claims = json!({
//!     "iss": "https://auth.example.com",
//!     "aud": "https://mcp.example.com/mcp",
//!     "sub": "alice",
//!     "client_id": "my-client",
//!     "scope": "mcp:tools files:read",
//!     "exp": 1_700_000_300,
//! });
//! let token = jsonwebtoken::encode(&header, &claims, &signing_key)?;
//!
//! let info = verifier.verify(&token).await?;
//! assert_eq!(info.subject(), Some("alice"));
//! assert_eq!(info.client_id(), Some("my-client"));
//! assert!(info.has_scope("mcp:tools") && info.has_scope("files:read"));
//!
//! // Ten minutes later (past `exp` and the 60 s leeway) the same token is refused.
//! clock.advance(Duration::from_secs(600));
//! let err = verifier.verify(&token).await.unwrap_err();
//! assert_eq!(err.kind(), VerifyErrorKind::Expired);
//! # Ok(())
//! # }
//! ```

#[cfg(doc)]
use mcp_auth_core::{Clock, ResourceId};

#[cfg(doc)]
use crate::{
    AuthInfo, JwsAlgorithm, JwtVerifier, JwtVerifierBuilder, ProtectedResource, TokenVerifier,
    VerifyErrorKind,
};

/// Emits a tracing event when the `tracing` feature is on; nothing otherwise.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "mcp_auth_resource::jwt", $($arg)+);
    }};
}

pub(crate) mod builder;
mod claims;
pub(crate) mod verifier;

#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use mcp_auth_jwt::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REFRESH, DEFAULT_MIN_REFRESH, DEFAULT_REFRESH,
    DEFAULT_TIMEOUT, DEFAULT_UNKNOWN_KID_COOLDOWN,
};
pub use mcp_auth_jwt::{MAX_JWKS_BYTES, MAX_KEYS, MAX_TOKEN_BYTES};

pub use self::builder::{DEFAULT_LEEWAY, MAX_LEEWAY, MIN_HMAC_SECRET_BYTES};
