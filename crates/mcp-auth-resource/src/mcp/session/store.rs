//! The bounded session → owner map: capacity, idle TTL, least-recently-used eviction; and
//! [`Shared`], the settings and the store the layer, its clones and its services share.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use mcp_auth_core::Clock;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::ct::ct_eq;

/// A SHA-256 digest: owners are stored hashed, so an entry has a fixed size whatever the length
/// of the issuer or the subject.
pub(super) type Digest = [u8; 32];

/// Session ids of at most this many bytes are kept as they are; longer ones as their SHA-256.
const INLINE_ID: usize = 64;

/// [`SessionKey::len`] of a key that holds the SHA-256 of a longer id.
const DIGEST_KEY: u8 = u8::MAX;

/// A session id as the store keys it, of a fixed size whatever the id's length: the id itself
/// when it has at most [`INLINE_ID`] bytes (the usual UUID or 32 hex digits: no digest to
/// compute per request), else its SHA-256. Distinct ids always give distinct keys: the length
/// tells the two forms apart, and the unused bytes are zero.
///
/// Equality compares every byte in constant time; the store's map hashes keys with a per-store
/// random seed (foldhash), so neither the slot nor the comparison's timing tells a caller
/// anything about the ids it holds. `Debug` shows neither the id nor its digest.
#[derive(Clone, Copy)]
pub(super) struct SessionKey {
    /// The id's length (`0..=INLINE_ID`), or [`DIGEST_KEY`].
    len: u8,
    /// The id, or its digest, then zeros.
    bytes: [u8; INLINE_ID],
}

impl SessionKey {
    pub(super) fn of(id: &[u8]) -> Self {
        let mut bytes = [0; INLINE_ID];
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE_ID => {
                bytes[..id.len()].copy_from_slice(id);
                Self { len, bytes }
            }
            _ => {
                bytes[..32].copy_from_slice(&Sha256::digest(id));
                Self {
                    len: DIGEST_KEY,
                    bytes,
                }
            }
        }
    }
}

impl PartialEq for SessionKey {
    /// Every byte, in constant time ([`ct_eq`], the crate's one constant-time compare); the
    /// lengths too, with no early exit on either.
    fn eq(&self, other: &Self) -> bool {
        let same_len: bool = self.len.ct_eq(&other.len).into();
        same_len & ct_eq(&self.bytes, &other.bytes)
    }
}

impl Eq for SessionKey {}

impl Hash for SessionKey {
    /// The length and the id's bytes (all 32 of a digest), not the zeros after them: they follow
    /// from the length, so equal keys still hash alike, and a short id (a UUID) hashes faster.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let used = match self.len {
            DIGEST_KEY => 32,
            len => usize::from(len),
        };
        state.write_u8(self.len);
        state.write(&self.bytes[..used]);
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the id: it lets its holder into the session (with the owner's token).
        f.write_str("SessionKey(..)")
    }
}

/// The map's hasher: foldhash with a random seed per store.
type KeyHasher = foldhash::quality::RandomState;

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
    map: HashMap<SessionKey, Entry, KeyHasher>,
    queue: VecDeque<(u64, SessionKey)>,
    next_seq: u64,
}

fn expired(last_used: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    // `now - last_used >= ttl`, as one addition and a comparison. A clock that went backwards
    // keeps entries alive rather than expiring everything, and so does a deadline beyond what
    // `SystemTime` can hold.
    last_used
        .checked_add(ttl)
        .is_some_and(|deadline| now >= deadline)
}

impl Store {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether a request by `owner` (`None`: anonymous) may use session `key`. Refreshes the idle
    /// timer only when allowed; forgets the session when it has expired.
    pub(super) fn check(
        &mut self,
        key: &SessionKey,
        owner: Option<&Digest>,
        now: SystemTime,
        ttl: Duration,
    ) -> Check {
        let Some(entry) = self.map.get_mut(key) else {
            return Check::Unknown;
        };
        if expired(entry.last_used, now, ttl) {
            self.map.remove(key);
            return Check::Unknown;
        }
        if owner != Some(&entry.owner) {
            return Check::Refused;
        }
        if let Some(seq) = refresh(entry, &mut self.next_seq, now) {
            self.push(seq, *key);
        }
        Check::Allowed
    }

    /// Binds `key` to `owner` unless it is bound (and not expired) already.
    pub(super) fn bind(
        &mut self,
        key: SessionKey,
        owner: Digest,
        now: SystemTime,
        ttl: Duration,
        capacity: usize,
    ) -> Bind {
        if let Some(entry) = self.map.get_mut(&key) {
            if !expired(entry.last_used, now, ttl) {
                if entry.owner != owner {
                    return Bind::Conflict;
                }
                if let Some(seq) = refresh(entry, &mut self.next_seq, now) {
                    self.push(seq, key);
                }
                return Bind::Same;
            }
            self.map.remove(&key);
        }
        self.evict(now, ttl, capacity);
        let seq = next_seq(&mut self.next_seq);
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
    pub(super) fn remove(&mut self, key: &SessionKey) -> bool {
        self.map.remove(key).is_some()
    }

    fn push(&mut self, seq: u64, key: SessionKey) {
        self.queue.push_back((seq, key));
        if self.queue.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.queue
                .retain(|(seq, key)| map.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    fn is_live(&self, seq: u64, key: &SessionKey) -> bool {
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

fn next_seq(next: &mut u64) -> u64 {
    let seq = *next;
    *next = next.wrapping_add(1);
    seq
}

/// Refreshes `entry`'s idle timer. Returns the sequence number of the queue slot to push for it,
/// or `None` when its live slot already is the last one pushed (the queue's back: the order of
/// the queue holds as it is, and the slot needs no replacement).
fn refresh(entry: &mut Entry, next: &mut u64, now: SystemTime) -> Option<u64> {
    entry.last_used = now;
    if entry.seq.wrapping_add(1) == *next {
        return None;
    }
    entry.seq = next_seq(next);
    Some(entry.seq)
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

    fn k(n: u8) -> SessionKey {
        SessionKey::of(&[n; 32])
    }

    #[test]
    fn capacity_evicts_the_least_recently_used_not_the_oldest_binding() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        assert_eq!(store.bind(k(1), d(100), t, TTL, 2), Bind::New);
        assert_eq!(store.bind(k(2), d(100), t, TTL, 2), Bind::New);
        // Session 1 is used again, so session 2 is now the least recently used.
        assert_eq!(store.check(&k(1), Some(&d(100)), t, TTL), Check::Allowed);
        assert_eq!(store.bind(k(3), d(100), t, TTL, 2), Bind::New);
        assert_eq!(store.len(), 2);
        assert_eq!(store.check(&k(2), Some(&d(100)), t, TTL), Check::Unknown);
        assert_eq!(store.check(&k(1), Some(&d(100)), t, TTL), Check::Allowed);
    }

    #[test]
    fn the_recency_queue_stays_bounded_under_repeated_touches() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        store.bind(k(1), d(100), t, TTL, 10);
        for _ in 0..10_000 {
            store.check(&k(1), Some(&d(100)), t, TTL);
        }
        assert!(store.queue.len() <= 2 * store.map.len() + 65);
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        store.bind(k(1), d(100), t, TTL, 2);
        store.bind(k(2), d(100), t + TTL / 2, TTL, 2);
        // At t + TTL session 1 has expired; binding a third keeps session 2.
        store.bind(k(3), d(100), t + TTL, TTL, 2);
        assert_eq!(
            store.check(&k(2), Some(&d(100)), t + TTL, TTL),
            Check::Allowed
        );
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn distinct_session_ids_never_share_a_key() {
        let ids: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            b"a".to_vec(),
            vec![b'a'; INLINE_ID - 1],
            vec![b'a'; INLINE_ID],
            vec![b'a'; INLINE_ID + 1],
            vec![b'a'; 1000],
            [vec![b'a'; INLINE_ID], vec![0]].concat(),
            // A 32-byte id equal to the digest of a long one, padded: still another key.
            Sha256::digest([b'a'; 1000]).to_vec(),
        ];
        for (i, a) in ids.iter().enumerate() {
            for (j, b) in ids.iter().enumerate() {
                assert_eq!(SessionKey::of(a) == SessionKey::of(b), i == j, "{i} {j}");
            }
        }
        assert!(SessionKey::of(&[7; 200]) == SessionKey::of(&[7; 200]));
    }

    #[test]
    fn a_key_never_shows_its_id() {
        let mut store = Store::default();
        let secret = b"session-secret-123";
        store.bind(SessionKey::of(secret), d(1), UNIX_EPOCH, TTL, 2);
        let shown = format!("{:?} {store:?}", SessionKey::of(secret));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("115, 101"), "{shown}");
    }

    #[test]
    fn touching_the_most_recent_session_pushes_no_slot() {
        let mut store = Store::default();
        let t = UNIX_EPOCH;
        store.bind(k(1), d(100), t, TTL, 10);
        store.bind(k(2), d(100), t, TTL, 10);
        assert_eq!(store.queue.len(), 2);
        assert_eq!(
            store.check(&k(2), Some(&d(100)), t + TTL / 2, TTL),
            Check::Allowed
        );
        assert_eq!(store.queue.len(), 2);
        // Session 1 was used longest ago: it still expires first.
        assert_eq!(
            store.check(&k(1), Some(&d(100)), t + TTL, TTL),
            Check::Unknown
        );
        assert_eq!(
            store.check(&k(2), Some(&d(100)), t + TTL, TTL),
            Check::Allowed
        );
        // Touching session 2 again refreshed it without a new slot.
        assert_eq!(
            store.check(&k(2), Some(&d(100)), t + TTL + TTL / 2, TTL),
            Check::Allowed
        );
    }
}
