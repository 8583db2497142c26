//! The URL rules: which `client_id`s name a metadata document this server may fetch
//! (CIMD-00 §3 and the fetch policy).

use std::net::IpAddr;

use super::ssrf::{blocked, permitted};
use super::{CimdError, CimdErrorKind};

/// Check a `client_id` against CIMD-00 §3 and our fetch policy; returns the URL to fetch.
pub(super) fn check_client_id(
    client_id: &str,
    allow_loopback: bool,
) -> Result<url::Url, CimdError> {
    let invalid = |reason: &str| {
        Err(CimdError::new(
            CimdErrorKind::InvalidUrl,
            format!("the client_id is not a valid metadata document URL: {reason}"),
        ))
    };
    if client_id.len() > crate::redirect::MAX_LEN {
        return invalid("it is too long");
    }
    let https = client_id.starts_with("https://");
    let http = allow_loopback && client_id.starts_with("http://");
    if !https && !http {
        return invalid("it must start with https://");
    }
    if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return invalid("it contains whitespace, control characters or backslashes");
    }
    if client_id.contains('#') {
        return invalid("it must not have a fragment");
    }
    let Ok(url) = url::Url::parse(client_id) else {
        return invalid("it is not a valid URL");
    };
    // Authority and path as written (`url` would resolve dot segments away).
    let after_scheme = client_id.split_once("://").map_or("", |(_, rest)| rest);
    let (authority, path_and_query) =
        after_scheme.split_at(after_scheme.find(['/', '?']).unwrap_or(after_scheme.len()));
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return invalid("it must not contain user information");
    }
    let raw_path = path_and_query.split('?').next().unwrap_or("");
    if raw_path.split('/').any(is_dot_segment) {
        return invalid("its path must not contain . or .. segments");
    }
    if url.path() == "/" || raw_path.is_empty() || raw_path == "/" {
        return invalid("it must have a path (such as /client.json)");
    }
    if http && !is_loopback_host(&url) {
        return invalid("it must start with https://");
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !permitted(IpAddr::V4(ip), allow_loopback) => {
            return Err(blocked());
        }
        Some(url::Host::Ipv6(ip)) if !permitted(IpAddr::V6(ip), allow_loopback) => {
            return Err(blocked());
        }
        Some(_) => {}
        None => return invalid("it has no host"),
    }
    if url.as_str() != client_id {
        return invalid("it must be written in canonical form (lowercase host, no default port)");
    }
    Ok(url)
}

/// `.`/`..`, also percent-encoded (which `url` treats the same).
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
    )
}

pub(super) fn is_loopback_host(url: &url::Url) -> bool {
    url.host_str().is_some_and(mcp_auth_core::is_loopback_host)
}
