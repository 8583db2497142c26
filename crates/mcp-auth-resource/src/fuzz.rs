//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the parsers the layers
//! use that are not public. Not part of the API: hidden, and free to change with the code it
//! reaches.

/// The tools a JSON-RPC body calls, as [`ToolScopesLayer`](crate::ToolScopesLayer)
/// reads it: `None` when the body is ambiguous (then the strictest scopes apply).
#[cfg(feature = "mcp")]
#[must_use]
pub fn tool_calls(body: &[u8]) -> Option<Vec<String>> {
    crate::mcp::classify::parse(body)
        .tool_calls()
        .ok()
        .map(|calls| calls.into_iter().map(str::to_owned).collect())
}
