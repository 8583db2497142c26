//! The scope design: one type per scope, and which scope each tool needs.
//!
//! Each scope string is written once, in the [`scopes!`] block below. A tool handler names the
//! type it needs in its signature (`RequireScope<NotesWrite>`: the handler does not run without
//! `notes:write`, and the client gets a JSON-RPC error naming it), and [`TOOL_SCOPES`] maps each
//! tool to the same type's scopes for the [`ToolScopesLayer`], which answers HTTP 403 with a
//! step-up challenge before the call reaches rmcp. `tests/tool_scopes.rs` calls every tool
//! without the layer and checks that its handler refuses exactly the scopes this table names, so
//! the signatures and the table cannot drift apart; a unit test checks that the table and the
//! tools rmcp lists are the same set.

use mcp_auth_resource::{ProtectedResource, ScopeList, ScopeSet, ToolScopesLayer, scopes};

scopes! {
    /// Calling tools at all: `whoami`, `upstream_profile`, and any tool [`TOOL_SCOPES`] does not name.
    pub McpTools = "mcp:tools";
    /// Reading notes: `list_notes`, `get_note`.
    pub NotesRead = "notes:read";
    /// Adding notes: `add_note` (reached by step-up).
    pub NotesWrite = "notes:write";
    /// Deleting any note: `delete_note` (reached by step-up).
    pub NotesAdmin = "notes:admin";
    /// Privileged operations: `admin_tool` (reached by step-up).
    pub McpAdmin = "mcp:admin";
}

/// Every scope this server knows, in the order above.
pub const ALL_SCOPES: &[&[&str]] = &[
    McpTools::SCOPES,
    NotesRead::SCOPES,
    NotesWrite::SCOPES,
    NotesAdmin::SCOPES,
    McpAdmin::SCOPES,
];

/// The scopes advertised in `scopes_supported` and asked for by default: the minimal set (SPEC
/// RS-6). Every other scope is unadvertised and reached by step-up.
pub const ADVERTISED: &[&[&str]] = &[McpTools::SCOPES, NotesRead::SCOPES];

/// [`ADVERTISED`], space-delimited: `mcp:tools notes:read`.
pub fn advertised_scopes() -> String {
    ADVERTISED.concat().join(" ")
}

/// [`ADVERTISED`] as a set, for `scopes_supported`.
pub fn advertised_scope_set() -> ScopeSet {
    ScopeSet::from(McpTools).union(&ScopeSet::from(NotesRead))
}

/// What a `tools/call` of a tool missing from [`TOOL_SCOPES`] needs.
pub const DEFAULT_TOOL_SCOPES: &[&str] = McpTools::SCOPES;

/// Tool name → the scopes a call needs (all of them): the same types the handlers' signatures
/// name.
pub const TOOL_SCOPES: &[(&str, &[&str])] = &[
    ("whoami", McpTools::SCOPES),
    ("list_notes", NotesRead::SCOPES),
    ("get_note", NotesRead::SCOPES),
    ("add_note", NotesWrite::SCOPES),
    ("delete_note", NotesAdmin::SCOPES),
    ("admin_tool", McpAdmin::SCOPES),
    ("upstream_profile", McpTools::SCOPES),
];

/// The scopes `tool` needs, space-delimited ([`DEFAULT_TOOL_SCOPES`] for a tool not in
/// [`TOOL_SCOPES`]).
pub fn scopes_for(tool: &str) -> String {
    TOOL_SCOPES
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(DEFAULT_TOOL_SCOPES, |(_, scopes)| scopes)
        .join(" ")
}

/// Every scope in [`TOOL_SCOPES`] that is not advertised, in table order, without duplicates:
/// what the authorization server accepts but does not list in its metadata.
pub fn unadvertised_scopes() -> Vec<&'static str> {
    let advertised = ADVERTISED.concat();
    let mut out: Vec<&'static str> = Vec::new();
    for scope in ALL_SCOPES.concat() {
        if !advertised.contains(&scope) && !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

/// The tool-scope layer for `resource`: each tool mapped to the [`scopes!`] type its handler
/// names (the same table as [`TOOL_SCOPES`]; a unit test keeps the two equal).
pub fn tool_scopes_layer(resource: ProtectedResource) -> ToolScopesLayer {
    ToolScopesLayer::new(resource)
        .default_scopes(McpTools)
        .tool("whoami", McpTools)
        .tool("list_notes", NotesRead)
        .tool("get_note", NotesRead)
        .tool("add_note", NotesWrite)
        .tool("delete_note", NotesAdmin)
        .tool("admin_tool", McpAdmin)
        .tool("upstream_profile", McpTools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_maps_every_tool_as_the_table_says() {
        let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .build()
            .unwrap();
        let layer = tool_scopes_layer(resource);
        for (tool, scopes) in TOOL_SCOPES {
            assert_eq!(
                layer.tool_scopes(tool).map(ToString::to_string),
                Some(scopes.join(" ")),
                "{tool}"
            );
        }
        assert_eq!(layer.strictest_scopes().len(), ALL_SCOPES.concat().len());
    }

    #[test]
    fn the_unadvertised_scopes_are_the_step_up_ones() {
        assert_eq!(
            unadvertised_scopes(),
            ["notes:write", "notes:admin", "mcp:admin"]
        );
        assert_eq!(scopes_for("delete_note"), "notes:admin");
        assert_eq!(scopes_for("no_such_tool"), "mcp:tools");
    }

    #[test]
    fn the_advertised_scopes_are_the_minimal_set_and_every_tool_scope_is_declared() {
        assert_eq!(advertised_scopes(), "mcp:tools notes:read");
        let known = ALL_SCOPES.concat();
        for scope in ADVERTISED.concat() {
            assert!(known.contains(&scope), "{scope}");
        }
        for (_, scopes) in TOOL_SCOPES {
            assert!(scopes.iter().all(|s| known.contains(s)), "{scopes:?}");
        }
    }
}
