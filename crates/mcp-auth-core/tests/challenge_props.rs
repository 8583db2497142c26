//! Property tests for the `WWW-Authenticate` builder and parser.

use mcp_auth_core::{
    ResourceId, ScopeSet,
    challenge::{Challenge, parse, to_header_string},
    well_known,
};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// Parameter values: any printable ASCII (quotes and backslashes included), spaces and tabs.
fn value() -> impl Strategy<Value = String> {
    "[ -~\t]{0,40}"
}

fn challenge() -> impl Strategy<Value = Challenge> {
    (token(), prop::collection::vec((token(), value()), 0..5)).prop_map(|(scheme, params)| {
        let mut c = Challenge::new(scheme);
        for (name, value) in params {
            c.set_param(name, value);
        }
        c
    })
}

fn token68() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,20}={0,2}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_then_parse_round_trips(challenges in prop::collection::vec(challenge(), 1..4)) {
        let header = to_header_string(&challenges);
        let parsed = parse(&header).unwrap();
        prop_assert_eq!(parsed, challenges);
    }

    #[test]
    fn token68_challenges_round_trip(scheme in token(), t68 in token68()) {
        let mut c = Challenge::new(scheme);
        c.set_token68(t68);
        let parsed = parse(&c.to_string()).unwrap();
        prop_assert_eq!(parsed, vec![c]);
    }

    #[test]
    fn arbitrary_strings_never_panic(input in "\\PC{0,200}") {
        let _ = parse(&input);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&String::from_utf8_lossy(&input));
    }

    #[test]
    fn near_miss_headers_never_panic(
        parts in prop::collection::vec(prop::sample::select(vec![
            "Bearer", " ", ",", "=", "\"", "\\", "scope", "realm", "a", "==", "\t", "x/y+", "\"\\\"",
        ]), 0..30)
    ) {
        let _ = parse(&parts.concat());
    }

    #[test]
    fn scope_sets_round_trip_through_their_string(tokens in prop::collection::vec("[!#-\\[\\]-~]{1,10}", 0..8)) {
        let set = ScopeSet::from_tokens(&tokens).unwrap();
        let again: ScopeSet = set.to_string().parse().unwrap();
        prop_assert_eq!(again, set);
    }

    #[test]
    fn well_known_urls_keep_the_origin_and_never_end_in_a_slash(
        host in "[a-z]{1,10}\\.example",
        path in prop::collection::vec("[a-z0-9]{1,6}", 0..4),
        trailing in any::<bool>(),
    ) {
        let mut raw = format!("https://{host}");
        for seg in &path {
            raw.push('/');
            raw.push_str(seg);
        }
        if trailing {
            raw.push('/');
        }
        let id = ResourceId::parse(&raw).unwrap();
        let url = well_known::protected_resource_metadata_url(&id);
        let prefix = format!("https://{host}/.well-known/oauth-protected-resource");
        prop_assert!(url.starts_with(&prefix));
        prop_assert!(!url.ends_with('/'));
        let as_url = well_known::authorization_server_metadata_url(&raw).unwrap();
        prop_assert!(!as_url.ends_with('/'));
    }
}
