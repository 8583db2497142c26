//! HTTP helpers every endpoint shares: response shapes, CORS, content types, reading a form.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::error::OAuthError;
use crate::form::Params;
use crate::state::Inner;

/// CORS for endpoints browser-based clients call (AS-7): any origin, no credentials.
pub(crate) fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Retry-After"),
    );
    response
}

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

/// A public, cacheable JSON document (metadata, JWKS) with CORS.
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
    cors(response)
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

/// Read the form body of a POST: `application/x-www-form-urlencoded`, at most the configured
/// size, no duplicated parameters (AS-22).
pub(crate) async fn read_form(
    inner: &Inner,
    request: Request,
) -> Result<(http::request::Parts, Params), OAuthError> {
    let (parts, body) = request.into_parts();
    if !is_form(&parts.headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_body(body, inner.config.max_body_bytes)
        .await
        .map_err(|()| {
            OAuthError::invalid_request("the request body is too large")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    let params = Params::parse_strict(&bytes)?;
    Ok((parts, params))
}

/// Reads a request body of at most `limit` bytes. A body that declares more (`Content-Length`)
/// is refused at once, without waiting for bytes that may never come; one that turns out larger
/// or fails to arrive is refused too.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ()> {
    let declared = axum::body::HttpBody::size_hint(&body).lower();
    if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(());
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| ())
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

    /// A body that declares 100 MiB and never sends a byte.
    struct Declared;

    impl axum::body::HttpBody for Declared {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(100 * 1024 * 1024)
        }
    }

    /// Issue 16 (hostile suite): a form that declared 100 MiB kept the endpoint waiting for
    /// bytes that never came, where it can answer 413 at once.
    #[tokio::test]
    async fn a_body_declared_larger_than_the_limit_is_refused_without_waiting() {
        let body = axum::body::Body::new(Declared);
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), read_body(body, 65_536));
        assert_eq!(read.await, Ok(Err(())));
        let small = read_body(axum::body::Body::from("a=b"), 65_536).await;
        assert_eq!(small.as_deref(), Ok(&b"a=b"[..]));
        assert!(
            read_body(axum::body::Body::from("a".repeat(70_000)), 65_536)
                .await
                .is_err()
        );
    }

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
