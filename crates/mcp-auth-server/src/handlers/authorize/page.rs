//! The responses of the authorization endpoint: HTML pages with their security headers, error
//! pages, redirects back to the client, and the browser's cookies (names, session).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mcp_auth_core::error::ErrorCode;

use crate::login::User;
use crate::login::page::render_error;
use crate::random::random_secret;
use crate::state::Inner;

/// An error sent back to the client's (validated) redirect URI.
pub(crate) fn redirect_error(
    inner: &Inner,
    redirect_uri: &str,
    state: Option<&str>,
    code: ErrorCode,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", code.as_str()), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &inner.config.issuer));
    see_other(redirect_uri, &pairs)
}

/// 303 to `base` with `pairs` appended to its query.
pub(crate) fn see_other(base: &str, pairs: &[(&str, &str)]) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    let location = format!("{base}{separator}{}", query.finish());
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The redirect address is not valid.",
        );
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An HTML page with the anti-framing and no-cache headers (AS-18).
pub(crate) fn html(status: StatusCode, body: String, cookies: Vec<HeaderValue>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, render_error(title, message), Vec::new())
}

/// 503 with `Retry-After`: the store cannot be reached (nothing was half-written; the user
/// may simply try again).
pub(crate) fn unavailable_page() -> Response {
    let mut response = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The server cannot reach its database right now. Try again in a few seconds.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// 429 with `Retry-After`: this address has too many authorization requests waiting for the
/// user (see `authorization_pages_per_address`).
pub(crate) fn too_many_page(retry_after: u64) -> Response {
    let mut response = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        "Too many authorization requests came from your network in the last minutes. Try again \
         later.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// Cookie names: `__Host-` prefixed and `Secure` on an https issuer (AS-50); plain on a
/// loopback http issuer, where browsers would drop a `Secure` cookie.
pub(crate) fn cookie_name(inner: &Inner, name: &str) -> String {
    if inner.config.secure_cookies {
        format!("__Host-mcp-auth-{name}")
    } else {
        format!("mcp-auth-{name}")
    }
}

/// Starts a login session for `user` (remembered in the flow for
/// [`SESSION_TTL`](crate::flow::SESSION_TTL)) and returns its cookie; the error page when no
/// random session id could be made or the store failed.
pub(crate) async fn start_session(
    inner: &Inner,
    user: &User,
    now: u64,
) -> Result<HeaderValue, Response> {
    let Ok(session) = random_secret() else {
        return Err(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again.",
        ));
    };
    if let Err(_e) = inner.flow.insert_session(&session, user, now).await {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_e, "storing a login session failed");
        return Err(unavailable_page());
    }
    Ok(set_cookie(
        inner,
        "session",
        &session,
        crate::flow::SESSION_TTL,
    ))
}

pub(crate) fn set_cookie(inner: &Inner, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if inner.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(inner, name)
    );
    // Values are base64url, names fixed: always a valid header value.
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}
