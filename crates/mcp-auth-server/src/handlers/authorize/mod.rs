//! `GET /authorize` (validate, then show the login and consent page or answer at once) and
//! `POST /authorize` (the page's form).
//!
//! Order of checks (AS-8..AS-18):
//! 1. `client_id` and `redirect_uri` first. Until both are trusted, every error is a page shown
//!    to the user, never a redirect (AS-13, AS-14): unknown client, failed metadata document,
//!    a redirect URI that is not registered (exact match; any port on loopback, AS-10).
//! 2. Then everything else; errors now go back to the client as a 303 redirect with `error`,
//!    `state` and `iss` (RFC 9207): `response_type=code` only, PKCE S256 only, `resource`
//!    (RFC 8707) among the resources this server issues for, scopes known.
//! 3. Then the user: the [`Login`](crate::login::Login) or a session cookie. A known user whose
//!    consent covers the request (or a headless login) gets the code at once; otherwise the
//!    page asks. The page's POST is bound to the browser by a cookie and carries a CSRF token.
//! 4. With a redirect login, the approved POST sends the browser to the upstream provider
//!    (consent first, AS-47..AS-52; see [`crate::login`]); the callback is
//!    [`callback`](super::callback).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcp_auth_core::{ScopeSet, error::ErrorCode};
use subtle::ConstantTimeEq;

mod page;
mod validate;

pub(crate) use self::page::{
    cookie, cookie_name, error_page, html, redirect_error, set_cookie, start_session,
    unavailable_page,
};
use self::page::{see_other, too_many_page};
use self::validate::validate;

use super::State;
use crate::flow::{AuthRequest, PendingUpstream, TRANSACTION_TTL, Transaction};
use crate::form::Params;
use crate::limit::Hit;
use crate::login::User;
use crate::login::page::{ConsentPage, render_consent};
use crate::random::{random_id, random_secret};
use crate::state::Inner;
use crate::store::{ClientSource, CodeRecord, ConsentRecord, TokenHash};
use crate::trace::{Trace, request_span};

/// `GET /authorize`, in span `mcp_auth.authorize`.
pub(crate) async fn get(state: State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.authorize", client_id, sub_hash, decision);
    let response = trace.instrument(get_page(state, request)).await;
    record_outcome(&trace, &response);
    response
}

/// `POST /authorize` (the login and consent form), in span `mcp_auth.authorize`.
pub(crate) async fn post(state: State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.authorize", client_id, sub_hash, decision);
    let response = trace.instrument(post_form(state, request)).await;
    record_outcome(&trace, &response);
    response
}

/// `decision` from the answer: a redirect with a `code` is `allow`, one with an `error` is
/// `deny` (and `error` is its code), a page (sign-in, consent) or a redirect to an upstream
/// provider is `challenge`, an error page is `deny`.
pub(crate) fn record_outcome(trace: &Trace, response: &Response) {
    let status = response.status();
    if status.is_redirection() {
        let query = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once('?'))
            .map_or("", |(_, q)| q);
        let mut decision = "challenge";
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "code" => decision = "allow",
                "error" => {
                    decision = "deny";
                    trace.record_error(&ErrorCode::from_wire(&value));
                }
                _ => {}
            }
        }
        trace.record("decision", decision);
    } else if status == StatusCode::OK {
        trace.record("decision", "challenge");
    } else {
        trace.record("decision", "deny");
    }
}

async fn get_page(axum::extract::State(inner): State, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let params = Params::parse(parts.uri.query().unwrap_or("").as_bytes());
    let req = match validate(&inner, &params).await {
        Ok(req) => req,
        Err(rejection) => return rejection,
    };
    Trace::current().record("client_id", &req.client_id);
    let now = inner.now();
    let browser = cookie(&parts.headers, &cookie_name(&inner, "browser"));
    let user = match current_user(&inner, &parts, now).await {
        Ok(user) => user,
        Err(unavailable) => return unavailable,
    };

    if let Some(user) = &user {
        if inner.login.auto_approve() {
            return issue_code(&inner, &req, user, now, Vec::new()).await;
        }
        if consent_covers(&inner, user, &req).await {
            return issue_code(&inner, &req, user, now, Vec::new()).await;
        }
    }

    // Ask the user: a transaction kept in the store for up to ten minutes, so at most so many
    // per address (when the server knows addresses).
    if let Some(address) = crate::limit::address_key(&parts.extensions) {
        match inner.authorization_pages.hit(&address, now).await {
            Ok(Hit::Within) => {}
            Ok(Hit::Over { retry_after }) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(key = %address, "authorization pages throttled for this address");
                return too_many_page(retry_after);
            }
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::error!(error = %_e, "counting an authorization page failed");
                return unavailable_page();
            }
        }
    }
    // Bind the transaction to this browser.
    let mut cookies = Vec::new();
    let browser = match browser {
        Some(value) => value,
        None => match random_secret() {
            Ok(value) => {
                cookies.push(set_cookie(&inner, "browser", &value, 24 * 3600));
                value
            }
            Err(_) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Try again.",
                );
            }
        },
    };
    let (Ok(id), Ok(csrf)) = (random_secret(), random_secret()) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again.",
        );
    };
    let tx = Transaction {
        request: req,
        csrf,
        browser: TokenHash::of(&browser),
        expires_at: now + TRANSACTION_TTL,
    };
    let page = consent_page(&inner, &id, &tx, user.as_ref(), None);
    if let Err(_e) = inner.flow.insert_transaction(&id, &tx, now).await {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_e, "storing an authorization transaction failed");
        return unavailable_page();
    }
    html(StatusCode::OK, page, cookies)
}

async fn post_form(axum::extract::State(inner): State, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !crate::http::is_form(&parts.headers) {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad request",
            "The form was not sent as a form.",
        );
    }
    // Bounded by the route's `RequestBodyLimitLayer`.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Bad request",
            "The form was too large.",
        );
    };
    let form = Params::parse(&bytes);
    let now = inner.now();
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "Go back to the application and start signing in again.",
        )
    };
    let (Some(id), Some(csrf)) = (form.get("transaction"), form.get("csrf")) else {
        return expired();
    };
    let browser =
        cookie(&parts.headers, &cookie_name(&inner, "browser")).map(|b| TokenHash::of(&b));
    let bound = match inner.flow.transaction(id, now).await {
        Ok(tx) => tx.map(|tx| {
            let csrf_ok: bool = tx.csrf.as_bytes().ct_eq(csrf.as_bytes()).into();
            let browser_ok = browser.is_some_and(|b| b == tx.browser);
            csrf_ok && browser_ok
        }),
        Err(_) => return unavailable_page(),
    };
    match bound {
        None => return expired(),
        Some(false) => {
            #[cfg(feature = "tracing")]
            tracing::warn!("consent form refused: CSRF token or browser binding mismatch");
            return error_page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not submitted from the page this server showed you. Start again from the application.",
            );
        }
        Some(true) => {}
    }

    if form.get("decision") == Some("deny") {
        let tx = match inner.flow.take_transaction(id, now).await {
            Ok(Some(tx)) => tx,
            Ok(None) => return expired(),
            Err(_) => return unavailable_page(),
        };
        #[cfg(feature = "tracing")]
        tracing::info!(client_id = %tx.request.client_id, "user denied the authorization request");
        return redirect_error(
            &inner,
            &tx.request.redirect_uri,
            tx.request.state.as_deref(),
            ErrorCode::AccessDenied,
            "the user denied the request",
        );
    }
    if form.get("decision") != Some("approve") {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Choose Approve or Deny.",
        );
    }

    let mut cookies = Vec::new();
    let user = match current_user(&inner, &parts, now).await {
        Err(unavailable) => return unavailable,
        Ok(Some(user)) => user,
        Ok(None) if inner.login.redirect().is_some() => {
            return start_upstream(&inner, id, now).await;
        }
        Ok(None) => {
            let (Some(username), Some(password)) = (form.get("username"), form.get("password"))
            else {
                return rerender(&inner, id, now, "Enter your username and password.").await;
            };
            match inner.failed_logins.allows(username, now).await {
                Ok(true) => {}
                Ok(false) => {
                    return rerender(
                        &inner,
                        id,
                        now,
                        "Too many failed sign-ins for this username. Wait a few minutes and try again.",
                    )
                    .await;
                }
                Err(_) => return unavailable_page(),
            }
            let checked = match inner.password_checks.acquire().await {
                Ok(_permit) => inner.login.verify_password(username, password).await,
                Err(_) => None,
            };
            match checked {
                Some(user) => {
                    if inner.failed_logins.clear(username).await.is_err() {
                        return unavailable_page();
                    }
                    let session = match start_session(&inner, &user, now).await {
                        Ok(session) => session,
                        Err(response) => return response,
                    };
                    cookies.push(session);
                    #[cfg(feature = "tracing")]
                    tracing::info!(sub = %user.subject, "user signed in");
                    user
                }
                None => {
                    if inner.failed_logins.hit(username, now).await.is_err() {
                        return unavailable_page();
                    }
                    #[cfg(feature = "tracing")]
                    tracing::info!("sign-in failed");
                    return rerender(&inner, id, now, "Wrong username or password.").await;
                }
            }
        }
    };

    let tx = match inner.flow.take_transaction(id, now).await {
        Ok(Some(tx)) => tx,
        Ok(None) => return expired(),
        Err(_) => return unavailable_page(),
    };
    let consent = ConsentRecord {
        subject: user.subject.clone(),
        client_id: tx.request.client_id.clone(),
        resource: tx.request.resource.clone(),
        scope: tx.request.scope.to_string(),
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
    issue_code(&inner, &tx.request, &user, now, cookies).await
}

/// The user approved and must now sign in upstream: make a fresh `state`, `nonce` and PKCE
/// verifier, keep them server-side bound to a new cookie, and redirect (AS-52: the state is
/// stored only after consent, and its cookie set on the redirect itself). When the provider
/// cannot be reached, the page comes back with the error and the transaction stays.
async fn start_upstream(inner: &Arc<Inner>, id: &str, now: u64) -> Response {
    let Some(login) = inner.login.redirect() else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again.",
        );
    };
    let request = match inner.flow.transaction(id, now).await {
        Ok(Some(tx)) => tx.request,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request has expired",
                "Go back to the application and start signing in again.",
            );
        }
        Err(_) => return unavailable_page(),
    };
    let (Some(upstream), Ok(binding)) = (
        crate::upstream::UpstreamRequest::generate(inner.config.url(CALLBACK_PATH)),
        random_secret(),
    ) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again.",
        );
    };
    let location = match login.authorization_url(&upstream).await {
        Ok(location) => location,
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(error = %_e, provider = login.provider_name(), "the upstream provider is unavailable");
            let message = format!(
                "{} cannot be reached right now. Try again in a moment.",
                login.provider_name()
            );
            return match inner.flow.transaction(id, now).await {
                Ok(Some(tx)) => html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    consent_page(inner, id, &tx, None, Some(&message)),
                    Vec::new(),
                ),
                _ => error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in unavailable",
                    &message,
                ),
            };
        }
    };
    let Ok(location_header) = HeaderValue::from_str(&location) else {
        return error_page(
            StatusCode::BAD_GATEWAY,
            "Sign-in unavailable",
            "The sign-in provider's address is not valid.",
        );
    };
    // Consent given: the transaction becomes a pending upstream sign-in (single use).
    match inner.flow.take_transaction(id, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request has expired",
                "Go back to the application and start signing in again.",
            );
        }
        Err(_) => return unavailable_page(),
    }
    let pending = PendingUpstream {
        request,
        upstream,
        browser: TokenHash::of(&binding),
        expires_at: now + TRANSACTION_TTL,
    };
    if let Err(_e) = inner.flow.insert_upstream(&pending, now).await {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_e, "storing a pending upstream sign-in failed");
        return unavailable_page();
    }
    #[cfg(feature = "tracing")]
    tracing::info!(
        provider = login.provider_name(),
        "sending the user to the upstream provider"
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, location_header);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(inner, UPSTREAM_COOKIE, &binding, TRANSACTION_TTL),
    );
    response
}

/// The callback route, under the issuer's path.
pub(crate) const CALLBACK_PATH: &str = "/login/callback";
/// The cookie binding a pending upstream sign-in to the browser.
pub(crate) const UPSTREAM_COOKIE: &str = "upstream";

/// The user behind this browser: the login's own idea, else our session cookie.
/// A store that fails gives the 503 page.
pub(crate) async fn current_user(
    inner: &Inner,
    parts: &http::request::Parts,
    now: u64,
) -> Result<Option<User>, Response> {
    if let Some(user) = inner.login.current_user(parts).await {
        return Ok(Some(user));
    }
    let Some(session) = cookie(&parts.headers, &cookie_name(inner, "session")) else {
        return Ok(None);
    };
    inner
        .flow
        .session_user(&session, now)
        .await
        .map_err(|_| unavailable_page())
}

async fn consent_covers(inner: &Inner, user: &User, req: &AuthRequest) -> bool {
    match inner
        .store
        .get_consent(&user.subject, &req.client_id, &req.resource)
        .await
    {
        Ok(Some(consent)) => {
            ScopeSet::parse(&consent.scope).is_ok_and(|granted| granted.contains_all(&req.scope))
        }
        _ => false,
    }
}

/// Issue a code and send the user back to the client (303, AS-16).
pub(crate) async fn issue_code(
    inner: &Inner,
    req: &AuthRequest,
    user: &User,
    now: u64,
    cookies: Vec<HeaderValue>,
) -> Response {
    let trace = Trace::current();
    trace.record("client_id", &req.client_id);
    trace.record_subject(&user.subject);
    let (Ok(code), Ok(grant_id)) = (random_secret(), random_id()) else {
        return redirect_error(
            inner,
            &req.redirect_uri,
            req.state.as_deref(),
            ErrorCode::ServerError,
            "try again",
        );
    };
    let record = CodeRecord {
        hash: TokenHash::of(&code),
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_in_request: req.redirect_uri_in_request,
        code_challenge: req.code_challenge.clone(),
        resource: req.resource.clone(),
        scope: req.scope.to_string(),
        subject: user.subject.clone(),
        grant_id,
        issued_at: now,
        expires_at: now + inner.config.code_ttl.as_secs(),
    };
    if let Err(_e) = inner.store.put_code(record).await {
        #[cfg(feature = "tracing")]
        tracing::error!(error = %_e, "storing an authorization code failed");
        return redirect_error(
            inner,
            &req.redirect_uri,
            req.state.as_deref(),
            ErrorCode::TemporarilyUnavailable,
            "try again shortly",
        );
    }
    #[cfg(feature = "tracing")]
    tracing::info!(client_id = %req.client_id, sub = %user.subject, scope = %req.scope, "authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = &req.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &inner.config.issuer));
    let mut response = see_other(&req.redirect_uri, &pairs);
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn consent_page(
    inner: &Inner,
    id: &str,
    tx: &Transaction,
    user: Option<&User>,
    error: Option<&str>,
) -> String {
    let req = &tx.request;
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let client_id_host = (req.client_source == ClientSource::MetadataDocument)
        .then(|| {
            url::Url::parse(&req.client_id)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        })
        .flatten();
    let scopes: Vec<&str> = req.scope.iter().map(|s| s.as_str()).collect();
    let action = inner.config.path("/authorize");
    let signed_in_as = user.map(|u| u.display_name.as_deref().unwrap_or(&u.subject));
    let provider = inner
        .login
        .redirect()
        .map(|l| (l.provider_name(), l.upstream_scope()));
    render_consent(&ConsentPage {
        action: &action,
        client_name: &req.client_name,
        client_id: &req.client_id,
        redirect_host: &redirect_host,
        redirect_uri: &req.redirect_uri,
        loopback_redirect: crate::config::is_loopback_url(&req.redirect_uri),
        client_id_host: client_id_host.as_deref(),
        scopes: &scopes,
        resource: &req.resource,
        needs_login: user.is_none() && inner.login.has_password_form(),
        signed_in_as,
        error,
        provider,
        transaction: id,
        csrf: &tx.csrf,
    })
}

/// Show the page again with an error (wrong password); the transaction stays.
async fn rerender(inner: &Inner, id: &str, now: u64, error: &str) -> Response {
    match inner.flow.transaction(id, now).await {
        Ok(Some(tx)) => html(
            StatusCode::OK,
            consent_page(inner, id, &tx, None, Some(error)),
            Vec::new(),
        ),
        Err(_) => unavailable_page(),
        Ok(None) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "Start again from the application.",
        ),
    }
}
