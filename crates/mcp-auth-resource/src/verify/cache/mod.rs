//! A verified-token cache in front of any [`TokenVerifier`]: [`CachedVerifier`].
//!
//! A client sends the same access token on every request of a session. Checking its signature (or
//! asking the authorization server about it) each time is wasted work: with the cache, a repeated
//! token costs one keyed hash of a bounded part of the token, one map lookup, one constant-time
//! comparison of the whole token and one read of the coarse clock
//! ([`Clock::now_upper_bound`]), allocates nothing, and the
//! [bearer layer](crate::BearerAuthLayer) gets the answer synchronously through
//! [`TokenVerifier::verify_cached`], without creating a future.
//!
//! # Rules
//!
//! 1. **No token can hit another token's entry.** The map is keyed by a 64-bit keyed hash (foldhash
//!    with a per-cache random seed) of the token's length, first 16 and last 48 bytes (a JWT's
//!    signature; the whole token when it is shorter), and each entry also identifies its token in
//!    full: a verified token's entry stores the token bytes (zeroed when the entry is dropped), a
//!    bad token's entry its SHA-256 digest. Every hit compares the whole presented token (or its
//!    digest) with the stored one in constant time; a mismatch (two tokens in one slot) is a
//!    miss, and the verifier is asked.
//! 2. **An entry never outlives its token.** A verified token is cached until its `exp`
//!    ([`AuthInfo::expires_at_unix`]) or for the maximum TTL (default 5 minutes), whichever comes
//!    first. A token without `exp` (which your verifier chose to accept) is cached for the maximum
//!    TTL. A token that is already past `exp` (accepted inside the verifier's leeway) is not cached.
//!    Expiry is decided with the injected [`Clock`], so tests move time instead of sleeping. A hit
//!    compares the entry's end with [`Clock::now_upper_bound`], a time never earlier than now (for
//!    the system clock, the kernel's coarse clock plus twice its resolution): an entry may end a
//!    few milliseconds early, never late.
//! 3. **Outages are never cached.** An [`Unavailable`](VerifyErrorKind::Unavailable) answer is
//!    returned to the callers that were waiting for it and forgotten: the next request asks again.
//! 4. **Bad tokens are cached briefly** (the negative TTL, default 10 seconds, `0` disables), so a
//!    client retrying a bad token does not cost a signature check or an introspection call each
//!    time. Only verdicts that cannot change are cached (malformed, expired, bad signature, wrong
//!    algorithm, issuer, audience or type, missing claim, unsupported feature, inactive); "not valid
//!    yet" and "unknown key" (which a key-set refresh may fix) are not. A negative entry stores a
//!    SHA-256 digest of the token instead of the token, so the memory an attacker can fill with bad
//!    tokens does not grow with their length; the cached error carries only its kind, no source.
//! 5. **Bounded.** At most `capacity` entries (default 10 000). When the cache is full, a new
//!    entry first makes room by dropping expired entries, then a bad-token verdict, and only then
//!    the verified token that expires first: a flood of bad tokens cannot push out the tokens in
//!    use. (Expired entries are otherwise dropped lazily, when overwritten or when room is needed.)
//! 6. **Concurrent misses are coalesced.** When many requests present the same new token at once,
//!    one of them calls the inner verifier and the others wait for its answer. If that request is
//!    cancelled (the client went away), one of the waiting requests takes over.
//!
//! A cached positive answer is not re-checked: a token revoked at the authorization server, or
//! signed by a key that was withdrawn from the key set, stays accepted until its entry expires (at
//! most the maximum TTL). Lower the TTL, or call [`CachedVerifier::clear`], if that matters. When
//! the authorization server can tell this process what it revoked (a
//! [`RevocationList`](mcp_auth_core::revocation::RevocationList)), wrap the cache in a
//! [`Revocable`](crate::Revocable): the list is then asked on every request,
//! cache hits included.
//!
//! # Example
//!
//! Wrap a verifier that counts its calls; two verifications of one token call it once.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use mcp_auth_resource::{AuthInfo, CachedVerifier, TokenVerifier, VerifyError, VerifyErrorKind};
//!
//! #[derive(Debug, Default)]
//! struct Counting(AtomicUsize);
//!
//! impl TokenVerifier for Counting {
//!     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!         match token {
//!             "good" => Ok(AuthInfo::builder().subject("alice").build()),
//!             _ => Err(VerifyErrorKind::InvalidSignature.into()),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let verifier = CachedVerifier::new(Counting::default());
//! assert_eq!(verifier.verify("good").await.unwrap().subject(), Some("alice"));
//! // The second time, the answer comes from the cache, synchronously.
//! let again = verifier.verify_cached("good").expect("a cache hit").unwrap();
//! assert_eq!(again.subject(), Some("alice"));
//! assert_eq!(verifier.verify("good").await.unwrap().subject(), Some("alice"));
//! assert_eq!(verifier.get_ref().0.load(Ordering::SeqCst), 1);
//! # }
//! ```

use std::time::Duration;

pub(crate) mod verifier;

#[cfg(feature = "tracing")]
pub(crate) use self::verifier::take_hit;
#[cfg(feature = "introspection")]
pub(crate) use self::verifier::{CacheConfig, TokenCache};
#[cfg(doc)]
use mcp_auth_core::Clock;

#[cfg(doc)]
use crate::{AuthInfo, CachedVerifier, CachedVerifierBuilder, TokenVerifier, VerifyErrorKind};

/// Default maximum number of cached tokens.
pub const DEFAULT_CAPACITY: u64 = 10_000;
/// Default longest time a verified token stays cached (it never stays past its `exp`).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(5 * 60);
/// Default time a bad-token verdict stays cached.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);
