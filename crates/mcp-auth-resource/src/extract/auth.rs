//! [`Auth`]: the verified token of the request.

use std::{fmt, ops::Deref, sync::Arc};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::{Extensions, request::Parts};
use mcp_auth_core::ScopeSet;

use super::rejection::{AuthRejection, InsufficientScope, MissingBearerLayer, MissingToken};
use crate::{Anonymous, AuthInfo, ProtectedResource, bearer::Config, bearer::LayerContext};

/// Extracts the [`AuthInfo`] the [`BearerAuthLayer`](crate::BearerAuthLayer) attached to the
/// request; derefs to it.
///
/// | The layer… | `Auth` | `Option<Auth>` |
/// | --- | --- | --- |
/// | accepted a token | `Auth` | `Some(Auth)` |
/// | let an anonymous request through ([`optional`](crate::BearerAuthLayer::optional) mode) | 401 [`MissingToken`] | `None` |
/// | did not run for this route | 500 [`MissingBearerLayer`] | 500 [`MissingBearerLayer`] |
///
/// A request with a bad token never gets here: the layer has already answered it.
///
/// [`require`](Self::require) checks scopes at run time and gives the same 403 step-up challenge
/// as [`RequireScope`](super::RequireScope). See the [module docs](super) for an example.
#[derive(Clone)]
pub struct Auth {
    info: AuthInfo,
    context: Arc<Config>,
}

impl Auth {
    /// The verified token's information.
    #[must_use]
    pub const fn info(&self) -> &AuthInfo {
        &self.info
    }

    /// Unwraps the [`AuthInfo`].
    #[must_use]
    pub fn into_inner(self) -> AuthInfo {
        self.info
    }

    /// The protected resource the layer guards.
    #[must_use]
    pub fn resource(&self) -> &ProtectedResource {
        &self.context.resource
    }

    /// Checks that the token grants every scope of `scopes`.
    ///
    /// # Errors
    ///
    /// [`InsufficientScope`], which answers 403 with a step-up challenge naming the granted
    /// scopes still relevant here, the layer's required scopes and `scopes`
    /// ([`ProtectedResource::step_up_scopes`]).
    pub fn require(&self, scopes: &ScopeSet) -> Result<(), InsufficientScope> {
        if self.info.scopes().contains_all(scopes) {
            Ok(())
        } else {
            Err(self.insufficient_scope(scopes))
        }
    }

    /// The scopes a 403 for an operation that requires `required` would challenge with: the
    /// layer's scope floor and `required`, plus the granted scopes still relevant
    /// ([`ProtectedResource::step_up_scopes`]).
    #[cfg(feature = "rmcp")]
    pub(super) fn step_up_scopes(&self, required: &ScopeSet) -> ScopeSet {
        let required = self.context.required_scopes.union(required);
        self.context
            .resource
            .step_up_scopes(self.info.scopes(), &required)
    }

    /// The 403 rejection for an operation that requires `required`.
    pub(super) fn insufficient_scope(&self, required: &ScopeSet) -> InsufficientScope {
        let challenge = self
            .context
            .insufficient_scope_challenge(self.info.scopes(), required);
        InsufficientScope::new(challenge, required.clone())
    }
}

impl Deref for Auth {
    type Target = AuthInfo;

    fn deref(&self) -> &AuthInfo {
        &self.info
    }
}

impl AsRef<AuthInfo> for Auth {
    fn as_ref(&self) -> &AuthInfo {
        &self.info
    }
}

impl From<Auth> for AuthInfo {
    fn from(auth: Auth) -> Self {
        auth.info
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Auth").field(&self.info).finish()
    }
}

/// What the layer left in the extensions.
pub(super) enum Lookup<'a> {
    Authenticated(Auth),
    Anonymous(&'a Config),
}

pub(super) fn lookup(extensions: &Extensions) -> Result<Lookup<'_>, MissingBearerLayer> {
    let Some(context) = LayerContext::of(extensions) else {
        return Err(MissingBearerLayer);
    };
    if let Some(info) = extensions.get::<AuthInfo>() {
        return Ok(Lookup::Authenticated(Auth {
            info: info.clone(),
            context: Arc::clone(context),
        }));
    }
    if extensions.get::<Anonymous>().is_some() {
        return Ok(Lookup::Anonymous(context));
    }
    Err(MissingBearerLayer)
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match lookup(&parts.extensions)? {
            Lookup::Authenticated(auth) => Ok(auth),
            Lookup::Anonymous(config) => {
                Err(MissingToken::new(config.resource.missing_token_challenge().clone()).into())
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Auth {
    type Rejection = MissingBearerLayer;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match lookup(&parts.extensions)? {
            Lookup::Authenticated(auth) => Ok(Some(auth)),
            Lookup::Anonymous(_) => Ok(None),
        }
    }
}
