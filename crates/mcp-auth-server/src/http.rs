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
    let bytes = axum::body::to_bytes(body, inner.config.max_body_bytes)
        .await
        .map_err(|_| {
            OAuthError::invalid_request("the request body is too large")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    let params = Params::parse_strict(&bytes)?;
    Ok((parts, params))
}

/// Whether the request names only loopback hosts: exactly one `Host` header (or, without one,
/// an absolute target), each `host[:port]` parsing strictly and naming `localhost`,
/// 127.0.0.0/8 or `[::1]`.
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
    if host.is_none() && target.is_none() {
        return false;
    }
    host.into_iter()
        .chain(target)
        .all(|value| Authority::parse(value).is_some_and(|a| a.host().is_loopback()))
}
