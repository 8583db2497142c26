//! How the upstream learns who the caller is: [`Identity`]. The client's token is never
//! forwarded; the gateway states the caller's identity in its own words.
//!
//! - [`Identity::Headers`]: `X-MCP-Subject`, `X-MCP-Client-Id`, `X-MCP-Scopes` (space delimited).
//!   Only for an upstream that nothing but the gateway can reach (loopback, unix socket):
//!   anyone who can reach the upstream can forge them. Values that are not visible ASCII are
//!   percent-encoded (UTF-8).
//! - [`Identity::Jwt`]: `Authorization: Bearer <JWT>`, an RFC 9068 access token (`typ: at+jwt`)
//!   signed by the gateway with a [`KeySet`] for the upstream's own audience, with `iss` (the
//!   gateway), `aud`, `sub`, `client_id`, `scope`, `iat`, `exp` (short: a minute by default) and
//!   `jti`. The upstream checks it against the keys at [`JWKS_PATH`]. A token is reused for the
//!   same caller until half its lifetime has passed, so signing costs nothing per request.
//!
//! The gateway always removes these headers and `Authorization` from the client's request first,
//! so a client cannot speak for someone else.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{HeaderMap, HeaderName, HeaderValue, header};
use mcp_auth_core::Clock;
use mcp_auth_resource::AuthInfo;
use mcp_auth_server::keys::KeySet;
use serde_json::json;

/// Where the gateway publishes the public keys of its identity JWTs.
pub const JWKS_PATH: &str = "/.well-known/mcp-gateway/jwks.json";

/// The caller's subject (the token's `sub`).
pub const SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-mcp-subject");
/// The caller's client id (the token's `client_id`).
pub const CLIENT_ID_HEADER: HeaderName = HeaderName::from_static("x-mcp-client-id");
/// The caller's scopes, space delimited.
pub const SCOPES_HEADER: HeaderName = HeaderName::from_static("x-mcp-scopes");

/// The most cached identity tokens; a full cache starts over.
const MAX_CACHED: usize = 10_000;

/// How the upstream learns who calls.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Identity {
    /// Nothing is added.
    None,
    /// Plain headers (loopback or unix-socket upstreams only; the gateway checks that when it
    /// is built from a [`Config`](crate::Config)).
    Headers,
    /// A gateway-signed JWT for the upstream's audience.
    Jwt(JwtIdentity),
}

impl Identity {
    /// Removes what a client may not send upstream (`Authorization` and the identity headers),
    /// then adds the identity of `caller`.
    pub fn apply(&self, headers: &mut HeaderMap, caller: Option<&AuthInfo>) {
        headers.remove(header::AUTHORIZATION);
        headers.remove(SUBJECT_HEADER);
        headers.remove(CLIENT_ID_HEADER);
        headers.remove(SCOPES_HEADER);
        let Some(caller) = caller else { return };
        match self {
            Self::None => {}
            Self::Headers => {
                if let Some(sub) = caller.subject() {
                    headers.insert(SUBJECT_HEADER, header_value(sub));
                }
                if let Some(client_id) = caller.client_id() {
                    headers.insert(CLIENT_ID_HEADER, header_value(client_id));
                }
                headers.insert(SCOPES_HEADER, header_value(&caller.scopes().to_string()));
            }
            Self::Jwt(jwt) => {
                if let Some(token) = jwt.token_for(caller) {
                    let mut value = String::with_capacity(token.len() + 7);
                    value.push_str("Bearer ");
                    value.push_str(&token);
                    if let Ok(mut value) = HeaderValue::from_str(&value) {
                        value.set_sensitive(true);
                        headers.insert(header::AUTHORIZATION, value);
                    }
                }
            }
        }
    }
}

/// `value` as a header value; percent-encoded UTF-8 when it holds anything but visible ASCII
/// and spaces (or a `%`).
fn header_value(value: &str) -> HeaderValue {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'%')
        && let Ok(v) = HeaderValue::from_str(value)
    {
        return v;
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signer of identity JWTs. Cloning is cheap.
#[derive(Clone)]
pub struct JwtIdentity(Arc<JwtInner>);

/// A caller, as far as its identity token goes: (sub, client_id, scope).
type CallerKey = (String, String, String);

struct JwtInner {
    keys: KeySet,
    issuer: String,
    audience: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// (sub, client_id, scope) → (token, exp).
    cache: Mutex<HashMap<CallerKey, (Arc<str>, u64)>>,
}

impl fmt::Debug for JwtIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIdentity")
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .field("ttl", &self.0.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtIdentity {
    /// Tokens signed with `keys`, naming `issuer` and `audience`, valid for `ttl` (at least a
    /// second).
    pub fn new(
        keys: KeySet,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self(Arc::new(JwtInner {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            ttl: ttl.max(Duration::from_secs(1)),
            clock,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// The public keys (`{"keys":[...]}`), served at [`JWKS_PATH`].
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.0.keys.jwks_json()
    }

    /// A token for `caller`, from the cache while more than half its lifetime is left; `None`
    /// when signing failed (logged).
    pub fn token_for(&self, caller: &AuthInfo) -> Option<Arc<str>> {
        let inner = &self.0;
        let now = inner.clock.unix_seconds();
        let ttl = inner.ttl.as_secs();
        let key = (
            caller.subject().unwrap_or_default().to_owned(),
            caller.client_id().unwrap_or_default().to_owned(),
            caller.scopes().to_string(),
        );
        if let Ok(cache) = inner.cache.lock()
            && let Some((token, exp)) = cache.get(&key)
            && now + ttl / 2 < *exp
        {
            return Some(Arc::clone(token));
        }
        let mut jti = [0u8; 16];
        if getrandom::fill(&mut jti).is_err() {
            tracing::error!("identity token: the random source failed");
            return None;
        }
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let exp = now + ttl;
        let mut claims = json!({
            "iss": inner.issuer,
            "aud": inner.audience,
            "iat": now,
            "exp": exp,
            "jti": jti,
            "scope": key.2,
        });
        if let Some(sub) = caller.subject() {
            claims["sub"] = json!(sub);
        }
        if let Some(client_id) = caller.client_id() {
            claims["client_id"] = json!(client_id);
        }
        let token: Arc<str> = match inner.keys.sign("at+jwt", &claims, now) {
            Ok(token) => token.into(),
            Err(error) => {
                tracing::error!(%error, "identity token: signing failed");
                return None;
            }
        };
        if let Ok(mut cache) = inner.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key, (Arc::clone(&token), exp));
        }
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_percent_encoded_when_they_must_be() {
        assert_eq!(header_value("alice"), "alice");
        assert_eq!(header_value("mcp:tools notes:read"), "mcp:tools notes:read");
        assert_eq!(header_value("jörg"), "j%C3%B6rg");
        assert_eq!(header_value("a%b"), "a%25b");
    }

    #[test]
    fn client_headers_are_removed_even_without_a_caller() {
        let mut headers = HeaderMap::new();
        headers.insert(SUBJECT_HEADER, HeaderValue::from_static("root"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        Identity::Headers.apply(&mut headers, None);
        assert!(headers.is_empty());
        let caller = AuthInfo::builder()
            .subject("alice")
            .client_id("c1")
            .scopes("mcp:tools".parse().unwrap())
            .build();
        Identity::Headers.apply(&mut headers, Some(&caller));
        assert_eq!(headers[SUBJECT_HEADER], "alice");
        assert_eq!(headers[CLIENT_ID_HEADER], "c1");
        assert_eq!(headers[SCOPES_HEADER], "mcp:tools");
    }
}
