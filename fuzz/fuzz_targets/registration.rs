//! Dynamic client registration bodies (mcp-auth-server `handlers/register.rs`: the body read
//! and the metadata checks, before anything is stored).
//!
//! Properties: a refusal is `invalid_client_metadata` or `invalid_redirect_uri` with a
//! description without `"`; an accepted registration came from a JSON object, and every
//! redirect URI it keeps is registrable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_core::error::sanitize_description;
use mcp_auth_server::__fuzz::{redirect_registrable, registration};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match registration(data) {
        Ok(metadata) => {
            assert!(matches!(
                serde_json::from_slice::<Value>(data),
                Ok(Value::Object(_))
            ));
            if let Some(uris) = metadata.get("redirect_uris").and_then(Value::as_array) {
                for uri in uris {
                    let uri = uri.as_str().expect("a string redirect URI");
                    assert!(redirect_registrable(uri).is_ok(), "kept {uri:?}");
                }
            }
        }
        Err((code, description)) => {
            assert!(
                matches!(
                    code.as_str(),
                    "invalid_client_metadata" | "invalid_redirect_uri"
                ),
                "{code}: {description}"
            );
            let sent = sanitize_description(description.into());
            assert!(!sent.contains('"'));
        }
    }
});
