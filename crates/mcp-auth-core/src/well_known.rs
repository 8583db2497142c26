//! Well-known URL construction (SPEC X-6).
//!
//! RFC 9728 §3.1 and RFC 8414 §3.1 **insert** `/.well-known/<suffix>` between the host and the path,
//! after removing a terminating `/` from the path. OpenID Connect Discovery §4 **appends**
//! `/.well-known/openid-configuration` to the issuer.
//!
//! | identifier | URL |
//! |---|---|
//! | resource `https://mcp.example.com` | `https://mcp.example.com/.well-known/oauth-protected-resource` |
//! | resource `https://example.com/public/mcp` | `https://example.com/.well-known/oauth-protected-resource/public/mcp` |
//! | issuer `https://auth.example.com/tenant1` (RFC 8414) | `https://auth.example.com/.well-known/oauth-authorization-server/tenant1` |
//! | issuer `https://auth.example.com/tenant1` (OIDC) | `https://auth.example.com/tenant1/.well-known/openid-configuration` |
//!
//! Issuers are handled as the exact strings they are (SPEC X-5): nothing is lowercased or
//! normalised, so the `issuer` in the fetched document can be compared byte for byte.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::well_known;
//!
//! assert_eq!(
//!     well_known::authorization_server_metadata_urls("https://auth.example.com/tenant1"),
//!     [
//!         "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
//!         "https://auth.example.com/.well-known/openid-configuration/tenant1",
//!         "https://auth.example.com/tenant1/.well-known/openid-configuration",
//!     ],
//! );
//! assert_eq!(
//!     well_known::authorization_server_metadata_urls("https://auth.example.com"),
//!     [
//!         "https://auth.example.com/.well-known/oauth-authorization-server",
//!         "https://auth.example.com/.well-known/openid-configuration",
//!     ],
//! );
//! ```

use crate::ResourceId;

/// `oauth-protected-resource` (RFC 9728 §3).
pub const OAUTH_PROTECTED_RESOURCE: &str = "oauth-protected-resource";
/// `oauth-authorization-server` (RFC 8414 §3).
pub const OAUTH_AUTHORIZATION_SERVER: &str = "oauth-authorization-server";
/// `openid-configuration` (OpenID Connect Discovery §4).
pub const OPENID_CONFIGURATION: &str = "openid-configuration";

/// Splits `scheme://authority` from the path-and-query of an absolute URL.
/// Returns `None` for a string without `://`.
fn split_origin(identifier: &str) -> Option<(&str, &str)> {
    let scheme_end = identifier.find("://")? + 3;
    let authority_end = identifier[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(identifier.len(), |i| scheme_end + i);
    Some(identifier.split_at(authority_end))
}

/// Inserts `/.well-known/<suffix>` between the host and the path of `identifier` (RFC 8414 §3.1,
/// RFC 9728 §3.1). A terminating `/` of the path is removed first, so a bare `/` path adds nothing.
///
/// Returns `None` when `identifier` is not an absolute URL (`scheme://…`).
#[must_use]
pub fn insert_well_known(identifier: &str, suffix: &str) -> Option<String> {
    let (origin, path) = split_origin(identifier)?;
    let path = path.split('#').next().unwrap_or_default();
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut url = String::with_capacity(identifier.len() + suffix.len() + 13);
    url.push_str(origin);
    url.push_str("/.well-known/");
    url.push_str(suffix);
    url.push_str(path);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

/// Appends `/.well-known/openid-configuration` to an issuer (OpenID Connect Discovery §4), after
/// removing a terminating `/`.
#[must_use]
pub fn openid_configuration_url(issuer: &str) -> String {
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    format!("{base}/.well-known/{OPENID_CONFIGURATION}")
}

/// The path-aware protected resource metadata URL of a resource (RFC 9728 §3.1).
#[must_use]
pub fn protected_resource_metadata_url(resource: &ResourceId) -> String {
    let path = resource.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    format!(
        "{}/.well-known/{OAUTH_PROTECTED_RESOURCE}{path}",
        resource.origin()
    )
}

/// The root protected resource metadata URL of a resource's origin, the client's fallback.
#[must_use]
pub fn root_protected_resource_metadata_url(resource: &ResourceId) -> String {
    format!(
        "{}/.well-known/{OAUTH_PROTECTED_RESOURCE}",
        resource.origin()
    )
}

/// The path component of the path-aware protected resource metadata URL, for routing:
/// `/.well-known/oauth-protected-resource/public/mcp` for `https://example.com/public/mcp`.
#[must_use]
pub fn protected_resource_metadata_path(resource: &ResourceId) -> String {
    let path = resource.path().split('?').next().unwrap_or_default();
    let path = path.strip_suffix('/').unwrap_or(path);
    format!("/.well-known/{OAUTH_PROTECTED_RESOURCE}{path}")
}

/// The RFC 8414 metadata URL of an issuer (the inserted form).
#[must_use]
pub fn authorization_server_metadata_url(issuer: &str) -> Option<String> {
    insert_well_known(issuer, OAUTH_AUTHORIZATION_SERVER)
}

/// Every URL at which an authorization server's metadata may be found, in the order MCP clients try
/// them (MCP 2025-11-25 "Authorization Server Metadata Discovery"):
///
/// - issuer with a path: RFC 8414 inserted, OIDC inserted, OIDC appended;
/// - issuer without a path: RFC 8414, then OIDC.
///
/// An identifier that is not an absolute URL gives only the OIDC appended form.
#[must_use]
pub fn authorization_server_metadata_urls(issuer: &str) -> Vec<String> {
    let has_path = split_origin(issuer).is_some_and(|(_, p)| !p.is_empty() && p != "/");
    let mut urls = Vec::with_capacity(3);
    if let Some(u) = insert_well_known(issuer, OAUTH_AUTHORIZATION_SERVER) {
        urls.push(u);
    }
    if let Some(u) = insert_well_known(issuer, OPENID_CONFIGURATION) {
        urls.push(u);
    }
    if has_path || urls.is_empty() {
        urls.push(openid_configuration_url(issuer));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_x6_table() {
        let root = ResourceId::parse("https://mcp.example.com").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&root),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let pathful = ResourceId::parse("https://example.com/public/mcp").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&pathful),
            "https://example.com/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(
            root_protected_resource_metadata_url(&pathful),
            "https://example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            authorization_server_metadata_url("https://auth.example.com").unwrap(),
            "https://auth.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            authorization_server_metadata_url("https://auth.example.com/tenant1").unwrap(),
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            openid_configuration_url("https://auth.example.com/tenant1"),
            "https://auth.example.com/tenant1/.well-known/openid-configuration"
        );
    }

    #[test]
    fn terminating_slash_is_removed_before_insertion() {
        assert_eq!(
            authorization_server_metadata_url("https://auth.example.com/").unwrap(),
            "https://auth.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            authorization_server_metadata_url("https://auth.example.com/realms/x/").unwrap(),
            "https://auth.example.com/.well-known/oauth-authorization-server/realms/x"
        );
        assert_eq!(
            openid_configuration_url("https://auth.example.com/"),
            "https://auth.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_is_not_normalised() {
        assert_eq!(
            authorization_server_metadata_url("https://Auth.Example.com/T").unwrap(),
            "https://Auth.Example.com/.well-known/oauth-authorization-server/T"
        );
    }

    #[test]
    fn routing_path_for_the_protected_resource_metadata() {
        let id = ResourceId::parse("http://127.0.0.1:8080/mcp").unwrap();
        assert_eq!(
            protected_resource_metadata_path(&id),
            "/.well-known/oauth-protected-resource/mcp"
        );
        let id = ResourceId::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            protected_resource_metadata_path(&id),
            "/.well-known/oauth-protected-resource"
        );
    }
}
