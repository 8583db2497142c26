//! Hosts and authorities as they arrive in a `Host` header or a URI (RFC 9110 §7.2, RFC 3986
//! §3.2): one strict parser for the resource server's Origin/Host guard and the authorization
//! server's loopback Host guard (DNS rebinding).
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::host::{Authority, Host};
//!
//! let local = Authority::parse("127.0.0.1:8080").unwrap();
//! assert!(local.host().is_loopback());
//! assert_eq!(local.port(), Some(8080));
//!
//! // A page on another site that made its name resolve to 127.0.0.1 still sends its own name.
//! let rebound = Authority::parse("evil.example:8080").unwrap();
//! assert!(!rebound.host().is_loopback());
//! assert_eq!(rebound.host(), &Host::Name("evil.example".into()));
//!
//! // Anything that is not `host[:port]` is refused, not guessed at.
//! assert!(Authority::parse("user@127.0.0.1").is_none());
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host, normalised for comparison: IP addresses parsed, names lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 address, or an IPv6 address given in brackets.
    Ip(IpAddr),
    /// A DNS name, lowercase.
    Name(Box<str>),
}

impl Host {
    /// `localhost`, `127.0.0.1` and `::1`: the names every loopback deployment answers to.
    #[must_use]
    pub fn loopback() -> [Self; 3] {
        [
            Self::Name("localhost".into()),
            Self::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Self::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]
    }

    /// Whether this is a loopback host: `localhost`, an address in 127.0.0.0/8, or `::1`.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Ip(ip) => ip.is_loopback(),
            Self::Name(name) => &**name == "localhost",
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// `host[:port]`, parsed strictly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    host: Host,
    port: Option<u16>,
}

impl Authority {
    /// Parses `host[:port]` as in a `Host` header or URI authority: a DNS name (letters, digits,
    /// `-`, `.`, `_`), an IPv4 address, or an IPv6 address in brackets, and an optional port of
    /// 1 to 5 digits. Anything else (user info, an empty port, a zone id, a bare IPv6 address,
    /// a path) is `None`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (host, rest) = if let Some(bracketed) = s.strip_prefix('[') {
            let (inner, rest) = bracketed.split_once(']')?;
            (Host::Ip(IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)), rest)
        } else {
            let (name, rest) = s.find(':').map_or((s, ""), |i| s.split_at(i));
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            {
                return None;
            }
            let host = match name.parse::<Ipv4Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V4(ip)),
                Err(_) => Host::Name(name.to_ascii_lowercase().into()),
            };
            (host, rest)
        };
        let port = match rest {
            "" => None,
            _ => {
                let digits = rest.strip_prefix(':')?;
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                Some(digits.parse::<u16>().ok()?)
            }
        };
        Some(Self { host, port })
    }

    /// The authority a request addressed: its target's authority (HTTP/2 `:authority`, or an
    /// absolute-form target) when it has one, else its one `Host` header. `None` when neither
    /// is there, when there are several `Host` headers, or when the value does not parse.
    ///
    /// ```
    /// use mcp_auth_core::host::Authority;
    ///
    /// let request = http::Request::get("/mcp").header("host", "localhost:8080").body(()).unwrap();
    /// let authority = Authority::of_request(request.uri(), request.headers()).unwrap();
    /// assert_eq!(authority.to_string(), "localhost:8080");
    /// ```
    #[must_use]
    pub fn of_request(uri: &http::Uri, headers: &http::HeaderMap) -> Option<Self> {
        if let Some(authority) = uri.authority() {
            return Self::parse(authority.as_str());
        }
        let mut values = headers.get_all(http::header::HOST).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(value.to_str().ok()?)
    }

    /// The host.
    #[must_use]
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The explicit port, if any.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Both parts.
    #[must_use]
    pub fn into_parts(self) -> (Host, Option<u16>) {
        (self.host, self.port)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Host {
        Host::Name(s.into())
    }

    fn parts(s: &str) -> Option<(Host, Option<u16>)> {
        Authority::parse(s).map(Authority::into_parts)
    }

    #[test]
    fn authorities_parse_strictly() {
        assert_eq!(parts("Example.COM"), Some((name("example.com"), None)));
        assert_eq!(
            parts("example.com:8443"),
            Some((name("example.com"), Some(8443)))
        );
        assert_eq!(
            parts("127.0.0.1:80"),
            Some((Host::Ip(Ipv4Addr::LOCALHOST.into()), Some(80)))
        );
        assert_eq!(
            parts("[0:0::1]:3000"),
            Some((Host::Ip(Ipv6Addr::LOCALHOST.into()), Some(3000)))
        );
        for bad in [
            "",
            ":80",
            "example.com:",
            "example.com:65536",
            "example.com:0080x",
            "a:1:2",
            "::1",
            "[::1",
            "[::1]x",
            "[fe80::1%25eth0]",
            "user@example.com",
            "exa mple.com",
            "example.com/",
            "[127.0.0.1]",
            "ex\u{e9}mple.com",
        ] {
            assert!(Authority::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn loopback_is_localhost_127_slash_8_and_ipv6_one() {
        for host in [
            "localhost",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.1.2.3:8080",
            "[::1]:9",
        ] {
            assert!(
                Authority::parse(host).unwrap().host().is_loopback(),
                "{host}"
            );
        }
        for host in [
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
        ] {
            assert!(
                !Authority::parse(host).unwrap().host().is_loopback(),
                "{host}"
            );
        }
        assert!(Host::loopback().iter().all(Host::is_loopback));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "example.com",
            "example.com:8443",
            "127.0.0.1:80",
            "[::1]:3000",
        ] {
            assert_eq!(Authority::parse(s).unwrap().to_string(), s);
        }
    }
}
