//! `POST /revoke` (RFC 7009).
//!
//! The client authenticates as at the token endpoint. A refresh token revokes its whole grant
//! (every refresh token of the family, and the grant's access tokens at introspection); an
//! access token is deny-listed until it expires. Unknown or invalid tokens get 200 as well
//! (RFC 7009 §2.2), so the endpoint reveals nothing about tokens the caller does not hold.
//!
//! Access tokens are self-contained JWTs: a resource server in another process that validates
//! them locally keeps accepting a revoked one until its `exp` (minutes), unless it introspects.
//! A resource server in the same process learns of every revocation at once through
//! [`Revocations`](crate::Revocations).

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::error::ErrorCode;

use super::State;
use crate::error::OAuthError;
use crate::form::read_form;
use crate::state::Inner;
use crate::store::TokenHash;
use crate::trace::request_span;

/// `POST /revoke`, in span `mcp_auth.revoke`.
pub(crate) async fn handle(axum::extract::State(inner): State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.revoke", client_id, decision);
    let result = trace.instrument(revoke(&inner, request)).await.map(|()| {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    });
    super::token::decided(&trace, result)
}

async fn revoke(inner: &Inner, request: Request) -> Result<(), OAuthError> {
    let (parts, params) = read_form(request).await?;
    let client = crate::client_auth::authenticate(inner, &parts, &params).await?;
    let token = params.require("token")?;
    let now = inner.now();
    let hint = params.get("token_type_hint");

    let try_refresh = || async {
        if let Some((_record, grant)) = inner.store.get_refresh(&TokenHash::of(token)).await? {
            if grant.client_id != client.client_id {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the token was issued to another client",
                ));
            }
            inner.revoke_grant(&grant.grant_id, now).await?;
            #[cfg(feature = "tracing")]
            tracing::info!(client_id = %client.client_id, grant = %grant.grant_id, "refresh token revoked with its grant");
            return Ok(true);
        }
        Ok::<bool, OAuthError>(false)
    };
    let try_access = || async {
        let Some(claims) = inner.keys.verify(token) else {
            return Ok::<bool, OAuthError>(false);
        };
        if claims.get("iss").and_then(|v| v.as_str()) != Some(inner.config.issuer.as_str()) {
            return Ok(false);
        }
        if claims.get("client_id").and_then(|v| v.as_str()) != Some(client.client_id.as_str()) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the token was issued to another client",
            ));
        }
        let (Some(jti), Some(exp)) = (
            claims.get("jti").and_then(|v| v.as_str()),
            claims.get("exp").and_then(|v| v.as_u64()),
        ) else {
            return Ok(false);
        };
        if exp > now {
            inner.revoke_access_token(jti, exp).await?;
            #[cfg(feature = "tracing")]
            tracing::info!(client_id = %client.client_id, %jti, "access token revoked");
        }
        Ok(true)
    };
    // The hint only decides the order (RFC 7009 §2.1).
    if hint == Some("access_token") {
        if !try_access().await? {
            try_refresh().await?;
        }
    } else if !try_refresh().await? {
        try_access().await?;
    }
    Ok(())
}
