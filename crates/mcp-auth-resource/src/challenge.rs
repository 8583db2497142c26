//! The one place this crate builds `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1,
//! RFC 9449 §7.1): the bearer layer, the tool-scope layer and the extractors all get theirs from
//! here, through [`ProtectedResource`](crate::ProtectedResource) (which knows the metadata URL and
//! the step-up scopes) or the bearer layer's context (which adds its scope floor). A leaf: it
//! knows scopes, error codes and the metadata URL, nothing of verifiers or layers.

use http::HeaderValue;
use mcp_auth_core::{
    ScopeSet,
    challenge::{self, BearerChallenge, Challenge},
    error::ErrorCode,
};

/// `Bearer resource_metadata="…", scope="…"`: a request without credentials (no `error`, RFC
/// 6750 §3.1); `scope` is left out when `scopes` is empty.
pub(crate) fn missing_token(metadata_url: &str, scopes: &ScopeSet) -> HeaderValue {
    BearerChallenge::new()
        .resource_metadata(metadata_url)
        .scope(scopes)
        .to_header_value()
}

/// `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`, with `step_up` the
/// scopes to ask for (SPEC RS-16: computed by `ProtectedResource::step_up_scopes`).
pub(crate) fn insufficient_scope(metadata_url: &str, step_up: &ScopeSet) -> HeaderValue {
    BearerChallenge::new()
        .error(ErrorCode::InsufficientScope)
        .scope(step_up)
        .resource_metadata(metadata_url)
        .to_header_value()
}

/// `Bearer error="…", error_description="…", resource_metadata="…"`: an invalid token, an
/// invalid request or a refused DPoP binding. `description` is a fixed text, never a library
/// error or a claim.
pub(crate) fn error(metadata_url: &str, code: ErrorCode, description: &str) -> HeaderValue {
    BearerChallenge::new()
        .error(code)
        .error_description(description)
        .resource_metadata(metadata_url)
        .to_header_value()
}

/// The `DPoP` challenge (RFC 9449 §7.1): with `carry`, the parameters of `bearer` (the request's
/// `Bearer` challenge) moved into it, else only `resource_metadata`; then `algs`.
#[cfg_attr(not(feature = "dpop"), allow(dead_code))]
pub(crate) fn dpop(
    bearer: Option<&HeaderValue>,
    carry: bool,
    metadata_url: &str,
    algs: &str,
) -> Option<HeaderValue> {
    let mut dpop = Challenge::new("DPoP");
    if carry
        && let Some(bearer) = bearer
            .and_then(|v| v.to_str().ok())
            .and_then(|v| challenge::parse(v).ok())
            .and_then(|mut all| all.pop())
    {
        for (name, value) in bearer.params() {
            dpop.set_param(name.as_str(), value.as_str());
        }
    } else {
        dpop.set_param("resource_metadata", metadata_url);
    }
    dpop.set_param("algs", algs);
    HeaderValue::try_from(dpop.to_string()).ok()
}
