//! [`CachedVerifier`] and its builder; the rules are in the [module docs](super).
use std::{
    collections::HashMap,
    fmt,
    future::Future,
    hash::{BuildHasherDefault, Hasher},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use mcp_auth_core::{Clock, SystemClock};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::{TokenVerifier, VerifyError, VerifyErrorKind, ct::ct_eq};

use super::{DEFAULT_CAPACITY, DEFAULT_MAX_TTL, DEFAULT_NEGATIVE_TTL};
use crate::AuthInfo;

/// A [`TokenVerifier`] that remembers the answers of another one.
///
/// See the [module docs](crate::verify::cache) for the rules and an example. Cloning shares the
/// cache (and clones the inner verifier, so wrap a verifier that is not cheap to clone in an `Arc`).
#[derive(Clone)]
pub struct CachedVerifier<V> {
    inner: V,
    cache: TokenCache,
}

impl<V> CachedVerifier<V> {
    /// Wraps `inner` with the default settings: [`DEFAULT_CAPACITY`] entries, [`DEFAULT_MAX_TTL`],
    /// [`DEFAULT_NEGATIVE_TTL`] and the system clock.
    #[must_use]
    pub fn new(inner: V) -> Self {
        Self::builder(inner).build()
    }

    /// Starts a cache around `inner` with custom settings.
    pub fn builder(inner: V) -> CachedVerifierBuilder<V> {
        CachedVerifierBuilder {
            inner,
            config: CacheConfig::new(DEFAULT_MAX_TTL),
        }
    }

    /// A verifier with a cache built elsewhere (the introspection verifier).
    #[cfg(feature = "introspection")]
    pub(crate) fn from_parts(inner: V, cache: TokenCache) -> Self {
        Self { inner, cache }
    }

    /// The wrapped verifier.
    #[must_use]
    pub fn get_ref(&self) -> &V {
        &self.inner
    }

    /// Unwraps the verifier, dropping the cache.
    #[must_use]
    pub fn into_inner(self) -> V {
        self.inner
    }

    /// Forgets every cached answer (for example after revoking tokens or withdrawing a key).
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// The number of cached answers, positive and negative, including expired ones not dropped
    /// yet. For metrics and tests: it visits every shard.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

impl<V: TokenVerifier> TokenVerifier for CachedVerifier<V> {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        self.cache
            .get_or_verify(token, move || self.inner.verify(token))
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        if let Some(hit) = self.cache.lookup(token) {
            #[cfg(feature = "tracing")]
            LAST_HIT.set(true);
            return Some(hit);
        }
        let answer = self.inner.verify_cached(token)?;
        self.cache.insert(token, &answer);
        Some(answer)
    }

    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        if let Some(hit) = self.cache.recall(token) {
            #[cfg(feature = "tracing")]
            LAST_HIT.set(true);
            return Some(Ok(hit));
        }
        self.inner.recall(token)
    }
}

impl<V: fmt::Debug> fmt::Debug for CachedVerifier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedVerifier")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .finish()
    }
}

#[cfg(feature = "tracing")]
thread_local! {
    /// Set when [`CachedVerifier::verify_cached`] answers from the cache, for the bearer layer's
    /// span (`cache = "hit"`), whatever wraps the cache (`Revocable`, an enum of verifiers).
    static LAST_HIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a cache answered the last `verify_cached` on this thread; clears the flag.
#[cfg(feature = "tracing")]
pub(crate) fn take_hit() -> bool {
    LAST_HIT.replace(false)
}

/// Builds a [`CachedVerifier`]. Start with [`CachedVerifier::builder`].
#[must_use]
pub struct CachedVerifierBuilder<V> {
    inner: V,
    config: CacheConfig,
}

impl<V> CachedVerifierBuilder<V> {
    /// The maximum number of cached answers (default [`DEFAULT_CAPACITY`]); `0` caches nothing
    /// (concurrent verifications of one token are still coalesced).
    pub fn capacity(mut self, entries: u64) -> Self {
        self.config.capacity = entries;
        self
    }

    /// The longest time a verified token stays cached (default [`DEFAULT_MAX_TTL`]). Entries never
    /// outlive the token's `exp`; a token without `exp` stays this long. `Duration::ZERO` disables
    /// the positive cache.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.config.positive_ttl = ttl;
        self
    }

    /// How long a bad-token verdict stays cached (default [`DEFAULT_NEGATIVE_TTL`]);
    /// `Duration::ZERO` disables the negative cache. "Unavailable" is never cached.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_ttl = ttl;
        self
    }

    /// Where time comes from (default [`SystemClock`]); tests pass a
    /// [`ManualClock`](mcp_auth_core::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// Finishes.
    #[must_use]
    pub fn build(self) -> CachedVerifier<V> {
        CachedVerifier {
            inner: self.inner,
            cache: TokenCache::new(self.config),
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for CachedVerifierBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedVerifierBuilder")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// The cache itself, shared with the introspection verifier.

/// Settings of a [`TokenCache`].
#[derive(Clone)]
pub(crate) struct CacheConfig {
    pub(crate) capacity: u64,
    pub(crate) positive_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl CacheConfig {
    pub(crate) fn new(positive_ttl: Duration) -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            positive_ttl,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            clock: Arc::new(SystemClock::default()),
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("capacity", &self.capacity)
            .field("positive_ttl", &self.positive_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("clock", &self.clock)
            .finish()
    }
}

/// A bounded map from tokens to verification answers. Cloning shares it.
///
/// The map is split into up to 64 shards, each a `HashMap` behind a `RwLock`, selected by the
/// token's keyed hash: a hit takes one uncontended read lock. (moka was measured first: its `get`
/// alone cost about 170 ns, more than half the budget of a whole request.)
#[derive(Clone)]
pub(crate) struct TokenCache(Arc<Shared>);

type Shard = HashMap<u64, Entry, BuildHasherDefault<PreHashed>>;

struct Shared {
    shards: Box<[RwLock<Shard>]>,
    /// `shards.len() - 1` (a power of two minus one).
    shard_mask: usize,
    /// Entries per shard; `shards.len() * shard_capacity <= capacity`.
    shard_capacity: usize,
    /// Per-cache random key of the token hash.
    seed: u64,
    shared_seed: foldhash::SharedSeed,
    config: CacheConfig,
    in_flight: Mutex<HashMap<u64, Arc<Flight>, BuildHasherDefault<PreHashed>>>,
    /// Test hook: every token hashes to the same key, to exercise the comparison on every hit.
    #[cfg(test)]
    collide: bool,
}

/// One cached answer, with what identifies its token (compared in constant time on every hit).
enum Entry {
    /// A verified token: the token itself is kept (zeroed on drop) so a hit needs no digest.
    Valid {
        token: Zeroizing<Box<[u8]>>,
        info: AuthInfo,
        expires_at: SystemTime,
        /// The token passes the bearer layer's syntax check (checked once, when stored), so
        /// [`TokenCache::recall`] may answer for it.
        well_formed: bool,
    },
    /// A bad token: only its SHA-256 is kept, so memory does not grow with the token length.
    Invalid {
        digest: [u8; 32],
        kind: VerifyErrorKind,
        expires_at: SystemTime,
    },
}

impl Entry {
    const fn expires_at(&self) -> SystemTime {
        match self {
            Self::Valid { expires_at, .. } | Self::Invalid { expires_at, .. } => *expires_at,
        }
    }
}

/// One verification in progress, shared by the requests that present the same token meanwhile.
struct Flight {
    token: Zeroizing<Box<[u8]>>,
    answer: OnceCell<Result<AuthInfo, VerifyError>>,
}

/// How many leading bytes of a token its slot hash reads.
const HASHED_HEAD: usize = 16;
/// How many trailing bytes of a token its slot hash reads (a JWT's signature, in base64url).
const HASHED_TAIL: usize = 48;

/// Most shards a cache is split into.
const MAX_SHARDS: usize = 64;
/// Fewest entries a shard is sized for before the cache gets a second shard.
const MIN_SHARD_CAPACITY: usize = 128;

impl TokenCache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        let capacity = usize::try_from(config.capacity).unwrap_or(usize::MAX);
        // A power of two, so each shard gets at least `MIN_SHARD_CAPACITY` entries.
        let shards = (1 << (capacity / MIN_SHARD_CAPACITY).max(1).ilog2()).min(MAX_SHARDS);
        let random = || getrandom::u64().unwrap_or_else(|_| fallback_seed());
        Self(Arc::new(Shared {
            shards: (0..shards).map(|_| RwLock::default()).collect(),
            shard_mask: shards - 1,
            shard_capacity: capacity / shards,
            seed: random(),
            shared_seed: foldhash::SharedSeed::from_u64(random()),
            config,
            in_flight: Mutex::new(HashMap::default()),
            #[cfg(test)]
            collide: false,
        }))
    }

    /// The keyed hash of a token: its length, its first [`HASHED_HEAD`] and its last
    /// [`HASHED_TAIL`] bytes (all of it when shorter), so the cost does not grow with the token.
    ///
    /// The hash only picks the slot; a hit still compares the whole token (rule 1). A JWT's last
    /// bytes are its signature, and an opaque token's are random, so distinct tokens get distinct
    /// slots. Tokens that share both ends (a tampered copy of a token, an attacker's own
    /// inventions) share a slot: each one's answer replaces the other's, never answers for it.
    #[inline]
    fn hash(&self, token: &[u8]) -> u64 {
        #[cfg(test)]
        if self.0.collide {
            return 7;
        }
        let mut hasher = foldhash::quality::FoldHasher::with_seed(self.0.seed, &self.0.shared_seed);
        hasher.write_usize(token.len());
        if token.len() <= HASHED_HEAD + HASHED_TAIL {
            hasher.write(token);
        } else {
            hasher.write(&token[..HASHED_HEAD]);
            hasher.write(&token[token.len() - HASHED_TAIL..]);
        }
        hasher.finish()
    }

    /// The shard of a hash. Uses bits the shard's own table does not (it uses the low bits for
    /// the bucket and the top seven as tags).
    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.0.shards[(hash >> 32) as usize & self.0.shard_mask]
    }

    /// The cached answer for `token`, if there is one that has not expired.
    #[inline]
    pub(crate) fn lookup(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        let token = token.as_bytes();
        let hash = self.hash(token);
        let (digest, kind, expires_at) = {
            let shard = self
                .shard(hash)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match shard.get(&hash)? {
                Entry::Valid {
                    token: stored,
                    info,
                    expires_at,
                    ..
                } => {
                    // A collision, or an expired entry, is a miss; the fresh answer overwrites it.
                    if !ct_eq(stored, token) || self.0.config.clock.now_upper_bound() >= *expires_at
                    {
                        return None;
                    }
                    return Some(Ok(info.clone()));
                }
                Entry::Invalid {
                    digest,
                    kind,
                    expires_at,
                } => (*digest, *kind, *expires_at),
            }
        };
        // A repeated bad token: hash it outside the lock.
        let presented: [u8; 32] = Sha256::digest(token).into();
        if !bool::from(presented.ct_eq(&digest))
            || self.0.config.clock.now_upper_bound() >= expires_at
        {
            return None;
        }
        Some(Err(VerifyError::new(kind)))
    }

    /// The cached, unexpired, positive answer for `token` given as the header's bytes, if the
    /// token was well-formed when it was stored ([`TokenVerifier::recall`]). Rule 1 as for
    /// [`lookup`](Self::lookup): the whole token is compared in constant time.
    #[inline]
    pub(crate) fn recall(&self, token: &[u8]) -> Option<AuthInfo> {
        let hash = self.hash(token);
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match shard.get(&hash)? {
            Entry::Valid {
                token: stored,
                info,
                expires_at,
                well_formed: true,
            } if ct_eq(stored, token) && self.0.config.clock.now_upper_bound() < *expires_at => {
                Some(info.clone())
            }
            _ => None,
        }
    }

    /// Caches `answer` for `token` if the rules allow it.
    pub(crate) fn insert(&self, token: &str, answer: &Result<AuthInfo, VerifyError>) {
        let config = &self.0.config;
        if self.0.shard_capacity == 0 {
            return;
        }
        let now = config.clock.now();
        let token = token.as_bytes();
        let entry = match answer {
            Ok(info) => {
                let mut until = now.checked_add(config.positive_ttl).unwrap_or(now);
                if let Some(exp) = info.expires_at() {
                    until = until.min(exp);
                }
                if until <= now {
                    return;
                }
                Entry::Valid {
                    token: Zeroizing::new(token.into()),
                    info: info.clone(),
                    expires_at: until,
                    well_formed: crate::token_syntax::is_well_formed(token),
                }
            }
            Err(error) if is_settled(error.kind()) => {
                let until = now.checked_add(config.negative_ttl).unwrap_or(now);
                if until <= now {
                    return;
                }
                Entry::Invalid {
                    digest: Sha256::digest(token).into(),
                    kind: error.kind(),
                    expires_at: until,
                }
            }
            Err(_) => return,
        };
        let hash = self.hash(token);
        let mut shard = self
            .shard(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.0.shard_capacity && !shard.contains_key(&hash) {
            make_room(&mut shard, self.0.shard_capacity, now);
        }
        shard.insert(hash, entry);
    }

    /// The cached answer, or the answer of `verify` (cached), coalescing concurrent calls for the
    /// same token.
    pub(crate) async fn get_or_verify<F, Fut>(
        &self,
        token: &str,
        verify: F,
    ) -> Result<AuthInfo, VerifyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AuthInfo, VerifyError>>,
    {
        if let Some(hit) = self.lookup(token) {
            return hit;
        }
        let hash = self.hash(token.as_bytes());
        let flight = {
            let mut in_flight = self
                .0
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&hash) {
                Some(flight) if ct_eq(&flight.token, token.as_bytes()) => Some(Arc::clone(flight)),
                // Another token with the same hash is being verified: do not wait for it.
                Some(_) => None,
                None => {
                    let flight = Arc::new(Flight {
                        token: Zeroizing::new(token.as_bytes().into()),
                        answer: OnceCell::new(),
                    });
                    in_flight.insert(hash, Arc::clone(&flight));
                    Some(flight)
                }
            }
        };
        let Some(flight) = flight else {
            let answer = verify().await;
            self.insert(token, &answer);
            return answer;
        };
        let mut guard = FlightGuard {
            cache: self,
            hash,
            flight: None,
        };
        // The guard owns our reference, so it is released under the in-flight lock.
        let flight = &*guard.flight.insert(flight);
        flight
            .answer
            .get_or_init(|| async {
                // The previous flight for this token may have finished between our lookup and
                // registering this one.
                if let Some(hit) = self.lookup(token) {
                    return hit;
                }
                let answer = verify().await;
                self.insert(token, &answer);
                answer
            })
            .await
            .clone()
    }

    pub(crate) fn clear(&self) {
        for shard in &self.0.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.0
            .shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len() as u64)
            .sum()
    }

    #[cfg(test)]
    fn with_collisions(config: CacheConfig) -> Self {
        let mut cache = Self::new(config);
        if let Some(shared) = Arc::get_mut(&mut cache.0) {
            shared.collide = true;
        }
        cache
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the entries: they hold tokens.
        f.debug_struct("TokenCache")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

/// Removes a finished or abandoned flight from the in-flight map.
struct FlightGuard<'a> {
    cache: &'a TokenCache,
    hash: u64,
    flight: Option<Arc<Flight>>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .cache
            .0
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(ours) = self.flight.take() else {
            return;
        };
        let done = ours.answer.initialized();
        let current = in_flight
            .get(&self.hash)
            .is_some_and(|f| Arc::ptr_eq(f, &ours));
        // Dropped while the lock is held, so the count below is exact: every clone and every drop
        // of a flight happens under this lock.
        drop(ours);
        if current
            && (done
                || in_flight
                    .get(&self.hash)
                    .is_some_and(|f| Arc::strong_count(f) == 1))
        {
            in_flight.remove(&self.hash);
        }
    }
}

/// Frees one slot in a full shard: drops every expired entry, and if none was, the entry that
/// matters least (a bad-token verdict before a verified token, then the one expiring first). One
/// pass over the shard, only when it is full.
fn make_room(shard: &mut Shard, capacity: usize, now: SystemTime) {
    let mut victim: Option<(u64, (bool, SystemTime))> = None;
    shard.retain(|hash, entry| {
        let expires_at = entry.expires_at();
        if expires_at <= now {
            return false;
        }
        let rank = (matches!(entry, Entry::Valid { .. }), expires_at);
        if victim.is_none_or(|(_, worst)| rank < worst) {
            victim = Some((*hash, rank));
        }
        true
    });
    if shard.len() >= capacity
        && let Some((hash, _)) = victim
    {
        shard.remove(&hash);
    }
}

/// Whether a bad-token verdict cannot change on retry, so it may be cached.
fn is_settled(kind: VerifyErrorKind) -> bool {
    use VerifyErrorKind as K;
    matches!(
        kind,
        K::Malformed
            | K::Expired
            | K::InvalidSignature
            | K::Algorithm
            | K::Issuer
            | K::Audience
            | K::TokenType
            | K::MissingClaim
            | K::Unsupported
            | K::Inactive
    )
}

/// A seed when the OS random source fails (it does not on supported platforms): foldhash's own
/// per-process, per-instance randomness.
#[cold]
fn fallback_seed() -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::RandomState::default().hash_one(0u8)
}

/// A hasher for keys that already are keyed hashes: it passes the `u64` through.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; kept correct anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::UNIX_EPOCH,
    };

    use mcp_auth_core::ManualClock;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn config(clock: &ManualClock) -> CacheConfig {
        CacheConfig {
            clock: Arc::new(clock.clone()),
            ..CacheConfig::new(DEFAULT_MAX_TTL)
        }
    }

    fn clock() -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
    }

    fn info(subject: &str) -> AuthInfo {
        AuthInfo::builder()
            .subject(subject)
            .expires_at(NOW + 3600)
            .build()
    }

    #[test]
    fn colliding_tokens_never_share_an_entry() {
        let clock = clock();
        let cache = TokenCache::with_collisions(config(&clock));
        assert_eq!(cache.hash(b"a"), cache.hash(b"b"));

        cache.insert("token-a", &Ok(info("alice")));
        let hit = cache.lookup("token-a").unwrap().unwrap();
        assert_eq!(hit.subject(), Some("alice"));
        // Same bucket, different token: a miss, never alice's answer.
        assert!(cache.lookup("token-b").is_none());
        assert!(cache.lookup("token-a ").is_none());
        assert!(cache.lookup("token-").is_none());
        assert!(cache.lookup("").is_none());

        // The other token takes the slot; alice's token is then a miss, never bob's answer.
        cache.insert("token-b", &Ok(info("bob")));
        assert_eq!(
            cache.lookup("token-b").unwrap().unwrap().subject(),
            Some("bob")
        );
        assert!(cache.lookup("token-a").is_none());
    }

    /// A clock whose upper bound runs 10 ms ahead of its time, as a coarse clock's may.
    #[derive(Debug)]
    struct AheadClock(ManualClock);

    impl Clock for AheadClock {
        fn now(&self) -> SystemTime {
            self.0.now()
        }

        fn now_upper_bound(&self) -> SystemTime {
            self.0.now() + Duration::from_millis(10)
        }
    }

    #[test]
    fn hits_check_expiry_with_the_clocks_upper_bound_so_an_entry_never_outlives_its_token() {
        let clock = clock();
        let cache = TokenCache::new(CacheConfig {
            clock: Arc::new(AheadClock(clock.clone())),
            ..CacheConfig::new(DEFAULT_MAX_TTL)
        });
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        let expiring = AuthInfo::builder()
            .subject("alice")
            .expires_at(NOW + 60)
            .build();
        cache.insert(token, &Ok(expiring));
        clock.advance(Duration::from_millis(59_980));
        assert!(cache.recall(token.as_bytes()).is_some());
        assert!(cache.lookup(token).is_some());
        // 5 ms before `exp`: the upper bound is past it, so the entry is over (early, not late).
        clock.advance(Duration::from_millis(15));
        assert!(cache.recall(token.as_bytes()).is_none());
        assert!(cache.lookup(token).is_none());
    }

    #[test]
    fn colliding_negative_entry_does_not_reject_another_token() {
        let clock = clock();
        let cache = TokenCache::with_collisions(config(&clock));
        cache.insert("bad", &Err(VerifyErrorKind::InvalidSignature.into()));
        assert_eq!(
            cache.lookup("bad").unwrap().unwrap_err().kind(),
            VerifyErrorKind::InvalidSignature
        );
        assert!(cache.lookup("good").is_none());
    }

    #[tokio::test]
    async fn colliding_tokens_in_flight_are_not_coalesced() {
        let clock = clock();
        let cache = TokenCache::with_collisions(config(&clock));
        let calls = AtomicUsize::new(0);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let slow = cache.get_or_verify("token-a", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = wait.await;
            Ok(info("alice"))
        });
        let fast = async {
            // While token-a is in flight under the same hash, token-b is verified on its own.
            let b = cache
                .get_or_verify("token-b", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(info("bob"))
                })
                .await;
            let _ = release.send(());
            b
        };
        let (a, b) = tokio::join!(slow, fast);
        assert_eq!(a.unwrap().subject(), Some("alice"));
        assert_eq!(b.unwrap().subject(), Some("bob"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn abandoned_flight_is_removed() {
        let clock = clock();
        let cache = TokenCache::new(config(&clock));
        let fut = cache.get_or_verify("t", std::future::pending);
        // Poll once so the flight is registered, then drop it.
        let polled = tokio::time::timeout(Duration::from_millis(1), fut).await;
        assert!(polled.is_err());
        assert!(cache.0.in_flight.lock().unwrap().is_empty());
    }

    #[test]
    fn a_flood_of_bad_tokens_does_not_push_out_verified_tokens() {
        let clock = clock();
        let cache = TokenCache::new(CacheConfig {
            capacity: 8,
            ..config(&clock)
        });
        for i in 0..4 {
            cache.insert(&format!("good-{i}"), &Ok(info("alice")));
        }
        for i in 0..1000 {
            cache.insert(
                &format!("bad-{i}"),
                &Err(VerifyErrorKind::InvalidSignature.into()),
            );
        }
        assert_eq!(cache.entry_count(), 8);
        for i in 0..4 {
            assert!(cache.lookup(&format!("good-{i}")).is_some(), "good-{i}");
        }
        // The most recent bad token is cached (it replaced an older one).
        assert!(cache.lookup("bad-999").is_some());
    }

    #[test]
    fn when_full_expired_entries_go_first_then_the_soonest_to_expire() {
        let clock = clock();
        let cache = TokenCache::new(CacheConfig {
            capacity: 3,
            positive_ttl: Duration::from_secs(86_400),
            ..config(&clock)
        });
        let valid_until = |exp: u64| Ok(AuthInfo::builder().expires_at(exp).build());
        cache.insert("soon", &valid_until(NOW + 10));
        cache.insert("late", &valid_until(NOW + 1000));
        cache.insert("later", &valid_until(NOW + 2000));
        cache.insert("new", &valid_until(NOW + 500));
        assert!(cache.lookup("soon").is_none());
        assert!(cache.lookup("late").is_some());
        assert!(cache.lookup("new").is_some());

        clock.advance(Duration::from_secs(600));
        // "new" has expired: two inserts fit without evicting anything live.
        cache.insert("a", &valid_until(NOW + 5000));
        assert!(cache.lookup("late").is_some());
        assert!(cache.lookup("later").is_some());
        assert!(cache.lookup("a").is_some());
        assert_eq!(cache.entry_count(), 3);
    }

    #[test]
    fn capacity_is_split_into_shards_without_exceeding_it() {
        for capacity in [0, 1, 127, 128, 1000, 10_000, 1 << 20] {
            let cache = TokenCache::new(CacheConfig {
                capacity,
                ..config(&clock())
            });
            let shards = cache.0.shards.len() as u64;
            assert!(shards.is_power_of_two());
            assert!(shards * cache.0.shard_capacity as u64 <= capacity);
            assert!(capacity < 128 || cache.0.shard_capacity >= 128);
        }
    }

    #[tokio::test]
    async fn finished_flights_are_removed() {
        let clock = clock();
        let cache = TokenCache::new(config(&clock));
        let ok = cache
            .get_or_verify("a", || async { Ok(info("alice")) })
            .await;
        assert!(ok.is_ok());
        let down = cache
            .get_or_verify("b", || async { Err(VerifyError::unavailable(None)) })
            .await;
        assert!(down.unwrap_err().is_unavailable());
        assert!(cache.0.in_flight.lock().unwrap().is_empty());
        assert_eq!(cache.entry_count(), 1);
    }

    /// Two distinct tokens, shaped to land in one slot as often as possible: sharing a long
    /// prefix (a JWT header and claims), a long suffix (a tampered copy keeps the signature),
    /// both ends, or one being a prefix of the other.
    fn distinct_pair() -> impl proptest::strategy::Strategy<Value = (String, String)> {
        use proptest::prelude::*;
        const B64: &str = "[A-Za-z0-9_.~+/-]";
        let part =
            |max: usize| proptest::string::string_regex(&format!("{B64}{{0,{max}}}")).unwrap();
        (part(3000), part(12), part(12), part(3000), 0..4u8)
            .prop_map(|(long, a, b, other, shape)| match shape {
                0 => (format!("{long}{a}"), format!("{long}{b}")),
                1 => (format!("{a}{long}"), format!("{b}{long}")),
                2 => (format!("{a}{long}{a}"), format!("{a}{other}{a}")),
                _ => (long.clone(), format!("{long}{a}")),
            })
            .prop_filter("distinct tokens", |(a, b)| a != b)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Rule 1, over random pairs: a token never gets another token's answer, positive or
        /// negative, whether the two share a slot (forced, or by their bounded hash) or not.
        #[test]
        fn a_token_is_never_answered_with_another_tokens_entry(
            (a, b) in distinct_pair(),
            collide in proptest::prelude::any::<bool>(),
            a_is_bad in proptest::prelude::any::<bool>(),
        ) {
            let clock = clock();
            let cache = if collide {
                TokenCache::with_collisions(config(&clock))
            } else {
                TokenCache::new(config(&clock))
            };
            let answer_a = if a_is_bad {
                Err(VerifyErrorKind::InvalidSignature.into())
            } else {
                Ok(info(&a))
            };
            cache.insert(&a, &answer_a);
            // `b` was never verified: whatever `a` left, `b` is a miss.
            proptest::prop_assert!(cache.lookup(&b).is_none());

            cache.insert(&b, &Ok(info(&b)));
            let hit = cache.lookup(&b).expect("b was just cached").expect("b is valid");
            proptest::prop_assert_eq!(hit.subject(), Some(b.as_str()));
            // `a` is either still answered with its own answer, or (same slot) a miss.
            match cache.lookup(&a) {
                None => {}
                Some(Ok(hit)) => {
                    proptest::prop_assert!(!a_is_bad);
                    proptest::prop_assert_eq!(hit.subject(), Some(a.as_str()));
                }
                Some(Err(error)) => {
                    proptest::prop_assert!(a_is_bad);
                    proptest::prop_assert_eq!(error.kind(), VerifyErrorKind::InvalidSignature);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Rule 1 for [`TokenCache::recall`] (the bearer layer's hot path, before its syntax
        /// check): a token is never recalled with another token's entry.
        #[test]
        fn a_token_is_never_recalled_with_another_tokens_entry(
            (a, b) in distinct_pair(),
            collide in proptest::prelude::any::<bool>(),
        ) {
            let clock = clock();
            let cache = if collide {
                TokenCache::with_collisions(config(&clock))
            } else {
                TokenCache::new(config(&clock))
            };
            cache.insert(&a, &Ok(info(&a)));
            proptest::prop_assert!(cache.recall(b.as_bytes()).is_none());
            cache.insert(&b, &Ok(info(&b)));
            if let Some(hit) = cache.recall(a.as_bytes()) {
                proptest::prop_assert_eq!(hit.subject(), Some(a.as_str()));
            }
            if !b.is_empty() {
                let hit = cache.recall(b.as_bytes()).expect("b was just cached");
                proptest::prop_assert_eq!(hit.subject(), Some(b.as_str()));
            }
        }
    }

    #[test]
    fn recall_answers_only_unexpired_verified_tokens_the_bearer_layer_would_accept() {
        let clock = clock();
        let cache = TokenCache::new(config(&clock));
        cache.insert("good.token", &Ok(info("alice")));
        assert_eq!(
            cache.recall(b"good.token").unwrap().subject(),
            Some("alice")
        );
        assert!(cache.recall(b"good.token ").is_none());
        assert!(cache.recall(b"good.toke").is_none());
        // Verified through the verifier directly, but not a `b64token`: the layer would refuse
        // it before any verifier, so recall does not answer for it.
        for odd in ["a b", "caf\u{e9}", "x\"y", "==="] {
            cache.insert(odd, &Ok(info("odd")));
            assert!(cache.lookup(odd).is_some(), "{odd}");
            assert!(cache.recall(odd.as_bytes()).is_none(), "{odd}");
        }
        let long = "a".repeat(crate::token_syntax::MAX_TOKEN_LEN + 1);
        cache.insert(&long, &Ok(info("long")));
        assert!(cache.recall(long.as_bytes()).is_none());
        // Negative entries are not recalled (the layer asks `verify_cached` for those).
        cache.insert("bad", &Err(VerifyErrorKind::InvalidSignature.into()));
        assert!(cache.recall(b"bad").is_none());
        // Expiry: the token's `exp` bounds the entry.
        clock.advance(Duration::from_secs(3600));
        assert!(cache.recall(b"good.token").is_none());
    }

    #[test]
    fn tokens_sharing_their_hashed_ends_share_a_slot_but_not_an_answer() {
        let clock = clock();
        let cache = TokenCache::new(config(&clock));
        let head = "h".repeat(HASHED_HEAD);
        let tail = "t".repeat(HASHED_TAIL);
        let a = format!("{head}aaaa{tail}");
        let b = format!("{head}bbbb{tail}");
        assert_eq!(cache.hash(a.as_bytes()), cache.hash(b.as_bytes()));
        // A token one byte longer is another slot: the length is hashed.
        assert_ne!(
            cache.hash(a.as_bytes()),
            cache.hash(format!("{head}aaaaa{tail}").as_bytes())
        );
        cache.insert(&a, &Ok(info("alice")));
        assert!(cache.lookup(&b).is_none());
        assert_eq!(cache.lookup(&a).unwrap().unwrap().subject(), Some("alice"));
    }

    #[test]
    fn settled_kinds_exclude_the_ones_that_can_change() {
        assert!(!is_settled(VerifyErrorKind::Unavailable));
        assert!(!is_settled(VerifyErrorKind::NotYetValid));
        assert!(!is_settled(VerifyErrorKind::UnknownKey));
        assert!(is_settled(VerifyErrorKind::Inactive));
    }
}
