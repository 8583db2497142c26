//! The checked configuration every part of the server reads: issuer, resources, scopes,
//! lifetimes and switches. Below [`state`](crate::state): the modules whose types the state
//! holds read it without naming the state.

use std::time::Duration;

use mcp_auth_core::{ResourceId, ScopeSet};

use crate::store::TokenHash;

/// The checked configuration.
#[derive(Debug)]
pub(crate) struct Config {
    /// The issuer identifier, exactly as advertised.
    pub(crate) issuer: String,
    /// The issuer's path ("" or "/tenant"), the prefix of every endpoint path.
    pub(crate) issuer_path: String,
    /// Whether the issuer is https (cookies get `Secure` and the `__Host-` prefix).
    pub(crate) secure_cookies: bool,
    /// Whether the issuer is on a loopback host: then every request must name a loopback
    /// `Host` (DNS rebinding).
    pub(crate) loopback: bool,
    /// Resources tokens may be issued for (canonical strings).
    pub(crate) resources: Vec<ResourceId>,
    /// Used when a request names no resource (AS-21); `None`: such requests are refused.
    pub(crate) default_resource: Option<ResourceId>,
    /// Every scope a client may ask for.
    pub(crate) scopes: ScopeSet,
    /// The scopes advertised in `scopes_supported`.
    pub(crate) scopes_advertised: ScopeSet,
    /// Granted when a request names no scope.
    pub(crate) default_scopes: ScopeSet,
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    pub(crate) public_refresh_token_ttl: Duration,
    /// The refresh grace window in seconds (0: strict reuse detection).
    pub(crate) refresh_grace: u64,
    pub(crate) grant_ttl: Duration,
    pub(crate) code_ttl: Duration,
    pub(crate) dynamic_registration: bool,
    /// Identical public registrations return the client registered first.
    pub(crate) reuse_public_registrations: bool,
    /// Dynamically registered public clients unused this long are removed (zero: never).
    pub(crate) unused_public_client_ttl: Duration,
    pub(crate) client_credentials: bool,
    pub(crate) issue_refresh_tokens: bool,
    /// Credentials allowed to call the introspection endpoint: (client_id, secret hash).
    pub(crate) introspection_clients: Vec<(String, TokenHash)>,
    /// Largest accepted request body (the routes' `RequestBodyLimitLayer`).
    pub(crate) max_body_bytes: usize,
    /// Longest request (the routes' `TimeoutLayer`).
    pub(crate) request_timeout: Duration,
    /// DPoP at the token endpoint (RFC 9449 §5, §8), when on.
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<DpopSettings>,
}

/// DPoP at the token endpoint: the proof verifier (replay cache included) and, optionally,
/// server nonces.
#[cfg(feature = "dpop")]
#[derive(Debug)]
pub(crate) struct DpopSettings {
    pub(crate) verifier: mcp_auth_jwt::dpop::DpopVerifier,
    pub(crate) nonces: Option<mcp_auth_jwt::dpop::DpopNonces>,
}

impl Config {
    /// An endpoint's path: issuer path + `suffix` (e.g. `/token`).
    pub(crate) fn path(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.issuer_path)
    }

    /// An endpoint's absolute URL.
    pub(crate) fn url(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.issuer)
    }

    /// The resource a request names, checked against the configured ones (AS-19), or the
    /// default when it names none (AS-21).
    pub(crate) fn resolve_resource(
        &self,
        requested: Option<&str>,
    ) -> Result<&ResourceId, &'static str> {
        match requested {
            None => self
                .default_resource
                .as_ref()
                .ok_or("the resource parameter is required: name the MCP server's URL"),
            Some(raw) => self
                .resources
                .iter()
                .find(|r| r.matches_loopback_alias(raw))
                .ok_or("this authorization server does not issue tokens for that resource"),
        }
    }
}

/// Whether an URL's host is loopback (`localhost`, 127.0.0.0/8, `[::1]`).
pub(crate) fn is_loopback_url(raw: &str) -> bool {
    url::Url::parse(raw)
        .ok()
        .and_then(|u| u.host_str().map(mcp_auth_core::is_loopback_host))
        .unwrap_or(false)
}
