//! The JWT bearer grant at the token endpoint: the rules in [`crate::jwt_bearer`], applied to
//! a request of an authenticated client.

use axum::response::Response;
use mcp_auth_core::error::ErrorCode;

use mcp_auth_core::ScopeSet;

use crate::assertion::{self, Rules};
use crate::error::OAuthError;
use crate::form::Params;
use crate::jwt_bearer::AssertionKind;
use crate::replay::Use;
use crate::state::Inner;
use crate::store::ClientRecord;

/// Rules 1 to 7: answer a JWT bearer grant request of the authenticated `client`.
pub(crate) async fn grant(
    inner: &Inner,
    client: &ClientRecord,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let assertion_param = params.require("assertion")?;
    let refuse = |why: &'static str| OAuthError::invalid_grant(why);
    let unauthorized = |why: &'static str| OAuthError::new(ErrorCode::UnauthorizedClient, why);
    let target = |why: &'static str| OAuthError::new(ErrorCode::InvalidTarget, why);

    // 1. The issuer.
    let unverified = assertion::unverified_claims(assertion_param)
        .ok_or_else(|| refuse("the assertion is not a JWT"))?;
    let issuer = assertion::string(&unverified, "iss")
        .and_then(|iss| inner.jwt_bearer.iter().find(|t| t.issuer == iss))
        .ok_or_else(|| refuse("the assertion's issuer is not trusted"))?;

    // 2. Who may present it.
    let listed = issuer.clients.contains(&client.client_id);
    match issuer.kind {
        AssertionKind::IdJag if client.is_public() => {
            return Err(unauthorized(
                "an identity assertion grant needs a client that authenticates",
            ));
        }
        AssertionKind::IdJag if !issuer.clients.is_empty() && !listed => {
            return Err(unauthorized(
                "this client may not present this issuer's assertions",
            ));
        }
        AssertionKind::Workload if !listed => {
            return Err(unauthorized(
                "this client may not present this issuer's workload tokens",
            ));
        }
        _ => {}
    }

    // 3. Signature, header and claims.
    let claims = match issuer.verifier.verify(assertion_param).await {
        Ok(claims) => claims,
        Err(e) if e.is_unavailable() => {
            #[cfg(feature = "tracing")]
            tracing::warn!(issuer = %issuer.issuer, "the issuer's key set is unavailable");
            return Err(OAuthError::temporarily_unavailable());
        }
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::info!(issuer = %issuer.issuer, client_id = %client.client_id, reason = ?_e.kind(), "JWT bearer assertion refused");
            return Err(refuse(
                "the assertion is not valid (signature, algorithm, key or type)",
            ));
        }
    };
    let now = inner.now();
    let checked = assertion::check_claims(
        &inner.config,
        &claims,
        &Rules {
            issuer: &issuer.issuer,
            max_lifetime: issuer.max_lifetime,
            require_jti: issuer.single_use,
            now,
        },
    )
    .map_err(refuse)?;
    if issuer.kind == AssertionKind::IdJag
        && assertion::string(&claims, "client_id") != Some(client.client_id.as_str())
    {
        return Err(refuse(
            "the identity assertion grant was issued to another client",
        ));
    }
    let subject = assertion::string(&claims, &issuer.subject_claim)
        .filter(|s| !s.is_empty() && s.len() <= 512 && !s.chars().any(char::is_control))
        .map(|s| format!("{}{s}", issuer.subject_prefix))
        .ok_or_else(|| refuse("the assertion has no usable subject claim"))?;

    // 4. The resource.
    let claimed_resources: Option<Vec<&str>> = match claims.get("resource") {
        None => None,
        Some(serde_json::Value::String(r)) => Some(vec![r.as_str()]),
        Some(serde_json::Value::Array(list)) => {
            Some(list.iter().filter_map(serde_json::Value::as_str).collect())
        }
        Some(_) => return Err(refuse("the assertion's resource claim is malformed")),
    };
    let requested = params.get("resource").or_else(|| {
        claimed_resources
            .as_ref()
            .filter(|list| list.len() == 1)
            .map(|list| list[0])
    });
    let resource = crate::policy::resource(&inner.config, client, requested)?;
    if !issuer.resources.is_empty() && !issuer.resources.iter().any(|r| r == resource) {
        return Err(target(
            "this issuer's assertions may not obtain tokens for that resource",
        ));
    }
    if let Some(list) = &claimed_resources
        && !list.iter().any(|r| resource.matches_loopback_alias(r))
    {
        return Err(target("the assertion does not authorize that resource"));
    }

    // 5. The scope.
    let parse = |raw: &str| {
        ScopeSet::parse(raw)
            .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))
    };
    let mut allowed = issuer.scopes.intersection(&inner.config.scopes);
    let claimed_scope = match (issuer.kind, claims.get("scope")) {
        (AssertionKind::IdJag, Some(serde_json::Value::String(raw))) => Some(
            ScopeSet::parse(raw).map_err(|_| refuse("the assertion's scope claim is malformed"))?,
        ),
        (AssertionKind::IdJag, Some(_)) => {
            return Err(refuse("the assertion's scope claim is malformed"));
        }
        _ => None,
    };
    if let Some(claimed) = &claimed_scope {
        allowed = allowed.intersection(claimed);
    }
    let asked = match params.get("scope") {
        Some(raw) => {
            let asked = parse(raw)?;
            if let Some(unknown) = asked
                .iter()
                .find(|s| !inner.config.scopes.contains(s.as_str()))
            {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("unknown scope {}", unknown.as_str()),
                ));
            }
            asked
        }
        None => claimed_scope.unwrap_or_else(|| allowed.clone()),
    };
    let scope = asked.intersection(&allowed);
    if scope.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "none of the requested scopes may be obtained with this assertion",
        ));
    }

    // 6. Single use, last: a refused request does not burn the assertion.
    if issuer.single_use {
        let jti = checked.jti.as_deref().unwrap_or_default();
        match inner
            .replay
            .first_use("grant", &issuer.issuer, jti, checked.exp, now)
            .await
        {
            Use::First => {}
            Use::Replayed => {
                #[cfg(feature = "tracing")]
                tracing::warn!(issuer = %issuer.issuer, client_id = %client.client_id, "JWT bearer assertion replayed");
                return Err(refuse("the assertion was already used"));
            }
            Use::Full => return Err(OAuthError::temporarily_unavailable()),
        }
    }

    // 7. The token: bound to the DPoP key when the request carried a proof.
    let scope = scope.to_string();
    let minted = crate::mint::bound_access_token(
        inner,
        &subject,
        &client.client_id,
        &scope,
        resource.as_str(),
        None,
        jkt,
        now,
    )?;
    #[cfg(feature = "tracing")]
    tracing::info!(issuer = %issuer.issuer, client_id = %client.client_id, sub = %subject, scope = %scope, "JWT bearer grant");
    super::respond(&minted.token, minted.expires_in, &scope, None, jkt)
}
