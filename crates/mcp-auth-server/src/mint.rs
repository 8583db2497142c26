//! Minting RFC 9068 access tokens, and the token response body.

use serde::Serialize;

use crate::error::OAuthError;
use crate::state::Inner;

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Serialize)]
pub(crate) struct AccessClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) scope: &'a str,
    pub(crate) jti: &'a str,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    /// The grant the token came from (so revoking the grant deactivates it at introspection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sid: Option<&'a str>,
    /// The DPoP key binding (RFC 9449 §6.1): `{"jkt": "<thumbprint>"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cnf: Option<Confirmation<'a>>,
}

/// `cnf` of a DPoP-bound access token.
#[derive(Debug, Serialize)]
pub(crate) struct Confirmation<'a> {
    pub(crate) jkt: &'a str,
}

/// A minted access token.
pub(crate) struct Minted {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
}

/// Mint an RFC 9068 access token (`typ: at+jwt`), bound to a DPoP key when `jkt` is given
/// (`cnf.jkt`, RFC 9449 §6.1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn bound_access_token(
    inner: &Inner,
    subject: &str,
    client_id: &str,
    scope: &str,
    resource: &str,
    grant_id: Option<&str>,
    jkt: Option<&str>,
    now: u64,
) -> Result<Minted, OAuthError> {
    crate::trace::Trace::current().record_subject(subject);
    let jti = crate::random::random_id()?;
    let expires_in = inner.config.access_token_ttl.as_secs();
    let claims = AccessClaims {
        iss: &inner.config.issuer,
        sub: subject,
        aud: resource,
        client_id,
        scope,
        jti: &jti,
        iat: now,
        exp: now + expires_in,
        sid: grant_id,
        cnf: jkt.map(|jkt| Confirmation { jkt }),
    };
    let value = serde_json::to_value(&claims).map_err(|_| OAuthError::server_error())?;
    let token = inner.keys.sign("at+jwt", &value, now).map_err(|_e| {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_e, "signing an access token failed");
        OAuthError::temporarily_unavailable()
    })?;
    #[cfg(feature = "tracing")]
    tracing::info!(%client_id, sub = %subject, %jti, aud = %resource, "access token issued");
    Ok(Minted { token, expires_in })
}

/// The token response body (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse<'a> {
    pub(crate) access_token: &'a str,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<&'a str>,
}
