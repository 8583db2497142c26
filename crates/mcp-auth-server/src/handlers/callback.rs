//! `GET {issuer path}/login/callback`: where an upstream provider sends the browser back
//! (redirect logins, see [`crate::login`]).
//!
//! 1. `state` names a pending sign-in, which is taken at once (single use): unknown, replayed
//!    or expired ⇒ 400 page. The browser must carry the cookie set on the redirect ⇒ else 403
//!    page (and the sign-in is gone: a forged callback cannot be retried by the attacker).
//! 2. `error` from the provider ⇒ the MCP client gets `access_denied` (or `server_error` for
//!    any other code) with its own `state` and our `iss`.
//! 3. Otherwise [`RedirectLogin::finish`](crate::login::RedirectLogin::finish): provider down
//!    ⇒ 503 page, an answer that does not verify ⇒ 502 page, an admission rule ⇒ 403 page that
//!    says why. No code in any of these cases.
//! 4. Success: the consent the user gave before leaving is recorded for that user and client,
//!    the upstream tokens go to the vault (when configured), a session starts, and the MCP
//!    client gets its code.

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use mcp_auth_core::error::ErrorCode;

use super::State;
use super::authorize::{
    UPSTREAM_COOKIE, cookie, cookie_name, error_page, issue_code, redirect_error, set_cookie,
    start_session,
};
use crate::form::Params;
use crate::store::{ConsentRecord, TokenHash};
use crate::upstream::UpstreamError;

/// Clears the binding cookie.
fn clear_binding(inner: &crate::state::Inner) -> HeaderValue {
    set_cookie(inner, UPSTREAM_COOKIE, "", 0)
}

/// `GET /login/callback` (the upstream provider's answer), in span `mcp_auth.callback`.
pub(crate) async fn get(state: State, request: Request) -> Response {
    let trace = crate::trace::request_span!("mcp_auth.callback", client_id, sub_hash, decision);
    let response = trace.instrument(finish(state, request)).await;
    super::authorize::record_outcome(&trace, &response);
    response
}

async fn finish(axum::extract::State(inner): State, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let params = Params::parse(parts.uri.query().unwrap_or("").as_bytes());
    let now = inner.now();
    let Some(login) = inner.login.redirect() else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.");
    };
    let invalid = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "The sign-in was already used, has expired, or did not start here. Go back to the application and start signing in again.",
        )
    };
    if params.is_duplicated("state") || params.is_duplicated("code") {
        return invalid();
    }
    let taken = match params.get("state") {
        Some(state) => inner.flow.take_upstream(state, now).await,
        None => Ok(None),
    };
    let Ok(taken) = taken else {
        return super::authorize::unavailable_page();
    };
    let Some(pending) = taken else {
        #[cfg(feature = "tracing")]
        tracing::warn!("upstream callback with an unknown, used or expired state");
        return invalid();
    };
    let bound = cookie(&parts.headers, &cookie_name(&inner, UPSTREAM_COOKIE))
        .is_some_and(|value| TokenHash::of(&value) == pending.browser);
    if !bound {
        #[cfg(feature = "tracing")]
        tracing::warn!("upstream callback refused: the browser binding cookie does not match");
        return error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This sign-in was started in another browser. Start again from the application.",
        );
    }
    // RFC 9207: a provider that names its issuer in the response must name this one (mix-up).
    if params
        .get("iss")
        .is_some_and(|iss| iss != login.upstream_id())
    {
        #[cfg(feature = "tracing")]
        tracing::warn!("upstream callback refused: iss names another provider");
        return invalid();
    }
    let req = &pending.request;
    let mut response = if let Some(error) = params.get("error") {
        #[cfg(feature = "tracing")]
        tracing::info!(client_id = %req.client_id, provider = login.provider_name(), "the upstream provider answered with an error");
        let (code, description) = if error == "access_denied" {
            (
                ErrorCode::AccessDenied,
                "the user did not sign in at the upstream provider",
            )
        } else {
            (
                ErrorCode::ServerError,
                "the upstream provider could not sign the user in",
            )
        };
        redirect_error(
            &inner,
            &req.redirect_uri,
            req.state.as_deref(),
            code,
            description,
        )
    } else {
        let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
            return invalid();
        };
        match login.finish(code, &pending.upstream).await {
            Err(error) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %error, client_id = %req.client_id, "upstream sign-in failed");
                let mut response = match error {
                    UpstreamError::Unavailable(_) => error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Sign-in unavailable",
                        &format!(
                            "{} cannot be reached right now. Go back to the application and try again in a moment.",
                            login.provider_name()
                        ),
                    ),
                    UpstreamError::Refused(why) => {
                        error_page(StatusCode::FORBIDDEN, "You cannot sign in here", &why)
                    }
                    _ => error_page(
                        StatusCode::BAD_GATEWAY,
                        "Sign-in failed",
                        &format!(
                            "The answer from {} could not be verified. Go back to the application and start again.",
                            login.provider_name()
                        ),
                    ),
                };
                response
                    .headers_mut()
                    .append(http::header::SET_COOKIE, clear_binding(&inner));
                return response;
            }
            Ok(signed_in) => {
                let user = signed_in.user;
                if let Some(vault) = &inner.vault
                    && let Err(_e) = vault
                        .put(&user.subject, login.upstream_id(), signed_in.tokens)
                        .await
                {
                    #[cfg(feature = "tracing")]
                    tracing::error!(error = %_e, "storing the upstream tokens failed");
                    return error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Try again shortly",
                        "The server could not keep your sign-in.",
                    );
                }
                let consent = ConsentRecord {
                    subject: user.subject.clone(),
                    client_id: req.client_id.clone(),
                    resource: req.resource.clone(),
                    scope: req.scope.to_string(),
                    updated_at: now,
                };
                if let Err(_e) = inner.store.put_consent(consent).await {
                    #[cfg(feature = "tracing")]
                    tracing::error!(error = %_e, "storing consent failed");
                    return error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Try again shortly",
                        "The server could not record your approval.",
                    );
                }
                // Without a session the sign-in still counts; the user signs in again next time.
                let cookies: Vec<_> = start_session(&inner, &user, now)
                    .await
                    .ok()
                    .into_iter()
                    .collect();
                #[cfg(feature = "tracing")]
                tracing::info!(sub = %user.subject, provider = login.provider_name(), "user signed in upstream");
                issue_code(&inner, req, &user, now, cookies).await
            }
        }
    };
    response
        .headers_mut()
        .append(http::header::SET_COOKIE, clear_binding(&inner));
    response
}
