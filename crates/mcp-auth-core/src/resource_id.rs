//! Canonical resource identifiers (RFC 8707, MCP "Canonical Server URI").

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::host::{Authority, Host};

/// Why a string is not a usable resource identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidResourceId {
    /// Not an absolute `http` or `https` URI.
    #[error("a resource identifier is an absolute http or https URI")]
    NotHttp,
    /// It has no host.
    #[error("a resource identifier has a host")]
    NoHost,
    /// It has a fragment (RFC 8707 §2).
    #[error("a resource identifier has no fragment")]
    Fragment,
    /// It carries user information (`user@host`).
    #[error("a resource identifier has no user information")]
    UserInfo,
    /// The URI does not parse.
    #[error("a resource identifier is a valid URI")]
    Malformed,
}

/// The canonical URI of a protected resource, e.g. `https://mcp.example.com/mcp`.
///
/// The same string must flow end to end (SPEC X-1): the PRM `resource`, the `resource` parameter
/// clients send, the `aud` the authorization server mints and the audience the resource server
/// checks. `ResourceId` canonicalises once, explicitly (SPEC X-3/X-4):
///
/// - the scheme and host are lowercased (`HTTPS://MCP.Example.com` is accepted);
/// - the default port (`:443` for https, `:80` for http) is dropped;
/// - a bare `/` path is dropped, so `https://mcp.example.com/` and `https://mcp.example.com` are the
///   same resource (RFC 3986 §6.2.3), and the `url` crate's added slash never leaks into an `aud`;
/// - every other path byte and the query are kept exactly: `https://a.example/mcp/` is **not**
///   `https://a.example/mcp` (a token for one path is not a token for another, SPEC RS-26).
///
/// # Example
///
/// ```
/// use mcp_auth_core::ResourceId;
///
/// let id = ResourceId::parse("HTTPS://MCP.Example.com:443/")?;
/// assert_eq!(id.as_str(), "https://mcp.example.com");
/// assert!(id.matches("https://mcp.example.com/"));
///
/// let id = ResourceId::parse("https://example.com/public/mcp")?;
/// assert_eq!(id.path(), "/public/mcp");
/// assert!(!id.matches("https://example.com/public/mcp/"));
/// # Ok::<(), mcp_auth_core::InvalidResourceId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceId {
    canonical: Arc<str>,
    /// Byte offset where the path (or query) starts; `canonical[..path_start]` is the origin.
    path_start: usize,
}

impl ResourceId {
    /// Parses and canonicalises a resource identifier.
    ///
    /// # Errors
    /// [`InvalidResourceId`] saying what is wrong.
    pub fn parse(input: &str) -> Result<Self, InvalidResourceId> {
        let (scheme, rest) = input.split_once("://").ok_or(InvalidResourceId::NotHttp)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return Err(InvalidResourceId::NotHttp),
        };
        if rest.contains('#') {
            return Err(InvalidResourceId::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(InvalidResourceId::UserInfo);
        }
        if authority.is_empty() {
            return Err(InvalidResourceId::NoHost);
        }
        // Let the url crate judge well-formedness (host syntax, port range, path characters), but
        // build the canonical string ourselves so no byte of the path changes.
        let parsed = url::Url::parse(input).map_err(|_| InvalidResourceId::Malformed)?;
        let host = parsed.host_str().ok_or(InvalidResourceId::NoHost)?;
        if host.is_empty() {
            return Err(InvalidResourceId::NoHost);
        }
        if tail
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(InvalidResourceId::Malformed);
        }
        let mut canonical = String::with_capacity(input.len());
        canonical.push_str(&scheme);
        canonical.push_str("://");
        canonical.push_str(host);
        if let Some(port) = parsed.port() {
            let port = port.to_string();
            if port != default_port {
                canonical.push(':');
                canonical.push_str(&port);
            }
        }
        let path_start = canonical.len();
        if tail != "/" {
            canonical.push_str(tail);
        }
        Ok(Self {
            canonical: Arc::from(canonical),
            path_start,
        })
    }

    /// The canonical string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// `scheme://host[:port]`, with no trailing slash.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.canonical[..self.path_start]
    }

    /// The path and query, exactly as given; empty for an origin-only identifier.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.canonical[self.path_start..]
    }

    /// `host[:port]` as it appears in a `Host` header (port omitted when it is the default).
    #[must_use]
    pub fn authority(&self) -> &str {
        let origin = self.origin();
        origin.split_once("://").map_or(origin, |(_, a)| a)
    }

    /// Whether `candidate` names this resource, by canonical string equality.
    ///
    /// `candidate` is canonicalised with the same rules first, so only case in the scheme and host,
    /// a default port and a bare `/` path are forgiven. A candidate that does not parse matches only
    /// if it is byte-for-byte equal.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        if candidate == &*self.canonical {
            return true;
        }
        Self::parse(candidate).is_ok_and(|c| c.canonical == self.canonical)
    }
}

impl ResourceId {
    /// The scheme (`http` or `https`).
    fn scheme(&self) -> &str {
        self.canonical
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
    }

    /// The host and port, parsed.
    fn parsed_authority(&self) -> Option<Authority> {
        Authority::parse(self.authority())
    }

    /// This resource as reached through another loopback name: for `http://127.0.0.1:8080/mcp`
    /// and the host `localhost`, `http://localhost:8080/mcp`.
    ///
    /// `Some` only when this resource's host and `host` are both among the names every loopback
    /// deployment answers to ([`Host::loopback`]: `localhost`, `127.0.0.1`, `::1`) and differ;
    /// the scheme, port and path stay. A resource server uses it to describe itself in the
    /// spelling the client used (its metadata's `resource`, its challenges' `resource_metadata`),
    /// because clients compare those with the URL they were given.
    ///
    /// ```
    /// use mcp_auth_core::{ResourceId, host::Host};
    ///
    /// let id = ResourceId::parse("http://127.0.0.1:8080/mcp")?;
    /// let localhost = Host::Name("localhost".into());
    /// assert_eq!(id.loopback_alias(&localhost).unwrap().as_str(), "http://localhost:8080/mcp");
    ///
    /// let public = ResourceId::parse("https://mcp.example.com/mcp")?;
    /// assert!(public.loopback_alias(&localhost).is_none());
    /// # Ok::<(), mcp_auth_core::InvalidResourceId>(())
    /// ```
    #[must_use]
    pub fn loopback_alias(&self, host: &Host) -> Option<Self> {
        let own = self.parsed_authority()?;
        let names = Host::loopback();
        if own.host() == host || !names.contains(own.host()) || !names.contains(host) {
            return None;
        }
        let authority = match own.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Self::parse(&format!("{}://{authority}{}", self.scheme(), self.path())).ok()
    }

    /// Whether `candidate` names this resource, allowing the other loopback spellings of a
    /// loopback resource ([`loopback_alias`](Self::loopback_alias)): `http://localhost:8080/mcp`
    /// names `http://127.0.0.1:8080/mcp`. Otherwise the same as [`matches`](Self::matches).
    ///
    /// For an authorization server deciding which resource a `resource` parameter asks for; it
    /// then issues the token for *this* identifier, so the audience a resource server checks
    /// stays exact.
    ///
    /// ```
    /// use mcp_auth_core::ResourceId;
    ///
    /// let id = ResourceId::parse("http://127.0.0.1:8080/mcp")?;
    /// assert!(id.matches_loopback_alias("http://localhost:8080/mcp"));
    /// assert!(id.matches_loopback_alias("http://[::1]:8080/mcp"));
    /// assert!(!id.matches_loopback_alias("http://localhost:8081/mcp"));
    /// assert!(!id.matches_loopback_alias("https://localhost:8080/mcp"));
    /// assert!(!id.matches("http://localhost:8080/mcp"));
    /// # Ok::<(), mcp_auth_core::InvalidResourceId>(())
    /// ```
    #[must_use]
    pub fn matches_loopback_alias(&self, candidate: &str) -> bool {
        if self.matches(candidate) {
            return true;
        }
        let Ok(candidate) = Self::parse(candidate) else {
            return false;
        };
        candidate
            .parsed_authority()
            .and_then(|a| self.loopback_alias(a.host()))
            .is_some_and(|alias| alias == candidate)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceId")
            .field(&&*self.canonical)
            .finish()
    }
}

impl FromStr for ResourceId {
    type Err = InvalidResourceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for ResourceId {
    fn as_ref(&self) -> &str {
        &self.canonical
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `host` (a URL's host: a name, an IPv4 address, or an IPv6 address with or without
/// brackets) is a loopback host: `localhost` (any case), 127.0.0.0/8 or `::1`.
///
/// The one rule every crate uses for "plain http is allowed on loopback".
///
/// ```
/// use mcp_auth_core::is_loopback_host;
///
/// assert!(is_loopback_host("localhost") && is_loopback_host("127.0.0.2") && is_loopback_host("[::1]"));
/// assert!(!is_loopback_host("localhost.evil.example") && !is_loopback_host("10.0.0.1"));
/// ```
#[must_use]
pub fn is_loopback_host(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_only_identifier_never_gets_a_trailing_slash() {
        for input in [
            "https://mcp.example.com",
            "https://mcp.example.com/",
            "HTTPS://MCP.EXAMPLE.COM:443/",
        ] {
            assert_eq!(
                ResourceId::parse(input).unwrap().as_str(),
                "https://mcp.example.com"
            );
        }
    }

    #[test]
    fn path_bytes_are_kept_exactly() {
        let id = ResourceId::parse("https://Example.com/Public/MCP/").unwrap();
        assert_eq!(id.as_str(), "https://example.com/Public/MCP/");
        assert_eq!(id.origin(), "https://example.com");
        assert_eq!(id.path(), "/Public/MCP/");
        assert!(!id.matches("https://example.com/Public/MCP"));
        assert!(!id.matches("https://example.com/public/mcp/"));
    }

    #[test]
    fn non_default_port_is_kept() {
        let id = ResourceId::parse("http://127.0.0.1:8080/mcp").unwrap();
        assert_eq!(id.as_str(), "http://127.0.0.1:8080/mcp");
        assert_eq!(id.authority(), "127.0.0.1:8080");
        assert!(id.matches("HTTP://127.0.0.1:8080/mcp"));
        assert!(!id.matches("http://127.0.0.1:8081/mcp"));
    }

    #[test]
    fn bad_identifiers_are_refused_with_a_reason() {
        assert_eq!(
            ResourceId::parse("mcp.example.com"),
            Err(InvalidResourceId::NotHttp)
        );
        assert_eq!(
            ResourceId::parse("ftp://a.example"),
            Err(InvalidResourceId::NotHttp)
        );
        assert_eq!(
            ResourceId::parse("https://a.example/mcp#x"),
            Err(InvalidResourceId::Fragment)
        );
        assert_eq!(
            ResourceId::parse("https://u@a.example/"),
            Err(InvalidResourceId::UserInfo)
        );
        assert_eq!(
            ResourceId::parse("https:///mcp"),
            Err(InvalidResourceId::NoHost)
        );
        assert!(ResourceId::parse("https://a.example/m cp").is_err());
    }

    #[test]
    fn loopback_aliases_are_the_three_loopback_names_with_the_same_port_and_path() {
        let id = ResourceId::parse("http://127.0.0.1:8080/mcp").unwrap();
        for (alias, ok) in [
            ("http://localhost:8080/mcp", true),
            ("http://LOCALHOST:8080/mcp", true),
            ("http://[::1]:8080/mcp", true),
            ("http://127.0.0.1:8080/mcp", true),
            ("http://127.0.0.2:8080/mcp", false),
            ("http://localhost:8080/mcp/", false),
            ("http://localhost:8080/other", false),
            ("http://localhost/mcp", false),
            ("https://localhost:8080/mcp", false),
            ("http://localhost.evil.example:8080/mcp", false),
            ("http://evil.example:8080/mcp", false),
            ("not a url", false),
        ] {
            assert_eq!(id.matches_loopback_alias(alias), ok, "{alias}");
        }
        let public = ResourceId::parse("https://mcp.example.com/mcp").unwrap();
        assert!(!public.matches_loopback_alias("https://localhost/mcp"));
        // An origin-only loopback resource keeps no path.
        let root = ResourceId::parse("http://localhost:3000").unwrap();
        let v6 = Host::Ip(std::net::Ipv6Addr::LOCALHOST.into());
        assert_eq!(
            root.loopback_alias(&v6).unwrap().as_str(),
            "http://[::1]:3000"
        );
        assert!(
            root.loopback_alias(&Host::Name("localhost".into()))
                .is_none()
        );
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let id = ResourceId::parse("http://[::1]:3000/mcp").unwrap();
        assert_eq!(id.as_str(), "http://[::1]:3000/mcp");
    }
}
