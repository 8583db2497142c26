//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the parsers behind the
//! endpoints, each called exactly as the endpoint calls it. Not part of the API: hidden, and
//! free to change with the code it reaches.

use http::{HeaderMap, HeaderValue, header};

/// `application/x-www-form-urlencoded` parameters as every endpoint reads them
/// (`Params::parse_strict`): the pairs kept (names and values), or the OAuth error code and
/// description of the refusal.
pub fn form(input: &[u8]) -> Result<Vec<(String, String)>, (String, String)> {
    match crate::form::Params::parse_strict(input) {
        Ok(params) => Ok(params.pairs),
        Err(error) => Err((
            error.code.as_str().to_owned(),
            error.description.into_owned(),
        )),
    }
}

/// The value of cookie `name` among these `Cookie` header values, as the authorization
/// endpoint reads it (values that are not header values are skipped, as `http` would refuse
/// them).
pub fn cookie(values: &[&[u8]], name: &str) -> Option<String> {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(header::COOKIE, value);
        }
    }
    crate::handlers::authorize::cookie(&headers, name)
}

/// Whether a redirect URI may be registered (`Err`: the description shown to the client).
pub fn redirect_registrable(uri: &str) -> Result<(), &'static str> {
    crate::redirect::check_registrable(uri)
}

/// Whether `requested` matches the registered redirect URI `registered`.
#[must_use]
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    crate::redirect::matches(registered, requested)
}

/// Whether `uri` is an `http` loopback redirect (RFC 8252 §7.3).
#[must_use]
pub fn redirect_is_loopback(uri: &str) -> bool {
    crate::redirect::is_loopback_http(uri)
}

/// A `/register` body read and checked as the registration endpoint does (before storing):
/// `Ok` with the registered metadata as JSON, or the OAuth error code and description.
pub fn registration(body: &[u8]) -> Result<serde_json::Value, (String, String)> {
    let checked =
        crate::handlers::register::parse(body).and_then(crate::handlers::register::check_metadata);
    match checked {
        Ok((metadata, _)) => Ok(serde_json::to_value(&metadata).unwrap_or_default()),
        Err(error) => Err((
            error.code.as_str().to_owned(),
            error.description.into_owned(),
        )),
    }
}

/// A client ID metadata document fetched from `client_id`, validated as the fetcher does:
/// `Ok` with the client's redirect URIs, or the refusal's description.
#[cfg(feature = "cimd")]
pub fn cimd_document(client_id: &str, body: &[u8], now: u64) -> Result<Vec<String>, String> {
    crate::cimd::validate_document(client_id, body, now)
        .map(|record| record.metadata.redirect_uris)
        .map_err(|error| error.to_string())
}

/// The claims of a `private_key_jwt` client assertion from `client_id`, read (unverified) and
/// checked as the token endpoint checks them after the signature, at time `now`: `Ok` with
/// the `jti`, or why it is refused.
#[cfg(feature = "jwt-assertions")]
pub fn client_assertion(
    server: &crate::AuthorizationServer,
    client_id: &str,
    assertion: &str,
    now: u64,
) -> Result<Option<String>, &'static str> {
    use crate::assertion;
    let claims = assertion::unverified_claims(assertion).ok_or("unreadable")?;
    let checked = assertion::check_claims(
        &server.inner.config,
        &claims,
        &assertion::Rules {
            issuer: client_id,
            max_lifetime: assertion::CLIENT_ASSERTION_MAX_LIFETIME,
            require_jti: true,
            now,
        },
    )?;
    Ok(checked.jti)
}
