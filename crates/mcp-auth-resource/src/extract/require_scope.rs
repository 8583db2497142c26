//! [`RequireScope`]: type-level scopes, checked at compile time.

use std::{any::type_name, fmt, marker::PhantomData, ops::Deref};

use axum::extract::FromRequestParts;
use http::request::Parts;
use mcp_auth_core::{Scope, ScopeSet};

use super::{Auth, rejection::RequireScopeRejection};
use crate::AuthInfo;

/// A list of scopes, as a type: what [`RequireScope`] requires.
///
/// Define one with [`scopes!`](crate::scopes), which checks every scope token at compile time.
/// A hand-written implementation is checked too, when `RequireScope` is compiled for it:
///
/// ```compile_fail
/// use axum::extract::FromRequestParts;
/// use mcp_auth_resource::{RequireScope, ScopeList};
///
/// struct Bad;
/// impl ScopeList for Bad {
///     const SCOPES: &'static [&'static str] = &["mcp admin"];
/// }
///
/// let (mut parts, ()) = http::Request::new(()).into_parts();
/// let _ = <RequireScope<Bad> as FromRequestParts<()>>::from_request_parts(&mut parts, &());
/// ```
pub trait ScopeList: Send + Sync + 'static {
    /// The scopes; all of them are required. Each must be an RFC 6749 §3.3 scope token.
    const SCOPES: &'static [&'static str];

    /// The scopes as a [`ScopeSet`], e.g. to build a
    /// [`ProtectedResource`](crate::ProtectedResource)'s `scopes_supported` from the same source.
    #[must_use]
    fn scope_set() -> ScopeSet {
        Self::SCOPES
            .iter()
            .filter_map(|s| Scope::new(s).ok())
            .collect()
    }
}

/// Whether every entry is a valid scope token; `const` so it runs at compile time.
#[doc(hidden)]
#[must_use]
pub const fn __all_scope_tokens(scopes: &[&str]) -> bool {
    let mut i = 0;
    while i < scopes.len() {
        if !mcp_auth_core::is_scope_token(scopes[i]) {
            return false;
        }
        i += 1;
    }
    true
}

#[doc(hidden)]
pub use mcp_auth_core::is_scope_token as __is_scope_token;

/// Defines unit types that implement [`ScopeList`], for [`RequireScope`].
///
/// Each scope token is checked at compile time (RFC 6749 §3.3: non-empty, visible ASCII, no
/// space, `"` or `\`). Several scopes in one type are all required. Each type also converts
/// into a [`ScopeSet`](crate::ScopeSet) (`From`), so it can configure
/// [`ToolScopesLayer::tool`](crate::ToolScopesLayer::tool) directly. Needs feature `axum`.
///
/// ```
/// mcp_auth_resource::scopes! {
///     /// Administrative tools.
///     pub Admin = "mcp:admin";
///     /// Reading and writing files.
///     pub(crate) FilesRw = "files:read", "files:write";
/// }
///
/// use mcp_auth_resource::ScopeList;
/// assert_eq!(Admin::SCOPES, ["mcp:admin"]);
/// assert_eq!(FilesRw::scope_set().to_string(), "files:read files:write");
/// ```
///
/// An invalid scope token does not compile:
///
/// ```compile_fail
/// mcp_auth_resource::scopes!(pub Bad = "mcp admin");
/// ```
///
/// ```compile_fail
/// mcp_auth_resource::scopes!(pub Quoted = "mcp:tools", "\"admin\"");
/// ```
///
/// ```compile_fail
/// mcp_auth_resource::scopes!(pub Empty = "");
/// ```
#[macro_export]
macro_rules! scopes {
    ($( $(#[$meta:meta])* $vis:vis $name:ident = $($scope:literal),+ $(,)? );+ $(;)?) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            $vis struct $name;

            impl $crate::ScopeList for $name {
                const SCOPES: &'static [&'static str] = &[$($scope),+];
            }

            impl ::core::convert::From<$name> for $crate::ScopeSet {
                fn from(_: $name) -> Self {
                    <$name as $crate::ScopeList>::scope_set()
                }
            }

            const _: () = {
                $(
                    ::core::assert!(
                        $crate::extract::__is_scope_token($scope),
                        ::core::concat!(
                            "`", $scope, "` is not a valid OAuth scope token ",
                            "(RFC 6749 section 3.3: non-empty visible ASCII without space, '\"' or '\\')",
                        ),
                    );
                )+
            };
        )+
    };
}

/// Extracts the verified token like [`Auth`], and requires every scope of `S`.
///
/// | The request… | Response |
/// | --- | --- |
/// | has a token that grants all of `S::SCOPES` | the handler runs |
/// | has a token that lacks one | 403 [`InsufficientScope`](super::InsufficientScope), `WWW-Authenticate: Bearer error="insufficient_scope", scope="<step-up>", resource_metadata="…"` and a JSON body |
/// | has no token (optional layer) | 401 [`MissingToken`](super::MissingToken) |
/// | did not pass the bearer layer | 500 [`MissingBearerLayer`](super::MissingBearerLayer) |
///
/// The step-up `scope` follows [`ProtectedResource::step_up_scopes`](crate::ProtectedResource::step_up_scopes)
/// with the layer's required scopes and `S::SCOPES` as the required set: the granted scopes
/// still relevant here, then the missing ones, so one consent is enough.
///
/// ```
/// use mcp_auth_resource::{RequireScope, scopes};
///
/// scopes!(pub Admin = "mcp:admin");
///
/// async fn admin_tool(auth: RequireScope<Admin>) -> String {
///     format!("admin operation for {}", auth.subject().unwrap_or("?"))
/// }
/// # let _ = axum::routing::get::<_, _, ()>(admin_tool);
/// ```
///
/// See the [module docs](super) for a full example.
pub struct RequireScope<S> {
    auth: Auth,
    _scopes: PhantomData<fn() -> S>,
}

impl<S> RequireScope<S> {
    /// Wraps an `Auth` already checked for every scope of `S`.
    #[cfg(feature = "rmcp")]
    pub(super) const fn new(auth: Auth) -> Self {
        Self {
            auth,
            _scopes: PhantomData,
        }
    }

    /// The verified token, as [`Auth`].
    #[must_use]
    pub const fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Unwraps the [`Auth`].
    #[must_use]
    pub fn into_auth(self) -> Auth {
        self.auth
    }

    /// Unwraps the [`AuthInfo`].
    #[must_use]
    pub fn into_inner(self) -> AuthInfo {
        self.auth.into_inner()
    }
}

impl<S> Deref for RequireScope<S> {
    type Target = AuthInfo;

    fn deref(&self) -> &AuthInfo {
        self.auth.info()
    }
}

impl<S> Clone for RequireScope<S> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            _scopes: PhantomData,
        }
    }
}

impl<S> fmt::Debug for RequireScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scopes", &type_name::<S>())
            .field("auth", &self.auth)
            .finish()
    }
}

impl<St, S> FromRequestParts<St> for RequireScope<S>
where
    St: Send + Sync,
    S: ScopeList,
{
    type Rejection = RequireScopeRejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        const {
            assert!(
                __all_scope_tokens(S::SCOPES),
                "ScopeList::SCOPES holds an invalid OAuth scope token (RFC 6749 section 3.3)",
            );
        }
        let auth = <Auth as FromRequestParts<St>>::from_request_parts(parts, state).await?;
        if S::SCOPES.iter().all(|scope| auth.has_scope(scope)) {
            Ok(Self {
                auth,
                _scopes: PhantomData,
            })
        } else {
            Err(auth.insufficient_scope(&S::scope_set()).into())
        }
    }
}
