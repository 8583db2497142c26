//! What the two uses of JWT assertions share (RFC 7523): client assertions (`private_key_jwt`,
//! [`crate::client_auth`]) and authorization grants (the JWT bearer grant,
//! [`crate::jwt_bearer`]).
//!
//! Signatures are checked by `mcp-auth-jwt`'s [`JwsVerifier`] (asymmetric algorithms only:
//! never `none`, never HMAC), with keys from a fixed JWK Set or its JWK Set cache; the claims
//! here:
//! 1. `iss` is the expected issuer, `sub` a non-empty string;
//! 2. `aud` (a string or an array) names this authorization server: its issuer identifier (with
//!    or without a trailing slash) or its token endpoint;
//! 3. `exp` is present, not past (60 s leeway), and at most the allowed lifetime ahead; `nbf`
//!    and `iat`, when present, are not in the future (60 s leeway);
//! 4. `jti`, when required, is a non-empty string, accepted once until `exp`
//!    ([`crate::replay`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_core::Clock;
use mcp_auth_jwt::{
    HeaderPolicy, JwksLocation, JwsAlgorithm, JwsVerifier, KeySet, KeySource, RemoteJwks,
    RemoteTiming,
};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::store::ClientRecord;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub(crate) const LEEWAY: u64 = 60;
/// Longest time ahead a client assertion's `exp` may be (it is single use; clients make them
/// for one request).
pub(crate) const CLIENT_ASSERTION_MAX_LIFETIME: u64 = 10 * 60;
/// Most clients' `jwks_uri` key sets cached at once.
const MAX_CLIENT_KEY_SETS: usize = 1_000;
/// The explicit type of a client assertion (draft-ietf-oauth-rfc7523bis); `JWT` and no `typ`
/// pass too, as most clients send.
const CLIENT_ASSERTION_TYP: &str = "client-authentication+jwt";

/// The algorithms assertions may be signed with (asymmetric only), as advertised in
/// `token_endpoint_auth_signing_alg_values_supported`.
pub(crate) fn algorithm_names() -> Vec<String> {
    JwsAlgorithm::ASYMMETRIC
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}

/// The claims of a compact JWS, read without checking anything: only to find whose keys to
/// verify it with (the client or the issuer). Everything read here is checked again after the
/// signature.
pub(crate) fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    if token.len() > mcp_auth_jwt::MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_, Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A string claim.
pub(crate) fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// What the claims must satisfy.
pub(crate) struct Rules<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) max_lifetime: u64,
    pub(crate) require_jti: bool,
    pub(crate) now: u64,
}

/// The checked claims the caller needs.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) jti: Option<String>,
    pub(crate) exp: u64,
}

/// Rules 1 to 3, and the shape of rule 4 (the replay check is the caller's, last).
pub(crate) fn check_claims(
    config: &Config,
    claims: &Map<String, Value>,
    rules: &Rules<'_>,
) -> Result<Checked, &'static str> {
    if string(claims, "iss") != Some(rules.issuer) {
        return Err("the assertion's issuer is not the expected one");
    }
    if string(claims, "sub").is_none_or(str::is_empty) {
        return Err("the assertion has no subject");
    }
    let ours = |aud: &str| {
        aud == config.issuer
            || aud.strip_suffix('/') == Some(config.issuer.as_str())
            || aud == config.url("/token")
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => ours(aud),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    };
    if !audience_ok {
        return Err("the assertion's audience is not this authorization server");
    }
    let time = |name: &str| claims.get(name).map(|v| v.as_u64().ok_or(()));
    let exp = match time("exp") {
        Some(Ok(exp)) => exp,
        Some(Err(())) => return Err("the assertion's exp is malformed"),
        None => return Err("the assertion has no exp"),
    };
    if exp.saturating_add(LEEWAY) <= rules.now {
        return Err("the assertion has expired");
    }
    if exp > rules.now.saturating_add(rules.max_lifetime + LEEWAY) {
        return Err("the assertion's lifetime is too long");
    }
    for name in ["nbf", "iat"] {
        match time(name) {
            Some(Err(())) => return Err("the assertion's nbf or iat is malformed"),
            Some(Ok(t)) if t > rules.now.saturating_add(LEEWAY) => {
                return Err("the assertion is not valid yet");
            }
            _ => {}
        }
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= 256 => Some(jti.clone()),
        None if !rules.require_jti => None,
        _ => return Err("the assertion needs a jti of at most 256 characters"),
    };
    Ok(Checked {
        jti,
        exp: exp.max(rules.now),
    })
}

/// The keys of the clients that authenticate with `private_key_jwt`: a registered `jwks` is
/// used as is; a `jwks_uri` through one cached [`RemoteJwks`] per URL (the workspace's one JWK
/// Set cache: `Cache-Control` lifetimes, unknown-`kid` cool-down, stale keys through an outage).
/// The `jwks_uri` of a client that registered itself (open registration, a metadata document)
/// is fetched with the metadata-document fetcher's SSRF guards; an operator's client's with
/// the ordinary fetcher.
pub(crate) struct ClientKeys {
    clock: Arc<dyn Clock>,
    guard: crate::cimd::CimdFetcher,
    remote: Mutex<HashMap<(String, bool), JwsVerifier>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys").finish_non_exhaustive()
    }
}

fn client_policy() -> HeaderPolicy {
    HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), true).with_typ(CLIENT_ASSERTION_TYP)
}

/// The timing of the key sets of clients: no background refresh (there may be many).
fn client_timing() -> RemoteTiming {
    let mut timing = RemoteTiming::default();
    timing.background = false;
    timing
}

impl ClientKeys {
    pub(crate) fn new(clock: Arc<dyn Clock>, guard: crate::cimd::CimdFetcher) -> Self {
        Self {
            clock,
            guard,
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// The verifier for `client`'s assertions, or why there is none (safe to show).
    pub(crate) fn verifier(&self, client: &ClientRecord) -> Result<JwsVerifier, &'static str> {
        if let Some(jwks) = &client.metadata.jwks {
            let Some(doc) = jwks.as_object() else {
                return Err("the client's registered jwks is not a JWK Set");
            };
            let (set, _skipped) = KeySet::from_document(doc)
                .map_err(|_| "the client's registered jwks is not a JWK Set")?;
            if set.is_empty() {
                return Err("the client's registered jwks has no usable key");
            }
            return Ok(JwsVerifier::new(
                client_policy(),
                KeySource::Static(set),
                None,
            ));
        }
        let Some(uri) = &client.metadata.jwks_uri else {
            return Err("the client registered no keys (jwks or jwks_uri)");
        };
        let trusted = client.is_operator_registered();
        if !trusted && !url::Url::parse(uri).is_ok_and(|u| self.guard.allows_url(&u)) {
            return Err("the client's jwks_uri may not be fetched");
        }
        let key = (uri.clone(), trusted);
        let mut remote = self
            .remote
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(verifier) = remote.get(&key) {
            return Ok(verifier.clone());
        }
        let location = JwksLocation::JwksUri(uri.clone());
        let keys = if trusted {
            RemoteJwks::new(location, client_timing(), self.clock.clone())
        } else {
            RemoteJwks::with_http_client(
                location,
                client_timing(),
                self.clock.clone(),
                self.guard.guarded_http(),
            )
        }
        .map_err(|_| "the client's jwks_uri may not be fetched")?;
        let verifier = JwsVerifier::new(client_policy(), KeySource::Remote(keys), None);
        if remote.len() >= MAX_CLIENT_KEY_SETS {
            // Bounded: start over rather than grow (the key sets are fetched again on use).
            remote.clear();
        }
        remote.insert(key, verifier.clone());
        Ok(verifier)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn config() -> Config {
        crate::policy::tests::config(false)
    }

    #[test]
    fn claim_rules() {
        let config = config();
        let now = 1_000_000;
        let rules = Rules {
            issuer: "client-1",
            max_lifetime: 600,
            require_jti: true,
            now,
        };
        let good = json!({"iss": "client-1", "sub": "client-1", "aud": config.issuer, "exp": now + 60, "jti": "a"});
        assert!(check_claims(&config, &claims(good.clone()), &rules).is_ok());
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            claims(c)
        };
        let without = |k: &str| {
            let mut c = claims(good.clone());
            c.remove(k);
            c
        };
        let token_endpoint = config.url("/token");
        let slash = format!("{}/", config.issuer);
        for ok in [
            with("aud", json!(token_endpoint)),
            with("aud", json!(slash)),
            with("aud", json!(["https://x.example", config.issuer])),
            with("iat", json!(now + 30)),
        ] {
            assert!(check_claims(&config, &ok, &rules).is_ok(), "{ok:?}");
        }
        for bad in [
            with("iss", json!("client-2")),
            with("sub", json!("")),
            without("sub"),
            with("aud", json!("https://other.example.com")),
            with("aud", json!(["https://other.example.com"])),
            without("aud"),
            without("exp"),
            with("exp", json!("soon")),
            with("exp", json!(now - LEEWAY)),
            with("exp", json!(now + 600 + LEEWAY + 1)),
            with("nbf", json!(now + LEEWAY + 1)),
            with("iat", json!(now + LEEWAY + 1)),
            without("jti"),
            with("jti", json!("")),
            with("jti", json!(7)),
        ] {
            assert!(check_claims(&config, &bad, &rules).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unverified_claims_reads_the_payload_only() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"c"}"#);
        let token = format!("e30.{payload}.c2ln");
        assert_eq!(unverified_claims(&token).unwrap()["sub"], "c");
        assert!(unverified_claims("a.b").is_none());
        assert!(unverified_claims(&format!("e30.{payload}.x.y")).is_none());
        assert!(unverified_claims("e30.!!!.c2ln").is_none());
    }
}
