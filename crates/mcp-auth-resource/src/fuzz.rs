//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the parsers the layers
//! use that are not public. Not part of the API: hidden, and free to change with the code it
//! reaches.

/// The tools a JSON-RPC body calls, as [`ToolScopesLayer`](crate::ToolScopesLayer)
/// reads it: `None` when the body is ambiguous (then the strictest scopes apply).
#[cfg(feature = "mcp")]
#[must_use]
pub fn tool_calls(body: &[u8]) -> Option<Vec<String>> {
    crate::mcp::scan::parse(body)
        .tool_calls()
        .ok()
        .map(|calls| calls.into_iter().map(str::to_owned).collect())
}

/// Whether the layer's byte scan of a JSON-RPC body, when it answers, reads it exactly as the
/// full serde_json parse does (`true` when it leaves the body to the full parse).
#[cfg(feature = "mcp")]
#[must_use]
pub fn scan_agrees(body: &[u8]) -> bool {
    crate::mcp::scan::fast(body).is_none_or(|scanned| scanned == crate::mcp::classify::parse(body))
}
