//! Redirect URI rules (mcp-auth-server `redirect.rs`): registrability and matching.
//!
//! Properties: a registrable URI has no fragment, no user information, no whitespace or
//! backslash, is at most 2048 bytes, and is `https` with a host or `http` on a loopback host
//! (as `url` reads it); matching is reflexive and symmetric, and two different URIs match only
//! when both are loopback `http` URIs with the same host, path and query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{fields, text};
use mcp_auth_server::__fuzz::{redirect_is_loopback, redirect_matches, redirect_registrable};

fn check_registrable(uri: &str) {
    let Ok(()) = redirect_registrable(uri) else {
        return;
    };
    assert!(uri.len() <= 2048);
    assert!(!uri.contains('#') && !uri.contains('\\'));
    assert!(!uri.chars().any(|c| c.is_whitespace() || c.is_control()));
    let url = url::Url::parse(uri).expect("a registrable URI parses");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{uri}"
    );
    assert!(url.fragment().is_none());
    match url.scheme() {
        "https" => assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{uri}"),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            assert!(loopback, "http redirect on a non-loopback host: {uri}");
            assert!(redirect_is_loopback(uri));
        }
        other => panic!("scheme {other} registrable: {uri}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (a, b) = (text(f[0]), text(f[1]));
    check_registrable(&a);
    check_registrable(&b);
    assert!(redirect_matches(&a, &a));
    let ab = redirect_matches(&a, &b);
    assert_eq!(ab, redirect_matches(&b, &a), "asymmetric: {a:?} {b:?}");
    if ab && a != b {
        assert!(
            redirect_is_loopback(&a) && redirect_is_loopback(&b),
            "{a:?} {b:?}"
        );
        let (ua, ub) = (
            url::Url::parse(&a).expect("a"),
            url::Url::parse(&b).expect("b"),
        );
        assert_eq!(ua.host(), ub.host(), "{a:?} {b:?}");
        assert_eq!(ua.path(), ub.path(), "{a:?} {b:?}");
        assert_eq!(ua.query(), ub.query(), "{a:?} {b:?}");
    }
});
