//! Validating an authorization request (rules 1 and 2 of the [module docs](super)).

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use mcp_auth_core::error::ErrorCode;
use mcp_auth_core::pkce::CodeChallenge;

use super::page::{error_page, redirect_error, unavailable_page};
use crate::flow::AuthRequest;
use crate::form::Params;
use crate::redirect;
use crate::state::Inner;

/// Validate an authorization request. `Err` is the complete response (page or redirect).
pub(super) async fn validate(inner: &Arc<Inner>, params: &Params) -> Result<AuthRequest, Response> {
    // 1. Client and redirect URI: errors are shown, never redirected.
    let bad = |message: String| {
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            &message,
        )
    };
    if params.is_duplicated("client_id") || params.is_duplicated("redirect_uri") {
        return Err(bad(
            "The request names its client or redirect address more than once.".into(),
        ));
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(bad(
            "The request does not say which application is asking (client_id is missing).".into(),
        ));
    };
    let client = match crate::clients::resolve(inner, client_id).await {
        Ok(client) => client,
        Err(e) if e.1 => return Err(unavailable_page()),
        Err(e) => return Err(bad(e.0)),
    };
    let registered = &client.metadata.redirect_uris;
    let (redirect_uri, in_request) = match params.get("redirect_uri") {
        Some(requested) => {
            if !registered.iter().any(|r| redirect::matches(r, requested)) {
                return Err(bad(format!(
                    "The redirect address {requested:?} is not registered for this application, so the response cannot be sent there."
                )));
            }
            (requested.to_owned(), true)
        }
        None => match registered.as_slice() {
            [only] => (only.clone(), false),
            _ => {
                return Err(bad(
                    "The request must name its redirect address (redirect_uri).".into(),
                ));
            }
        },
    };
    let state = params.get("state").map(str::to_owned);

    // 2. Everything else: errors go back to the client.
    let fail = |code: ErrorCode, description: &str| {
        redirect_error(inner, &redirect_uri, state.as_deref(), code, description)
    };
    // The same duplicate rule as the other endpoints (several `resource`: invalid_target).
    if let Err(e) = params.check_duplicates() {
        return Err(fail(e.code, &e.description));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !client.metadata.grant_types.is_empty()
        && !client
            .metadata
            .grant_types
            .iter()
            .any(|g| g == "authorization_code")
    {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization_code grant",
        ));
    }
    let Some(challenge) = params.get("code_challenge") else {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    };
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method=S256 is required (plain is not accepted)",
            ));
        }
        Some(_) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "only code_challenge_method=S256 is supported",
            ));
        }
    }
    let challenge = match CodeChallenge::new(challenge) {
        Ok(c) if c.as_str().len() == 43 => c,
        _ => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge must be the 43-character base64url S256 value",
            ));
        }
    };
    let resource = match crate::policy::resource(&inner.config, &client, params.get("resource")) {
        Ok(r) => r.as_str().to_owned(),
        Err(e) => return Err(fail(e.code, &e.description)),
    };
    let scope = match crate::policy::scope(
        &inner.config,
        &client,
        crate::policy::Grant::Authorization,
        params.get("scope"),
    ) {
        Ok(scope) => scope,
        Err(e) => return Err(fail(e.code, &e.description)),
    };

    let client_name = client
        .metadata
        .client_name
        .clone()
        .unwrap_or_else(|| client.client_id.clone());
    Ok(AuthRequest {
        client_id: client.client_id,
        client_name,
        client_source: client.source,
        redirect_uri,
        redirect_uri_in_request: in_request,
        state,
        code_challenge: challenge.as_str().to_owned(),
        resource,
        scope,
    })
}
