//! Redirect URI rules: what may be registered (AS-11, AS-12) and how a request's `redirect_uri`
//! matches a registered one (AS-10: exact string, any port on loopback).
//!
//! Every comparison works on the strings as registered and as requested. Nothing is
//! normalised through `url::Url` serialization, which lowercases, drops default ports and adds
//! slashes: `url` is only used to check that a URI is well formed.
//!
//! Registrable (both DCR and Client ID Metadata Documents):
//! 1. at most [`MAX_LEN`] bytes, no whitespace, control characters or backslashes;
//! 2. an absolute URI with no fragment and no userinfo;
//! 3. `https`, or `http` on a loopback host spelled canonically: `localhost`, a dotted-quad
//!    address in 127.0.0.0/8, or `[::1]`.
//!
//! Matching: exact string equality; for a registered `http` loopback URI, everything except
//! the port must be equal byte for byte (scheme, host, path, query), and the requested URI may
//! name any port, or none (RFC 8252 §7.3, OAuth 2.1 §8.4.2).
//!
//! Client kind (OpenID Connect Dynamic Client Registration 1.0 §2, MCP 2026-07-28 SEP-837):
//! an `http` loopback redirect ([`is_loopback_http`]) is what a `native` client uses; dynamic
//! registration refuses it for a client that registers as `web`. Private-use (custom) schemes
//! stay refused for every kind: MCP requires every redirect URI to be `localhost` or https.

use std::net::Ipv4Addr;

/// Longest redirect URI accepted (bytes).
pub(crate) const MAX_LEN: usize = 2048;

/// Why a redirect URI cannot be registered (`Err` holds a message safe to show a client).
pub(crate) fn check_registrable(uri: &str) -> Result<(), &'static str> {
    if uri.is_empty() {
        return Err("a redirect URI is empty");
    }
    if uri.len() > MAX_LEN {
        return Err("a redirect URI is longer than 2048 bytes");
    }
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("a redirect URI contains whitespace, control characters or backslashes");
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return Err("a redirect URI is not an absolute URI");
    };
    if !url.username().is_empty()
        || url.password().is_some()
        || raw_authority(uri).is_some_and(|a| a.contains('@'))
    {
        return Err("a redirect URI must not contain user information");
    }
    match url.scheme() {
        "https" => {
            // `url` is lenient with special schemes (`https:/host`, `https:///host`): insist on
            // the literal `https://` and a non-empty authority as written.
            let written = uri
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
            if !written
                || url.host_str().is_none_or(str::is_empty)
                || raw_authority(uri).is_none_or(str::is_empty)
            {
                return Err("a redirect URI has no host");
            }
            Ok(())
        }
        "http" => match split_loopback(uri) {
            Some(_) => Ok(()),
            None => Err(
                "a redirect URI must use https, or http on a loopback host (localhost, 127.0.0.1, [::1])",
            ),
        },
        _ => Err(
            "a redirect URI must use https, or http on a loopback host (localhost, 127.0.0.1, [::1])",
        ),
    }
}

/// Whether `uri` is `http` on a canonically written loopback host (`localhost`, 127.0.0.0/8,
/// `[::1]`, any port): the native-app redirect of RFC 8252 §7.3. `https` on a loopback host is
/// not: it is an ordinary https redirect.
pub(crate) fn is_loopback_http(uri: &str) -> bool {
    split_loopback(uri).is_some()
}

/// Whether `requested` matches `registered`: exact string equality, or for a loopback
/// `http` redirect (`127.0.0.1`, `[::1]`, `localhost`) equality of everything but the port.
pub(crate) fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Some(reg), Some(req)) = (split_loopback(registered), split_loopback(requested)) else {
        return false;
    };
    reg.scheme == req.scheme && reg.host == req.host && reg.rest == req.rest
}

/// An `http` loopback URI taken apart on the raw string.
#[derive(Debug, PartialEq, Eq)]
struct LoopbackParts<'a> {
    /// `http` exactly as written (matching is case-sensitive, so `HTTP` is kept apart).
    scheme: &'a str,
    /// The host as written: `localhost`, `127.0.0.1`, `[::1]`.
    host: &'a str,
    /// Path and query, as written.
    rest: &'a str,
}

/// The authority of an absolute hierarchical URI, on the raw string: what follows `scheme://`
/// up to the first `/`, `?` or `#`.
fn raw_authority(uri: &str) -> Option<&str> {
    let (_, after) = uri.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some(&after[..end])
}

/// Take an `http` URI on a canonically written loopback host apart; `None` for anything else
/// (another scheme or host, userinfo, a fragment, a malformed port, a backslash, ...).
fn split_loopback(uri: &str) -> Option<LoopbackParts<'_>> {
    let scheme = uri.get(..4)?;
    if !scheme.eq_ignore_ascii_case("http") || uri.get(4..7) != Some("://") {
        return None;
    }
    if uri.contains(['#', '\\']) || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let after = &uri[7..];
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, tail) = authority.split_at(close + 1);
        match tail {
            "" => (host, None),
            t => (host, Some(t.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| !is_port(p)) {
        return None;
    }
    if !is_loopback_host(host) {
        return None;
    }
    Some(LoopbackParts { scheme, host, rest })
}

/// 1 to 5 ASCII digits, at most 65535.
fn is_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65535)
}

/// `localhost` (any case), a dotted-quad address in 127.0.0.0/8, or `[::1]` exactly: core's
/// loopback rule, restricted to the canonical spellings, because redirect URIs are compared as
/// strings and `[0:0:0:0:0:0:0:1]` must not become a second spelling of `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    mcp_auth_core::is_loopback_host(host)
        && (host.eq_ignore_ascii_case("localhost")
            || host == "[::1]"
            || host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.to_string() == host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_registrable() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost/callback",
            "http://localhost:3000/callback",
            "http://LOCALHOST:3000/callback",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53682/",
            "http://127.1.2.3:80/cb",
            "http://[::1]:8080/callback",
            "http://[::1]/callback",
            "HTTPS://APP.example.com/cb",
        ] {
            assert_eq!(check_registrable(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn non_loopback_http_and_other_schemes_are_refused() {
        for bad in [
            "http://app.example.com/callback",
            "http://localhost.evil.com/callback",
            "http://127.0.0.1.evil.com/callback",
            "http://localhost./callback",
            "http://10.0.0.1/callback",
            "http://[::2]/callback",
            "http://[0:0:0:0:0:0:0:1]/callback",
            "http://0x7f.1/callback",
            "http://2130706433/callback",
            "http://127.000.000.001/callback",
            "myapp://callback",
            "com.example.app:/callback",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "ftp://example.com/cb",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_fragment_userinfo_and_odd_characters_are_refused() {
        for bad in [
            "",
            "/callback",
            "callback",
            "//app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "http://localhost/cb#x",
            "http://127.0.0.1@evil.com/cb",
            "http://user:pw@localhost/cb",
            "https://user@app.example.com/cb",
            "https://@app.example.com/cb",
            "http://@localhost/cb",
            "https://app.example.com/c b",
            " https://app.example.com/cb",
            "https://app.example.com/cb\n",
            "https://app.example.com\\@evil.com/cb",
            "http://localhost\\evil.com/cb",
            "https:///cb",
            "https:/app.example.com/cb",
            "https:app.example.com/cb",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_LEN));
        assert!(check_registrable(&long).is_err());
    }

    #[test]
    fn matching_is_exact_for_non_loopback_uris() {
        let reg = "https://app.example.com/callback";
        assert!(matches(reg, reg));
        for other in [
            "https://app.example.com/callback/",
            "https://app.example.com/Callback",
            "https://APP.example.com/callback",
            "HTTPS://app.example.com/callback",
            "https://app.example.com:443/callback",
            "https://app.example.com:8443/callback",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/callback#x",
            "https://app.example.com/callback/../callback",
            "https://app.example.com/callback%2F",
            "https://evil.com/callback",
        ] {
            assert!(!matches(reg, other), "{other}");
        }
        // Origin-only: no slash added or removed.
        assert!(!matches(
            "https://app.example.com",
            "https://app.example.com/"
        ));
        assert!(!matches(
            "https://app.example.com/",
            "https://app.example.com"
        ));
    }

    #[test]
    fn loopback_http_matches_on_any_port() {
        for (reg, req) in [
            (
                "http://127.0.0.1/callback",
                "http://127.0.0.1:53682/callback",
            ),
            (
                "http://127.0.0.1:8080/callback",
                "http://127.0.0.1:9090/callback",
            ),
            (
                "http://127.0.0.1:8080/callback",
                "http://127.0.0.1/callback",
            ),
            (
                "http://localhost/callback",
                "http://localhost:3000/callback",
            ),
            ("http://localhost:1/cb?x=1", "http://localhost:65535/cb?x=1"),
            ("http://[::1]/callback", "http://[::1]:8080/callback"),
            ("http://[::1]:1234/callback", "http://[::1]/callback"),
            ("http://localhost", "http://localhost:3000"),
        ] {
            assert!(matches(reg, req), "{reg} vs {req}");
        }
    }

    #[test]
    fn loopback_http_still_compares_everything_but_the_port() {
        let reg = "http://127.0.0.1/callback";
        for req in [
            "http://127.0.0.1:8080/callback/",
            "http://127.0.0.1:8080/Callback",
            "http://127.0.0.1:8080/callback?x=1",
            "http://127.0.0.1:8080/callback#x",
            "http://127.0.0.1:8080",
            "http://127.0.0.2:8080/callback",
            "http://localhost:8080/callback",
            "http://[::1]:8080/callback",
            "https://127.0.0.1:8080/callback",
            "HTTP://127.0.0.1:8080/callback",
            "http://127.0.0.1:8080@evil.com/callback",
            "http://127.0.0.1@evil.com/callback",
            "http://evil.com@127.0.0.1:8080/callback",
            "http://127.0.0.1.evil.com:8080/callback",
            "http://127.0.0.1:80a/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:123456/callback",
            "http://127.0.0.1:65536/callback",
            "http://127.0.0.1:+80/callback",
            "http://127.0.0.1:8080\\@evil.com/callback",
            "http://127.0.0.1:8080/callback\\",
            "http://127.0.0.1:8080/callback ",
        ] {
            assert!(!matches(reg, req), "{req}");
        }
        assert!(!matches(
            "http://localhost/cb",
            "http://localhost.evil.com:80/cb"
        ));
        assert!(!matches("http://localhost/cb", "http://LOCALHOST:80/cb"));
        assert!(!matches("http://localhost/cb", "http://localhost:80/cb/"));
        assert!(!matches("http://localhost/cb", "http://localhost:80"));
    }

    #[test]
    fn port_freedom_is_only_for_loopback_http() {
        assert!(!matches(
            "https://localhost/cb",
            "https://localhost:8443/cb"
        ));
        assert!(!matches(
            "https://127.0.0.1/cb",
            "https://127.0.0.1:8443/cb"
        ));
        assert!(!matches(
            "http://example.com/cb",
            "http://example.com:8080/cb"
        ));
        assert!(!matches("http://10.0.0.1/cb", "http://10.0.0.1:8080/cb"));
    }

    #[test]
    fn only_http_on_a_canonical_loopback_host_is_a_native_redirect() {
        for native in [
            "http://127.0.0.1:53682/callback",
            "http://127.0.0.1/callback",
            "http://127.9.9.9:80/cb",
            "http://[::1]:8080/callback",
            "http://[::1]/callback",
            "http://localhost/callback",
            "http://localhost:3000/callback",
            "http://LOCALHOST:3000/callback",
            "http://localhost",
        ] {
            assert!(is_loopback_http(native), "{native}");
        }
        for other in [
            "https://127.0.0.1/callback",
            "https://localhost:8443/callback",
            "https://app.example.com/callback",
            "http://app.example.com/callback",
            "http://localhost.evil.com/callback",
            "http://127.0.0.1@evil.com/callback",
            "http://[0:0:0:0:0:0:0:1]/callback",
            "http://10.0.0.1/callback",
            "myapp://callback",
            "com.example.app:/callback",
            "",
        ] {
            assert!(!is_loopback_http(other), "{other}");
        }
    }

    #[test]
    fn raw_parts_keep_the_original_bytes() {
        assert_eq!(
            split_loopback("http://[::1]:80/a?b=c"),
            Some(LoopbackParts {
                scheme: "http",
                host: "[::1]",
                rest: "/a?b=c"
            })
        );
        assert_eq!(
            split_loopback("http://localhost?x"),
            Some(LoopbackParts {
                scheme: "http",
                host: "localhost",
                rest: "?x"
            })
        );
        assert_eq!(split_loopback("http://[::1"), None);
        assert_eq!(split_loopback("http://[::1]x/"), None);
        assert_eq!(split_loopback("http:/localhost/"), None);
        assert_eq!(split_loopback("htt"), None);
        assert_eq!(split_loopback("http://é/"), None);
        assert_eq!(split_loopback("httpé://localhost/"), None);
    }
}
