//! The `jti` replay check of JWT assertions (client assertions, RFC 7523 §3 point 7; JWT bearer
//! grants): each identifier is accepted once until the assertion expires.
//!
//! The identifiers live in the [`Store`] as rate-limit windows ([`Store::count_event`]) that
//! end when the assertion expires: the first use counts 1, a replay more, atomically and on
//! every replica sharing the store. Keys are hashed (kind, issuer, `jti`). A store that cannot
//! remember an identifier (full, or down) fails closed: the assertion is not accepted now.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::store::{Store, TokenHash};

/// What [`ReplayCheck::first_use`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// First use: remembered until it expires.
    First,
    /// Seen before, not yet expired.
    Replayed,
    /// The store could not remember it (full, or unavailable).
    Full,
}

/// Seen assertion identifiers, in the store.
pub(crate) struct ReplayCheck {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for ReplayCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCheck").finish_non_exhaustive()
    }
}

impl ReplayCheck {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Record the use of `jti` from `issuer` (in the `kind` namespace), valid until
    /// `expires_at`, at `now`.
    pub(crate) async fn first_use(
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
        let digest = TokenHash::from_bytes(hasher.finalize().into());
        let key = format!("jti:{}", digest.to_hex());
        let window = expires_at.saturating_sub(now).max(1);
        match self.store.count_event(&key, window, now).await {
            Ok(w) if w.count <= 1 => Use::First,
            Ok(_) => Use::Replayed,
            Err(_) => Use::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn an_identifier_is_used_once_until_it_expires() {
        let check = ReplayCheck::new(Arc::new(MemoryStore::new()));
        assert_eq!(check.first_use("c", "a", "j1", 100, 10).await, Use::First);
        assert_eq!(
            check.first_use("c", "a", "j1", 100, 50).await,
            Use::Replayed
        );
        // Another issuer or kind is another identifier.
        assert_eq!(check.first_use("c", "b", "j1", 100, 50).await, Use::First);
        assert_eq!(check.first_use("g", "a", "j1", 100, 50).await, Use::First);
        // After expiry the assertion itself is refused by its `exp`; the entry may go.
        assert_eq!(check.first_use("c", "a", "j1", 200, 100).await, Use::First);
    }

    #[tokio::test]
    async fn two_replicas_sharing_a_store_accept_an_identifier_once() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, b) = (ReplayCheck::new(store.clone()), ReplayCheck::new(store));
        assert_eq!(a.first_use("c", "a", "j", 100, 10).await, Use::First);
        assert_eq!(b.first_use("c", "a", "j", 100, 11).await, Use::Replayed);
    }
}
