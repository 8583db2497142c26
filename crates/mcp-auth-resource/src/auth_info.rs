//! What a verified token says: [`AuthInfo`].

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mcp_auth_core::ScopeSet;

/// The identity and grants of a verified access token.
///
/// The bearer layer puts one into the request extensions for every authenticated request; handlers
/// read it with the [`Auth`](crate::extract::Auth) extractor (feature `axum`) or from
/// `request.extensions()`. Cloning is cheap (one `Arc`). It never holds the token itself.
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
#[derive(Clone, PartialEq)]
pub struct AuthInfo(Arc<Inner>);

#[derive(Clone, Default, PartialEq)]
struct Inner {
    /// Shared with the [`Subject`](mcp_auth_core::Subject) the bearer layer inserts, so that
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
}

impl AuthInfo {
    /// Starts an `AuthInfo`; verifiers use this, and so can tests.
    pub fn builder() -> AuthInfoBuilder {
        AuthInfoBuilder(Inner::default())
    }

    /// `sub`: the resource owner (user) or, for client credentials, the client.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_ref().map(mcp_auth_core::Subject::as_str)
    }

    /// The subject as the shared [`Subject`](mcp_auth_core::Subject) the bearer layer puts in
    /// the request extensions.
    pub(crate) fn subject_handle(&self) -> Option<&mcp_auth_core::Subject> {
        self.0.subject.as_ref()
    }

    /// The client the token was issued to (`client_id`, else `azp`).
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// `iss`.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// `aud`, as a list.
    #[must_use]
    pub fn audience(&self) -> &[String] {
        &self.0.audience
    }

    /// The granted scopes.
    #[must_use]
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// Whether `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }

    /// `exp`, in seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at_unix(&self) -> Option<u64> {
        self.0.expires_at
    }

    /// `exp`, as a time.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0
            .expires_at
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    /// `iat`, in seconds since the Unix epoch.
    #[must_use]
    pub fn issued_at_unix(&self) -> Option<u64> {
        self.0.issued_at
    }

    /// `jti`.
    #[must_use]
    pub fn jwt_id(&self) -> Option<&str> {
        self.0.jwt_id.as_deref()
    }

    /// `cnf.jkt`: the JWK SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449
    /// §6), or `None` for a bearer token.
    #[must_use]
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.0.claims.get("cnf")?.get("jkt")?.as_str()
    }

    /// Every claim of the token (or every member of the introspection response).
    #[must_use]
    pub fn claims(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0.claims
    }

    /// One claim.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.claims.get(name)
    }
}

impl fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims are left out: they may carry personal data. The token is never stored here.
        f.debug_struct("AuthInfo")
            .field("subject", &self.subject())
            .field("client_id", &self.0.client_id)
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .field("scopes", &self.0.scopes)
            .field("expires_at", &self.0.expires_at)
            .field("jwt_id", &self.0.jwt_id)
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
        AuthInfo(Arc::new(self.0))
    }
}
