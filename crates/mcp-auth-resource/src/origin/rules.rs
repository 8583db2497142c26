//! Parsing and matching of hosts and origins.

use http::{HeaderMap, Uri, header};
use mcp_auth_core::host::{Authority, Host};

use super::OriginRejectionKind;

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
    pub(super) host: Host,
    pub(super) port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OriginRule {
    /// Lowercase.
    pub(super) scheme: Box<str>,
    pub(super) host: Host,
    pub(super) port: PortRule,
}

/// The allow-lists. `hosts` is never empty once built.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    pub(super) hosts: Vec<HostRule>,
    pub(super) origins: Vec<OriginRule>,
}

impl Rules {
    /// Adds the loopback hosts and the `http`/`https` loopback origins, any port.
    pub(super) fn add_loopback(&mut self) {
        for host in Host::loopback() {
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
            let authority = Authority::parse(value).ok_or(OriginRejectionKind::InvalidHost)?;
            if !self
                .hosts
                .iter()
                .any(|r| r.host == *authority.host() && r.port.matches(authority.port()))
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

/// A serialised origin (RFC 6454 §6): `null`, or `scheme://host[:port]`.
pub(super) enum Origin {
    Null,
    Tuple(TupleOrigin),
}

pub(super) struct TupleOrigin {
    /// Lowercase.
    pub(super) scheme: Box<str>,
    pub(super) host: Host,
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
    let (host, port) = Authority::parse(authority)?.into_parts();
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

    fn name(s: &str) -> Host {
        Host::Name(s.into())
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
