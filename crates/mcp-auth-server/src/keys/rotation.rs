//! Rotation and reconciliation with the store: loading, the first key, the key lease,
//! retirement (rules 3 to 6 of the [module docs](super)).

use std::time::Duration;

use super::crypto::Key;
use super::error::KeyError;
use super::policy::KeyPolicy;
use crate::store::{Store, StoredKey};

/// When a key created at `now` starts signing.
pub(super) fn activation(policy: &KeyPolicy, now: u64) -> u64 {
    now.saturating_add(policy.publish_ahead.as_secs())
}

/// Whether `maintain` should create a key: the signing key is too old or of another algorithm
/// than the policy's, and no key is waiting to take over.
pub(super) fn rotation_due(policy: &KeyPolicy, keys: &[Key], now: u64) -> bool {
    let Some(active) = keys.iter().rev().find(|k| k.signs_at(now)) else {
        return false;
    };
    let pending = keys.iter().any(|k| k.activates_at > now && k.usable(now));
    let too_old = policy
        .rotate_after
        .is_some_and(|age| now.saturating_sub(active.created_at) >= age.as_secs());
    !pending && (too_old || active.material.alg != policy.algorithm)
}

/// Whether a key we just created should give way to one another server created concurrently:
/// a usable key that sorts after ours. Every server makes the same choice, so they converge on
/// the newest key.
pub(super) fn yields(ours: &Key, keys: &[Key], now: u64) -> bool {
    keys.iter()
        .any(|k| k.material.kid != ours.material.kid && k.usable(now) && k.order() > ours.order())
}

/// Re-read the keys from the store (the truth), reusing parsed keys from `known`, and make sure
/// at least one is usable: write back a usable key of ours the store lost, or create a first key
/// that signs at once.
pub(super) async fn load(
    store: &dyn Store,
    policy: &KeyPolicy,
    now: u64,
    known: &[Key],
) -> Result<Vec<Key>, KeyError> {
    let listed = store
        .list_keys()
        .await
        .map_err(KeyError::store("listing the keys failed"))?;
    let mut keys = parse_all(&listed, known);
    if keys.iter().any(|k| k.usable(now)) {
        return Ok(keys);
    }

    let lost: Vec<&Key> = known
        .iter()
        .filter(|k| k.usable(now) && !keys.iter().any(|s| s.material.kid == k.material.kid))
        .collect();
    if !lost.is_empty() {
        for key in lost {
            event!(warn, kid = %key.material.kid, "the store lost a usable signing key; writing it back");
            store
                .put_key(key.to_stored())
                .await
                .map_err(KeyError::store("storing a key failed"))?;
            keys.push(key.clone());
        }
        return Ok(keys);
    }

    // No key at all (a new store): one replica creates the first key while the others wait for
    // it, so that replicas starting together sign with one key.
    let lease = match KeyLease::take(store, now).await? {
        Some(lease) => {
            let listed = store
                .list_keys()
                .await
                .map_err(KeyError::store("listing the keys failed"))?;
            let theirs = parse_all(&listed, known);
            if theirs.iter().any(|k| k.usable(now)) {
                lease.release(store).await;
                return Ok(theirs);
            }
            Some(lease)
        }
        None => {
            if let Some(theirs) = wait_for_first_key(store, known, now).await? {
                return Ok(theirs);
            }
            // The holder never delivered (it died holding the lease): create one ourselves;
            // the rule below still converges on one key.
            None
        }
    };
    let ours = Key::generate(policy.algorithm, now, now).await;
    let stored = match &ours {
        Ok(ours) => store
            .put_key(ours.to_stored())
            .await
            .map_err(KeyError::store("storing a new key failed")),
        Err(_) => Ok(()),
    };
    if let Some(lease) = lease {
        lease.release(store).await;
    }
    let ours = ours?;
    stored?;
    let listed = store
        .list_keys()
        .await
        .map_err(KeyError::store("listing the keys failed"))?;
    let mut known = keys;
    known.push(ours.clone());
    let mut keys = parse_all(&listed, &known);
    if yields(&ours, &keys, now) {
        // Another server created a first key at the same moment: use its (newer) one.
        store
            .delete_key(&ours.material.kid)
            .await
            .map_err(KeyError::store("deleting a superseded key failed"))?;
        keys.retain(|k| k.material.kid != ours.material.kid);
        event!(debug, kid = %ours.material.kid, "first key dropped in favour of a concurrent one");
    } else if !keys.iter().any(|k| k.material.kid == ours.material.kid) {
        return Err(KeyError::new(
            "the store did not return the key just written",
        ));
    } else {
        event!(info, kid = %ours.material.kid, alg = %ours.material.alg, "first signing key created");
    }
    Ok(keys)
}

/// The store's lease on key creation (see [`Store::try_lease`]): held while one replica
/// creates the first key or rotates, so that replicas doing so at the same instant make one key.
pub(super) struct KeyLease {
    holder: String,
}

/// The lease's name, and how long a holder may take before another replica takes over.
const KEY_LEASE: &str = "signing-keys";
const KEY_LEASE_SECONDS: u64 = 30;
/// How long a replica waits for another one's first key, and how often it looks.
const FIRST_KEY_WAIT: Duration = Duration::from_secs(10);
const FIRST_KEY_POLL: Duration = Duration::from_millis(100);

impl KeyLease {
    /// Take the lease, or `None` when another replica holds it.
    pub(super) async fn take(store: &dyn Store, now: u64) -> Result<Option<Self>, KeyError> {
        let holder = crate::random::random_id()
            .map_err(|_| KeyError::new("the system random number generator failed"))?;
        let granted = store
            .try_lease(
                KEY_LEASE,
                &holder,
                now.saturating_add(KEY_LEASE_SECONDS),
                now,
            )
            .await
            .map_err(KeyError::store("taking the key lease failed"))?;
        Ok(granted.then_some(Self { holder }))
    }

    /// Give the lease back (a failure only delays the others until it ends).
    pub(super) async fn release(self, store: &dyn Store) {
        if let Err(_error) = store.release_lease(KEY_LEASE, &self.holder).await {
            event!(warn, error = %_error, "releasing the key lease failed");
        }
    }
}

/// Wait (bounded) for the replica holding the key lease to store a first key.
async fn wait_for_first_key(
    store: &dyn Store,
    known: &[Key],
    now: u64,
) -> Result<Option<Vec<Key>>, KeyError> {
    let deadline = tokio::time::Instant::now() + FIRST_KEY_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(FIRST_KEY_POLL).await;
        let listed = store
            .list_keys()
            .await
            .map_err(KeyError::store("listing the keys failed"))?;
        let theirs = parse_all(&listed, known);
        if theirs.iter().any(|k| k.usable(now)) {
            event!(debug, "adopted the first key another server created");
            return Ok(Some(theirs));
        }
    }
    Ok(None)
}

/// Parse stored keys, skipping (and logging) those that do not parse and repeated `kid`s.
///
/// Skipped keys are logged at `warn` on the first load (`known` empty), at `debug` on the
/// re-reads of every `maintain`, so that one bad record does not flood the log.
fn parse_all(listed: &[StoredKey], known: &[Key]) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::with_capacity(listed.len());
    for stored in listed {
        let _skipped = if keys.iter().any(|k| k.material.kid == stored.kid) {
            KeyError::new("repeated kid")
        } else {
            match Key::from_stored(stored, known) {
                Ok(key) => {
                    keys.push(key);
                    continue;
                }
                Err(error) => error,
            }
        };
        #[cfg(feature = "tracing")]
        if known.is_empty() {
            event!(warn, kid = %stored.kid, alg = %stored.alg, error = %_skipped, "stored signing key skipped");
        } else {
            event!(debug, kid = %stored.kid, alg = %stored.alg, error = %_skipped, "stored signing key skipped");
        }
    }
    keys
}

/// Mark keys whose successor has activated as retired at that moment, in the store and in
/// `keys`. Returns the keys in signing order.
pub(super) async fn retire_superseded(
    store: &dyn Store,
    mut keys: Vec<Key>,
    now: u64,
) -> Result<Vec<Key>, KeyError> {
    keys.sort_by(|a, b| a.order().cmp(&b.order()));
    for i in 1..keys.len() {
        let successor_activates = keys[i].activates_at;
        let key = &mut keys[i - 1];
        if key.retired_at.is_none() && successor_activates <= now {
            key.retired_at = Some(successor_activates);
            store
                .put_key(key.to_stored())
                .await
                .map_err(KeyError::store("storing a key failed"))?;
            event!(info, kid = %key.material.kid, retired_at = successor_activates, "signing key retired");
        }
    }
    Ok(keys)
}
