//! Form and query parsing of every OAuth endpoint (mcp-auth-server `form.rs`,
//! `Params::parse_strict`): against an independent reading with `url`'s form decoder.
//!
//! Properties: accepted parameters are exactly the non-empty pairs, each name once, in order;
//! a duplicate is refused (`invalid_target` for `resource`, else `invalid_request`), and the
//! description sent to the client holds no `"`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_core::error::sanitize_description;
use mcp_auth_server::__fuzz::form;

fuzz_target!(|data: &[u8]| {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut duplicated: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(data) {
        if value.is_empty() {
            continue;
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            duplicated.push(name.into_owned());
        } else {
            pairs.push((name.into_owned(), value.into_owned()));
        }
    }
    match form(data) {
        Ok(got) => {
            assert!(duplicated.is_empty(), "duplicates accepted: {duplicated:?}");
            assert_eq!(got, pairs);
        }
        Err((code, description)) => {
            assert!(
                !duplicated.is_empty(),
                "refused without a duplicate: {description}"
            );
            let expected = if duplicated.iter().any(|d| d == "resource") {
                "invalid_target"
            } else {
                "invalid_request"
            };
            assert_eq!(code, expected);
            let sent = sanitize_description(description.into());
            assert!(!sent.contains('"') && !sent.contains('\\'));
        }
    }
});
