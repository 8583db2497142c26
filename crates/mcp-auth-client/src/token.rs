//! Access tokens and principals.

use std::{fmt, sync::Arc, time::SystemTime};

use http::HeaderValue;
use mcp_auth_core::{ScopeSet, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{AuthError, AuthErrorKind};

/// An access token ready to be sent: the secret value, when it expires and what it grants.
///
/// `Debug` prints `[REDACTED]` for the value; equality is constant-time.
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
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    value: Secret,
    expires_at: Option<SystemTime>,
    scopes: ScopeSet,
}

impl AccessToken {
    /// A token with no known expiry and no known scopes.
    #[must_use]
    pub fn new(value: impl Into<Secret>) -> Self {
        Self {
            value: value.into(),
            expires_at: None,
            scopes: ScopeSet::new(),
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
        }
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

    /// `Bearer <token>` as a header value marked sensitive (HTTP/2 never indexes it).
    ///
    /// # Errors
    /// [`AuthErrorKind::Protocol`] when the token has characters a header cannot carry.
    pub fn authorization_header(&self) -> Result<HeaderValue, AuthError> {
        let mut value =
            HeaderValue::try_from(format!("Bearer {}", self.value.expose())).map_err(|_| {
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
