//! Access tokens and principals.

use std::{fmt, sync::Arc, time::SystemTime};

use http::HeaderValue;
use mcp_auth_core::{ScopeSet, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    dpop::Binding,
    error::{AuthError, AuthErrorKind},
};

/// An access token ready to be sent: the secret value, when it expires and what it grants, and
/// — for a DPoP-bound token (RFC 9449) — the key its proofs are signed with.
///
/// A bearer token goes out as `Authorization: Bearer <token>`; a DPoP-bound one as
/// `Authorization: DPoP <token>` with a fresh proof in the `DPoP` header
/// ([`dpop_proof`](Self::dpop_proof)) on every request. `Debug` prints `[REDACTED]` for the
/// value and never the key; equality is constant-time.
///
/// # Example
///
/// ```
/// use mcp_auth_client::AccessToken;
///
/// let token = AccessToken::new("abc");
/// assert_eq!(token.authorization_header()?, "Bearer abc");
/// assert!(!format!("{token:?}").contains("abc"));
/// # Ok::<(), mcp_auth_client::AuthError>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    expires_at: Option<SystemTime>,
    scopes: ScopeSet,
    dpop: Option<Binding>,
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
            && self.expires_at == other.expires_at
            && self.scopes == other.scopes
            && self.dpop.as_ref().map(|b| b.key.thumbprint())
                == other.dpop.as_ref().map(|b| b.key.thumbprint())
    }
}

impl Eq for AccessToken {}

impl AccessToken {
    /// A token with no known expiry and no known scopes.
    #[must_use]
    pub fn new(value: impl Into<Secret>) -> Self {
        Self {
            value: value.into(),
            expires_at: None,
            scopes: ScopeSet::new(),
            dpop: None,
        }
    }

    pub(crate) fn with_details(
        value: Secret,
        expires_at: Option<SystemTime>,
        scopes: ScopeSet,
    ) -> Self {
        Self {
            value,
            expires_at,
            scopes,
            dpop: None,
        }
    }

    pub(crate) fn with_binding(mut self, binding: Option<Binding>) -> Self {
        self.dpop = binding;
        self
    }

    /// Whether the token is DPoP-bound (`token_type` `DPoP`, RFC 9449 §5): it is sent with the
    /// `DPoP` scheme and a proof.
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        self.dpop.is_some()
    }

    /// The proof to send in the `DPoP` header of a `method` request to `url`, for a DPoP-bound
    /// token (`None` for a bearer token): `htm`, `htu` (the URL without query and fragment),
    /// `iat`, a fresh `jti`, `ath` = base64url(SHA-256(token)), and the nonce the server at
    /// `url`'s origin last gave. Make a new one for every request, retries included.
    ///
    /// The [`OAuthLayer`](crate::OAuthLayer) and [`McpAuthClient`](crate::rmcp::McpAuthClient)
    /// call this for you; call it when sending requests by hand, and hand the responses to
    /// [`TokenManager::observe_dpop_nonce`](crate::TokenManager::observe_dpop_nonce).
    ///
    /// # Errors
    /// [`AuthErrorKind::Dpop`] when the proof cannot be signed.
    pub fn dpop_proof(&self, method: &str, url: &str) -> Result<Option<HeaderValue>, AuthError> {
        let Some(binding) = &self.dpop else {
            return Ok(None);
        };
        binding
            .key
            .proof(
                method,
                url,
                binding.now_unix(),
                Some(self.value.expose()),
                &binding.nonces,
            )
            .map(Some)
    }

    /// The secret value. Call this only where the value must leave the process.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// The secret value as a [`Secret`].
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.value
    }

    /// When the token expires, if the authorization server said (`expires_in`).
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The scopes granted: the token response's `scope`, or the requested scopes when the response
    /// left it out (RFC 6749 §5.1).
    #[must_use]
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// `Bearer <token>` — or `DPoP <token>` for a [DPoP-bound](Self::is_dpop) token — as a header
    /// value marked sensitive (HTTP/2 never indexes it).
    ///
    /// # Errors
    /// [`AuthErrorKind::Protocol`] when the token has characters a header cannot carry.
    pub fn authorization_header(&self) -> Result<HeaderValue, AuthError> {
        let scheme = if self.is_dpop() { "DPoP" } else { "Bearer" };
        let mut value = HeaderValue::try_from(format!("{scheme} {}", self.value.expose()))
            .map_err(|_| {
                AuthError::new(AuthErrorKind::Protocol)
                    .with_detail("the access token cannot be sent in a header")
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("dpop", &self.dpop.as_ref().map(|b| &b.key))
            .finish()
    }
}

/// On whose behalf tokens are obtained and kept: a user, an agent, a tenant, or nobody in
/// particular ([`Principal::shared`]).
///
/// Tokens are stored per principal: one principal's tokens never serve another. A
/// [`TokenManager`](crate::TokenManager) is bound to one principal;
/// [`for_principal`](crate::TokenManager::for_principal) gives a manager for another that shares
/// configuration, discovery and registration. The [`OAuthLayer`](crate::OAuthLayer) uses the
/// `Principal` found in a request's extensions, if any.
///
/// # Example
///
/// ```
/// use mcp_auth_client::Principal;
///
/// assert!(Principal::shared().is_shared());
/// assert_eq!(Principal::new("alice").id(), Some("alice"));
/// assert_ne!(Principal::new("alice"), Principal::new("bob"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Principal(Option<Arc<str>>);

impl Principal {
    /// The shared principal: tokens used by everyone who uses this manager.
    #[must_use]
    pub const fn shared() -> Self {
        Self(None)
    }

    /// A named principal (a user id, an agent id).
    #[must_use]
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Some(Arc::from(id.as_ref())))
    }

    /// The principal's id; `None` for the shared principal.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether this is the shared principal.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.0.is_none()
    }
}

impl From<&str> for Principal {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for Principal {
    fn from(id: String) -> Self {
        Self::new(id)
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_deref().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map_or_else(Self::shared, Self::new))
    }
}
