//! [`OriginGuardLayer`] and its builder.

use std::{net::SocketAddr, sync::Arc};

use mcp_auth_core::host::Authority;
use tower_layer::Layer;

use super::{
    OriginGuard,
    rules::{HostRule, Origin, OriginRule, PortRule, Rules, parse_origin},
};
use crate::ConfigError;

/// Applies [`OriginGuard`]: refuses requests with an invalid `Origin` (MCP transport, SPEC
/// RS-33) or a `Host` outside the allow-list (DNS rebinding).
///
/// There is no way to build one that accepts any host: use [`loopback`](Self::loopback) for a
/// server bound to a loopback address, or [`builder`](Self::builder) with at least one
/// [`allow_host`](OriginGuardBuilder::allow_host) for anything else. Cloning is cheap (one `Arc`).
///
/// See the [module docs](crate::origin) for the rules and examples.
#[derive(Debug, Clone)]
#[must_use]
pub struct OriginGuardLayer {
    pub(super) rules: Arc<Rules>,
}

impl OriginGuardLayer {
    /// The guard for a server bound to a loopback address: `Host` must be `localhost`,
    /// `127.0.0.1` or `[::1]` (any port), and a present `Origin` must be `http` or `https` on one
    /// of those hosts (any port).
    pub fn loopback() -> Self {
        let mut rules = Rules::default();
        rules.add_loopback();
        Self {
            rules: Arc::new(rules),
        }
    }

    /// Starts a guard with empty allow-lists; [`build`](OriginGuardBuilder::build) requires at
    /// least one allowed host.
    pub fn builder() -> OriginGuardBuilder {
        OriginGuardBuilder::default()
    }

    /// Starts a guard for a server bound to `addr`: with the [loopback](Self::loopback) hosts
    /// and origins already allowed when `addr` is a loopback address (IPv4-mapped IPv6 included),
    /// and with empty allow-lists otherwise, so that [`build`](OriginGuardBuilder::build) fails
    /// until the public host names are listed.
    ///
    /// ```
    /// use mcp_auth_resource::OriginGuardLayer;
    ///
    /// // Local development: safe defaults, nothing to configure.
    /// let local = OriginGuardLayer::for_bind_addr(([127, 0, 0, 1], 8080).into()).build()?;
    ///
    /// // Every interface: the public name must be given.
    /// assert!(OriginGuardLayer::for_bind_addr(([0, 0, 0, 0], 8080).into()).build().is_err());
    /// let public = OriginGuardLayer::for_bind_addr(([0, 0, 0, 0], 8080).into())
    ///     .allow_host("mcp.example.com")?
    ///     .build()?;
    /// # Ok::<(), mcp_auth_resource::ConfigError>(())
    /// ```
    pub fn for_bind_addr(addr: SocketAddr) -> OriginGuardBuilder {
        let builder = OriginGuardBuilder::default();
        if addr.ip().to_canonical().is_loopback() {
            builder.allow_loopback()
        } else {
            builder
        }
    }
}

impl<S> Layer<S> for OriginGuardLayer {
    type Service = OriginGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginGuard::from_layer(inner, self.clone())
    }
}

/// Builds an [`OriginGuardLayer`]. Every entry is checked when it is added; [`build`](Self::build)
/// requires at least one allowed host.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct OriginGuardBuilder {
    rules: Rules,
}

impl OriginGuardBuilder {
    /// Allows a `Host` (and request-target authority): a DNS name, an IPv4 address or a bracketed
    /// IPv6 address, optionally with a port. Names compare case-insensitively. Without a port any
    /// port is allowed; with one, the `Host` header must carry exactly that port (clients leave
    /// out default ports, so `mcp.example.com:443` does not match `Host: mcp.example.com`).
    ///
    /// # Errors
    /// [`ConfigError::Origin`] for anything else: a scheme, a path, user info, a wildcard.
    pub fn allow_host(mut self, host: &str) -> Result<Self, ConfigError> {
        if host.contains("://") {
            return Err(ConfigError::Origin {
                what: "a host has no scheme (use allow_origin for origins)",
            });
        }
        let (host, port) = Authority::parse(host)
            .ok_or(ConfigError::Origin {
                what: "a host is a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port",
            })?
            .into_parts();
        self.rules.add_host(HostRule {
            host,
            port: port.map_or(PortRule::Any, |p| PortRule::Exact(Some(p))),
        });
        Ok(self)
    }

    /// Allows a browser `Origin`: `scheme://host[:port]` with no path, not even `/`. It matches
    /// by scheme, host (case-insensitive) and port exactly, with the default port of `http` (80)
    /// and `https` (443) filled in, so `https://app.example.com` and
    /// `https://app.example.com:443` are the same origin.
    ///
    /// # Errors
    /// [`ConfigError::Origin`] for `null`, a path or trailing slash, user info, a wildcard or a
    /// malformed value.
    pub fn allow_origin(mut self, origin: &str) -> Result<Self, ConfigError> {
        match parse_origin(origin) {
            Some(Origin::Tuple(o)) => {
                self.rules.add_origin(OriginRule {
                    scheme: o.scheme,
                    host: o.host,
                    port: PortRule::Exact(o.port),
                });
                Ok(self)
            }
            Some(Origin::Null) => Err(ConfigError::Origin {
                what: "the null origin cannot be allowed",
            }),
            None => Err(ConfigError::Origin {
                what: "an origin is scheme://host[:port] with no path or trailing slash",
            }),
        }
    }

    /// Also allows everything [`OriginGuardLayer::loopback`] allows, e.g. for a public server
    /// that is also reached locally.
    pub fn allow_loopback(mut self) -> Self {
        self.rules.add_loopback();
        self
    }

    /// Finishes the guard.
    ///
    /// # Errors
    /// [`ConfigError::Origin`] when no host is allowed: a guard that accepts any `Host` would
    /// leave the server open to DNS rebinding.
    pub fn build(self) -> Result<OriginGuardLayer, ConfigError> {
        if self.rules.hosts.is_empty() {
            return Err(ConfigError::Origin {
                what: "no allowed host: list the public host names, or use OriginGuardLayer::loopback()",
            });
        }
        Ok(OriginGuardLayer {
            rules: Arc::new(self.rules),
        })
    }
}
