//! The JSON-RPC classification of `ToolScopesLayer` (mcp-auth-resource `mcp/classify.rs`):
//! batches, duplicate keys, deep nesting, huge numbers, escapes.
//!
//! Differential property against serde_json's own `Value` (what a dispatcher built on serde
//! reads): whenever the classifier gives a list of tool calls (not "ambiguous"), the body is
//! valid JSON and the `tools/call` names in `Value` order are exactly that list. So no body
//! makes the layer see other tools than the server will run. And the layer's byte scan
//! (`mcp/scan.rs`), whenever it answers, answers exactly as the full serde_json visitor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_resource::__fuzz::{scan_agrees, tool_calls};
use serde_json::Value;

/// The tool calls as a serde-based dispatcher reads the body (last duplicate key wins).
fn reference(body: &[u8]) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let messages = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return None,
    };
    let mut calls = Vec::new();
    for message in &messages {
        let object = message.as_object()?;
        if object.get("method").and_then(Value::as_str) == Some("tools/call") {
            calls.push(object.get("params")?.get("name")?.as_str()?.to_owned());
        }
    }
    Some(calls)
}

fuzz_target!(|data: &[u8]| {
    assert!(
        scan_agrees(data),
        "the byte scan and the full parse disagree: {:?}",
        String::from_utf8_lossy(data)
    );
    let Some(calls) = tool_calls(data) else {
        return;
    };
    let expected = reference(data);
    assert_eq!(
        Some(&calls),
        expected.as_ref(),
        "the layer reads other tool calls than serde_json: {:?}",
        String::from_utf8_lossy(data)
    );
});
