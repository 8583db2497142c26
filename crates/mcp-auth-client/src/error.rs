//! Errors: [`AuthError`] at run time, [`ConfigError`] when a manager is built.

use std::{error::Error as StdError, fmt, sync::Arc};

use mcp_auth_core::{InvalidResourceId, InvalidScope, error::ErrorCode};

/// A mistake in configuration, found when the [`TokenManager`](crate::TokenManager) is built
/// (never on the request path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The MCP server URL is not a valid canonical resource URI.
    #[error("invalid MCP server URL: {0}")]
    ServerUrl(#[from] InvalidResourceId),
    /// A URL does not parse, or is not absolute http(s).
    #[error("invalid {what} URL")]
    InvalidUrl {
        /// Which setting.
        what: &'static str,
    },
    /// A URL uses plain http on a host that is not loopback, or on loopback without
    /// [`allow_insecure_loopback`](crate::TokenManagerBuilder::allow_insecure_loopback).
    #[error("the {what} URL must use https (plain http only on loopback, and only when allowed)")]
    InsecureUrl {
        /// Which setting.
        what: &'static str,
    },
    /// A Client ID Metadata Document URL must be https with a path (SPEC C-15); plain http is
    /// allowed on loopback with `allow_insecure_loopback`.
    #[error(
        "a client ID metadata document URL is https with a path (http only on loopback, when allowed)"
    )]
    MetadataDocumentUrl,
    /// A scope token is invalid.
    #[error(transparent)]
    Scope(#[from] InvalidScope),
    /// A number is out of its allowed range.
    #[error("{what} is out of range")]
    OutOfRange {
        /// Which setting.
        what: &'static str,
    },
    /// A header name or value for static credentials is invalid.
    #[error("invalid header for static credentials")]
    Header,
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    HttpClient,
    /// A `private_key_jwt` key or algorithm is unusable.
    #[error("the private key or its algorithm is unusable for private_key_jwt")]
    PrivateKey,
}

/// What went wrong while obtaining, refreshing or using a token. See [`AuthError::kind`].
///
/// The error is cheap to clone (the [`OAuthLayer`](crate::OAuthLayer) puts a copy into the
/// extensions of the response it gives up on) and never carries a token, code or secret.
#[derive(Clone)]
pub struct AuthError {
    kind: AuthErrorKind,
    oauth: Option<ErrorCode>,
    status: Option<u16>,
    detail: Option<&'static str>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// The class of an [`AuthError`].
///
/// The distinction that matters most is [`Rejected`](Self::Rejected) versus
/// [`Transient`](Self::Transient): a rejected refresh means the grant is gone and the user must
/// authorize again; a transient failure means "try again later" and never discards a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The authorization server definitely refused the grant or the client: `invalid_grant`,
    /// `invalid_client`, `unauthorized_client`, … ([`AuthError::oauth_error`] says which). A refresh
    /// that ends this way leads to re-authorization.
    Rejected,
    /// A network error, a timeout, a 5xx or a 429, after the configured retries. Nothing was
    /// discarded; try again later.
    Transient,
    /// No protected resource metadata or authorization server metadata could be found or used.
    Discovery,
    /// The protected resource metadata names another resource (different origin or unrelated path,
    /// SPEC C-7).
    ResourceMismatch,
    /// An `issuer` differs from the one expected: in authorization server metadata (RFC 8414 §3.3)
    /// or in the authorization response's `iss` parameter (RFC 9207), or `iss` is missing although
    /// the server advertises it.
    IssuerMismatch,
    /// The authorization server does not advertise PKCE `S256` (SPEC C-11).
    PkceUnsupported,
    /// No way to register: no pre-registered credentials, no usable Client ID Metadata Document,
    /// no registration endpoint; or dynamic registration was refused.
    Registration,
    /// The authorization response carried an `error` (e.g. `access_denied`), see
    /// [`AuthError::oauth_error`].
    AuthorizationDenied,
    /// The authorization response never arrived, or was unusable (no `code`), within the timeout.
    Callback,
    /// Authorization is needed but the manager is not interactive.
    InteractionRequired,
    /// Step-up was attempted as many times as allowed for this operation (SPEC C-30).
    StepUpLimit,
    /// A URL is not allowed: not https (plain http only on loopback and only when allowed), a
    /// dangerous scheme, or a link-local address (SPEC C-9, C-10).
    InsecureUrl,
    /// A server answered something this crate cannot use (malformed JSON, no `access_token`, a
    /// token type other than `Bearer`, an unexpected status).
    Protocol,
    /// The token store failed.
    Store,
    /// The browser could not be opened.
    Browser,
    /// DPoP (RFC 9449) could not be used: a server asked for a new `DPoP-Nonce` again right after
    /// the one retry, sent a malformed `DPoP-Nonce`, or an MCP server demands DPoP-bound tokens
    /// that its authorization server does not issue (no `dpop_signing_alg_values_supported` with
    /// `ES256`, or DPoP turned off). Nothing was discarded.
    Dpop,
}

impl AuthError {
    /// An error of `kind`.
    #[must_use]
    pub const fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            oauth: None,
            status: None,
            detail: None,
            source: None,
        }
    }

    /// The class of the error.
    #[must_use]
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The OAuth error code the server answered with, if any.
    #[must_use]
    pub fn oauth_error(&self) -> Option<&ErrorCode> {
        self.oauth.as_ref()
    }

    /// The HTTP status of the response that caused the error, if any.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether the authorization server definitely refused ([`AuthErrorKind::Rejected`]).
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        self.kind == AuthErrorKind::Rejected
    }

    /// Whether trying again later may succeed ([`AuthErrorKind::Transient`]).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.kind == AuthErrorKind::Transient
    }

    pub(crate) fn with_oauth(mut self, code: ErrorCode) -> Self {
        self.oauth = Some(code);
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

impl From<AuthErrorKind> for AuthError {
    fn from(kind: AuthErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AuthError");
        d.field("kind", &self.kind);
        if let Some(code) = &self.oauth {
            d.field("oauth_error", code);
        }
        if let Some(status) = self.status {
            d.field("status", &status);
        }
        if let Some(detail) = self.detail {
            d.field("detail", &detail);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.kind {
            AuthErrorKind::Rejected => "the authorization server rejected the grant",
            AuthErrorKind::Transient => "the authorization server could not be reached",
            AuthErrorKind::Discovery => "authorization metadata could not be discovered",
            AuthErrorKind::ResourceMismatch => {
                "the protected resource metadata names another resource"
            }
            AuthErrorKind::IssuerMismatch => "the issuer does not match",
            AuthErrorKind::PkceUnsupported => {
                "the authorization server does not advertise PKCE S256"
            }
            AuthErrorKind::Registration => "the client could not be registered",
            AuthErrorKind::AuthorizationDenied => "the authorization request was denied",
            AuthErrorKind::Callback => "no usable authorization response was received",
            AuthErrorKind::InteractionRequired => "authorization requires user interaction",
            AuthErrorKind::StepUpLimit => "the step-up retry limit was reached",
            AuthErrorKind::InsecureUrl => "a URL is not allowed",
            AuthErrorKind::Protocol => "a server answered with an unusable response",
            AuthErrorKind::Store => "the token store failed",
            AuthErrorKind::Browser => "the browser could not be opened",
            AuthErrorKind::Dpop => "DPoP could not be used",
        };
        f.write_str(text)?;
        if let Some(detail) = self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(code) = &self.oauth {
            write!(f, " ({code})")?;
        }
        if let Some(status) = self.status {
            write!(f, " [HTTP {status}]")?;
        }
        Ok(())
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// A failure of a [`TokenStore`](crate::store::TokenStore).
#[derive(Debug, Clone, thiserror::Error)]
#[error("token store: {what}")]
pub struct StoreError {
    what: &'static str,
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl StoreError {
    /// A store error described by a fixed text.
    #[must_use]
    pub const fn new(what: &'static str) -> Self {
        Self { what, source: None }
    }

    /// A store error with an underlying cause (an I/O error, a database error).
    #[must_use]
    pub fn with_source(what: &'static str, source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            what,
            source: Some(Arc::new(source)),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::new(AuthErrorKind::Store).with_source(e)
    }
}
