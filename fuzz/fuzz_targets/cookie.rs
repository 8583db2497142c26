//! Cookie reading of the authorization endpoint (mcp-auth-server `handlers/authorize/page.rs`
//! `cookie`): any number of `Cookie` header values.
//!
//! Properties: the value found is non-empty, holds no `;`, and is the value of the first pair
//! named exactly so (after trimming) in an independent reading of RFC 6265 §5.4 pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{fields, text};
use mcp_auth_server::__fuzz::cookie;

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 4);
    let name = text(f[0]);
    let values: Vec<&[u8]> = f[1..].iter().copied().filter(|v| !v.is_empty()).collect();
    let found = cookie(&values, &name);
    let reference = values
        .iter()
        .filter(|v| http::HeaderValue::from_bytes(v).is_ok())
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter(|v| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty());
    assert_eq!(found, reference);
    if let Some(v) = found {
        assert!(!v.is_empty() && !v.contains(';'));
    }
});
