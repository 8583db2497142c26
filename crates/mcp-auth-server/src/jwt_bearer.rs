//! The JWT bearer grant (RFC 7523 §2.1, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`)
//! for assertions from issuers the deployment trusts: identity assertion grants (ID-JAG,
//! enterprise-managed authorization, SEP-990) and workload tokens (workload identity
//! federation, SEP-1933). Configure each issuer with a [`JwtBearerIssuer`] and
//! [`AuthorizationServerBuilder::jwt_bearer_issuer`](crate::AuthorizationServerBuilder::jwt_bearer_issuer).
//!
//! Rules of a request (feature `jwt-assertions`):
//! 1. The client authenticates first, as for every grant (a secret, `private_key_jwt`, or only
//!    its `client_id` for a public client); then the assertion's (unverified) `iss` picks the
//!    trusted issuer: none is `invalid_grant`.
//! 2. Who may present it: for an ID-JAG issuer, a confidential client (a public one is
//!    `unauthorized_client`) among the issuer's [`client`](JwtBearerIssuer::client)s when it
//!    lists any; for a workload issuer, one of its listed clients (`unauthorized_client`
//!    otherwise).
//! 3. The signature verifies with the issuer's keys (asymmetric algorithms only: `none` and
//!    HMAC are refused); the header `typ` is `oauth-id-jag+jwt` for an ID-JAG, `JWT` or absent
//!    for a workload token. Then the claims: `iss`, `aud` = this server
//!    (issuer or token endpoint), `exp` present and at most
//!    [`max_lifetime`](JwtBearerIssuer::max_lifetime) ahead, `nbf`/`iat` not in the future, and
//!    `jti` present. An ID-JAG's `client_id` claim must be the authenticated client. The
//!    subject is the [`subject_claim`](JwtBearerIssuer::subject_claim) (default `sub`), after
//!    the issuer's [`subject_prefix`](JwtBearerIssuer::subject_prefix), if any. Any
//!    failure is `invalid_grant` (400); an unreachable key set is 503.
//! 4. The resource: the `resource` parameter, else an ID-JAG's `resource` claim, else the
//!    server's default. It must be one the issuer allows (all the server's by default), one an
//!    ID-JAG's `resource` claim names when it has one, and one the server and the client may
//!    get tokens for: otherwise `invalid_target`.
//! 5. The scope: what was asked (the `scope` parameter, else an ID-JAG's `scope` claim, else
//!    everything allowed), intersected with what the issuer allows (and an ID-JAG's `scope`
//!    claim, when present). Unknown scopes are `invalid_scope`; an empty result too.
//! 6. Last, `jti` is used once (remembered until `exp` in this process's memory; unless
//!    [`allow_reuse`](JwtBearerIssuer::allow_reuse)): a replay is `invalid_grant`.
//! 7. The answer is an access token for the subject (`sub`), the client (`client_id`), the scope
//!    and the resource; no refresh token (the client presents a new assertion).

use std::fmt;
use std::time::Duration;

use mcp_auth_core::{ResourceId, ScopeSet};

use crate::error::ConfigError;

/// The grant type URN.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `typ` of an identity assertion grant.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// What an issuer's assertions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionKind {
    /// Identity Assertion JWT Authorization Grants from an enterprise IdP (SEP-990): `typ`
    /// `oauth-id-jag+jwt`, bound to a client by their `client_id` claim.
    IdJag,
    /// Workload tokens from a platform (Kubernetes, a cloud, a CI system; SEP-1933): `typ` `JWT`
    /// or none, presented by the clients the issuer lists.
    Workload,
}

/// Where an issuer's signing keys come from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum IssuerKeys {
    /// The `jwks_uri` of the issuer's metadata (RFC 8414, then OpenID Connect Discovery).
    Discover,
    /// A JWK Set URL, fetched and cached by `mcp-auth-jwt`'s `RemoteJwks`.
    JwksUri(String),
    /// A fixed JWK Set (`{"keys": [...]}`).
    Static(serde_json::Value),
}

/// An issuer whose assertions the JWT bearer grant accepts, with what they may obtain.
///
/// # Example
///
/// ```
/// use mcp_auth_server::jwt_bearer::JwtBearerIssuer;
/// use mcp_auth_server::{AuthorizationServer, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = AuthorizationServer::builder("https://mcp.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .scopes(["mcp:tools", "notes:read"])
///     // Enterprise-managed authorization: the company IdP issues ID-JAGs.
///     .jwt_bearer_issuer(
///         JwtBearerIssuer::id_jag("https://idp.example.com")
///             .jwks_uri("https://idp.example.com/jwks")
///             .subject_claim("email")
///             .scopes(["mcp:tools", "notes:read"]),
///     )
///     // Workload identity: the cluster's service account tokens, for one client.
///     .jwt_bearer_issuer(
///         JwtBearerIssuer::workload("https://kubernetes.default.svc")
///             .jwks_uri("https://kubernetes.example.com/openid/v1/jwks")
///             .client("nightly-report")
///             .scopes(["notes:read"]),
///     )
///     .store(MemoryStore::new())
///     .build()
///     .await?;
/// assert!(server.metadata().grant_types_supported.iter().any(|g| g.ends_with("jwt-bearer")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct JwtBearerIssuer {
    pub(crate) kind: AssertionKind,
    pub(crate) issuer: String,
    pub(crate) keys: IssuerKeys,
    pub(crate) subject_claim: String,
    pub(crate) subject_prefix: String,
    pub(crate) resources: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) clients: Vec<String>,
    pub(crate) max_lifetime: Duration,
    pub(crate) single_use: bool,
}

impl fmt::Debug for JwtBearerIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearerIssuer")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("subject_claim", &self.subject_claim)
            .field("subject_prefix", &self.subject_prefix)
            .field("resources", &self.resources)
            .field("scopes", &self.scopes)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl JwtBearerIssuer {
    fn new(kind: AssertionKind, issuer: impl Into<String>) -> Self {
        Self {
            kind,
            issuer: issuer.into(),
            keys: IssuerKeys::Discover,
            subject_claim: "sub".to_owned(),
            subject_prefix: String::new(),
            resources: Vec::new(),
            scopes: Vec::new(),
            clients: Vec::new(),
            max_lifetime: Duration::from_secs(3600),
            single_use: true,
        }
    }

    /// An enterprise IdP issuing ID-JAGs (`iss` = `issuer`, exactly). Keys: its metadata's
    /// `jwks_uri` unless [`jwks_uri`](Self::jwks_uri) or [`jwks`](Self::jwks) says otherwise.
    pub fn id_jag(issuer: impl Into<String>) -> Self {
        Self::new(AssertionKind::IdJag, issuer)
    }

    /// A platform issuing workload tokens (`iss` = `issuer`, exactly). Name the clients that may
    /// present them with [`client`](Self::client) (at least one).
    pub fn workload(issuer: impl Into<String>) -> Self {
        Self::new(AssertionKind::Workload, issuer)
    }

    /// The issuer's JWK Set URL (https, or http on loopback).
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.keys = IssuerKeys::JwksUri(uri.into());
        self
    }

    /// A fixed JWK Set (`{"keys": [...]}`), e.g. from the deployment's configuration.
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.keys = IssuerKeys::Static(jwks);
        self
    }

    /// The claim whose string value becomes the token's subject (default `sub`; e.g. `email`).
    pub fn subject_claim(mut self, claim: impl Into<String>) -> Self {
        self.subject_claim = claim.into();
        self
    }

    /// Put `prefix` before every subject from this issuer (default: none), e.g. `workload:` so
    /// that a workload's `sub` can never be taken for a user of the same name (whose consents,
    /// grants and upstream tokens are keyed by subject). Leave it empty for an enterprise IdP
    /// whose users are the ones who also sign in here through it.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// A resource its assertions may obtain tokens for (repeatable); default: every resource
    /// of the server.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The scopes its assertions may obtain (each one the server knows); the issued scope is
    /// what was asked intersected with these. Required.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// A client that may present its assertions (repeatable). For a workload issuer, required;
    /// a listed client the store does not hold is registered as a public client for this grant
    /// only. For an ID-JAG issuer, optional: without a list, any confidential client the
    /// assertion's `client_id` claim names.
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.clients.push(client_id.into());
        self
    }

    /// The longest time ahead an assertion's `exp` may be (default 1 hour, at most 24 hours):
    /// remembered `jti`s are kept that long.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Accept an assertion more than once until it expires (and without a `jti`): for platforms
    /// whose workload token is re-read from a file and presented for every new access token.
    /// Default: single use.
    pub fn allow_reuse(mut self) -> Self {
        self.single_use = false;
        self
    }

    /// Check the issuer against the server's configuration.
    pub(crate) fn check(
        self,
        config: &crate::config::Config,
        clock: std::sync::Arc<dyn mcp_auth_core::Clock>,
    ) -> Result<TrustedIssuer, ConfigError> {
        use mcp_auth_jwt::{
            HeaderPolicy, JwksLocation, JwsAlgorithm, JwsVerifier, KeySet, KeySource, RemoteJwks,
            RemoteTiming,
        };
        let invalid = |why: String| ConfigError::Invalid(why.into());
        let name = self.issuer.clone();
        if url::Url::parse(&name).is_err() {
            return Err(invalid(format!(
                "JWT bearer issuer {name:?}: the issuer must be a URL"
            )));
        }
        if self.subject_prefix.len() > 64 || self.subject_prefix.chars().any(char::is_control) {
            return Err(invalid(format!(
                "JWT bearer issuer {name:?}: the subject prefix is at most 64 characters, without control characters"
            )));
        }
        if self.subject_claim.is_empty() {
            return Err(invalid(format!(
                "JWT bearer issuer {name:?}: the subject claim is empty"
            )));
        }
        if self.max_lifetime.is_zero() || self.max_lifetime > Duration::from_secs(86_400) {
            return Err(ConfigError::InvalidLifetime("JWT bearer assertions"));
        }
        if self.kind == AssertionKind::Workload && self.clients.is_empty() {
            return Err(invalid(format!(
                "JWT bearer issuer {name:?}: name the clients that may present its workload tokens with .client(..)"
            )));
        }
        if self.scopes.is_empty() {
            return Err(invalid(format!(
                "JWT bearer issuer {name:?}: name the scopes its assertions may obtain with .scopes(..)"
            )));
        }
        let mut scopes = ScopeSet::new();
        for raw in &self.scopes {
            let scope = mcp_auth_core::Scope::new(raw)
                .map_err(|_| ConfigError::InvalidScope(raw.clone()))?;
            if !config.scopes.contains(scope.as_str()) {
                return Err(ConfigError::InvalidScope(raw.clone()));
            }
            scopes.insert(scope);
        }
        let mut resources = Vec::new();
        for raw in &self.resources {
            let known = ResourceId::parse(raw)
                .ok()
                .and_then(|id| config.resources.iter().find(|r| **r == id))
                .ok_or_else(|| ConfigError::InvalidResource(raw.clone()))?;
            resources.push(known.clone());
        }
        let mut policy = HeaderPolicy::new(
            JwsAlgorithm::ASYMMETRIC.to_vec(),
            self.kind == AssertionKind::Workload,
        );
        if self.kind == AssertionKind::IdJag {
            policy = policy.with_typ(ID_JAG_TYP);
        } else {
            // `JWT` or no `typ`; never an access token or an ID-JAG.
            policy = policy.with_typ("jwt");
        }
        let remote = |location| {
            RemoteJwks::new(location, RemoteTiming::default(), clock.clone())
                .map_err(|e| invalid(format!("JWT bearer issuer {name:?}: {e}")))
        };
        let source = match self.keys {
            IssuerKeys::Discover => {
                KeySource::Remote(remote(JwksLocation::Discover(self.issuer.clone()))?)
            }
            IssuerKeys::JwksUri(uri) => KeySource::Remote(remote(JwksLocation::JwksUri(uri))?),
            IssuerKeys::Static(jwks) => {
                let set = jwks
                    .as_object()
                    .and_then(|doc| KeySet::from_document(doc).ok())
                    .map(|(set, _)| set)
                    .filter(|set| !set.is_empty())
                    .ok_or_else(|| {
                        invalid(format!(
                            "JWT bearer issuer {name:?}: the JWK Set has no usable key"
                        ))
                    })?;
                KeySource::Static(set)
            }
        };
        Ok(TrustedIssuer {
            kind: self.kind,
            issuer: self.issuer,
            verifier: JwsVerifier::new(policy, source, None),
            subject_claim: self.subject_claim,
            subject_prefix: self.subject_prefix,
            resources,
            scopes,
            clients: self.clients,
            max_lifetime: self.max_lifetime.as_secs(),
            single_use: self.single_use,
        })
    }
}

/// A checked [`JwtBearerIssuer`].
#[derive(Debug)]
pub(crate) struct TrustedIssuer {
    pub(crate) kind: AssertionKind,
    pub(crate) issuer: String,
    pub(crate) verifier: mcp_auth_jwt::JwsVerifier,
    pub(crate) subject_claim: String,
    pub(crate) subject_prefix: String,
    pub(crate) resources: Vec<ResourceId>,
    pub(crate) scopes: ScopeSet,
    pub(crate) clients: Vec<String>,
    pub(crate) max_lifetime: u64,
    pub(crate) single_use: bool,
}
