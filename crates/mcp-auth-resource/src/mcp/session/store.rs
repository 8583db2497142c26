//! The bounded session → owner map: capacity, idle TTL, least-recently-used eviction; and
//! [`Shared`], the settings and the store the layer, its clones and its services share.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use mcp_auth_core::Clock;

/// A SHA-256 digest: session ids and owners are stored hashed, so an entry has a fixed size
/// whatever the length of the id, the issuer or the subject.
pub(super) type Digest = [u8; 32];

/// The outcome of [`Store::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// The session is not bound (never seen, forgotten, expired or evicted).
    Unknown,
    /// The session is bound to this owner; its idle timer was refreshed.
    Allowed,
    /// The session is bound to another owner, or the request has none.
    Refused,
}

/// The outcome of [`Store::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bind {
    /// A new binding was recorded.
    New,
    /// The session was already bound to this owner; its idle timer was refreshed.
    Same,
    /// The session is bound to another owner; nothing changed.
    Conflict,
}

#[derive(Debug)]
struct Entry {
    owner: Digest,
    last_used: SystemTime,
    /// The sequence number of this entry's live slot in the recency queue.
    seq: u64,
}

/// Session → owner, with an idle TTL and a capacity.
///
/// Recency is a queue of `(seq, key)` with lazy deletion: a touch pushes a new slot and makes
/// the old one stale. Eviction pops from the front, skipping stale slots; the queue is compacted
/// when it grows past twice the map, so every operation is O(1) amortised. With one TTL for
/// all entries the least recently used entry is also the first to expire, so the front of the
/// queue serves both "expired first" and "then least recently used".
#[derive(Debug, Default)]
pub(super) struct Store {
    map: HashMap<Digest, Entry>,
    queue: VecDeque<(u64, Digest)>,
    next_seq: u64,
}

fn expired(last_used: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    // A clock that went backwards keeps entries alive rather than expiring everything.
    now.duration_since(last_used).is_ok_and(|idle| idle >= ttl)
}

impl Store {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether a request by `owner` (`None`: anonymous) may use session `key`. Refreshes the idle
    /// timer only when allowed; forgets the session when it has expired.
    pub(super) fn check(
        &mut self,
        key: &Digest,
        owner: Option<&Digest>,
        now: SystemTime,
        ttl: Duration,
    ) -> Check {
        let Some(entry) = self.map.get(key) else {
            return Check::Unknown;
        };
        if expired(entry.last_used, now, ttl) {
            self.map.remove(key);
            return Check::Unknown;
        }
        if owner == Some(&entry.owner) {
            self.touch(*key, now);
            Check::Allowed
        } else {
            Check::Refused
        }
    }

    /// Binds `key` to `owner` unless it is bound (and not expired) already.
    pub(super) fn bind(
        &mut self,
        key: Digest,
        owner: Digest,
        now: SystemTime,
        ttl: Duration,
        capacity: usize,
    ) -> Bind {
        if let Some(entry) = self.map.get(&key) {
            if !expired(entry.last_used, now, ttl) {
                if entry.owner != owner {
                    return Bind::Conflict;
                }
                self.touch(key, now);
                return Bind::Same;
            }
            self.map.remove(&key);
        }
        self.evict(now, ttl, capacity);
        let seq = self.next_seq();
        self.map.insert(
            key,
            Entry {
                owner,
                last_used: now,
                seq,
            },
        );
        self.push(seq, key);
        Bind::New
    }

    /// Forgets `key`. Its queue slot goes stale and is dropped later.
    pub(super) fn remove(&mut self, key: &Digest) -> bool {
        self.map.remove(key).is_some()
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn touch(&mut self, key: Digest, now: SystemTime) {
        let seq = self.next_seq();
        if let Some(entry) = self.map.get_mut(&key) {
            entry.last_used = now;
            entry.seq = seq;
            self.push(seq, key);
        }
    }

    fn push(&mut self, seq: u64, key: Digest) {
        self.queue.push_back((seq, key));
        if self.queue.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.queue
                .retain(|(seq, key)| map.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    fn is_live(&self, seq: u64, key: &Digest) -> bool {
        self.map.get(key).is_some_and(|e| e.seq == seq)
    }

    /// Drops expired entries from the front, then the least recently used until there is room
    /// for one more.
    fn evict(&mut self, now: SystemTime, ttl: Duration, capacity: usize) {
        while let Some(&(seq, key)) = self.queue.front() {
            if !self.is_live(seq, &key) {
                self.queue.pop_front();
            } else if self
                .map
                .get(&key)
                .is_some_and(|e| expired(e.last_used, now, ttl))
            {
                self.queue.pop_front();
                self.map.remove(&key);
            } else {
                break;
            }
        }
        while self.map.len() >= capacity {
            let Some((seq, key)) = self.queue.pop_front() else {
                break;
            };
            if self.is_live(seq, &key) {
                self.map.remove(&key);
            }
        }
    }
}

/// The settings and the store, shared by the layer, its clones and its services.
pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) store: Mutex<Store>,
}

#[derive(Clone)]
pub(super) struct Settings {
    pub(super) capacity: usize,
    pub(super) idle_ttl: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl Shared {
    /// Runs `f` on the store. The lock is never held across an `.await`; a poisoned lock is
    /// recovered (the store stays consistent between its methods).
    pub(super) fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut store)
    }

    pub(super) fn bound_sessions(&self) -> usize {
        self.with_store(|store| store.len())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("capacity", &self.settings.capacity)
            .field("idle_ttl", &self.settings.idle_ttl)
            .field("clock", &self.settings.clock)
            .field("bound_sessions", &self.bound_sessions())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn d(n: u8) -> Digest {
        [n; 32]
    }

    #[test]
    fn capacity_evicts_the_least_recently_used_not_the_oldest_binding() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        assert_eq!(store.bind(d(1), d(100), t, TTL, 2), Bind::New);
        assert_eq!(store.bind(d(2), d(100), t, TTL, 2), Bind::New);
        // Session 1 is used again, so session 2 is now the least recently used.
        assert_eq!(store.check(&d(1), Some(&d(100)), t, TTL), Check::Allowed);
        assert_eq!(store.bind(d(3), d(100), t, TTL, 2), Bind::New);
        assert_eq!(store.len(), 2);
        assert_eq!(store.check(&d(2), Some(&d(100)), t, TTL), Check::Unknown);
        assert_eq!(store.check(&d(1), Some(&d(100)), t, TTL), Check::Allowed);
    }

    #[test]
    fn the_recency_queue_stays_bounded_under_repeated_touches() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        store.bind(d(1), d(100), t, TTL, 10);
        for _ in 0..10_000 {
            store.check(&d(1), Some(&d(100)), t, TTL);
        }
        assert!(store.queue.len() <= 2 * store.map.len() + 65);
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        store.bind(d(1), d(100), t, TTL, 2);
        store.bind(d(2), d(100), t + TTL / 2, TTL, 2);
        // At t + TTL session 1 has expired; binding a third keeps session 2.
        store.bind(d(3), d(100), t + TTL, TTL, 2);
        assert_eq!(
            store.check(&d(2), Some(&d(100)), t + TTL, TTL),
            Check::Allowed
        );
        assert_eq!(store.len(), 2);
    }
}
