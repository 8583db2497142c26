//! Client ID Metadata Documents (mcp-auth-server `cimd`: the document validation, after the
//! fetch).
//!
//! Properties: an accepted document is a JSON object whose `client_id` is exactly the URL it
//! was fetched from, that has a `client_name`, no `client_secret`, and only registrable
//! redirect URIs (at least one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{fields, text};
use mcp_auth_server::__fuzz::{cimd_document, redirect_registrable};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let flags = f[0].first().copied().unwrap_or(0);
    let (client_id, body) = if flags & 1 == 0 {
        ("https://app.example.com/client.json".to_owned(), f[1])
    } else {
        let g = fields(f[1], 2);
        (text(g[0]), g[1])
    };
    let Ok(uris) = cimd_document(&client_id, body, 1_700_000_000) else {
        return;
    };
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        panic!("accepted a document that is not a JSON object");
    };
    assert_eq!(doc.get("client_id"), Some(&Value::from(client_id.as_str())));
    assert!(
        doc.get("client_name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.trim().is_empty())
    );
    assert!(!doc.contains_key("client_secret"));
    assert!(!uris.is_empty());
    for uri in &uris {
        assert!(redirect_registrable(uri).is_ok(), "kept {uri:?}");
    }
});
