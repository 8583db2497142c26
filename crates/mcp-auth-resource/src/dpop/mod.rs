//! DPoP-bound access tokens at the resource server (RFC 9449 §7): the configuration that turns
//! it on in [`BearerAuthLayer::dpop`](crate::BearerAuthLayer::dpop).
//!
//! With DPoP on, the bearer layer accepts `Authorization: DPoP <token>` with one `DPoP` proof
//! header beside `Authorization: Bearer <token>`:
//!
//! - A token bound to a key (`cnf.jkt`, from a JWT or an introspection answer) must come with the
//!   `DPoP` scheme and a valid proof signed by that key: `htm`/`htu` of this request (`htu` is the
//!   resource's origin and the request path), `iat` in the window, `ath` = the token's hash, `jti`
//!   not seen before. Presented as `Bearer`, it is refused (`invalid_token`, §7.2).
//! - A token without `cnf` is a bearer token: with the `DPoP` scheme it is refused; with
//!   `Bearer` it is accepted unless [`require_dpop`](DpopConfig::require_dpop) is set.
//! - The verified-token cache still answers for the token; the proof is checked on every request.
//! - Challenges: `WWW-Authenticate: Bearer …` and `WWW-Authenticate: DPoP algs="…", …` side by
//!   side; an error about a DPoP request (or a DPoP binding) goes in the `DPoP` challenge
//!   (`invalid_dpop_proof`, `use_dpop_nonce`, `invalid_token`).
//! - With [`nonces`](DpopConfig::nonces), a proof must carry a recent server nonce: one without
//!   gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header (§9). Every 401 carries a fresh nonce.
//!
//! Publish the same settings in the metadata with
//! [`ProtectedResourceBuilder::dpop_signing_alg_values_supported`](crate::ProtectedResourceBuilder::dpop_signing_alg_values_supported)
//! and [`dpop_bound_access_tokens_required`](crate::ProtectedResourceBuilder::dpop_bound_access_tokens_required).
//!
//! Without the `dpop` feature, the `DPoP` scheme is an unsupported scheme and a DPoP-bound token
//! is always refused.

pub(crate) mod config;

pub use mcp_auth_jwt::dpop::{
    NonceCheck, ProofCheck, VerifiedProof, access_token_hash, jwk_thumbprint,
};

#[cfg(doc)]
use crate::{DpopConfig, DpopNonces, DpopVerifier};
