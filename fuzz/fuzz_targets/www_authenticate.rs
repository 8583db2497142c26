//! The `WWW-Authenticate` parser (mcp-auth-core `challenge::parse`) on any input, with two
//! round-trip properties against the printer and the `Bearer` builder:
//!
//! 1. whatever parses prints as a header that parses back to the same challenges (values
//!    mapped as the printer maps them: characters a header cannot carry become `?`), and
//!    printing that again gives the same text;
//! 2. a `BearerChallenge` built from any fields parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_core::{
    ScopeSet,
    challenge::{BearerChallenge, Challenge, DpopChallenge, parse, to_header_string},
    error::ErrorCode,
};
use mcp_auth_fuzz::{fields, text};

/// What the printer writes for a value: visible ASCII, space and tab kept, anything else `?`.
fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            ' ' | '\t' | '!'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// A challenge as the printer shows it: scheme, token68 and parameters, values mapped.
type View = (String, Option<String>, Vec<(String, String)>);

fn as_printed(c: &Challenge) -> View {
    (
        c.scheme().to_owned(),
        c.token68().map(str::to_owned),
        c.params()
            .iter()
            .map(|(n, v)| (n.clone(), printable(v)))
            .collect(),
    )
}

fn view(c: &Challenge) -> View {
    (
        c.scheme().to_owned(),
        c.token68().map(str::to_owned),
        c.params().to_vec(),
    )
}

fn check_parse(input: &str) {
    let Ok(challenges) = parse(input) else {
        return;
    };
    assert!(!challenges.is_empty());
    let printed = to_header_string(&challenges);
    let reparsed = parse(&printed)
        .unwrap_or_else(|e| panic!("printed challenges do not parse: {e}: {printed:?}"));
    let expected: Vec<View> = challenges.iter().map(as_printed).collect();
    let got: Vec<View> = reparsed.iter().map(view).collect();
    assert_eq!(got, expected, "round trip of {input:?} via {printed:?}");
    assert_eq!(to_header_string(&reparsed), printed);
    // The typed readers never panic.
    if let Some(bearer) = BearerChallenge::find(&challenges) {
        let _ = (
            bearer.scopes(),
            bearer.error_code(),
            bearer.resource_metadata_url(),
        );
        let _ = bearer.to_header_value();
    }
    if let Some(dpop) = DpopChallenge::find(&challenges) {
        let _ = (dpop.algs_value(), dpop.error_code());
    }
}

fn error_code(selector: u8, other: &str) -> ErrorCode {
    match selector % 6 {
        0 => ErrorCode::InvalidRequest,
        1 => ErrorCode::InvalidToken,
        2 => ErrorCode::InsufficientScope,
        3 => ErrorCode::InvalidDpopProof,
        4 => ErrorCode::UseDpopNonce,
        _ => ErrorCode::Other(other.to_owned()),
    }
}

fn check_builder(data: &[u8]) {
    let f = fields(data, 6);
    let selector = f[0].first().copied().unwrap_or(0);
    let mut built = BearerChallenge::new();
    if selector & 0x08 != 0 {
        built = built.realm(&text(f[1]));
    }
    if selector & 0x10 != 0 {
        built = built.resource_metadata(&text(f[2]));
    }
    if let Ok(scopes) = ScopeSet::parse(&text(f[3])) {
        built = built.scope(&scopes);
    }
    if selector & 0x20 != 0 {
        built = built.error(error_code(selector, &text(f[4])));
    }
    if selector & 0x40 != 0 {
        built = built.error_description(&text(f[5]));
    }
    let header = built.to_string();
    let value = built.to_header_value();
    assert_eq!(
        value.as_bytes(),
        header.as_bytes(),
        "header value differs from Display"
    );
    let parsed = parse(&header)
        .unwrap_or_else(|e| panic!("built challenge does not parse: {e}: {header:?}"));
    let got: Vec<View> = parsed.iter().map(view).collect();
    assert_eq!(got, vec![as_printed(built.as_challenge())], "{header:?}");
    let back = BearerChallenge::find(&parsed).expect("a Bearer challenge");
    assert_eq!(back.to_string(), header);
    if let Some(scopes) = built.scopes() {
        assert_eq!(back.scopes(), Some(scopes));
    }
    // Error descriptions never carry a quote (HELPERS: OAuth error descriptions never contain `"`).
    if let Some(d) = back.error_description_text() {
        assert!(!d.contains('"') && !d.contains('\\'), "{d:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    check_parse(&String::from_utf8_lossy(data));
    check_builder(data);
});
