//! The protected resource's identity and its RFC 9728 metadata document.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::HeaderValue;
use mcp_auth_core::{
    OFFLINE_ACCESS, ResourceId, ScopeSet,
    host::{Authority, Host},
    metadata::ProtectedResourceMetadata,
    well_known,
};

use crate::{
    challenge,
    error::{ConfigError, fetch_url},
};

/// Who this resource server is: its canonical URI, the authorization servers it trusts, its
/// scopes, and the RFC 9728 metadata document built from them once.
///
/// The bearer layer uses it for every challenge (`resource_metadata`, `scope`), the extractors for
/// step-up challenges, and [`metadata_router`](Self::metadata_router) serves the document.
/// Cloning is cheap.
///
/// # `offline_access`
///
/// The document's `scopes_supported` and every `scope` this type puts in a challenge
/// ([`challenge_scopes`](Self::challenge_scopes), [`step_up_scopes`](Self::step_up_scopes)) leave
/// out [`offline_access`](mcp_auth_core::OFFLINE_ACCESS), even when it is configured: MCP
/// 2026-07-28 (SEP-2207) says a protected resource should not publish or challenge it, because a
/// refresh token is a matter between the client and its authorization server, not a resource
/// requirement. A client asks for it when the *authorization server's* metadata lists it. For the
/// same reason no operation should require it: a token without it could never be stepped up to
/// one with it through this resource's challenges.
///
/// # Example
///
/// ```
/// use mcp_auth_resource::ProtectedResource;
///
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .scopes_supported("mcp:tools".parse()?)
///     .resource_name("Example MCP server")
///     .build()?;
/// assert_eq!(
///     resource.metadata_url(),
///     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
/// );
/// assert_eq!(
///     resource.metadata().scopes_supported,
///     ["mcp:tools"],
/// );
/// # Ok::<(), mcp_auth_resource::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProtectedResource(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    resource: ResourceId,
    metadata: ProtectedResourceMetadata,
    metadata_json: Bytes,
    metadata_url: String,
    metadata_path: String,
    challenge_scopes: ScopeSet,
    missing_token_challenge: HeaderValue,
    cache_control: HeaderValue,
    serve_root: bool,
    /// For a loopback resource, the same resource under the other loopback names (see
    /// [`ProtectedResource::as_addressed`]); empty otherwise.
    loopback_views: Box<[(Host, ProtectedResource)]>,
}

impl ProtectedResource {
    /// Starts the configuration for the resource with this canonical URI (e.g. the MCP endpoint
    /// `https://mcp.example.com/mcp`). The URI is checked in [`build`](ProtectedResourceBuilder::build).
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceBuilder {
        ProtectedResourceBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: ScopeSet::new(),
            challenge_scopes: None,
            resource_name: None,
            resource_documentation: None,
            max_age: Duration::from_secs(3600),
            serve_root: true,
            dpop_algs: Vec::new(),
            dpop_required: false,
        }
    }

    /// The canonical resource identifier: the audience tokens must carry.
    #[must_use]
    pub fn resource(&self) -> &ResourceId {
        &self.0.resource
    }

    /// The metadata document.
    #[must_use]
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.0.metadata
    }

    /// The metadata document, serialised once.
    #[must_use]
    pub fn metadata_json(&self) -> &Bytes {
        &self.0.metadata_json
    }

    /// The absolute, path-aware URL of the metadata document, sent as `resource_metadata`.
    #[must_use]
    pub fn metadata_url(&self) -> &str {
        &self.0.metadata_url
    }

    /// The path at which the metadata is served, e.g. `/.well-known/oauth-protected-resource/mcp`.
    #[must_use]
    pub fn metadata_path(&self) -> &str {
        &self.0.metadata_path
    }

    /// The scopes named in the 401 challenge to a request without a token (SPEC RS-13), without
    /// `offline_access`.
    #[must_use]
    pub fn challenge_scopes(&self) -> &ScopeSet {
        &self.0.challenge_scopes
    }

    /// The `scopes_supported` of the metadata, as a set (never `offline_access`).
    #[must_use]
    pub fn scopes_supported(&self) -> ScopeSet {
        ScopeSet::from_tokens(&self.0.metadata.scopes_supported).unwrap_or_default()
    }

    /// The precomputed challenge for a request with no token:
    /// `Bearer resource_metadata="…", scope="…"` (no `error`, RFC 6750 §3.1).
    #[must_use]
    pub fn missing_token_challenge(&self) -> &HeaderValue {
        &self.0.missing_token_challenge
    }

    /// The `Cache-Control` value served with the metadata.
    #[must_use]
    pub fn cache_control(&self) -> &HeaderValue {
        &self.0.cache_control
    }

    /// The scopes to name in a 403 `insufficient_scope` challenge, by the "recommended" strategy
    /// of SPEC RS-16: the granted scopes that are still relevant to this resource (those in
    /// `scopes_supported` or in `required`), followed by the required scopes not yet granted.
    ///
    /// A client that asks for exactly this set keeps what it had and gains what it lacks, so one
    /// extra consent is enough (no step-up loop, no lost grants). Pass every scope the operation
    /// needs in `required` at once: the challenge then names them all (MCP 2026-07-28, SEP-2350:
    /// no one-scope-at-a-time escalation).
    ///
    /// `offline_access` is never part of the result, granted or required (see
    /// [`offline_access`](Self#offline_access)).
    ///
    /// ```
    /// # use mcp_auth_resource::ProtectedResource;
    /// # use mcp_auth_core::ScopeSet;
    /// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
    ///     .authorization_server("https://auth.example.com")
    ///     .scopes_supported("mcp:tools".parse()?)
    ///     .build()?;
    /// let granted: ScopeSet = "openid mcp:tools".parse()?;
    /// let required: ScopeSet = "mcp:admin".parse()?;
    /// assert_eq!(resource.step_up_scopes(&granted, &required).to_string(), "mcp:tools mcp:admin");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn step_up_scopes(&self, granted: &ScopeSet, required: &ScopeSet) -> ScopeSet {
        let relevant: ScopeSet = granted
            .iter()
            .filter(|s| {
                required.contains(s.as_str())
                    || self
                        .0
                        .metadata
                        .scopes_supported
                        .iter()
                        .any(|k| k == s.as_str())
            })
            .cloned()
            .collect();
        without_offline_access(relevant.union(required))
    }

    /// `Bearer error="insufficient_scope", scope="…", resource_metadata="…"` with the scopes of
    /// [`step_up_scopes`](Self::step_up_scopes) (SPEC RS-16).
    #[must_use]
    pub fn insufficient_scope_challenge(
        &self,
        granted: &ScopeSet,
        required: &ScopeSet,
    ) -> HeaderValue {
        challenge::insufficient_scope(
            &self.0.metadata_url,
            &self.step_up_scopes(granted, required),
        )
    }

    /// This resource as the request addressed it.
    ///
    /// A loopback deployment answers to `localhost`, `127.0.0.1` and `[::1]` alike, and clients
    /// check that the metadata's `resource` is the URL they were given (the TypeScript SDK
    /// refuses `http://127.0.0.1:8080/mcp` when it was pointed at `http://localhost:8080/mcp`).
    /// So for a resource configured on one of those names, a request whose `Host` (or target
    /// authority) is another of them with the same port gets a view of this resource under that
    /// name: its [`resource`](Self::resource), metadata document and challenges'
    /// `resource_metadata` use the request's spelling. Everything else (an https or public
    /// resource, any other host, another port) gets `self`. The audience a verifier checks is
    /// unchanged: the authorization server issues tokens for the configured identifier whatever
    /// loopback spelling the client named.
    ///
    /// The bearer layer, the tool-scope layer and [`metadata_router`](Self::metadata_router) call
    /// this for you.
    ///
    /// ```
    /// use mcp_auth_resource::ProtectedResource;
    ///
    /// let resource = ProtectedResource::builder("http://127.0.0.1:8080/mcp")
    ///     .authorization_server("http://127.0.0.1:8080")
    ///     .build()?;
    /// let request = http::Request::get("/mcp").header("host", "localhost:8080").body(())?;
    /// let seen = resource.as_addressed(request.uri(), request.headers());
    /// assert_eq!(seen.resource().as_str(), "http://localhost:8080/mcp");
    /// assert_eq!(
    ///     seen.metadata_url(),
    ///     "http://localhost:8080/.well-known/oauth-protected-resource/mcp",
    /// );
    /// // The authorization server is not renamed: its issuer is what it is.
    /// assert_eq!(seen.metadata().authorization_servers, ["http://127.0.0.1:8080"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn as_addressed(&self, uri: &http::Uri, headers: &http::HeaderMap) -> &Self {
        if self.0.loopback_views.is_empty() {
            return self;
        }
        let Some(authority) = Authority::of_request(uri, headers) else {
            return self;
        };
        let port = Authority::parse(self.0.resource.authority()).and_then(|a| a.port());
        if authority.port() != port {
            return self;
        }
        self.0
            .loopback_views
            .iter()
            .find(|(host, _)| host == authority.host())
            .map_or(self, |(_, view)| view)
    }

    /// Whether [`as_addressed`](Self::as_addressed) can answer anything but `self`.
    pub(crate) fn has_loopback_views(&self) -> bool {
        !self.0.loopback_views.is_empty()
    }

    /// Whether both are the same view of the same resource.
    pub(crate) fn is_same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether the document is also served at the root well-known path (the resource has a path
    /// and [`serve_root_metadata`](ProtectedResourceBuilder::serve_root_metadata) was not turned off).
    #[must_use]
    pub fn serves_root_metadata(&self) -> bool {
        self.0.serve_root && self.0.metadata_path != ROOT_METADATA_PATH
    }
}

/// `scopes` without `offline_access`, which a protected resource never publishes or challenges.
fn without_offline_access(scopes: ScopeSet) -> ScopeSet {
    match ScopeSet::parse(OFFLINE_ACCESS) {
        Ok(offline) if scopes.contains(OFFLINE_ACCESS) => scopes.difference(&offline),
        _ => scopes,
    }
}

/// The root well-known path of protected resource metadata.
pub const ROOT_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Builds a [`ProtectedResource`]. Every setting is checked in [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: ScopeSet,
    challenge_scopes: Option<ScopeSet>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    max_age: Duration,
    serve_root: bool,
    dpop_algs: Vec<String>,
    dpop_required: bool,
}

impl ProtectedResourceBuilder {
    /// `dpop_signing_alg_values_supported` (RFC 9449 §5.1, RFC 9728 §2): the DPoP proof
    /// algorithms accepted, space-delimited (e.g. `"ES256 EdDSA"`); use the `algs` of the layer's
    /// [`DpopConfig`](crate::DpopConfig). Not published when empty (the default).
    pub fn dpop_signing_alg_values_supported(mut self, algs: impl Into<String>) -> Self {
        self.dpop_algs
            .extend(algs.into().split_ascii_whitespace().map(str::to_owned));
        self
    }

    /// `dpop_bound_access_tokens_required` (RFC 9728 §2): set it when the layer's
    /// [`DpopConfig::require_dpop`](crate::DpopConfig::require_dpop) is on. Default `false`.
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    /// Adds a trusted authorization server (its issuer identifier, exactly as its metadata says).
    /// At least one is required (SPEC RS-2).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Adds `scopes` to `scopes_supported` (parse a string at the call site:
    /// `"mcp:tools".parse()?`). Keep this to the minimal set a client needs for basic use
    /// (SPEC RS-6): clients request all of it when no challenge names scopes. `offline_access`
    /// is dropped from the published document (SEP-2207; see
    /// [`ProtectedResource`](ProtectedResource#offline_access)).
    pub fn scopes_supported(mut self, scopes: ScopeSet) -> Self {
        self.scopes_supported = self.scopes_supported.union(&scopes);
        self
    }

    /// The scopes named in the 401 challenge for a request with no token. Defaults to
    /// `scopes_supported`. `offline_access` is dropped (SEP-2207).
    pub fn challenge_scopes(mut self, scopes: ScopeSet) -> Self {
        self.challenge_scopes = Some(scopes);
        self
    }

    /// `resource_name` (SPEC RS-7).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation`.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `Cache-Control: max-age` of the metadata response. Default one hour.
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether [`metadata_router`](ProtectedResource::metadata_router) also serves the document at
    /// the root well-known URL when the resource has a path. Default `true`: clients fall back to
    /// the root URL (SPEC C-5). The root document names the same `resource`.
    pub fn serve_root_metadata(mut self, serve: bool) -> Self {
        self.serve_root = serve;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid resource URI, no or an invalid authorization server, or an
    /// invalid scope.
    pub fn build(self) -> Result<ProtectedResource, ConfigError> {
        let resource = ResourceId::parse(&self.resource)?;
        // Clients send tokens to this URI: https, or plain http on loopback only.
        fetch_url(resource.as_str(), "resource")?;
        if self.authorization_servers.is_empty() {
            return Err(ConfigError::NoAuthorizationServer);
        }
        for issuer in &self.authorization_servers {
            let url = fetch_url(issuer, "authorization server")?;
            if url.fragment().is_some() || url.query().is_some() {
                return Err(ConfigError::InvalidUrl {
                    what: "authorization server",
                });
            }
        }
        let configured = self.scopes_supported.clone();
        let configured_challenge = self
            .challenge_scopes
            .clone()
            .unwrap_or_else(|| configured.clone());
        #[cfg(feature = "tracing")]
        if configured.contains(OFFLINE_ACCESS) || configured_challenge.contains(OFFLINE_ACCESS) {
            tracing::warn!(
                "`offline_access` is configured for the protected resource; it is left out of its \
                 metadata and challenges (MCP 2026-07-28, SEP-2207)"
            );
        }
        let scopes = without_offline_access(configured);
        let challenge_scopes = without_offline_access(configured_challenge);
        if let Some(doc) = &self.resource_documentation {
            url::Url::parse(doc).map_err(|_| ConfigError::InvalidUrl {
                what: "resource documentation",
            })?;
        }

        let mut metadata = ProtectedResourceMetadata::new(resource.as_str());
        metadata.authorization_servers = self.authorization_servers;
        metadata.scopes_supported = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        metadata.bearer_methods_supported = vec!["header".to_owned()];
        metadata.resource_name = self.resource_name;
        metadata.resource_documentation = self.resource_documentation;
        metadata.dpop_signing_alg_values_supported = self.dpop_algs;
        metadata.dpop_bound_access_tokens_required = self.dpop_required;
        let cache_control =
            HeaderValue::try_from(format!("public, max-age={}", self.max_age.as_secs())).map_err(
                |_| ConfigError::OutOfRange {
                    what: "metadata max-age",
                },
            )?;
        let view = |resource: ResourceId| -> Result<Inner, ConfigError> {
            let mut metadata = metadata.clone();
            metadata.resource = resource.as_str().to_owned();
            let metadata_json = Bytes::from(
                serde_json::to_vec(&metadata)
                    .map_err(|_| ConfigError::InvalidUrl { what: "metadata" })?,
            );
            let metadata_url = well_known::protected_resource_metadata_url(&resource);
            let metadata_path = well_known::protected_resource_metadata_path(&resource);
            let missing_token_challenge =
                challenge::missing_token(&metadata_url, &challenge_scopes);
            Ok(Inner {
                resource,
                metadata,
                metadata_json,
                metadata_url,
                metadata_path,
                challenge_scopes: challenge_scopes.clone(),
                missing_token_challenge,
                cache_control: cache_control.clone(),
                serve_root: self.serve_root,
                loopback_views: Box::default(),
            })
        };
        let mut loopback_views = Vec::new();
        for host in Host::loopback() {
            if let Some(alias) = resource.loopback_alias(&host) {
                loopback_views.push((host, ProtectedResource(Arc::new(view(alias)?))));
            }
        }
        let mut inner = view(resource)?;
        inner.loopback_views = loopback_views.into_boxed_slice();
        Ok(ProtectedResource(Arc::new(inner)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(resource: &str) -> Result<ProtectedResource, ConfigError> {
        ProtectedResource::builder(resource)
            .authorization_server("https://auth.example.com")
            .build()
    }

    #[test]
    fn plain_http_resources_are_refused_off_loopback() {
        assert_eq!(
            build("http://mcp.example.com/mcp").unwrap_err(),
            ConfigError::InsecureUrl { what: "resource" }
        );
        for ok in [
            "https://mcp.example.com/mcp",
            "http://127.0.0.1:8080/mcp",
            "http://localhost/mcp",
            "http://[::1]:3000/mcp",
        ] {
            assert!(build(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn offline_access_is_neither_published_nor_challenged() {
        let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .scopes_supported("mcp:tools offline_access".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(resource.metadata().scopes_supported, ["mcp:tools"]);
        assert_eq!(resource.challenge_scopes().to_string(), "mcp:tools");
        assert_eq!(resource.scopes_supported().to_string(), "mcp:tools");
        let granted = ScopeSet::parse("offline_access mcp:tools").unwrap();
        let required = ScopeSet::parse("mcp:admin offline_access").unwrap();
        assert_eq!(
            resource.step_up_scopes(&granted, &required).to_string(),
            "mcp:tools mcp:admin"
        );

        let only = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .scopes_supported("mcp:tools".parse().unwrap())
            .challenge_scopes("offline_access".parse().unwrap())
            .build()
            .unwrap();
        assert!(only.challenge_scopes().is_empty());
        assert_eq!(
            only.missing_token_challenge(),
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
        );
    }

    #[test]
    fn at_least_one_authorization_server_is_required() {
        assert_eq!(
            ProtectedResource::builder("https://mcp.example.com/mcp")
                .build()
                .unwrap_err(),
            ConfigError::NoAuthorizationServer
        );
    }
}
