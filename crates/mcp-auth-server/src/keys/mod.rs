//! Signing keys: a [`KeySet`] with rotation, and the public JWKS.
//!
//! The authorization server signs its access tokens (RFC 9068 JWTs) with one key at a time and
//! publishes every key a resource server may still meet at `/jwks.json`. Keys live in the
//! [`Store`] (PKCS#8 DER, see [`StoredKey`](crate::store::StoredKey)), so a restart keeps them and several servers sharing
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

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

use crate::store::Store;

/// Emits a tracing event when the `tracing` feature is on; nothing otherwise.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "mcp_auth_server::keys", $($arg)+);
    }};
}

mod crypto;
mod error;
mod policy;
mod rotation;

pub use self::error::KeyError;
pub use self::policy::{KeyPolicy, SigningAlgorithm};

use self::crypto::{AT_JWT, JwsHeader, Key, MAX_SIGNATURE_BYTES, header_json};
use self::rotation::{KeyLease, activation, load, retire_superseded, rotation_due, yields};

/// The largest token [`KeySet::verify`] looks at, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

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

#[cfg(test)]
mod tests;
