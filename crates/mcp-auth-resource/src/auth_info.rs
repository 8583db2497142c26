//! What a verified token says: [`AuthInfo`].

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mcp_auth_core::ScopeSet;

/// The identity and grants of a verified access token.
///
/// The bearer layer puts one into the request extensions for every authenticated request; handlers
/// read it with the [`Auth`](crate::Auth) extractor (feature `axum`) or from
/// `request.extensions()`. Cloning is cheap (reference counts): a cached token's `AuthInfo` is shared
/// by every request that presents the token, never copied. It never holds the token itself.
///
/// # Example
///
/// ```
/// use mcp_auth_resource::AuthInfo;
///
/// let info = AuthInfo::builder()
///     .subject("user-1")
///     .client_id("client-1")
///     .scopes("mcp:tools files:read".parse()?)
///     .build();
/// assert!(info.has_scope("mcp:tools"));
/// assert_eq!(info.subject(), Some("user-1"));
/// # Ok::<(), mcp_auth_core::InvalidScope>(())
/// ```
#[derive(Clone)]
pub struct AuthInfo {
    /// The verified token's information, shared with the token cache.
    inner: Arc<Inner>,
    /// The bearer layer that admitted the request (for the extractors' challenges): carried
    /// here rather than as an extension of its own, which would cost an allocation per request.
    layer: Option<Arc<crate::bearer::Config>>,
}

impl PartialEq for AuthInfo {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

#[derive(Clone, Default, PartialEq)]
struct Inner {
    /// Shared with the [`Subject`](mcp_auth_core::Subject) the bearer layer may insert, so that
    /// insertion is a reference-count increment, not a copy per request.
    subject: Option<mcp_auth_core::Subject>,
    client_id: Option<String>,
    issuer: Option<String>,
    audience: Vec<String>,
    scopes: ScopeSet,
    expires_at: Option<u64>,
    issued_at: Option<u64>,
    jwt_id: Option<String>,
    claims: serde_json::Map<String, serde_json::Value>,
    /// Values derived from the others on first use, then shared by every request the answer
    /// serves.
    derived: Derived,
}

/// What [`Inner`] computes once, lazily. Always equal: it follows from the other fields.
#[derive(Clone, Default)]
struct Derived {
    /// [`AuthInfo::subject_hash`], as ASCII hex digits.
    subject_hash: OnceLock<Option<[u8; SUBJECT_HASH_LEN]>>,
    /// The session binder's owner key (`mcp::session`).
    owner: OnceLock<Option<[u8; 32]>>,
    /// Whether the claims hold a `cnf.jkt` (a DPoP-bound token).
    dpop_bound: OnceLock<bool>,
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Hex digits in [`AuthInfo::subject_hash`].
const SUBJECT_HASH_LEN: usize = 16;

impl AuthInfo {
    /// Starts an `AuthInfo`; verifiers use this, and so can tests.
    pub fn builder() -> AuthInfoBuilder {
        AuthInfoBuilder(Inner::default())
    }

    /// `sub`: the resource owner (user) or, for client credentials, the client.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.inner
            .subject
            .as_ref()
            .map(mcp_auth_core::Subject::as_str)
    }

    /// `sub` as the shared [`Subject`](mcp_auth_core::Subject) of `mcp-auth-core` (cloning it
    /// is a reference-count increment), for code that takes a `Subject`. The bearer layer
    /// inserts it into the request extensions on its own only with
    /// [`with_subject_extension`](crate::BearerAuthLayer::with_subject_extension).
    #[must_use]
    pub fn shared_subject(&self) -> Option<&mcp_auth_core::Subject> {
        self.inner.subject.as_ref()
    }

    /// A short, stable pseudonym of the subject for logs and metrics: the first 8 bytes of
    /// SHA-256(`sub`) in hex ([`SubjectHash`](mcp_auth_core::SubjectHash), the same pseudonym the
    /// authorization server's spans record), or `None` without a subject. The bearer layer records it in its span
    /// (field `sub_hash`) instead of the subject.
    ///
    /// Computed on first use and kept: a cached token's `AuthInfo` is shared, so this runs once
    /// per verified token, not per request. It is a pseudonym, not a secret: a guessable
    /// subject (an e-mail address) can be found from it by trying candidates.
    #[must_use]
    pub fn subject_hash(&self) -> Option<&str> {
        let hex = self.inner.derived.subject_hash.get_or_init(|| {
            let subject = self.subject()?;
            Some(mcp_auth_core::SubjectHash::of(subject).hex_digits())
        });
        hex.as_ref().and_then(|hex| std::str::from_utf8(hex).ok())
    }

    /// The session binder's owner key of this token, computed by `owner` on first use and kept
    /// (so a repeated token costs no hash per request).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) fn owner_key(
        &self,
        owner: impl FnOnce(&Self) -> Option<[u8; 32]>,
    ) -> Option<[u8; 32]> {
        *self.inner.derived.owner.get_or_init(|| owner(self))
    }

    /// The same information, as admitted by the bearer layer with `config`.
    pub(crate) fn admitted_by(self, config: &Arc<crate::bearer::Config>) -> Self {
        Self {
            inner: self.inner,
            layer: Some(Arc::clone(config)),
        }
    }

    /// The bearer layer that admitted the request, if one did.
    #[cfg_attr(not(any(feature = "axum", feature = "mcp")), allow(dead_code))]
    pub(crate) fn layer(&self) -> Option<&Arc<crate::bearer::Config>> {
        self.layer.as_ref()
    }

    /// The client the token was issued to (`client_id`, else `azp`).
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// `iss`.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// `aud`, as a list.
    #[must_use]
    pub fn audience(&self) -> &[String] {
        &self.inner.audience
    }

    /// The granted scopes.
    #[must_use]
    pub fn scopes(&self) -> &ScopeSet {
        &self.inner.scopes
    }

    /// Whether `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.contains(scope)
    }

    /// `exp`, in seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at_unix(&self) -> Option<u64> {
        self.inner.expires_at
    }

    /// `exp`, as a time.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner
            .expires_at
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    /// `iat`, in seconds since the Unix epoch.
    #[must_use]
    pub fn issued_at_unix(&self) -> Option<u64> {
        self.inner.issued_at
    }

    /// `jti`.
    #[must_use]
    pub fn jwt_id(&self) -> Option<&str> {
        self.inner.jwt_id.as_deref()
    }

    /// `cnf.jkt`: the JWK SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449
    /// §6), or `None` for a bearer token.
    #[must_use]
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.inner.claims.get("cnf")?.get("jkt")?.as_str()
    }

    /// Whether the token is bound to a DPoP key ([`dpop_jkt`](Self::dpop_jkt) is `Some`);
    /// looked up in the claims once, then kept (the bearer layer asks on every request).
    pub(crate) fn is_dpop_bound(&self) -> bool {
        *self
            .inner
            .derived
            .dpop_bound
            .get_or_init(|| self.dpop_jkt().is_some())
    }

    /// Every claim of the token (or every member of the introspection response).
    #[must_use]
    pub fn claims(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.inner.claims
    }

    /// One claim.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        self.inner.claims.get(name)
    }
}

impl fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims are left out: they may carry personal data. The token is never stored here.
        f.debug_struct("AuthInfo")
            .field("subject", &self.subject())
            .field("client_id", &self.inner.client_id)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("scopes", &self.inner.scopes)
            .field("expires_at", &self.inner.expires_at)
            .field("jwt_id", &self.inner.jwt_id)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AuthInfo`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthInfoBuilder(Inner);

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field(
                "subject",
                &self.subject.as_ref().map(mcp_auth_core::Subject::as_str),
            )
            .finish_non_exhaustive()
    }
}

impl AuthInfoBuilder {
    /// Sets `sub`.
    pub fn subject(mut self, v: impl Into<String>) -> Self {
        self.0.subject = Some(mcp_auth_core::Subject::new(v.into()));
        self
    }
    /// Sets the client id.
    pub fn client_id(mut self, v: impl Into<String>) -> Self {
        self.0.client_id = Some(v.into());
        self
    }
    /// Sets `iss`.
    pub fn issuer(mut self, v: impl Into<String>) -> Self {
        self.0.issuer = Some(v.into());
        self
    }
    /// Sets `aud`.
    pub fn audience(mut self, v: Vec<String>) -> Self {
        self.0.audience = v;
        self
    }
    /// Sets the granted scopes.
    pub fn scopes(mut self, v: ScopeSet) -> Self {
        self.0.scopes = v;
        self
    }
    /// Sets `exp` (seconds since the epoch).
    pub fn expires_at(mut self, v: u64) -> Self {
        self.0.expires_at = Some(v);
        self
    }
    /// Sets `iat` (seconds since the epoch).
    pub fn issued_at(mut self, v: u64) -> Self {
        self.0.issued_at = Some(v);
        self
    }
    /// Sets `jti`.
    pub fn jwt_id(mut self, v: impl Into<String>) -> Self {
        self.0.jwt_id = Some(v.into());
        self
    }
    /// Sets all claims.
    pub fn claims(mut self, v: serde_json::Map<String, serde_json::Value>) -> Self {
        self.0.claims = v;
        self
    }
    /// Binds the token to a DPoP key: sets the `cnf.jkt` claim (see [`AuthInfo::dpop_jkt`]).
    /// Call it after [`claims`](Self::claims), which replaces every claim.
    pub fn dpop_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.0
            .claims
            .insert("cnf".to_owned(), serde_json::json!({ "jkt": jkt.into() }));
        self
    }
    /// Finishes.
    #[must_use]
    pub fn build(self) -> AuthInfo {
        AuthInfo {
            inner: Arc::new(self.0),
            layer: None,
        }
    }
}
