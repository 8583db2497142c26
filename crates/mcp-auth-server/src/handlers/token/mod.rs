//! `POST /token`: the `authorization_code`, `refresh_token` and `client_credentials` grants.
//!
//! Rules (AS-22..AS-31):
//! 1. POST, `application/x-www-form-urlencoded`, no duplicated parameters, empty = omitted.
//! 2. The client authenticates first (public clients send `client_id`).
//! 3. `authorization_code`: the code is consumed atomically; it must belong to the client, be
//!    unexpired, match `redirect_uri` when the authorization request had one, and the
//!    `code_verifier` must hash to the stored S256 challenge. A second redemption with valid
//!    parameters revokes the grant the code produced.
//! 4. `refresh_token`: bound to its client; rotated on every use; a rotated token presented
//!    again revokes the family, except by its own client inside the refresh grace window while
//!    its successors are unused (a fresh pair in the same family, see
//!    [`refresh_grace`](crate::AuthorizationServerBuilder::refresh_grace)); a rotated token
//!    presented by another client revokes the family too; `scope` may only narrow; `resource`,
//!    when sent, must be the grant's.
//! 5. `client_credentials`: only machine clients the operator registered, for their own scopes
//!    (the rules in [`crate::policy`], which decides the scope and resource of every grant).
//! 6. `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523), when the deployment trusts an
//!    issuer: identity assertion grants and workload tokens (the rules in `jwt_bearer`; their
//!    tokens are not DPoP-bound).
//! 7. Every response carries `Cache-Control: no-store`; errors are RFC 6749 §5.2 JSON.
//! 8. DPoP (RFC 9449 §5, when [`dpop`](crate::AuthorizationServerBuilder::dpop) is on): a request
//!    with one `DPoP` proof (for `POST` to this endpoint, checked before client authentication)
//!    gets an access token bound to the proof key (`cnf.jkt`, `token_type: DPoP`); a public
//!    client's refresh token is bound to that key and refreshing it needs a proof by the same
//!    key. A bad proof is 400 `invalid_dpop_proof`; with nonces on, a proof without a recent
//!    nonce is 400 `use_dpop_nonce` with a `DPoP-Nonce` header. Nothing is issued either way.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mcp_auth_core::ScopeSet;
use mcp_auth_core::error::ErrorCode;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};

#[cfg(feature = "jwt-assertions")]
mod jwt_bearer;

use super::State;
use crate::error::OAuthError;
use crate::form::Params;
use crate::form::read_form;
use crate::http::no_store_json;
use crate::mint::{TokenResponse, bound_access_token};
use crate::policy::{self, Grant, registered_for};
use crate::random::random_secret;
use crate::state::Inner;
use crate::store::{
    ClientRecord, CodeTake, GrantRecord, RefreshRecord, RefreshState, Rotation, TokenHash,
};
use crate::trace::{Trace, request_span};

/// `POST /token`, in span `mcp_auth.token`.
pub(crate) async fn handle(axum::extract::State(inner): State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.token", grant_type, client_id, sub_hash, decision);
    let result = trace.instrument(exchange(&inner, request)).await;
    decided(&trace, result)
}

/// Records `decision` (and `error`) on the endpoint's span and answers.
pub(crate) fn decided(trace: &Trace, result: Result<Response, OAuthError>) -> Response {
    match result {
        Ok(response) if response.status().is_success() => {
            trace.record("decision", "allow");
            response
        }
        Ok(response) => {
            // A DPoP nonce round trip or proof refusal: answered, nothing issued.
            trace.record("decision", "deny");
            response
        }
        Err(error) => {
            trace.record("decision", "deny");
            trace.record_error(&error.code);
            error.into_response()
        }
    }
}

/// The JWT bearer grant type (RFC 7523 §2.1).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn exchange(inner: &Inner, request: Request) -> Result<Response, OAuthError> {
    let (parts, params) = read_form(request).await?;
    let grant_type = params.require("grant_type")?;
    if matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials" | JWT_BEARER
    ) {
        Trace::current().record("grant_type", grant_type);
    }
    // Refuse unknown (or switched off) grant types before touching client credentials.
    let machine = inner.config.client_credentials;
    #[cfg(feature = "jwt-assertions")]
    let jwt_bearer = !inner.jwt_bearer.is_empty();
    #[cfg(not(feature = "jwt-assertions"))]
    let jwt_bearer = false;
    match grant_type {
        "authorization_code" | "refresh_token" => {}
        "client_credentials" if machine => {}
        JWT_BEARER if jwt_bearer => {}
        _ => {
            let mut supported =
                String::from("supported grant types: authorization_code, refresh_token");
            if machine {
                supported.push_str(", client_credentials");
            }
            if jwt_bearer {
                supported.push_str(", ");
                supported.push_str(JWT_BEARER);
            }
            return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, supported));
        }
    }
    // The proof first: a nonce round trip must not cost a client authentication (or consume a
    // client assertion's `jti`).
    let jkt = match dpop_proof(inner, &parts) {
        Ok(jkt) => jkt,
        Err(response) => return Ok(*response),
    };
    let jkt = jkt.as_deref();
    let client = crate::client_auth::authenticate(inner, &parts, &params).await?;
    match grant_type {
        "authorization_code" => authorization_code(inner, &client, &params, jkt).await,
        "refresh_token" => refresh_token(inner, &client, &params, jkt).await,
        #[cfg(feature = "jwt-assertions")]
        JWT_BEARER => jwt_bearer::grant(inner, &client, &params, jkt).await,
        _ => client_credentials(inner, &client, &params, jkt).await,
    }
}

/// Checks the request's `DPoP` proof (RFC 9449 §4.3, §8): `Ok(None)` without one (or with DPoP
/// off), `Ok(Some(jkt))` for a valid one, or the error response (400 `invalid_dpop_proof` or
/// `use_dpop_nonce` with a fresh `DPoP-Nonce`; 503 when the replay cache is full).
#[cfg(feature = "dpop")]
fn dpop_proof(
    inner: &Inner,
    parts: &http::request::Parts,
) -> Result<Option<String>, Box<Response>> {
    use mcp_auth_jwt::dpop::{DpopErrorKind, ProofCheck};

    let Some(dpop) = &inner.config.dpop else {
        return Ok(None);
    };
    let mut proofs = parts.headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    let fail = |kind: DpopErrorKind| -> Box<Response> {
        let error = if kind == DpopErrorKind::Busy {
            OAuthError::temporarily_unavailable()
        } else {
            let code = if kind == DpopErrorKind::UseNonce {
                ErrorCode::UseDpopNonce
            } else {
                ErrorCode::InvalidDpopProof
            };
            OAuthError::new(code, kind.description()).with_status(StatusCode::BAD_REQUEST)
        };
        let mut response = error.into_response();
        if let Some(nonce) = dpop
            .nonces
            .as_ref()
            .and_then(|n| http::HeaderValue::try_from(n.current()).ok())
        {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
        Box::new(response)
    };
    if proofs.next().is_some() {
        return Err(fail(DpopErrorKind::Malformed));
    }
    let proof = proof.to_str().map_err(|_| fail(DpopErrorKind::Malformed))?;
    let url = inner.config.url("/token");
    let mut check = ProofCheck::new("POST", &url);
    if let Some(nonces) = &dpop.nonces {
        check = check.nonce(nonces);
    }
    match dpop.verifier.verify(proof, &check) {
        Ok(proved) => Ok(Some(proved.jkt().to_owned())),
        Err(e) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(
                reason = e.kind().description(),
                "DPoP proof refused at the token endpoint"
            );
            Err(fail(e.kind()))
        }
    }
}

#[cfg(not(feature = "dpop"))]
#[allow(clippy::unnecessary_wraps)]
fn dpop_proof(_: &Inner, _: &http::request::Parts) -> Result<Option<String>, Box<Response>> {
    Ok(None)
}

async fn authorization_code(
    inner: &Inner,
    client: &ClientRecord,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let code = params.require("code")?;
    let verifier = params.get("code_verifier");
    let now = inner.now();
    let record = match inner.store.take_code(&TokenHash::of(code)).await? {
        CodeTake::Fresh(record) => record,
        CodeTake::Replayed(record) => {
            // AS-25: deny; revoke what the code produced, but only for a replay with valid
            // parameters (an invalid replay must not let anyone revoke someone else's grant).
            let valid = record.client_id == client.client_id
                && verifier_ok(&record.code_challenge, verifier);
            if valid && inner.revoke_grant(&record.grant_id, now).await? {
                #[cfg(feature = "tracing")]
                tracing::warn!(client_id = %client.client_id, grant = %record.grant_id, "authorization code replayed: grant revoked");
            }
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        CodeTake::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is not valid",
            ));
        }
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    match params.get("redirect_uri") {
        Some(uri) if uri != record.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if record.redirect_uri_in_request => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required: the authorization request had one",
            ));
        }
        _ => {}
    }
    if verifier.is_none() {
        return Err(OAuthError::invalid_grant("code_verifier is required"));
    }
    if !verifier_ok(&record.code_challenge, verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    policy::granted_resource(&record.resource, params.get("resource"))?;

    // A refresh token goes to a client registered for the grant (MCP 2026-07-28, SEP-2207):
    // `offline_access` is neither required (MCP clients do not send it) nor enough (a client
    // not registered for `refresh_token` could not use one).
    let refresh_allowed =
        inner.config.issue_refresh_tokens && registered_for(client, "refresh_token");
    let refresh_ttl = if client.is_public() {
        inner.config.public_refresh_token_ttl
    } else {
        inner.config.refresh_token_ttl
    };
    let grant = GrantRecord {
        grant_id: record.grant_id.clone(),
        client_id: client.client_id.clone(),
        subject: record.subject.clone(),
        scope: record.scope.clone(),
        resource: record.resource.clone(),
        created_at: now,
        expires_at: now + inner.config.grant_ttl.as_secs(),
        revoked_at: None,
    };
    let refresh_token = if refresh_allowed {
        Some(random_secret()?)
    } else {
        None
    };
    let refresh = refresh_token.as_deref().map(|token| RefreshRecord {
        hash: TokenHash::of(token),
        grant_id: grant.grant_id.clone(),
        scope: grant.scope.clone(),
        issued_at: now,
        expires_at: (now + refresh_ttl.as_secs()).min(grant.expires_at),
        state: RefreshState::Active,
        parent: None,
        rotated_at: None,
        // RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
        dpop_jkt: jkt.filter(|_| client.is_public()).map(str::to_owned),
    });
    inner.store.create_grant(grant.clone(), refresh).await?;
    // The client completed an authorization: it is in use (unused public clients expire).
    // Their lifetime counts in days, so one write an hour is plenty (and keeps a write off
    // most grants).
    if client
        .last_authorized_at
        .is_none_or(|at| now.saturating_sub(at) >= AUTHORIZED_AT_GRANULARITY)
    {
        inner
            .store
            .client_authorized(&client.client_id, now)
            .await?;
    }
    let minted = bound_access_token(
        inner,
        &grant.subject,
        &client.client_id,
        &grant.scope,
        &grant.resource,
        Some(&grant.grant_id),
        jkt,
        now,
    )?;
    respond(
        &minted.token,
        minted.expires_in,
        &grant.scope,
        refresh_token.as_deref(),
        jkt,
    )
}

/// How stale [`ClientRecord::last_authorized_at`](crate::store::ClientRecord) may be before an
/// authorization updates it.
const AUTHORIZED_AT_GRANULARITY: u64 = 3600;

fn verifier_ok(challenge: &str, verifier: Option<&str>) -> bool {
    let (Ok(challenge), Some(Ok(verifier))) = (
        CodeChallenge::new(challenge),
        verifier.map(CodeVerifier::new),
    ) else {
        return false;
    };
    challenge.verify(&verifier)
}

async fn refresh_token(
    inner: &Inner,
    client: &ClientRecord,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let presented = params.require("refresh_token")?;
    let hash = TokenHash::of(presented);
    let now = inner.now();
    let Some((old, grant)) = inner.store.get_refresh(&hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    };
    if grant.client_id != client.client_id {
        // Bound to its client (AS-29). A token already rotated in another client's hands was
        // stolen and replayed: revoke its family, as reuse by its own client would. An active
        // one changes nothing (no grace window across clients either way).
        if old.state == RefreshState::Rotated && inner.revoke_grant(&grant.grant_id, now).await? {
            #[cfg(feature = "tracing")]
            tracing::warn!(client_id = %client.client_id, grant = %grant.grant_id, "rotated refresh token replayed by another client: grant revoked");
        }
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if old.state == RefreshState::Active && (now >= old.expires_at || !grant.is_active(now)) {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    // RFC 9449 §5: a bound refresh token needs a proof by its key.
    if let Some(bound) = &old.dpop_jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the refresh token is bound to a DPoP key: a proof by that key is required",
        )
        .with_status(StatusCode::BAD_REQUEST));
    }
    let granted = ScopeSet::parse(&old.scope).map_err(|_| OAuthError::server_error())?;
    let scope = policy::scope(
        &inner.config,
        client,
        Grant::Refresh { granted: &granted },
        params.get("scope"),
    )?;
    policy::granted_resource(&grant.resource, params.get("resource"))?;

    let ttl = if client.is_public() {
        inner.config.public_refresh_token_ttl
    } else {
        inner.config.refresh_token_ttl
    };
    let successor = random_secret()?;
    let new = RefreshRecord {
        hash: TokenHash::of(&successor),
        grant_id: grant.grant_id.clone(),
        // RFC 6749 §6: the new refresh token keeps the original scope, even when this access
        // token is narrowed.
        scope: old.scope.clone(),
        issued_at: now,
        expires_at: (now + ttl.as_secs()).min(grant.expires_at),
        state: RefreshState::Active,
        parent: None,
        rotated_at: None,
        dpop_jkt: old.dpop_jkt.clone(),
    };
    let grace = inner.config.refresh_grace;
    match inner.store.rotate_refresh(&hash, new, now, grace).await? {
        Rotation::Rotated => {}
        Rotation::WithinGrace => {
            #[cfg(feature = "tracing")]
            tracing::info!(client_id = %client.client_id, grant = %grant.grant_id, "rotated refresh token presented again within the grace window: another successor issued");
        }
        Rotation::Reused { grant_id } => {
            inner.grant_revoked(&grant_id, now).await?;
            #[cfg(feature = "tracing")]
            tracing::warn!(client_id = %client.client_id, grant = %grant_id, "refresh token reuse detected: grant revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the grant has been revoked",
            ));
        }
        Rotation::Revoked => {
            return Err(OAuthError::invalid_grant(
                "the refresh token has been revoked",
            ));
        }
        _ => return Err(OAuthError::invalid_grant("the refresh token is not valid")),
    }
    let scope = scope.to_string();
    let minted = bound_access_token(
        inner,
        &grant.subject,
        &client.client_id,
        &scope,
        &grant.resource,
        Some(&grant.grant_id),
        jkt,
        now,
    )?;
    respond(
        &minted.token,
        minted.expires_in,
        &scope,
        Some(&successor),
        jkt,
    )
}

async fn client_credentials(
    inner: &Inner,
    client: &ClientRecord,
    params: &Params,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let scope = policy::scope(&inner.config, client, Grant::Machine, params.get("scope"))?;
    let resource = policy::resource(&inner.config, client, params.get("resource"))?
        .as_str()
        .to_owned();
    let now = inner.now();
    let scope = scope.to_string();
    let minted = bound_access_token(
        inner,
        &client.client_id,
        &client.client_id,
        &scope,
        &resource,
        None,
        jkt,
        now,
    )?;
    respond(&minted.token, minted.expires_in, &scope, None, jkt)
}

/// The token response; `token_type` is `DPoP` for a token bound to `jkt`, `Bearer` otherwise.
pub(crate) fn respond(
    access: &str,
    expires_in: u64,
    scope: &str,
    refresh: Option<&str>,
    jkt: Option<&str>,
) -> Result<Response, OAuthError> {
    let body = TokenResponse {
        access_token: access,
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in,
        scope,
        refresh_token: refresh,
    };
    let json = serde_json::to_vec(&body).map_err(|_| OAuthError::server_error())?;
    Ok(no_store_json(StatusCode::OK, json))
}
