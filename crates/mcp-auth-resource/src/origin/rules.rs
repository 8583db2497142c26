//! Parsing and matching of hosts and origins.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, Uri, header};

use super::OriginRejectionKind;

/// A host, normalised for comparison: IP addresses parsed, names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostName {
    Ip(IpAddr),
    Name(Box<str>),
}

/// Which ports a rule accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PortRule {
    Any,
    /// Exactly this effective port (`None`: no port, for a scheme without a default one).
    Exact(Option<u16>),
}

impl PortRule {
    fn matches(self, port: Option<u16>) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(p) => p == port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostRule {
    pub(super) host: HostName,
    pub(super) port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OriginRule {
    /// Lowercase.
    pub(super) scheme: Box<str>,
    pub(super) host: HostName,
    pub(super) port: PortRule,
}

/// The allow-lists. `hosts` is never empty once built.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    pub(super) hosts: Vec<HostRule>,
    pub(super) origins: Vec<OriginRule>,
}

/// `localhost`, `127.0.0.1` and `::1`.
pub(super) fn loopback_hosts() -> [HostName; 3] {
    [
        HostName::Name("localhost".into()),
        HostName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        HostName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

impl Rules {
    /// Adds the loopback hosts and the `http`/`https` loopback origins, any port.
    pub(super) fn add_loopback(&mut self) {
        for host in loopback_hosts() {
            self.add_host(HostRule {
                host: host.clone(),
                port: PortRule::Any,
            });
            for scheme in ["http", "https"] {
                self.add_origin(OriginRule {
                    scheme: scheme.into(),
                    host: host.clone(),
                    port: PortRule::Any,
                });
            }
        }
    }

    pub(super) fn add_host(&mut self, rule: HostRule) {
        if !self.hosts.contains(&rule) {
            self.hosts.push(rule);
        }
    }

    pub(super) fn add_origin(&mut self, rule: OriginRule) {
        if !self.origins.contains(&rule) {
            self.origins.push(rule);
        }
    }

    /// Rules 1 to 6 of the module docs.
    pub(super) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), OriginRejectionKind> {
        self.check_host(uri, headers)?;
        self.check_origin(headers)
    }

    fn check_host(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), OriginRejectionKind> {
        let mut values = headers.get_all(header::HOST).iter();
        let header = values.next();
        if values.next().is_some() {
            return Err(OriginRejectionKind::MultipleHosts);
        }
        let authority = uri.authority().map(|a| a.as_str());
        if header.is_none() && authority.is_none() {
            return Err(OriginRejectionKind::MissingHost);
        }
        let header = header
            .map(|v| v.to_str().map_err(|_| OriginRejectionKind::InvalidHost))
            .transpose()?;
        for value in header.into_iter().chain(authority) {
            let (host, port) = parse_authority(value).ok_or(OriginRejectionKind::InvalidHost)?;
            if !self
                .hosts
                .iter()
                .any(|r| r.host == host && r.port.matches(port))
            {
                return Err(OriginRejectionKind::HostNotAllowed);
            }
        }
        Ok(())
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), OriginRejectionKind> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        if values.next().is_some() {
            return Err(OriginRejectionKind::MultipleOrigins);
        }
        let value = value
            .to_str()
            .map_err(|_| OriginRejectionKind::InvalidOrigin)?;
        let origin = match parse_origin(value) {
            Some(Origin::Null) => return Err(OriginRejectionKind::NullOrigin),
            Some(Origin::Tuple(origin)) => origin,
            None => return Err(OriginRejectionKind::InvalidOrigin),
        };
        if self.origins.iter().any(|r| {
            *r.scheme == *origin.scheme && r.host == origin.host && r.port.matches(origin.port)
        }) {
            Ok(())
        } else {
            Err(OriginRejectionKind::OriginNotAllowed)
        }
    }
}

/// Parses `host[:port]` as in a `Host` header or URI authority (RFC 9110 §7.2, RFC 3986 §3.2):
/// a DNS name (letters, digits, `-`, `.`, `_`), an IPv4 address, or an IPv6 address in brackets,
/// and an optional port of 1 to 5 digits. Anything else (user info, an empty port, a zone id, a
/// bare IPv6 address) is `None`.
pub(super) fn parse_authority(s: &str) -> Option<(HostName, Option<u16>)> {
    let (host, rest) = if let Some(bracketed) = s.strip_prefix('[') {
        let (inner, rest) = bracketed.split_once(']')?;
        (
            HostName::Ip(IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)),
            rest,
        )
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
            Ok(ip) => HostName::Ip(IpAddr::V4(ip)),
            Err(_) => HostName::Name(name.to_ascii_lowercase().into()),
        };
        (host, rest)
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some((host, port))
}

/// A serialised origin (RFC 6454 §6): `null`, or `scheme://host[:port]`.
pub(super) enum Origin {
    Null,
    Tuple(TupleOrigin),
}

pub(super) struct TupleOrigin {
    /// Lowercase.
    pub(super) scheme: Box<str>,
    pub(super) host: HostName,
    /// The explicit port, else the scheme's default, else `None`.
    pub(super) port: Option<u16>,
}

/// Parses an `Origin` value; `None` when it is neither `null` nor `scheme://host[:port]` with no
/// path, query, fragment or user info.
pub(super) fn parse_origin(s: &str) -> Option<Origin> {
    if s.eq_ignore_ascii_case("null") {
        return Some(Origin::Null);
    }
    let (scheme, authority) = s.split_once("://")?;
    let mut chars = scheme.bytes();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = parse_authority(authority)?;
    let port = port.or(match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    });
    Some(Origin::Tuple(TupleOrigin {
        scheme: scheme.into(),
        host,
        port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::Name(s.into())
    }

    #[test]
    fn authorities_parse_strictly() {
        assert_eq!(
            parse_authority("Example.COM"),
            Some((name("example.com"), None))
        );
        assert_eq!(
            parse_authority("example.com:8443"),
            Some((name("example.com"), Some(8443)))
        );
        assert_eq!(
            parse_authority("127.0.0.1:80"),
            Some((HostName::Ip(Ipv4Addr::LOCALHOST.into()), Some(80)))
        );
        assert_eq!(
            parse_authority("[0:0::1]:3000"),
            Some((HostName::Ip(Ipv6Addr::LOCALHOST.into()), Some(3000)))
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
            assert!(parse_authority(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn origins_parse_strictly_and_take_default_ports() {
        let Some(Origin::Tuple(o)) = parse_origin("HTTPS://App.Example.com") else {
            panic!("should parse");
        };
        assert_eq!(
            (&*o.scheme, o.host, o.port),
            ("https", name("app.example.com"), Some(443))
        );
        assert!(matches!(parse_origin("null"), Some(Origin::Null)));
        for bad in [
            "",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x",
            "https://user@app.example.com",
            "app.example.com",
            "1https://a",
            "https:/app.example.com",
        ] {
            assert!(parse_origin(bad).is_none(), "{bad:?}");
        }
    }
}
