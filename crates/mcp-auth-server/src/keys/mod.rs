//! Signing keys: a [`KeySet`] with rotation, and the public JWKS.
//!
//! The authorization server signs its access tokens (RFC 9068 JWTs) with one key at a time and
//! publishes every key a resource server may still meet at `/jwks.json`. Keys live in the
//! [`Store`] (PKCS#8 DER, see [`StoredKey`]), so a restart keeps them and several servers sharing
//! one store sign with the same keys.
//!
//! # Rules
//!
//! 1. **Algorithms**: ES256 (P-256, the default), EdDSA (Ed25519) and RS256 (2048-bit keys), on
//!    `aws-lc-rs`. ES256 signatures are the fixed 64-byte `r || s` form (RFC 7518 §3.4).
//! 2. **Key ids**: a new key's `kid` is 16 random bytes, base64url (22 characters). It says
//!    nothing about the key and never changes: keys read back from the store keep their `kid`.
//! 3. **The signing key** at `now` is the newest key (by `activates_at`) that has activated
//!    (`activates_at <= now`) and is not retired (`retired_at` unset or later than `now`). Should
//!    there be none (clocks of servers sharing a store disagree, a successor went missing), the
//!    newest activated key signs, else the earliest pending one: [`KeySet::sign`] never fails for
//!    want of a key.
//! 4. **Rotation** ([`KeySet::rotate`], or [`KeySet::maintain`] once the signing key is older than
//!    [`KeyPolicy::rotate_after`], or signs with another algorithm than [`KeyPolicy::algorithm`]):
//!    the new key is stored and published at once, and signs from `now +`
//!    [`publish_ahead`](KeyPolicy::publish_ahead), so that resource servers caching the JWKS see it
//!    before any token signed with it. Until then the old key keeps signing.
//! 5. **Retirement**: once its successor has activated, the old key is marked retired
//!    (`retired_at` = the successor's `activates_at`, written by the next
//!    [`maintain`](KeySet::maintain)). It stays published for
//!    [`keep_after_retire`](KeyPolicy::keep_after_retire) (at least the longest access-token
//!    lifetime), then `maintain` deletes it from the store and the JWKS. The signing key is never
//!    deleted.
//! 6. **Several servers, one store**: every [`rotate`](KeySet::rotate) and
//!    [`maintain`](KeySet::maintain) re-reads [`Store::list_keys`] and takes the store as the
//!    truth (keys another server added are adopted, keys it deleted are dropped). Creating a
//!    key (the first one on an empty store, or a rotation [`maintain`](KeySet::maintain) finds
//!    due) takes the store's lease `signing-keys` ([`Store::try_lease`]): of replicas starting
//!    or rotating at the same instant, one creates the key, the others wait for it (the first
//!    key, up to 10 s) or adopt it at their next call (a rotation). Should two keys be made all
//!    the same (a holder that stalled past its 30 s lease), the one that sees the other's newer
//!    key deletes its own, so they converge on one key. If the store holds no usable key but this server still has one, it is written
//!    back rather than replaced. Call `maintain` much more often than `publish_ahead` (every
//!    minute is fine) so that every server publishes a new key well before it signs.
//! 7. **Reads are lock-free**: [`sign`](KeySet::sign), [`verify`](KeySet::verify) and
//!    [`jwks_json`](KeySet::jwks_json) read one snapshot held in an [`arc_swap::ArcSwap`]. Key
//!    pairs are parsed once per key, the JWKS document is serialized once per key change.
//!
//! Private key material never leaves this module except to the store: the JWKS holds public
//! parameters only, and the `Debug` output shows `kid`s and times.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use mcp_auth_server::keys::{KeyPolicy, KeySet, SigningAlgorithm};
//! use mcp_auth_server::store::MemoryStore;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let policy = KeyPolicy::default()
//!     .with_algorithm(SigningAlgorithm::Es256)
//!     .with_publish_ahead(Duration::from_secs(3600));
//! let now = 1_700_000_000;
//! let keys = KeySet::load_or_create(&store, policy, now).await?;
//!
//! let token = keys.sign("at+jwt", &json!({"sub": "alice", "exp": now + 300}), now)?;
//! let claims = keys.verify(&token).ok_or("our own token verifies")?;
//! assert_eq!(claims["sub"], "alice");
//!
//! // A new key is published at once but signs only an hour later.
//! let old_kid = keys.active_kid(now).ok_or("a key signs")?;
//! let new_kid = keys.rotate(&store, now).await?;
//! let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks_json())?;
//! assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
//! assert_eq!(keys.active_kid(now + 3599), Some(old_kid));
//! assert_eq!(keys.active_kid(now + 3600), Some(new_kid));
//!
//! // Tokens signed before the rotation still verify.
//! assert!(keys.verify(&token).is_some());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError, StoredKey};

/// Emits a tracing event when the `tracing` feature is on; nothing otherwise.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "mcp_auth_server::keys", $($arg)+);
    }};
}

/// The largest token [`KeySet::verify`] looks at, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The largest signature we make or check: RSA with an 8192-bit modulus.
const MAX_SIGNATURE_BYTES: usize = 1024;
/// Random bytes in a new `kid`.
const KID_BYTES: usize = 16;

/// The JWS algorithm access tokens are signed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (the default).
    #[default]
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses a JWS `alg` name (exactly, as JWS names are case-sensitive); `None` for any other
    /// algorithm, `none` included.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When keys are created, rotated and dropped.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyPolicy {
    /// Algorithm for new keys.
    pub algorithm: SigningAlgorithm,
    /// A new key is published in the JWKS this long before it signs anything.
    pub publish_ahead: Duration,
    /// Rotate when the active key is older than this (`None`: only on [`KeySet::rotate`]).
    pub rotate_after: Option<Duration>,
    /// A retired key stays published this long (at least the longest access-token lifetime).
    pub keep_after_retire: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::Es256,
            publish_ahead: Duration::from_secs(3600),
            rotate_after: Some(Duration::from_secs(30 * 24 * 3600)),
            keep_after_retire: Duration::from_secs(24 * 3600),
        }
    }
}

impl KeyPolicy {
    /// Set the algorithm for new keys.
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Set how long a new key is published before it signs.
    #[must_use]
    pub fn with_publish_ahead(mut self, publish_ahead: Duration) -> Self {
        self.publish_ahead = publish_ahead;
        self
    }

    /// Set the key age that triggers a rotation in [`KeySet::maintain`] (`None`: never).
    #[must_use]
    pub fn with_rotate_after(mut self, rotate_after: Option<Duration>) -> Self {
        self.rotate_after = rotate_after;
        self
    }

    /// Set how long a retired key stays published.
    #[must_use]
    pub fn with_keep_after_retire(mut self, keep_after_retire: Duration) -> Self {
        self.keep_after_retire = keep_after_retire;
        self
    }
}

/// A key failure (generation, parsing, signing, storage). Opaque: a storage error is reachable
/// through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    message: &'static str,
    #[source]
    source: Option<StoreError>,
}

impl KeyError {
    const fn new(message: &'static str) -> Self {
        Self {
            message,
            source: None,
        }
    }

    fn store(message: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |source| Self {
            message,
            source: Some(source),
        }
    }
}

/// The server's signing keys. Cheap to clone; reads are lock-free.
///
/// See the [module docs](self) for the rules and an example.
#[derive(Clone)]
pub struct KeySet(Arc<Inner>);

struct Inner {
    policy: KeyPolicy,
    state: ArcSwap<Snapshot>,
    /// Serializes this process's writers ([`KeySet::rotate`], [`KeySet::maintain`]).
    write: tokio::sync::Mutex<()>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.0.state.load();
        f.debug_struct("KeySet")
            .field("policy", &self.0.policy)
            .field("keys", &snapshot.keys)
            .finish()
    }
}

impl KeySet {
    /// Load the keys from the store, creating (and storing) a first key if there is none.
    ///
    /// Stored keys that do not parse (unknown `alg`, PKCS#8 not of that algorithm) are skipped
    /// and logged. A first key signs at once (`activates_at = now`): nothing else could.
    ///
    /// # Errors
    ///
    /// The store failed, or key generation failed.
    pub async fn load_or_create(
        store: &dyn Store,
        policy: KeyPolicy,
        now: u64,
    ) -> Result<Self, KeyError> {
        let keys = load(store, &policy, now, &[]).await?;
        let keys = retire_superseded(store, keys, now).await?;
        let snapshot = Snapshot::new(keys, now)?;
        Ok(Self(Arc::new(Inner {
            policy,
            state: ArcSwap::from_pointee(snapshot),
            write: tokio::sync::Mutex::new(()),
        })))
    }

    /// Sign `claims` as a compact JWS with header `{"alg", "kid", "typ": typ}` using the active key.
    ///
    /// # Errors
    ///
    /// `claims` is not a JSON object, or the signature failed.
    pub fn sign(
        &self,
        typ: &str,
        claims: &serde_json::Value,
        now: u64,
    ) -> Result<String, KeyError> {
        if !claims.is_object() {
            return Err(KeyError::new("JWT claims must be a JSON object"));
        }
        let payload = serde_json::to_vec(claims)
            .map_err(|_| KeyError::new("JWT claims could not be serialized"))?;
        let snapshot = self.0.state.load();
        let key = snapshot
            .signing_key(now)
            .ok_or(KeyError::new("no signing key"))?;
        let material = &key.material;

        let mut token = String::with_capacity(
            material.at_jwt_header.len() + typ.len() + 2 + payload.len() * 4 / 3 + 4 + 350,
        );
        if typ == AT_JWT {
            token.push_str(&material.at_jwt_header);
        } else {
            B64.encode_string(header_json(material.alg, typ, &material.kid)?, &mut token);
        }
        token.push('.');
        B64.encode_string(&payload, &mut token);
        let mut signature = [0u8; MAX_SIGNATURE_BYTES];
        let len = material.sign(token.as_bytes(), &mut signature)?;
        token.push('.');
        B64.encode_string(signature.get(..len).unwrap_or_default(), &mut token);
        Ok(token)
    }

    /// Verify the signature of a compact JWS made by one of our published keys; return its claims.
    ///
    /// The header must name a published `kid` and that key's `alg` (so `none` and algorithm
    /// confusion are refused); the payload must be a JSON object. Nothing else is checked: `exp`,
    /// `aud`, `typ` and the rest are the caller's. Malformed input gives `None`.
    pub fn verify(&self, token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut parts = token.split('.');
        let (Some(encoded_header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let signing_input = token.get(..encoded_header.len() + 1 + payload.len())?;
        let header: JwsHeader = serde_json::from_slice(&B64.decode(encoded_header).ok()?).ok()?;
        if header.crit.is_some() {
            return None;
        }
        let snapshot = self.0.state.load();
        let key = snapshot
            .keys
            .iter()
            .find(|k| k.material.kid == header.kid)?;
        if key.material.alg.as_str() != header.alg {
            return None;
        }
        let mut buf = [0u8; MAX_SIGNATURE_BYTES + 3];
        let len = B64.decode_slice(signature, &mut buf).ok()?;
        key.material
            .public
            .verify_sig(signing_input.as_bytes(), buf.get(..len)?)
            .ok()?;
        serde_json::from_slice(&B64.decode(payload).ok()?).ok()
    }

    /// The public JWKS document (`{"keys":[..]}`), serialized once per key change.
    ///
    /// Every published key: the signing key, keys waiting to sign, and retired keys until
    /// [`keep_after_retire`](KeyPolicy::keep_after_retire) has passed. Each entry has `kty`, the
    /// public parameters (`crv`/`x`/`y`, `crv`/`x` or `n`/`e`), `kid`, `alg` and `use: "sig"`.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.0.state.load().jwks.clone()
    }

    /// The algorithm of the active key, as of the last [`load_or_create`](Self::load_or_create),
    /// [`rotate`](Self::rotate) or [`maintain`](Self::maintain).
    pub fn algorithm(&self) -> SigningAlgorithm {
        let snapshot = self.0.state.load();
        snapshot
            .signing_key(snapshot.as_of)
            .map_or(self.0.policy.algorithm, |k| k.material.alg)
    }

    /// The `kid` of the key [`sign`](Self::sign) would use at `now`.
    pub fn active_kid(&self, now: u64) -> Option<String> {
        self.0
            .state
            .load()
            .signing_key(now)
            .map(|k| k.material.kid.clone())
    }

    /// The policy this key set applies.
    pub fn policy(&self) -> &KeyPolicy {
        &self.0.policy
    }

    /// Create a new key now: published at once, signing after `publish_ahead`; the current key
    /// is retired when the new one activates. Returns the new `kid`.
    ///
    /// The keys are re-read from the store first (see the [module docs](self)), and the new key
    /// is stored before it is published.
    ///
    /// # Errors
    ///
    /// The store failed, or key generation failed. The published keys are then unchanged.
    pub async fn rotate(&self, store: &dyn Store, now: u64) -> Result<String, KeyError> {
        let _writer = self.0.write.lock().await;
        let policy = &self.0.policy;
        let current = self.0.state.load_full();
        let keys = load(store, policy, now, &current.keys).await?;
        let ours = Key::generate(policy.algorithm, now, activation(policy, now)).await?;
        store
            .put_key(ours.to_stored())
            .await
            .map_err(KeyError::store("storing a new key failed"))?;
        let mut known = keys;
        known.push(ours.clone());
        let keys = load(store, policy, now, &known).await?;
        if !keys.iter().any(|k| k.material.kid == ours.material.kid) {
            return Err(KeyError::new(
                "the store did not return the key just written",
            ));
        }
        let keys = retire_superseded(store, keys, now).await?;
        self.0.state.store(Arc::new(Snapshot::new(keys, now)?));
        event!(info, kid = %ours.material.kid, alg = %ours.material.alg, activates_at = ours.activates_at, "signing key rotated");
        Ok(ours.material.kid.clone())
    }

    /// Apply the policy at `now`: rotate if due, drop retired keys past `keep_after_retire`.
    ///
    /// Re-reads the store and reconciles (see the [module docs](self)): safe to call from
    /// several servers sharing a store, and concurrently.
    ///
    /// # Errors
    ///
    /// The store failed, or key generation failed. The published keys are then those of the
    /// last successful call.
    pub async fn maintain(&self, store: &dyn Store, now: u64) -> Result<(), KeyError> {
        let _writer = self.0.write.lock().await;
        let policy = &self.0.policy;
        let current = self.0.state.load_full();
        let mut keys = load(store, policy, now, &current.keys).await?;

        let lease = if rotation_due(policy, &keys, now) {
            // One replica at a time rotates; the others adopt its key at their next call.
            match KeyLease::take(store, now).await? {
                Some(lease) => {
                    keys = load(store, policy, now, &keys).await?;
                    Some(lease)
                }
                None => None,
            }
        } else {
            None
        };
        if lease.is_some() && rotation_due(policy, &keys, now) {
            let ours = Key::generate(policy.algorithm, now, activation(policy, now)).await?;
            store
                .put_key(ours.to_stored())
                .await
                .map_err(KeyError::store("storing a new key failed"))?;
            let mut known = keys;
            known.push(ours.clone());
            keys = load(store, policy, now, &known).await?;
            if yields(&ours, &keys, now) {
                // Another server rotated at the same moment: keep its (newer) key only.
                store
                    .delete_key(&ours.material.kid)
                    .await
                    .map_err(KeyError::store("deleting a superseded key failed"))?;
                keys.retain(|k| k.material.kid != ours.material.kid);
                event!(debug, kid = %ours.material.kid, "new key dropped in favour of a concurrent rotation");
            } else {
                event!(info, kid = %ours.material.kid, alg = %ours.material.alg, activates_at = ours.activates_at, "signing key rotated");
            }
        }

        if let Some(lease) = lease {
            lease.release(store).await;
        }
        let mut keys = retire_superseded(store, keys, now).await?;

        // Drop keys retired more than `keep_after_retire` ago, never the signing key.
        let keep = policy.keep_after_retire.as_secs();
        let signing = keys
            .iter()
            .rev()
            .find(|k| k.signs_at(now))
            .map(|k| k.material.kid.clone());
        if let Some(signing) = signing {
            let mut expired = Vec::new();
            for key in &keys {
                if key.material.kid != signing
                    && key
                        .retired_at
                        .is_some_and(|r| r.saturating_add(keep) <= now)
                {
                    store
                        .delete_key(&key.material.kid)
                        .await
                        .map_err(KeyError::store("deleting a retired key failed"))?;
                    event!(info, kid = %key.material.kid, "retired signing key deleted");
                    expired.push(key.material.kid.clone());
                }
            }
            keys.retain(|k| !expired.contains(&k.material.kid));
        }

        self.0.state.store(Arc::new(Snapshot::new(keys, now)?));
        Ok(())
    }
}

const AT_JWT: &str = "at+jwt";

/// When a key created at `now` starts signing.
fn activation(policy: &KeyPolicy, now: u64) -> u64 {
    now.saturating_add(policy.publish_ahead.as_secs())
}

/// Whether `maintain` should create a key: the signing key is too old or of another algorithm
/// than the policy's, and no key is waiting to take over.
fn rotation_due(policy: &KeyPolicy, keys: &[Key], now: u64) -> bool {
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
fn yields(ours: &Key, keys: &[Key], now: u64) -> bool {
    keys.iter()
        .any(|k| k.material.kid != ours.material.kid && k.usable(now) && k.order() > ours.order())
}

/// Re-read the keys from the store (the truth), reusing parsed keys from `known`, and make sure
/// at least one is usable: write back a usable key of ours the store lost, or create a first key
/// that signs at once.
async fn load(
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
struct KeyLease {
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
    async fn take(store: &dyn Store, now: u64) -> Result<Option<Self>, KeyError> {
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
    async fn release(self, store: &dyn Store) {
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
async fn retire_superseded(
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

/// What readers see: the keys in signing order and the serialized JWKS.
struct Snapshot {
    /// Sorted by [`Key::order`].
    keys: Vec<Key>,
    jwks: bytes::Bytes,
    /// The `now` of the call that built it.
    as_of: u64,
}

impl Snapshot {
    fn new(keys: Vec<Key>, as_of: u64) -> Result<Self, KeyError> {
        let mut keys = keys;
        keys.sort_by(|a, b| a.order().cmp(&b.order()));
        let entries: Vec<&Value> = keys.iter().map(|k| &k.material.jwk).collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": entries }))
            .map_err(|_| KeyError::new("the JWKS could not be serialized"))?;
        Ok(Self {
            keys,
            jwks: jwks.into(),
            as_of,
        })
    }

    /// The key that signs at `now` (see the module docs, rule 3).
    fn signing_key(&self, now: u64) -> Option<&Key> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.signs_at(now))
            .or_else(|| self.keys.iter().rev().find(|k| k.activates_at <= now))
            .or_else(|| self.keys.first())
    }
}

/// One key: its schedule and its (shared, parsed) material.
#[derive(Clone)]
struct Key {
    created_at: u64,
    activates_at: u64,
    retired_at: Option<u64>,
    material: Arc<Material>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.material.kid)
            .field("alg", &self.material.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl Key {
    /// Generate a key (RSA off the async thread when a Tokio runtime is there).
    async fn generate(
        alg: SigningAlgorithm,
        created_at: u64,
        activates_at: u64,
    ) -> Result<Self, KeyError> {
        let pkcs8 = match (alg, tokio::runtime::Handle::try_current()) {
            (SigningAlgorithm::Rs256, Ok(runtime)) => runtime
                .spawn_blocking(move || generate_pkcs8(alg))
                .await
                .map_err(|_| KeyError::new("key generation did not finish"))??,
            _ => generate_pkcs8(alg)?,
        };
        let mut kid = [0u8; KID_BYTES];
        aws_lc_rs::rand::fill(&mut kid).map_err(|_| KeyError::new("no randomness for a key id"))?;
        let material = Material::parse(B64.encode(kid), alg, pkcs8)?;
        Ok(Self {
            created_at,
            activates_at,
            retired_at: None,
            material: Arc::new(material),
        })
    }

    /// Parse a stored key, reusing the material of a known key with the same `kid` and bytes.
    fn from_stored(stored: &StoredKey, known: &[Self]) -> Result<Self, KeyError> {
        let alg = SigningAlgorithm::from_name(&stored.alg)
            .ok_or(KeyError::new("unsupported signing algorithm"))?;
        let material = match known.iter().find(|k| {
            k.material.kid == stored.kid
                && k.material.alg == alg
                && k.material.pkcs8 == stored.pkcs8
        }) {
            Some(key) => Arc::clone(&key.material),
            None => Arc::new(Material::parse(
                stored.kid.clone(),
                alg,
                stored.pkcs8.clone(),
            )?),
        };
        Ok(Self {
            created_at: stored.created_at,
            activates_at: stored.activates_at,
            retired_at: stored.retired_at,
            material,
        })
    }

    fn to_stored(&self) -> StoredKey {
        StoredKey {
            kid: self.material.kid.clone(),
            alg: self.material.alg.as_str().to_owned(),
            pkcs8: self.material.pkcs8.clone(),
            created_at: self.created_at,
            activates_at: self.activates_at,
            retired_at: self.retired_at,
        }
    }

    /// Signing order: by activation, then creation, then `kid`.
    fn order(&self) -> (u64, u64, &str) {
        (self.activates_at, self.created_at, &self.material.kid)
    }

    /// Whether it may sign at `now`.
    fn signs_at(&self, now: u64) -> bool {
        self.activates_at <= now && self.usable(now)
    }

    /// Whether it signs at `now` or will later.
    fn usable(&self, now: u64) -> bool {
        self.retired_at.is_none_or(|retired| retired > now)
    }
}

/// A parsed key pair with everything derived from it.
struct Material {
    kid: String,
    alg: SigningAlgorithm,
    signer: Signer,
    public: ParsedPublicKey,
    /// The public JWK.
    jwk: Value,
    /// The base64url header for `typ: at+jwt`, the common case.
    at_jwt_header: String,
    pkcs8: Zeroizing<Vec<u8>>,
}

enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl Material {
    fn parse(
        kid: String,
        alg: SigningAlgorithm,
        pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, KeyError> {
        let rejected = |_| KeyError::new("the private key does not parse for its algorithm");
        let unusable = |_| KeyError::new("the public key could not be derived");
        let (signer, public, mut jwk) = match alg {
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(rejected)?;
                let point = pair.public_key().as_ref();
                // The uncompressed point (SEC 1 §2.3.3): 0x04 || x || y.
                let (Some(&0x04), Some(x), Some(y)) =
                    (point.first(), point.get(1..33), point.get(33..65))
                else {
                    return Err(KeyError::new("unexpected P-256 public key encoding"));
                };
                let jwk = serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y),
                });
                let public =
                    ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).map_err(unusable)?;
                (Signer::Es256(pair), public, jwk)
            }
            SigningAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let x = pair.public_key().as_ref();
                let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": B64.encode(x) });
                let public = ParsedPublicKey::new(&sig::ED25519, x).map_err(unusable)?;
                (Signer::EdDsa(pair), public, jwk)
            }
            SigningAlgorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let bits = pair.public_modulus_len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyError::new("RSA keys must have 2048 to 8192 bits"));
                }
                let public_key = pair.public_key();
                let jwk = serde_json::json!({
                    "kty": "RSA",
                    "n": B64.encode(public_key.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public_key.exponent().big_endian_without_leading_zero()),
                });
                let public = ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, public_key)
                    .map_err(unusable)?;
                (Signer::Rs256(pair), public, jwk)
            }
        };
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), Value::String(kid.clone()));
            members.insert("alg".into(), Value::String(alg.as_str().into()));
            members.insert("use".into(), Value::String("sig".into()));
        }
        let at_jwt_header = B64.encode(header_json(alg, AT_JWT, &kid)?);
        Ok(Self {
            kid,
            alg,
            signer,
            public,
            jwk,
            at_jwt_header,
            pkcs8,
        })
    }

    /// Sign `message` into `out`; returns the signature length.
    fn sign(&self, message: &[u8], out: &mut [u8; MAX_SIGNATURE_BYTES]) -> Result<usize, KeyError> {
        let failed = |_| KeyError::new("signing failed");
        fn copy(signature: &[u8], out: &mut [u8]) -> Result<usize, KeyError> {
            let target = out
                .get_mut(..signature.len())
                .ok_or(KeyError::new("signature too long"))?;
            target.copy_from_slice(signature);
            Ok(signature.len())
        }
        match &self.signer {
            Signer::Es256(pair) => {
                let signature = pair.sign(&SystemRandom::new(), message).map_err(failed)?;
                copy(signature.as_ref(), out)
            }
            Signer::EdDsa(pair) => copy(pair.sign(message).as_ref(), out),
            Signer::Rs256(pair) => {
                let len = pair.public_modulus_len();
                let target = out
                    .get_mut(..len)
                    .ok_or(KeyError::new("signature too long"))?;
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    target,
                )
                .map_err(failed)?;
                Ok(len)
            }
        }
    }
}

/// Generate a private key, as PKCS#8 v1 DER.
fn generate_pkcs8(alg: SigningAlgorithm) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let failed = |_| KeyError::new("key generation failed");
    let der = match alg {
        SigningAlgorithm::Es256 => EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        SigningAlgorithm::EdDsa => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        SigningAlgorithm::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            AsDer::<Pkcs8V1Der<'static>>::as_der(&pair)
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
    };
    Ok(Zeroizing::new(der))
}

/// The JOSE header `{"alg","typ","kid"}`, as JSON.
fn header_json(alg: SigningAlgorithm, typ: &str, kid: &str) -> Result<Vec<u8>, KeyError> {
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'static str,
        typ: &'a str,
        kid: &'a str,
    }
    serde_json::to_vec(&Header {
        alg: alg.as_str(),
        typ,
        kid,
    })
    .map_err(|_| KeyError::new("the JWS header could not be serialized"))
}

/// The header members [`KeySet::verify`] reads (`alg` and `kid` are required).
#[derive(serde::Deserialize)]
struct JwsHeader {
    alg: String,
    kid: String,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[cfg(test)]
mod tests;
