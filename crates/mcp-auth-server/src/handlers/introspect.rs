//! `POST /introspect` (RFC 7662), for resource servers with configured credentials (AS-55).
//!
//! Only access tokens issued by this server are ever `active`: signature, issuer, expiry, the
//! deny list and the grant's state are checked. Refresh tokens are reported inactive on
//! purpose: a resource server that introspects must never accept a refresh token as a bearer
//! credential. Anything inactive, unknown or malformed gets exactly `{"active":false}`.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::State;
use crate::error::OAuthError;
use crate::form::read_form;
use crate::http::no_store_json;
use crate::state::Inner;
use crate::trace::request_span;

/// `POST /introspect`, in span `mcp_auth.introspect` (`client_id` is the caller's; `decision`
/// is `allow` for an active token, `deny` otherwise).
pub(crate) async fn handle(axum::extract::State(inner): State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.introspect", client_id, sub_hash, decision);
    match trace.instrument(introspect(&inner, request)).await {
        Ok(body) => {
            let active = body.get("active") == Some(&Value::Bool(true));
            trace.record("decision", if active { "allow" } else { "deny" });
            if let Some(sub) = body.get("sub").and_then(Value::as_str) {
                trace.record_subject(sub);
            }
            no_store_json(StatusCode::OK, body.to_string().into_bytes())
        }
        Err(error) => {
            trace.record_error(&error.code);
            error.into_response()
        }
    }
}

async fn introspect(inner: &Inner, request: Request) -> Result<Value, OAuthError> {
    let (parts, params) = read_form(request).await?;
    let _caller = crate::client_auth::authenticate_introspector(inner, &parts, &params).await?;
    let token = params.require("token")?;
    let now = inner.now();
    let inactive = json!({ "active": false });

    let Some(claims) = inner.keys.verify(token) else {
        return Ok(inactive);
    };
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if str_claim("iss") != Some(inner.config.issuer.as_str()) {
        return Ok(inactive);
    }
    let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
        return Ok(inactive);
    };
    if exp <= now {
        return Ok(inactive);
    }
    let Some(jti) = str_claim("jti") else {
        return Ok(inactive);
    };
    if inner.store.is_access_token_revoked(jti).await? {
        return Ok(inactive);
    }
    if let Some(grant_id) = str_claim("sid") {
        match inner.store.get_grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => {}
            _ => return Ok(inactive),
        }
    }
    let mut out = Map::new();
    out.insert("active".into(), Value::Bool(true));
    for name in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
    ] {
        if let Some(v) = claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    out.insert("token_type".into(), Value::String("Bearer".into()));
    Ok(Value::Object(out))
}
