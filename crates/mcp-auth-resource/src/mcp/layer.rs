//! [`ToolScopesLayer`]: the configuration of the tool-scope check.

use std::{borrow::Cow, collections::HashMap, sync::Arc, time::Duration};

use mcp_auth_core::ScopeSet;
use tower_layer::Layer;

use super::{ToolScopes, classify, scan};
use crate::{ConfigError, ProtectedResource};

/// Applies [`ToolScopes`]: per-tool scope checks on MCP `tools/call` requests, answered with an
/// HTTP 403 step-up challenge before the MCP server sees the call, and the check of the MCP
/// 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`) against the body, answered with HTTP 400
/// and the JSON-RPC error `-32020`.
///
/// Configuration is checked here, when it is built. Cloning is cheap (one `Arc`).
///
/// See the [module docs](crate::mcp) for the rules and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct ToolScopesLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) resource: ProtectedResource,
    /// Tool name → scopes (foldhash: only the configuration inserts, so the table's shape is
    /// not the caller's to choose).
    tools: HashMap<String, ScopeSet, foldhash::quality::RandomState>,
    /// Tool names, in the order they were first configured (for a stable strictest set).
    order: Vec<String>,
    default: ScopeSet,
    /// `default` ∪ every tool's scopes, in configuration order.
    pub(super) strictest: ScopeSet,
    pub(super) max_body_size: usize,
    pub(super) body_timeout: Duration,
}

impl Config {
    /// The scopes a POST with this body needs (see [`ToolScopesLayer::required_scopes`]).
    /// Borrows the configured set when one set covers the body (one call, the strictest set),
    /// so the usual request copies no scope.
    pub(super) fn required_scopes(&self, body: &classify::Parsed<'_>) -> Requirement<'_> {
        match body.calls() {
            Err(classify::Ambiguous) => Requirement {
                scopes: Cow::Borrowed(&self.strictest),
                calls: 0,
                ambiguous: true,
            },
            Ok(names) => {
                let mut scopes = Cow::Owned(ScopeSet::new());
                let mut calls = 0;
                for name in names {
                    let needed = self.tools.get(name).unwrap_or(&self.default);
                    if calls == 0 {
                        scopes = Cow::Borrowed(needed);
                    } else if !scopes.contains_all(needed) {
                        scopes.to_mut().extend(needed.iter().cloned());
                    }
                    calls += 1;
                }
                Requirement {
                    scopes,
                    calls,
                    ambiguous: false,
                }
            }
        }
    }

    fn recompute_strictest(&mut self) {
        let mut strictest = self.default.clone();
        for scopes in self.order.iter().filter_map(|name| self.tools.get(name)) {
            strictest.extend(scopes.iter().cloned());
        }
        self.strictest = strictest;
    }
}

/// The outcome of classifying one body.
#[derive(Debug)]
pub(super) struct Requirement<'a> {
    pub(super) scopes: Cow<'a, ScopeSet>,
    /// How many `tools/call` messages were found (0 when ambiguous).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) calls: usize,
    /// Whether the body could not be classified and the strictest set applies.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) ambiguous: bool,
}

impl ToolScopesLayer {
    /// The default body limit: 1 MiB.
    pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;
    /// The smallest body limit accepted: 4 KiB.
    pub const MIN_MAX_BODY_SIZE: usize = 4 * 1024;
    /// The largest body limit accepted: 64 MiB.
    pub const MAX_MAX_BODY_SIZE: usize = 64 * 1024 * 1024;
    /// The default time allowed to receive the whole body: 10 seconds.
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest body timeout accepted: 5 minutes.
    pub const MAX_BODY_TIMEOUT: Duration = Duration::from_secs(300);

    /// A layer for `resource` with no tool mapped yet: until [`tool`](Self::tool) or
    /// [`default_scopes`](Self::default_scopes) is called, every request passes untouched.
    pub fn new(resource: ProtectedResource) -> Self {
        Self {
            config: Arc::new(Config {
                resource,
                tools: HashMap::default(),
                order: Vec::new(),
                default: ScopeSet::new(),
                strictest: ScopeSet::new(),
                max_body_size: Self::DEFAULT_MAX_BODY_SIZE,
                body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            }),
        }
    }

    /// Requires `scopes` for calls of the tool `name`: a [`ScopeSet`] (parse a string at the
    /// call site: `"mcp:admin".parse::<ScopeSet>()?`) or a type declared with
    /// [`scopes!`](crate::scopes) (`.tool("admin_tool", Admin)`), the same type a handler's
    /// `RequireScope<Admin>` names.
    ///
    /// Names match byte for byte (after JSON unescaping), with no case folding or trimming. A
    /// tool's scopes *replace* the [default](Self::default_scopes); an empty set makes the tool
    /// public. Calling this again for the same tool adds to its scopes, so a later call can never
    /// weaken an earlier one.
    pub fn tool(mut self, name: impl Into<String>, scopes: impl Into<ScopeSet>) -> Self {
        let name = name.into();
        let scopes = scopes.into();
        let config = Arc::make_mut(&mut self.config);
        match config.tools.get_mut(&name) {
            Some(existing) => existing.extend(scopes.iter().cloned()),
            None => {
                config.order.push(name.clone());
                config.tools.insert(name, scopes);
            }
        }
        config.recompute_strictest();
        self
    }

    /// Requires `scopes` (as for [`tool`](Self::tool)) for calls of tools that are not mapped
    /// with [`tool`](Self::tool). Default: none. Replaces an earlier default.
    pub fn default_scopes(mut self, scopes: impl Into<ScopeSet>) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.default = scopes.into();
        config.recompute_strictest();
        self
    }

    /// The largest request body read, in bytes; a larger body gets `413 Payload Too Large`.
    /// Default [1 MiB](Self::DEFAULT_MAX_BODY_SIZE).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] outside [4 KiB](Self::MIN_MAX_BODY_SIZE) ..=
    /// [64 MiB](Self::MAX_MAX_BODY_SIZE).
    pub fn max_body_size(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if !(Self::MIN_MAX_BODY_SIZE..=Self::MAX_MAX_BODY_SIZE).contains(&bytes) {
            return Err(ConfigError::OutOfRange {
                what: "tool scopes max body size",
            });
        }
        Arc::make_mut(&mut self.config).max_body_size = bytes;
        Ok(self)
    }

    /// The time allowed to receive the rest of the body, counted from the first time the layer
    /// has to wait for it (a body that is all there at once sets no timer); a slower body gets
    /// `408 Request Timeout`. Default
    /// [10 seconds](Self::DEFAULT_BODY_TIMEOUT).
    ///
    /// The timer is a Tokio timer: the service must run inside a Tokio runtime with the time
    /// driver enabled (as hyper and axum servers do). Outside any Tokio runtime no timer is set.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for zero or more than [5 minutes](Self::MAX_BODY_TIMEOUT).
    pub fn body_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() || timeout > Self::MAX_BODY_TIMEOUT {
            return Err(ConfigError::OutOfRange {
                what: "tool scopes body timeout",
            });
        }
        Arc::make_mut(&mut self.config).body_timeout = timeout;
        Ok(self)
    }

    /// The scopes a POST with this body needs, as the service computes them: the union over
    /// every `tools/call` in the message or batch of the tool's scopes (or the default ones), or
    /// the [strictest set](Self::strictest_scopes) when the body cannot be classified safely.
    /// Empty when no scope is needed.
    ///
    /// Exposed for tests and for frameworks that read the body themselves. The request headers
    /// play no part: they can make the service refuse a request (`400`, `-32020`), never need
    /// fewer scopes.
    ///
    /// ```
    /// # use mcp_auth_resource::{ProtectedResource, ScopeSet, ToolScopesLayer};
    /// # let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
    /// #     .authorization_server("https://auth.example.com").build()?;
    /// mcp_auth_resource::scopes!(Admin = "mcp:admin");
    /// let layer = ToolScopesLayer::new(resource)
    ///     .tool("admin_tool", Admin)
    ///     .tool("report", "files:read".parse::<ScopeSet>()?);
    /// let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool"}}"#;
    /// assert_eq!(layer.required_scopes(call).to_string(), "mcp:admin");
    /// assert!(layer.required_scopes(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_empty());
    /// assert_eq!(layer.required_scopes(b"{oops").to_string(), "mcp:admin files:read");
    /// # Ok::<(), mcp_auth_resource::ConfigError>(())
    /// ```
    #[must_use]
    pub fn required_scopes(&self, body: &[u8]) -> ScopeSet {
        self.config
            .required_scopes(&scan::parse(body))
            .scopes
            .into_owned()
    }

    /// The strictest set: the default scopes and every mapped tool's scopes, in configuration
    /// order. Required of a body that cannot be classified safely.
    #[must_use]
    pub fn strictest_scopes(&self) -> &ScopeSet {
        &self.config.strictest
    }

    /// The scopes required for calls of `name`, or `None` when the tool is not mapped (the
    /// [default](Self::default_scopes) applies).
    #[must_use]
    pub fn tool_scopes(&self, name: &str) -> Option<&ScopeSet> {
        self.config.tools.get(name)
    }
}

impl<S> Layer<S> for ToolScopesLayer {
    type Service = ToolScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ToolScopes::from_layer(inner, self.clone())
    }
}
