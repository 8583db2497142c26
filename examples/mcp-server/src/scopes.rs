//! The scope design, declared once: which scope each tool needs.
//!
//! [`TOOL_SCOPES`] configures the [`ToolScopesLayer`] (an HTTP 403 step-up challenge before the
//! MCP server sees a call) *and* is what each tool handler checks again before acting (defence in
//! depth: a router that forgot the layer still refuses). A unit test checks that every tool the
//! server lists has a row here and every row names a listed tool.

use mcp_auth_resource::{AuthInfo, ConfigError, ProtectedResource, mcp::ToolScopesLayer};

/// The scopes advertised in `scopes_supported` and asked for by default: the minimal set (SPEC
/// RS-6). Every other scope is unadvertised and reached by step-up.
pub const ADVERTISED_SCOPES: &str = "mcp:tools notes:read";

/// What a `tools/call` of a tool missing from [`TOOL_SCOPES`] needs.
pub const DEFAULT_TOOL_SCOPE: &str = "mcp:tools";

/// Tool name → the space-delimited scopes a call needs. The single source of truth.
pub const TOOL_SCOPES: &[(&str, &str)] = &[
    ("whoami", "mcp:tools"),
    ("list_notes", "notes:read"),
    ("get_note", "notes:read"),
    ("add_note", "notes:write"),
    ("delete_note", "notes:admin"),
    ("admin_tool", "mcp:admin"),
];

/// The scopes `tool` needs ([`DEFAULT_TOOL_SCOPE`] for a tool not in [`TOOL_SCOPES`]).
pub fn scopes_for(tool: &str) -> &'static str {
    TOOL_SCOPES
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(DEFAULT_TOOL_SCOPE, |(_, scopes)| scopes)
}

/// Every scope in [`TOOL_SCOPES`] that is not advertised, in table order, without duplicates:
/// what the authorization server accepts but does not list in its metadata.
pub fn unadvertised_scopes() -> Vec<&'static str> {
    let advertised: Vec<&str> = ADVERTISED_SCOPES.split(' ').collect();
    let mut out: Vec<&'static str> = Vec::new();
    for scope in TOOL_SCOPES
        .iter()
        .flat_map(|(_, scopes)| scopes.split(' '))
        .chain(DEFAULT_TOOL_SCOPE.split(' '))
    {
        if !advertised.contains(&scope) && !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

/// The tool-scope layer for `resource`, configured from [`TOOL_SCOPES`].
///
/// # Errors
/// [`ConfigError::Scope`] if a scope in the table is not a valid RFC 6749 scope token.
pub fn tool_scopes_layer(resource: ProtectedResource) -> Result<ToolScopesLayer, ConfigError> {
    let mut layer = ToolScopesLayer::new(resource).default_scopes(DEFAULT_TOOL_SCOPE)?;
    for (tool, scopes) in TOOL_SCOPES {
        layer = layer.tool(*tool, scopes)?;
    }
    Ok(layer)
}

/// The scopes of `tool` that `info` lacks (empty when the call is allowed).
pub fn missing_scopes(info: &AuthInfo, tool: &str) -> Vec<&'static str> {
    scopes_for(tool)
        .split(' ')
        .filter(|scope| !scope.is_empty() && !info.has_scope(scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unadvertised_scopes_are_the_step_up_ones() {
        assert_eq!(
            unadvertised_scopes(),
            ["notes:write", "notes:admin", "mcp:admin"]
        );
        assert_eq!(scopes_for("delete_note"), "notes:admin");
        assert_eq!(scopes_for("no_such_tool"), DEFAULT_TOOL_SCOPE);
    }
}
