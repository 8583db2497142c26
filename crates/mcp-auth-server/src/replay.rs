//! The `jti` replay cache of JWT assertions (client assertions, RFC 7523 §3 point 7; JWT bearer
//! grants): each identifier is accepted once until the assertion expires.
//!
//! In memory, per process, bounded in number and in time: an entry lives until the assertion's
//! `exp` (which the callers bound), and a full table first drops expired entries, then refuses
//! new ones (failing closed: an assertion that cannot be remembered is not accepted). Replicas
//! behind a load balancer do not share it; see the crate's security notes.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Most identifiers remembered at once.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// What [`ReplayCache::first_use`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// First use: remembered until it expires.
    First,
    /// Seen before, not yet expired.
    Replayed,
    /// The table is full of live entries.
    Full,
}

/// Seen assertion identifiers, keyed by SHA-256 of (kind, issuer, `jti`).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    max: usize,
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(MAX_ENTRIES)
    }
}

impl ReplayCache {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Record the use of `jti` from `issuer` (in the `kind` namespace), valid until
    /// `expires_at`, at `now`.
    pub(crate) fn first_use(
        &self,
        kind: &str,
        issuer: &str,
        jti: &str,
        expires_at: u64,
        now: u64,
    ) -> Use {
        let mut hasher = Sha256::new();
        for part in [kind, issuer, jti] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let key: [u8; 32] = hasher.finalize().into();
        let Ok(mut seen) = self.seen.lock() else {
            return Use::Full;
        };
        if let Some(until) = seen.get(&key)
            && now < *until
        {
            return Use::Replayed;
        }
        if seen.len() >= self.max {
            seen.retain(|_, until| now < *until);
            if seen.len() >= self.max {
                return Use::Full;
            }
        }
        seen.insert(key, expires_at.max(now.saturating_add(1)));
        Use::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identifier_is_used_once_until_it_expires() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.first_use("c", "a", "j1", 100, 10), Use::First);
        assert_eq!(cache.first_use("c", "a", "j1", 100, 50), Use::Replayed);
        // Another issuer or kind is another identifier.
        assert_eq!(cache.first_use("c", "b", "j1", 100, 50), Use::First);
        assert_eq!(cache.first_use("g", "a", "j1", 100, 50), Use::First);
        // After expiry the assertion itself is refused by its `exp`; the entry may go.
        assert_eq!(cache.first_use("c", "a", "j1", 200, 100), Use::First);
    }

    #[test]
    fn a_full_table_drops_expired_entries_then_fails_closed() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.first_use("c", "a", "1", 20, 10), Use::First);
        assert_eq!(cache.first_use("c", "a", "2", 100, 10), Use::First);
        assert_eq!(cache.first_use("c", "a", "3", 100, 10), Use::Full);
        // "1" expired at 20: room again.
        assert_eq!(cache.first_use("c", "a", "3", 100, 30), Use::First);
        assert_eq!(cache.first_use("c", "a", "4", 100, 30), Use::Full);
    }
}
