//! Discovery: from an MCP server URL (and perhaps a 401 challenge) to a validated authorization
//! server (SPEC C-1..C-8, C-11).
//!
//! 1. **Protected resource metadata** (RFC 9728): the `resource_metadata` URL of the challenge if
//!    there is one; otherwise the path-aware well-known URL, then the root one (SPEC C-2). A
//!    document whose `resource` is neither the MCP server URL nor a same-origin path prefix of it
//!    is refused and discovery stops ([`ResourceMismatch`](crate::AuthErrorKind::ResourceMismatch),
//!    SPEC C-7). Its `resource` string is what the client sends as `resource` on every request
//!    (RFC 8707, SPEC C-19), verbatim.
//! 2. **Authorization server**: the first of `authorization_servers` (or the first one the
//!    application has pre-registered credentials for, SPEC C-3).
//! 3. **Authorization server metadata**, in the spec's order (SPEC C-4): for an issuer with a path,
//!    RFC 8414 inserted, OIDC inserted, OIDC appended; without a path, RFC 8414 then OIDC. The root
//!    RFC 8414 URL is never probed for an issuer with a path. A 4xx or non-JSON answer moves to the
//!    next URL; a document whose `issuer` is not byte-for-byte the issuer is not used
//!    ([`IssuerMismatch`](crate::AuthErrorKind::IssuerMismatch), SPEC C-6). A server that does
//!    not list `S256` in `code_challenge_methods_supported` is refused
//!    ([`PkceUnsupported`](crate::AuthErrorKind::PkceUnsupported), SPEC C-11).
//! 4. **2025-03-26 back-compat**: when no protected resource metadata exists at all (both
//!    well-known URLs answer 4xx), the MCP server's origin is the authorization server: its
//!    `/.well-known/oauth-authorization-server` if present, else `/authorize`, `/token` and
//!    `/register` at the origin root. That revision had no issuer check, so none is made there.
//!
//! Every URL fetched or opened must be https (plain http only on loopback, and only with
//! [`allow_insecure_loopback`](crate::TokenManagerBuilder::allow_insecure_loopback)) and never a
//! link-local address; redirects are not followed (SPEC C-9, C-10).
//!
//! # Example
//!
//! ```
//! use mcp_auth_client::TokenManager;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use axum::{Json, Router, routing::get};
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let base = format!("http://{}", listener.local_addr()?);
//! # let (prm, asm) = (
//! #     serde_json::json!({"resource": format!("{base}/mcp"), "authorization_servers": [base.clone()], "scopes_supported": ["mcp:tools"]}),
//! #     serde_json::json!({"issuer": base.clone(), "authorization_endpoint": format!("{base}/authorize"),
//! #         "token_endpoint": format!("{base}/token"), "code_challenge_methods_supported": ["S256"]}),
//! # );
//! # let app = Router::new()
//! #     .route("/.well-known/oauth-protected-resource/mcp", get(move || async move { Json(prm) }))
//! #     .route("/.well-known/oauth-authorization-server", get(move || async move { Json(asm) }));
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! // An MCP server at {base}/mcp whose PRM names the authorization server {base}.
//! let manager = TokenManager::builder(&format!("{base}/mcp"))
//!     .allow_insecure_loopback(true) // plain http on 127.0.0.1, for this example
//!     .build()?;
//! let found = manager.discover().await?;
//! assert_eq!(found.issuer(), base);
//! assert_eq!(found.resource(), format!("{base}/mcp"));
//! assert_eq!(found.scopes_supported().map(|s| s.to_string()).as_deref(), Some("mcp:tools"));
//! # Ok(())
//! # }
//! ```

use mcp_auth_core::{
    ResourceId, ScopeSet,
    metadata::{AuthorizationServerMetadata, ProtectedResourceMetadata},
    well_known,
};
use url::Url;

use crate::{
    error::{AuthError, AuthErrorKind},
    fetch::{Http, Response, UrlPolicy},
};

/// What discovery found: the protected resource metadata (if any) and the validated metadata of
/// the authorization server chosen. See the [module docs](crate::discovery).
#[derive(Debug, Clone)]
pub struct Discovery {
    prm_url: Option<String>,
    prm: Option<ProtectedResourceMetadata>,
    resource: String,
    issuer: String,
    metadata: AuthorizationServerMetadata,
    legacy: bool,
}

impl Discovery {
    /// Where the protected resource metadata was found (`None` in 2025-03-26 back-compat).
    #[must_use]
    pub fn protected_resource_metadata_url(&self) -> Option<&str> {
        self.prm_url.as_deref()
    }

    /// The protected resource metadata (`None` in 2025-03-26 back-compat).
    #[must_use]
    pub fn protected_resource_metadata(&self) -> Option<&ProtectedResourceMetadata> {
        self.prm.as_ref()
    }

    /// The `resource` value sent on authorize, token and refresh requests: the PRM's `resource`
    /// verbatim, or the MCP server's canonical URI without PRM.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The authorization server's issuer, exactly as in its metadata.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The authorization server's metadata.
    #[must_use]
    pub fn authorization_server_metadata(&self) -> &AuthorizationServerMetadata {
        &self.metadata
    }

    /// The PRM's `scopes_supported`; `None` when it has none (the scope is then left out).
    #[must_use]
    pub fn scopes_supported(&self) -> Option<ScopeSet> {
        self.prm
            .as_ref()
            .filter(|p| !p.scopes_supported.is_empty())
            .and_then(|p| ScopeSet::from_tokens(&p.scopes_supported).ok())
    }

    /// Whether this is the 2025-03-26 back-compat mode (no protected resource metadata).
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}

/// Discovery settings taken from the manager's configuration.
pub(crate) struct Discoverer<'a> {
    pub(crate) http: &'a Http,
    pub(crate) policy: UrlPolicy,
    pub(crate) resource: &'a ResourceId,
    /// Issuers the application has pre-registered credentials for (preferred).
    pub(crate) preferred: &'a (dyn Fn(&str) -> bool + Send + Sync),
    /// Issuers allowed to omit `code_challenge_methods_supported` (non-conformant override).
    pub(crate) assume_s256: &'a [String],
}

/// One fetch's outcome.
enum Fetch<T> {
    Found(T),
    /// 4xx, not JSON, or not the document: try the next URL.
    Absent,
}

/// Whether a PRM `resource` names the MCP server: the exact string, or the same origin with a
/// path that is the server's path or a prefix of it at a `/` boundary (SPEC C-7 REC).
pub(crate) fn resource_matches(prm_resource: &str, mcp: &ResourceId) -> bool {
    if prm_resource == mcp.as_str() {
        return true;
    }
    let Ok(declared) = ResourceId::parse(prm_resource) else {
        return false;
    };
    if declared.origin() != mcp.origin() || declared.path().contains('?') {
        return false;
    }
    let prefix = declared.path().trim_end_matches('/');
    let path = mcp.path().split('?').next().unwrap_or_default();
    prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
}

impl Discoverer<'_> {
    pub(crate) async fn discover(
        &self,
        challenge_url: Option<&str>,
    ) -> Result<Discovery, AuthError> {
        let mut transient = None;
        let mut candidates = Vec::new();
        if let Some(url) = challenge_url {
            candidates.push(url.to_owned());
        } else {
            if !matches!(self.resource.path(), "" | "/") && !self.resource.path().starts_with('?') {
                candidates.push(well_known::protected_resource_metadata_url(self.resource));
            }
            candidates.push(well_known::root_protected_resource_metadata_url(
                self.resource,
            ));
        }
        for url in candidates {
            match self.fetch_prm(&url).await {
                Ok(Fetch::Found(prm)) => return self.with_prm(url, prm).await,
                Ok(Fetch::Absent) => {}
                Err(e) if e.is_transient() => transient = Some(e),
                Err(e) => return Err(e),
            }
        }
        if challenge_url.is_some() {
            // The advertised document is unusable; the spec lets us fall back to well-known.
            return Box::pin(self.discover(None)).await;
        }
        if let Some(e) = transient {
            return Err(e);
        }
        self.legacy().await
    }

    async fn fetch_prm(&self, url: &str) -> Result<Fetch<ProtectedResourceMetadata>, AuthError> {
        let url = self
            .policy
            .check(url)
            .map_err(|_| UrlPolicy::refused("the protected resource metadata URL"))?;
        let response = self.http.get(&url).await?;
        let Some(prm) = parse_document::<ProtectedResourceMetadata>(&response)? else {
            return Ok(Fetch::Absent);
        };
        event!(debug, url = %url, "protected resource metadata found");
        if !resource_matches(&prm.resource, self.resource) {
            event!(
                warn,
                declared = %prm.resource,
                "protected resource metadata names another resource"
            );
            return Err(AuthError::new(AuthErrorKind::ResourceMismatch));
        }
        Ok(Fetch::Found(prm))
    }

    async fn with_prm(
        &self,
        prm_url: String,
        prm: ProtectedResourceMetadata,
    ) -> Result<Discovery, AuthError> {
        let issuer = prm
            .authorization_servers
            .iter()
            .find(|i| (self.preferred)(i))
            .or_else(|| prm.authorization_servers.first())
            .cloned()
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Discovery)
                    .with_detail("the protected resource metadata names no authorization server")
            })?;
        let metadata = self.authorization_server(&issuer).await?;
        Ok(Discovery {
            prm_url: Some(prm_url),
            resource: prm.resource.clone(),
            prm: Some(prm),
            issuer,
            metadata,
            legacy: false,
        })
    }

    /// Fetches and validates an issuer's metadata (SPEC C-4, C-6, C-11).
    async fn authorization_server(
        &self,
        issuer: &str,
    ) -> Result<AuthorizationServerMetadata, AuthError> {
        self.policy
            .check(issuer)
            .map_err(|_| UrlPolicy::refused("the authorization server issuer"))?;
        let mut mismatch = false;
        let mut transient = None;
        for candidate in well_known::authorization_server_metadata_urls(issuer) {
            let Ok(url) = self.policy.check(&candidate) else {
                continue;
            };
            let response = match self.http.get(&url).await {
                Ok(r) => r,
                Err(e) if e.is_transient() => {
                    transient = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let doc = match parse_document::<AuthorizationServerMetadata>(&response) {
                Ok(Some(doc)) => doc,
                Ok(None) => continue,
                Err(e) if e.is_transient() => {
                    transient = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if doc.issuer != issuer {
                event!(
                    warn,
                    expected = %issuer,
                    "authorization server metadata names a different issuer"
                );
                mismatch = true;
                continue;
            }
            self.validate(&doc, false)?;
            return Ok(doc);
        }
        if mismatch {
            return Err(AuthError::new(AuthErrorKind::IssuerMismatch)
                .with_detail("the authorization server metadata names another issuer"));
        }
        Err(transient.unwrap_or_else(|| {
            AuthError::new(AuthErrorKind::Discovery)
                .with_detail("no authorization server metadata was found")
        }))
    }

    fn validate(&self, doc: &AuthorizationServerMetadata, legacy: bool) -> Result<(), AuthError> {
        let assumed = self.assume_s256.contains(&doc.issuer);
        let pkce_ok = doc.supports_s256()
            || assumed
            || (legacy && doc.code_challenge_methods_supported.is_empty());
        if !pkce_ok {
            return Err(AuthError::new(AuthErrorKind::PkceUnsupported));
        }
        if assumed && !doc.supports_s256() {
            event!(
                warn,
                issuer = %doc.issuer,
                "PKCE S256 assumed for an authorization server that does not advertise it (non-conformant override)"
            );
        }
        for (what, value) in [
            (
                "the authorization endpoint",
                doc.authorization_endpoint.as_deref(),
            ),
            ("the token endpoint", doc.token_endpoint.as_deref()),
        ] {
            let value =
                value.ok_or_else(|| AuthError::new(AuthErrorKind::Discovery).with_detail(what))?;
            self.policy
                .check(value)
                .map_err(|_| UrlPolicy::refused(what))?;
        }
        if let Some(reg) = &doc.registration_endpoint {
            self.policy
                .check(reg)
                .map_err(|_| UrlPolicy::refused("the registration endpoint"))?;
        }
        Ok(())
    }

    /// 2025-03-26: the MCP server's origin is the authorization server.
    async fn legacy(&self) -> Result<Discovery, AuthError> {
        let origin = self.resource.origin();
        event!(
            info,
            "no protected resource metadata; using 2025-03-26 discovery at the server origin"
        );
        let url = well_known::authorization_server_metadata_url(origin)
            .and_then(|url| self.policy.check(&url).ok())
            .ok_or_else(|| UrlPolicy::refused("the MCP server URL"))?;
        let response = self.http.get(&url).await?;
        let metadata = match parse_document::<AuthorizationServerMetadata>(&response)? {
            Some(doc) => doc,
            None => {
                let mut doc = AuthorizationServerMetadata::new(origin);
                doc.authorization_endpoint = Some(format!("{origin}/authorize"));
                doc.token_endpoint = Some(format!("{origin}/token"));
                doc.registration_endpoint = Some(format!("{origin}/register"));
                doc
            }
        };
        self.validate(&metadata, true)?;
        Ok(Discovery {
            prm_url: None,
            prm: None,
            resource: self.resource.as_str().to_owned(),
            issuer: metadata.issuer.clone(),
            metadata,
            legacy: true,
        })
    }
}

/// Reads a metadata document: `Ok(None)` for a 4xx, a non-JSON or a non-conforming body (try the
/// next URL); a transient error for 5xx / 429.
fn parse_document<T: serde::de::DeserializeOwned>(
    response: &Response,
) -> Result<Option<T>, AuthError> {
    let status = response.status;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(AuthError::new(AuthErrorKind::Transient).with_status(status.as_u16()));
    }
    if status.as_u16() != 200 || !response.is_json() {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&response.body).ok())
}

/// Parses a URL the crate already checked.
pub(crate) fn checked(policy: UrlPolicy, raw: &str, what: &'static str) -> Result<Url, AuthError> {
    policy.check(raw).map_err(|_| UrlPolicy::refused(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prm_resource_rules_follow_spec_c7() {
        let mcp = ResourceId::parse("https://mcp.example.com/public/mcp").unwrap();
        assert!(resource_matches("https://mcp.example.com/public/mcp", &mcp));
        assert!(resource_matches("https://MCP.example.com/public/mcp", &mcp));
        assert!(resource_matches("https://mcp.example.com", &mcp));
        assert!(resource_matches("https://mcp.example.com/", &mcp));
        assert!(resource_matches("https://mcp.example.com/public", &mcp));
        assert!(!resource_matches("https://mcp.example.com/pub", &mcp));
        assert!(!resource_matches("https://mcp.example.com/other/mcp", &mcp));
        assert!(!resource_matches(
            "https://evil.example.com/public/mcp",
            &mcp
        ));
        assert!(!resource_matches("http://mcp.example.com/public/mcp", &mcp));
        assert!(!resource_matches(
            "https://mcp.example.com:8443/public/mcp",
            &mcp
        ));
        assert!(!resource_matches("not a url", &mcp));
    }
}
