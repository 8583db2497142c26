//! Bind each MCP session to the user who created it (SPEC RS-30, RS-32): a session id alone never
//! lets someone else in. Sessions are a 2025-11-25 (and earlier) feature: MCP 2026-07-28 requests
//! pass through without one (spec N-1).
//!
//! An MCP Streamable HTTP server hands out an `Mcp-Session-Id` on `initialize` and keys its
//! session state on it. The session id is not an authenticator (RS-30): if it leaks, a caller
//! with a valid token *of their own* could otherwise drive the victim's session.
//! [`SessionBindingLayer`] records who created each session and checks, on every request, that
//! the token's owner is the session's owner, as SPEC RS-32 recommends.
//!
//! The **owner** of a request is the [`AuthInfo`] that
//! [`BearerAuthLayer`](crate::BearerAuthLayer) put in its extensions: the pair (issuer, subject),
//! or (issuer, client id) when the token has no `sub` (client credentials). A subject and a
//! client id never match each other, and the same `sub` from two issuers is two owners. A request
//! without `AuthInfo` (an [`Anonymous`](crate::Anonymous) one in the bearer layer's
//! optional mode), or whose token has neither `sub` nor client id, has **no owner**.
//!
//! For each request the [`SessionBinding`] service applies these rules:
//!
//! 1. A request without `Mcp-Session-Id` passes. When the inner service answers it with a `2xx`
//!    response that carries an `Mcp-Session-Id` (an `initialize`), that session is bound to the
//!    request's owner. A request with no owner binds nothing.
//! 2. A request with one `Mcp-Session-Id` of a session bound to its owner passes, and refreshes
//!    the binding's idle timer.
//! 3. A request with one `Mcp-Session-Id` of a session bound to *someone else*, or with no owner,
//!    is refused with `404 Not Found` **without calling the inner service**, and logged at `WARN`.
//! 4. A request with an `Mcp-Session-Id` unknown to the binder passes; if the inner service
//!    answers `2xx`, the session is bound to the request's owner (see
//!    [Trust on first use](#trust-on-first-use)).
//! 5. A `DELETE` with an `Mcp-Session-Id` answered `2xx` forgets the binding; a failed `DELETE`
//!    keeps it.
//! 6. A request with more than one `Mcp-Session-Id` header is refused with `400 Bad Request`: the
//!    binder and the server could otherwise read different ones.
//! 7. An MCP 2026-07-28 request (see [below](#mcp-2026-07-28-no-sessions)) is not checked
//!    against any session and never refused here: it passes with its `Mcp-Session-Id` headers,
//!    if any, removed. Rules 1 to 6 apply to 2025-11-25 requests only.
//! 8. Rejections are responses with an empty `ResBody::default()` body and a
//!    [`SessionBindingRejection`] in their extensions; the service never returns an error of its
//!    own (`Error = S::Error`).
//!
//! # MCP 2026-07-28: no sessions
//!
//! MCP 2026-07-28 has no `initialize` and no `Mcp-Session-Id`: every request stands alone and the
//! bearer token is checked on every one, as always. The era of a request comes from its
//! `MCP-Protocol-Version` header, as in [`ToolScopesLayer`](crate::ToolScopesLayer): none, or
//! one `YYYY-MM-DD` revision before `2026-07-28`, is 2025-11-25 and is bound exactly as above;
//! anything else (`2026-07-28`, a later or unparseable revision, several headers) is 2026-07-28.
//!
//! A 2026-07-28 request passes through, and a stale `Mcp-Session-Id` on it (a client that spoke
//! 2025-11-25 before) is **ignored**: not a credential and not an error, as the transport asks of
//! a 2026-07-28 server. The layer removes the header before the inner service sees it, so a
//! dual-era server cannot be led to read a modern request as part of someone's legacy session,
//! and neither can a `DELETE` end one. Nothing is looked up or refreshed in the store; should the
//! server still answer with an `Mcp-Session-Id`, it is bound to the caller as in rule 1. That is
//! also what happens to a dual-era client's `initialize` sent with a `2026-07-28` version header:
//! the server opens a 2025-11-25 session, and the session is bound to its creator. A
//! server-minted handle passed as a tool argument is never a credential here either.
//!
//! # Why 404
//!
//! The MCP Streamable HTTP transport answers `404 Not Found` to a request whose session id is
//! unknown or terminated, and a client that gets it starts a new session. Answering a hijack
//! attempt the same way tells the caller nothing: it cannot tell "this session exists but is not
//! yours" from "no such session", so the layer is no oracle for valid session ids. A legitimate
//! client whose user changed (a new login on the same session) recovers the standard way, with a
//! fresh `initialize`. (A `403` would confirm that the session exists.) The status is the same as
//! the server's, but the body is empty: the server's own 404 body may differ.
//!
//! # Trust on first use
//!
//! The binder keeps its bindings in memory. A session it does not know (created before a
//! restart, evicted when the store was full, or idle past the TTL while the server kept it) is
//! bound to the first owner that uses it successfully, rather than refused: refusing would break
//! every live session on each deployment. The binding is recorded only after the inner service
//! answered `2xx`, so made-up session ids (which the server answers with `404`) never fill the
//! store or push real bindings out. The cost: in that window the first caller wins, and two
//! callers racing with the same unknown id both reach the server once. To keep the window small,
//! make the [idle TTL](SessionBindingLayer::idle_ttl) at least your server's session timeout and
//! the [capacity](SessionBindingLayer::capacity) above its number of live sessions.
//!
//! # Store
//!
//! Bindings live in one `Mutex<HashMap>` shared by the layer and every service built from it,
//! keyed by the session id (its SHA-256 when it is longer than 64 bytes) and holding the SHA-256
//! of the owner (a fixed size per entry, whatever the ids' lengths). Keys are hashed with a
//! random seed per layer and compared in full, in constant time. It holds at most [`capacity`](SessionBindingLayer::capacity)
//! sessions (default 100 000); each binding expires after
//! [`idle_ttl`](SessionBindingLayer::idle_ttl) (default 24 h) without an allowed request. When
//! full, expired bindings are dropped first, then the least recently used. Every operation is
//! O(1) amortised and the lock is never held across an `.await`. Time comes from a
//! [`Clock`](mcp_auth_core::Clock), read with
//! [`now_upper_bound`](mcp_auth_core::Clock::now_upper_bound) (for the system clock, the kernel's
//! coarse clock: a few nanoseconds instead of some twenty), so idle expiry is exact to a few
//! milliseconds.
//!
//! # Order
//!
//! The layer needs the `AuthInfo`, so it goes *inside* [`BearerAuthLayer`](crate::BearerAuthLayer);
//! it does not read the body, so it can go before or after
//! [`ToolScopesLayer`](crate::ToolScopesLayer):
//!
//! ```text
//! ServiceBuilder::new()
//!     .layer(origin_guard)      // Origin / Host (DNS rebinding)
//!     .layer(bearer_auth)       // 401 for a missing or invalid token; inserts AuthInfo
//!     .layer(session_binding)   // 404 for someone else's Mcp-Session-Id
//!     .layer(tool_scopes)       // 403 for a tools/call the token's scopes do not cover
//!     .service(mcp_server)
//! ```
//!
//! Without a bearer layer outside it, every request has no owner: nothing is bound and nothing is
//! refused. Both eras can share one stack: the layer tells them apart per request.
//!
//! # Tracing
//!
//! With the `tracing` feature, a refusal is a `WARN` event with the reason and at most the first
//! 8 characters of the caller's subject (or client id) and of the session id; new bindings and
//! forgotten ones are `DEBUG` events. Tokens are never logged.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http::{HeaderValue, Request, Response, StatusCode};
//! use mcp_auth_resource::{AuthInfo, SessionBindingLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // Stands in for a dual-era MCP Streamable HTTP server: a 2025-11-25 `initialize` (no session
//! // id) opens `session-1`; a 2026-07-28 request has no session, and one that arrives with a
//! // session id would be a bug in front of it (answered 500 here).
//! async fn mcp_server(req: Request<String>) -> Result<Response<String>, Infallible> {
//!     let mut response = Response::new(String::new());
//!     let modern = req.headers().get("mcp-protocol-version").is_some_and(|v| v == "2026-07-28");
//!     let session = req.headers().contains_key("mcp-session-id");
//!     if modern && session {
//!         *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
//!     } else if !modern && !session {
//!         let id = HeaderValue::from_static("session-1");
//!         response.headers_mut().insert("mcp-session-id", id);
//!     }
//!     Ok(response)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let service = ServiceBuilder::new()
//!     // Stands in for BearerAuthLayer: the token's subject, taken from a demo header.
//!     .map_request(|mut req: Request<String>| {
//!         let user = req.headers()["x-demo-user"].to_str().unwrap().to_owned();
//!         let info = AuthInfo::builder().issuer("https://auth.example.com").subject(user).build();
//!         req.extensions_mut().insert(info);
//!         req
//!     })
//!     .layer(SessionBindingLayer::new())
//!     .service_fn(mcp_server);
//!
//! let request = |user: &str, session: Option<&HeaderValue>| {
//!     let mut req = Request::post("/mcp").header("x-demo-user", user);
//!     if let Some(session) = session {
//!         req = req.header("mcp-session-id", session);
//!     }
//!     req.body(String::new())
//! };
//!
//! // Alice initializes: the session the server opens is bound to her.
//! let response = service.clone().oneshot(request("alice", None)?).await?;
//! let session = response.headers()["mcp-session-id"].clone();
//!
//! // Bob, with a valid token of his own and Alice's session id: 404, the server never sees it.
//! let response = service.clone().oneshot(request("bob", Some(&session))?).await?;
//! assert_eq!(response.status(), StatusCode::NOT_FOUND);
//!
//! // A 2026-07-28 request has no session: Bob's stale copy of the id is ignored (neither a
//! // credential nor an error) and removed before the server sees the request.
//! let mut modern = request("bob", Some(&session))?;
//! modern.headers_mut().insert("mcp-protocol-version", HeaderValue::from_static("2026-07-28"));
//! let response = service.clone().oneshot(modern).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // Alice carries on.
//! let response = service.oneshot(request("alice", Some(&session))?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

use http::{Extensions, HeaderMap, HeaderName};
use sha2::{Digest as _, Sha256};

use crate::{
    AuthInfo,
    mcp::headers::{McpHeaders, SESSION_ID_NAME, Values},
};

mod future;
pub(crate) mod layer;
pub(crate) mod rejection;
pub(crate) mod service;
mod store;

pub use self::future::ResponseFuture;
// For the submodules, which name these `super::…`.
pub(crate) use self::{
    layer::SessionBindingLayer,
    rejection::{SessionBindingRejectionKind, rejection},
};
#[cfg(doc)]
use crate::{SessionBinding, SessionBindingRejection};

/// The `Mcp-Session-Id` header of the MCP Streamable HTTP transport (2025-11-25 and earlier).
const MCP_SESSION_ID: HeaderName = HeaderName::from_static(SESSION_ID_NAME);

/// The `Mcp-Session-Id` of a request, as the store keys it: `Ok(None)` without one, `Err` with
/// several.
fn session_id(values: Values<'_>) -> Result<Option<store::SessionKey>, ()> {
    Ok(values
        .at_most_one()?
        .map(|value| store::SessionKey::of(value.as_bytes())))
}

/// The `Mcp-Session-Id` of a response (see [`session_id`]), found in one pass over its headers
/// as for a request: cheaper than a lookup by name for the few headers of a response (and
/// nearly free without any).
fn response_session_id(headers: &HeaderMap) -> Result<Option<store::SessionKey>, ()> {
    session_id(McpHeaders::of(headers).session)
}

/// The principal of a request, when it has one: `sub`, else the client id (non-empty).
fn principal(info: &AuthInfo) -> Option<(u8, &str)> {
    let non_empty = |s: &&str| !s.is_empty();
    match (
        info.subject().filter(non_empty),
        info.client_id().filter(non_empty),
    ) {
        (Some(sub), _) => Some((b's', sub)),
        (None, Some(client_id)) => Some((b'c', client_id)),
        (None, None) => None,
    }
}

/// The owner of a request: the SHA-256 of (issuer, subject or client id), unambiguously framed.
/// Computed once per verified token and kept in its [`AuthInfo`], which the token cache shares
/// between requests.
fn owner_of(extensions: &Extensions) -> Option<store::Digest> {
    extensions.get::<AuthInfo>()?.owner_key(owner_digest)
}

fn owner_digest(info: &AuthInfo) -> Option<store::Digest> {
    let (tag, principal) = principal(info)?;
    let mut hasher = Sha256::new();
    match info.issuer() {
        Some(issuer) => {
            hasher.update([1]);
            hasher.update((issuer.len() as u64).to_be_bytes());
            hasher.update(issuer.as_bytes());
        }
        None => hasher.update([0]),
    }
    hasher.update([tag]);
    hasher.update(principal.as_bytes());
    Some(hasher.finalize().into())
}

/// Who is calling, for a log line: the subject or client id, or `anonymous`.
#[cfg(feature = "tracing")]
fn caller_name(extensions: &Extensions) -> &str {
    extensions
        .get::<AuthInfo>()
        .and_then(principal)
        .map_or("anonymous", |(_, name)| name)
}

/// At most the first 8 characters of `s`, escaped, followed by `…` when cut.
#[cfg(feature = "tracing")]
fn log_prefix(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(8).collect();
    let cut = if chars.next().is_some() { "…" } else { "" };
    format!("{}{cut}", head.escape_debug())
}
