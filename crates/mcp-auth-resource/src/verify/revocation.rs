//! [`Revocable`]: revocation checked on every request, cache hits included.

use std::{any::type_name, fmt, future::Future};

use mcp_auth_core::revocation::RevocationList;

use super::{TokenVerifier, VerifyError, VerifyErrorKind};
use crate::AuthInfo;

/// A [`TokenVerifier`] that refuses the tokens a [`RevocationList`] says are revoked, on every
/// request: revocation checked on every request, cache hits included.
///
/// Cloning clones the verifier and the list, so share a list with an `Arc` (`Arc<T>` is a
/// [`RevocationList`] when `T` is).
///
/// A JWT is checked locally, and a [`CachedVerifier`](crate::CachedVerifier) remembers a verified token until its entry
/// expires, so neither notices on its own that the authorization server revoked a token since.
/// [`Revocable`] wraps a verifier and asks a [`RevocationList`] about every token that verifier
/// accepts. An authorization server in the same process shares its list directly
/// (`mcp_auth_server::Revocations`), so a revoked token is refused on the next request.
///
/// # Rules
///
/// 1. **The inner verifier decides first.** Its errors pass through unchanged (a bad token stays
///    a bad token, an outage stays a 503) and the list is not asked.
/// 2. **Every accepted token is checked.** [`RevocationList::is_revoked`] gets the token's claims
///    ([`AuthInfo::claims`]); a revoked token is refused with
///    [`Inactive`](VerifyErrorKind::Inactive), which the [bearer layer](crate::BearerAuthLayer)
///    answers with 401 and
///    `Bearer error="invalid_token", error_description="The access token is not active", resource_metadata="…"`.
/// 3. **Both paths.** [`verify`](TokenVerifier::verify) and
///    [`verify_cached`](TokenVerifier::verify_cached) apply the check, so the bearer layer's
///    synchronous hot path (a cache hit) is covered too. A request then costs one
///    `is_revoked` call more.
/// 4. **Nothing is cached here.** The list is asked again on every request.
///
/// # Order
///
/// `Revocable` goes **outside** the cache:
/// `Revocable::new(CachedVerifier::new(JwtVerifier…), list)`. The cache answers "the signature and
/// claims were fine", and the list is asked on every request. The other way round,
/// `CachedVerifier::new(Revocable::new(…))`, asks the list only on a cache miss: a token revoked
/// after its first use stays accepted until its entry expires (up to the cache's maximum TTL).
/// The same goes for [`IntrospectionVerifier`](crate::IntrospectionVerifier),
/// which caches internally: wrap it, do not put it around the list.
///
/// The list sees only what is in [`AuthInfo::claims`]. [`JwtVerifier`](crate::JwtVerifier)
/// puts the whole payload there, and `IntrospectionVerifier` the whole response. A verifier of
/// your own must fill them with [`AuthInfoBuilder::claims`](crate::AuthInfoBuilder::claims)
/// (`jwt_id` and `subject` set on the builder are not copied into the claims).
///
/// With feature `tracing`, a revoked token is logged at DEBUG with its `sub` and `jti`. The token
/// itself is never logged.
///
/// # Example
///
/// A list that revokes by `jti`, and a token that is refused after it was revoked, although its
/// verification is cached:
///
/// ```
/// use std::sync::{
///     Arc, Mutex,
///     atomic::{AtomicUsize, Ordering},
/// };
///
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode, header::{AUTHORIZATION, WWW_AUTHENTICATE}};
/// use http_body_util::Full;
/// use mcp_auth_core::revocation::RevocationList;
/// use mcp_auth_resource::{
///     AuthInfo, BearerAuthLayer, CachedVerifier, ProtectedResource, Revocable, TokenVerifier,
///     VerifyError, VerifyErrorKind,
/// };
/// use serde_json::{Map, Value, json};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
///
/// static VERIFICATIONS: AtomicUsize = AtomicUsize::new(0);
///
/// /// One good token, `jti` "grant-1".
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl TokenVerifier for Fixed {
///     async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
///         VERIFICATIONS.fetch_add(1, Ordering::SeqCst);
///         match token {
///             "good" => {
///                 let claims = json!({"sub": "alice", "jti": "grant-1"});
///                 Ok(AuthInfo::builder()
///                     .subject("alice")
///                     .jwt_id("grant-1")
///                     .claims(claims.as_object().cloned().unwrap_or_default())
///                     .build())
///             }
///             _ => Err(VerifyErrorKind::InvalidSignature.into()),
///         }
///     }
/// }
///
/// /// Revoked `jti`s.
/// #[derive(Debug, Default)]
/// struct Denylist(Mutex<Vec<String>>);
///
/// impl RevocationList for Denylist {
///     fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
///         let revoked = self.0.lock().unwrap_or_else(|e| e.into_inner());
///         claims.get("jti").and_then(Value::as_str).is_some_and(|jti| revoked.iter().any(|r| r == jti))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .build()?;
/// let denylist = Arc::new(Denylist::default());
/// // The list outside the cache: asked on every request, cache hits included.
/// let verifier = Revocable::new(CachedVerifier::new(Fixed), Arc::clone(&denylist));
/// let mut service = ServiceBuilder::new()
///     .layer(BearerAuthLayer::new(verifier, resource))
///     .service_fn(|_: Request<Full<Bytes>>| async {
///         Ok::<_, BoxError>(Response::new(Full::<Bytes>::from("hello")))
///     });
/// let request = || {
///     Request::builder().uri("/mcp").header(AUTHORIZATION, "Bearer good").body(Full::default())
/// };
///
/// let response = service.ready().await?.call(request()?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
///
/// // The authorization server revokes the grant. The token's verification is cached (the
/// // verifier ran once), but the next request is refused.
/// denylist.0.lock().unwrap_or_else(|e| e.into_inner()).push("grant-1".to_owned());
/// let response = service.ready().await?.call(request()?).await?;
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(
///     response.headers()[WWW_AUTHENTICATE],
///     r#"Bearer error="invalid_token", error_description="The access token is not active", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
/// );
/// assert_eq!(VERIFICATIONS.load(Ordering::SeqCst), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Revocable<V, R> {
    inner: V,
    list: R,
}

impl<V, R> Revocable<V, R> {
    /// Wraps `inner`: the tokens it accepts are then checked against `list`.
    #[must_use]
    pub fn new(inner: V, list: R) -> Self {
        Self { inner, list }
    }

    /// The wrapped verifier.
    #[must_use]
    pub fn get_ref(&self) -> &V {
        &self.inner
    }

    /// The revocation list.
    #[must_use]
    pub fn list(&self) -> &R {
        &self.list
    }

    /// Unwraps the verifier, dropping the list.
    #[must_use]
    pub fn into_inner(self) -> V {
        self.inner
    }
}

impl<V, R: RevocationList> Revocable<V, R> {
    /// Refuses an accepted token that the list says is revoked (rule 2 of the module docs).
    fn check(&self, answer: Result<AuthInfo, VerifyError>) -> Result<AuthInfo, VerifyError> {
        let info = answer?;
        if self.list.is_revoked(info.claims()) {
            #[cfg(feature = "tracing")]
            tracing::debug!(
                sub = info.subject(),
                jti = info.jwt_id(),
                "revoked access token refused"
            );
            return Err(VerifyError::new(VerifyErrorKind::Inactive));
        }
        Ok(info)
    }
}

impl<V: TokenVerifier, R: RevocationList> TokenVerifier for Revocable<V, R> {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        let verify = self.inner.verify(token);
        async move { self.check(verify.await) }
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        self.inner
            .verify_cached(token)
            .map(|answer| self.check(answer))
    }

    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        self.inner.recall(token).map(|answer| self.check(answer))
    }
}

impl<V: fmt::Debug, R> fmt::Debug for Revocable<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The list's type only: its entries are none of a log's business.
        f.debug_struct("Revocable")
            .field("inner", &self.inner)
            .field("list", &type_name::<R>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use serde_json::{Map, Value, json};

    use super::*;

    /// `good` is accepted with `jti` "j-good", `revoked` with `jti` "j-revoked"; `down` is an
    /// outage and anything else a bad signature. `verify_cached` answers `cached-<token>` the
    /// same way and misses everything else.
    #[derive(Debug, Clone)]
    struct Fixed;

    fn answer(token: &str) -> Result<AuthInfo, VerifyError> {
        let jti = match token {
            "good" => "j-good",
            "revoked" => "j-revoked",
            "down" => return Err(VerifyError::unavailable(None)),
            _ => return Err(VerifyErrorKind::InvalidSignature.into()),
        };
        let claims = json!({"sub": "alice", "jti": jti});
        Ok(AuthInfo::builder()
            .subject("alice")
            .jwt_id(jti)
            .claims(claims.as_object().unwrap().clone())
            .build())
    }

    impl TokenVerifier for Fixed {
        async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
            answer(token)
        }

        fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
            token.strip_prefix("cached-").map(answer)
        }
    }

    /// Revokes `jti` "j-revoked" and counts its calls.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl RevocationList for Counting {
        fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            claims.get("jti") == Some(&json!("j-revoked"))
        }
    }

    fn kind(answer: Result<AuthInfo, VerifyError>) -> Option<VerifyErrorKind> {
        answer.err().map(|e| e.kind())
    }

    #[tokio::test]
    async fn verify_refuses_revoked_tokens_and_passes_the_rest_through() {
        let verifier = Revocable::new(Fixed, Counting::default());
        assert_eq!(kind(verifier.verify("good").await), None);
        assert_eq!(
            kind(verifier.verify("revoked").await),
            Some(VerifyErrorKind::Inactive)
        );
        assert_eq!(verifier.list().0.load(Ordering::SeqCst), 2);

        // Refusals of the inner verifier are kept, and the list is not asked.
        assert_eq!(
            kind(verifier.verify("forged").await),
            Some(VerifyErrorKind::InvalidSignature)
        );
        assert!(verifier.verify("down").await.unwrap_err().is_unavailable());
        assert_eq!(verifier.list().0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn verify_cached_refuses_revoked_tokens_and_keeps_misses() {
        let verifier = Revocable::new(Fixed, Counting::default());
        assert_eq!(verifier.verify_cached("cached-good").map(kind), Some(None));
        assert_eq!(
            verifier.verify_cached("cached-revoked").map(kind),
            Some(Some(VerifyErrorKind::Inactive))
        );
        assert_eq!(
            verifier.verify_cached("cached-down").map(kind),
            Some(Some(VerifyErrorKind::Unavailable))
        );
        // A miss stays a miss: the bearer layer then calls `verify`.
        assert!(verifier.verify_cached("good").is_none());
        assert_eq!(verifier.list().0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn debug_names_the_list_type_but_not_its_entries() {
        #[derive(Debug)]
        struct Secretive(&'static str);
        impl RevocationList for Secretive {
            fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
                claims.get("jti").and_then(Value::as_str) == Some(self.0)
            }
        }
        let verifier = Revocable::new(Fixed, Arc::new(Secretive("j-hidden")));
        let printed = format!("{verifier:?}");
        assert!(printed.contains("Revocable"), "{printed}");
        assert!(printed.contains("Secretive"), "{printed}");
        assert!(!printed.contains("j-hidden"), "{printed}");
    }

    #[test]
    fn clone_when_the_parts_are_clone() {
        fn assert_clone<T: Clone>(_: &T) {}
        let verifier = Revocable::new(Fixed, Arc::new(Counting::default()));
        assert_clone(&verifier);
        let copy = verifier.clone();
        assert!(Arc::ptr_eq(verifier.list(), copy.list()));
        let _: Fixed = copy.into_inner();
    }
}
