//! [`Revocations`]: what this server revoked, for resource servers in the same process.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use mcp_auth_core::revocation::RevocationList;
use serde_json::{Map, Value};

use crate::store::Revoked;

/// The access tokens and grants this authorization server revoked, kept in memory so that a
/// resource server in the same process refuses them at once instead of at their `exp`.
///
/// Every revocation the server makes lands here as it happens: `/revoke` of an access token (by
/// `jti`) or a refresh token (its whole grant, by the tokens' `sid`), a replayed authorization
/// code, a reused refresh token. The server loads the store's still-relevant revocations when it
/// is built, so a restart forgets nothing. Entries go once no token they cover can still be
/// unexpired ([`AuthorizationServer::maintain`](crate::AuthorizationServer::maintain)).
///
/// It implements [`RevocationList`]: wrap the resource server's verifier in
/// `mcp_auth_resource::Revocable` with
/// [`AuthorizationServer::revocations`](crate::AuthorizationServer::revocations). Only tokens whose
/// `iss` is this server are ever reported revoked. Cheap to clone (one `Arc`); a check with
/// nothing revoked is one atomic load.
///
/// Several replicas sharing a store: each reads the store's revocations every
/// [`revocation_poll_interval`](crate::AuthorizationServerBuilder::revocation_poll_interval)
/// (500 ms by default), so a token revoked on one replica is refused by the resource servers
/// of every replica within that interval plus one store round trip (at most one second with
/// the default). Revocations this process makes apply at once.
///
/// # Example
///
/// ```
/// use mcp_auth_core::revocation::RevocationList;
/// use mcp_auth_server::{AuthorizationServer, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = AuthorizationServer::builder("https://mcp.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .store(MemoryStore::new())
///     .build()
///     .await?;
/// let revocations = server.revocations();
/// let claims = serde_json::json!({"iss": "https://mcp.example.com", "jti": "abc", "sid": "g1"});
/// assert!(!revocations.is_revoked(claims.as_object().unwrap()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    /// Whether either map holds anything (the common case is nothing revoked).
    any: AtomicBool,
    maps: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    /// `jti` → until when to refuse it (the token's `exp`).
    tokens: HashMap<String, u64>,
    /// grant id → until when to refuse its tokens (revocation + the longest token lifetime).
    grants: HashMap<String, u64>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let maps = self
            .inner
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Revocations")
            .field("issuer", &self.inner.issuer)
            .field("access_tokens", &maps.tokens.len())
            .field("grants", &maps.grants.len())
            .finish()
    }
}

impl Revocations {
    /// An empty list for tokens issued by `issuer`.
    pub(crate) fn new(issuer: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                any: AtomicBool::new(false),
                maps: RwLock::new(Maps::default()),
            }),
        }
    }

    /// Refuse the access token `jti` until `expires_at`.
    pub(crate) fn revoke_access_token(&self, jti: &str, expires_at: u64) {
        let mut maps = self
            .inner
            .maps
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let until = maps.tokens.entry(jti.to_owned()).or_insert(expires_at);
        *until = (*until).max(expires_at);
        self.inner.any.store(true, Ordering::Release);
    }

    /// Refuse every access token of `grant_id` until `until`.
    pub(crate) fn revoke_grant(&self, grant_id: &str, until: u64) {
        let mut maps = self
            .inner
            .maps
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = maps.grants.entry(grant_id.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
        self.inner.any.store(true, Ordering::Release);
    }

    /// Load what the store still holds; `token_lifetime` bounds how long a revoked grant's
    /// tokens can live.
    pub(crate) fn load(&self, revoked: Vec<Revoked>, token_lifetime: u64) {
        for entry in revoked {
            match entry {
                Revoked::AccessToken { jti, expires_at } => {
                    self.revoke_access_token(&jti, expires_at);
                }
                Revoked::Grant {
                    grant_id,
                    revoked_at,
                } => self.revoke_grant(&grant_id, revoked_at.saturating_add(token_lifetime)),
            }
        }
    }

    /// Forget what can no longer match an unexpired token.
    pub(crate) fn purge(&self, now: u64) {
        let mut maps = self
            .inner
            .maps
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        maps.tokens.retain(|_, until| *until > now);
        maps.grants.retain(|_, until| *until > now);
        if maps.tokens.is_empty() && maps.grants.is_empty() {
            self.inner.any.store(false, Ordering::Release);
        }
    }

    /// How many access tokens and grants are on the list.
    #[must_use]
    pub fn len(&self) -> usize {
        let maps = self
            .inner
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        maps.tokens.len() + maps.grants.len()
    }

    /// Whether nothing is on the list.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationList for Revocations {
    fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
        if !self.inner.any.load(Ordering::Acquire) {
            return false;
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.inner.issuer.as_str()) {
            return false;
        }
        let maps = self
            .inner
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let listed = |name: &str, map: &HashMap<String, u64>| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .is_some_and(|id| map.contains_key(id))
        };
        listed("jti", &maps.tokens) || listed("sid", &maps.grants)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn tokens_and_grants_are_refused_until_their_time_then_forgotten() {
        let r = Revocations::new("https://as.example");
        let token = claims(json!({"iss": "https://as.example", "jti": "t1", "sid": "g1"}));
        let sibling = claims(json!({"iss": "https://as.example", "jti": "t2", "sid": "g1"}));
        let other = claims(json!({"iss": "https://as.example", "jti": "t3", "sid": "g2"}));
        assert!(!r.is_revoked(&token));

        r.revoke_access_token("t1", 100);
        assert!(r.is_revoked(&token));
        assert!(!r.is_revoked(&sibling), "one token, not its grant");

        r.revoke_grant("g1", 200);
        assert!(r.is_revoked(&sibling));
        assert!(!r.is_revoked(&other));

        r.purge(150);
        assert_eq!(r.len(), 1);
        assert!(r.is_revoked(&token), "still covered by its grant");
        r.purge(200);
        assert!(r.is_empty());
        assert!(!r.is_revoked(&token));
    }

    #[test]
    fn another_issuers_tokens_are_never_revoked_here() {
        let r = Revocations::new("https://as.example");
        r.revoke_access_token("t1", 100);
        assert!(!r.is_revoked(&claims(
            json!({"iss": "https://other.example", "jti": "t1"})
        )));
        assert!(!r.is_revoked(&claims(json!({"jti": "t1"}))));
    }

    #[test]
    fn loading_uses_the_token_lifetime_for_grants() {
        let r = Revocations::new("https://as.example");
        r.load(
            vec![
                Revoked::AccessToken {
                    jti: "t1".into(),
                    expires_at: 500,
                },
                Revoked::Grant {
                    grant_id: "g1".into(),
                    revoked_at: 100,
                },
            ],
            900,
        );
        r.purge(999);
        assert!(r.is_revoked(&claims(json!({"iss": "https://as.example", "sid": "g1"}))));
        assert!(!r.is_revoked(&claims(json!({"iss": "https://as.example", "jti": "t1"}))));
    }
}
