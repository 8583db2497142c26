//! HTTP helpers every endpoint shares: response shapes, content types, the loopback `Host`
//! rule. A leaf: it names nothing else in the crate.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The media type of a request or response (`type/subtype`, lowercase, without parameters).
fn essence(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether the content type is `application/x-www-form-urlencoded` (parameters allowed).
pub(crate) fn is_form(headers: &http::HeaderMap) -> bool {
    essence(headers).is_some_and(|e| e == "application/x-www-form-urlencoded")
}

/// Whether the content type is `application/json` or `application/*+json` (parameters allowed).
pub(crate) fn is_json(headers: &http::HeaderMap) -> bool {
    essence(headers).is_some_and(|e| {
        e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
    })
}

/// A public, cacheable JSON document (metadata, JWKS; CORS comes from the router).
pub(crate) fn public_json(body: bytes::Bytes, cache_control: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// The JSON response every endpoint uses for success bodies that carry credentials.
pub(crate) fn no_store_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Whether the request names only loopback hosts: at most one `Host` header, and it and an
/// absolute target, when present, each parse strictly as `host[:port]` naming `localhost`,
/// 127.0.0.0/8 or `[::1]`. A request naming no host at all passes: browsers (the only way to
/// a DNS-rebinding attack) always send one, and in-process calls (`Router::oneshot`) have none.
pub(crate) fn names_loopback_host(uri: &http::Uri, headers: &http::HeaderMap) -> bool {
    use mcp_auth_core::host::Authority;
    let mut values = headers.get_all(header::HOST).iter();
    let host = values.next();
    if values.next().is_some() {
        return false;
    }
    let host = match host.map(HeaderValue::to_str) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return false,
        None => None,
    };
    let target = uri.authority().map(http::uri::Authority::as_str);
    host.into_iter()
        .chain(target)
        .all(|value| Authority::parse(value).is_some_and(|a| a.host().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: &[&str], uri: &str) -> bool {
        let mut headers = http::HeaderMap::new();
        for h in host {
            headers.append(header::HOST, HeaderValue::from_str(h).unwrap());
        }
        names_loopback_host(&uri.parse().unwrap(), &headers)
    }

    #[test]
    fn only_loopback_names_pass() {
        for (host, uri) in [
            (&["127.0.0.1:8080"][..], "/token"),
            (&["localhost"][..], "/token"),
            (&["[::1]:9"][..], "/token"),
            (&["127.0.0.2:1"][..], "http://localhost:1/token"),
            (&[][..], "/token"),
        ] {
            assert!(check(host, uri), "{host:?} {uri}");
        }
        for (host, uri) in [
            (&["evil.example:8080"][..], "/token"),
            (&["localhost.evil.example"][..], "/token"),
            (&["127.0.0.1", "127.0.0.1"][..], "/token"),
            (&["user@127.0.0.1"][..], "/token"),
            (&["127.0.0.1:8080"][..], "http://evil.example/token"),
            (&[][..], "http://evil.example:8080/token"),
        ] {
            assert!(!check(host, uri), "{host:?} {uri}");
        }
    }
}
