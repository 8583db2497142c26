//! [`Auth`] and [`RequireScope<S>`](RequireScope) as rmcp tool and prompt handler parameters
//! (feature `rmcp`).
//!
//! rmcp's Streamable HTTP server copies each request's `http::request::Parts` into the handler's
//! context; the [`BearerAuthLayer`](crate::BearerAuthLayer) in front of it has left the verified
//! token there. These `FromContextPart` implementations read it, so a tool states the scope it needs
//! in its signature (see the example below).
//!
//! Unlike the axum extractors, which answer HTTP responses, these answer JSON-RPC errors: once rmcp
//! runs a handler, the outcome travels in rmcp's JSON-RPC response.
//!
//! | case | code | `message` | `data` |
//! | --- | --- | --- | --- |
//! | a scope of `S` is missing | `-32600` (invalid request) | `insufficient_scope: this operation requires the scope "…"` | `{"error": "insufficient_scope", "required_scope": "…", "scope": "<step-up set>"}` |
//! | anonymous request (optional layer) | `-32600` | `this operation requires an access token` | `{"error": "invalid_token"}` |
//! | no `BearerAuthLayer`, or not rmcp's HTTP transport | `-32603` (internal error) | which one | none |
//!
//! `scope` in `data` is the step-up set the 403 challenge would carry (the granted scopes still
//! relevant plus the required ones), so a client can re-authorize for it. To have the client do
//! that automatically, map the tool in [`ToolScopesLayer`](crate::ToolScopesLayer) too: it
//! answers HTTP 403 before the call reaches the handler, and this check stays as a backstop.
//!
//! # Example
//!
//! ```
//! use axum::body::Body;
//! use http::Request;
//! use http_body_util::BodyExt as _;
//! use mcp_auth_resource::{
//!     AuthInfo, BearerAuthLayer, ProtectedResource, RequireScope, TokenVerifier, VerifyError,
//!     VerifyErrorKind, scopes,
//! };
//! use rmcp::{
//!     ErrorData, ServerHandler,
//!     handler::server::router::tool::ToolRouter,
//!     model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig},
//!     tool, tool_handler, tool_router,
//!     transport::streamable_http_server::{
//!         StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
//!     },
//! };
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! scopes!(pub NotesWrite = "notes:write");
//!
//! #[derive(Debug, Clone)]
//! struct Notes { tool_router: ToolRouter<Self> }
//!
//! #[tool_router]
//! impl Notes {
//!     /// The scope is in the signature: the handler runs only with `notes:write`.
//!     #[tool(description = "Adds a note.")]
//!     async fn add_note(&self, auth: RequireScope<NotesWrite>) -> Result<CallToolResult, ErrorData> {
//!         let who = auth.subject().unwrap_or("?").to_owned();
//!         Ok(CallToolResult::success(vec![ContentBlock::text(format!("added by {who}"))]))
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Notes {
//!     fn get_info(&self) -> ServerConfig {
//!         ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
//!     }
//! }
//!
//! /// Every token grants `notes:read` only.
//! #[derive(Debug)]
//! struct ReadOnly;
//!
//! impl TokenVerifier for ReadOnly {
//!     async fn verify(&self, _token: &str) -> Result<AuthInfo, VerifyError> {
//!         let scopes = "notes:read".parse().map_err(|_| VerifyError::from(VerifyErrorKind::Malformed))?;
//!         Ok(AuthInfo::builder().subject("alice").scopes(scopes).build())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported("notes:read".parse()?)
//!     .build()?;
//! let mcp = StreamableHttpService::new(
//!     || Ok(Notes { tool_router: Notes::tool_router() }),
//!     LocalSessionManager::default().into(),
//!     StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true),
//! );
//! let app = ServiceBuilder::new().layer(BearerAuthLayer::new(ReadOnly, resource)).service(mcp);
//!
//! let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{}}}"#;
//! let request = Request::post("/mcp")
//!     .header("host", "localhost")
//!     .header("authorization", "Bearer read-only")
//!     .header("accept", "application/json, text/event-stream")
//!     .header("content-type", "application/json")
//!     .header("mcp-protocol-version", "2025-11-25")
//!     .body(Body::from(call))?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200); // the JSON-RPC error travels in a 200 response
//! let body = response.into_body().collect().await?.to_bytes();
//! let body = String::from_utf8_lossy(&body);
//! assert!(body.contains(r#"this operation requires the scope \"notes:write\""#), "{body}");
//! assert!(body.contains(r#""scope":"notes:read notes:write""#), "{body}");
//! # Ok(())
//! # }
//! ```

use ::rmcp::{
    ErrorData,
    handler::server::common::{AsRequestContext, FromContextPart},
    model::ErrorCode,
};

use super::{
    auth::{Auth, Lookup, lookup},
    require_scope::{__all_scope_tokens, RequireScope, ScopeList},
};

fn from_context<C: AsRequestContext>(context: &C) -> Result<Auth, ErrorData> {
    let Some(parts) = context
        .as_request_context()
        .extensions
        .get::<http::request::Parts>()
    else {
        return Err(ErrorData::internal_error(
            "no HTTP request in the context: Auth needs rmcp's Streamable HTTP server",
            None,
        ));
    };
    match lookup(&parts.extensions) {
        Ok(Lookup::Authenticated(auth)) => Ok(auth),
        Ok(Lookup::Anonymous(_)) => Err(ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            "this operation requires an access token",
            Some(serde_json::json!({ "error": "invalid_token" })),
        )),
        Err(missing) => Err(ErrorData::internal_error(missing.to_string(), None)),
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Auth {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        from_context(context)
    }
}

impl<C: AsRequestContext, S: ScopeList> FromContextPart<C> for RequireScope<S> {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        const {
            assert!(
                __all_scope_tokens(S::SCOPES),
                "ScopeList::SCOPES holds an invalid OAuth scope token (RFC 6749 section 3.3)",
            );
        }
        let auth = from_context(context)?;
        if S::SCOPES.iter().all(|scope| auth.has_scope(scope)) {
            return Ok(Self::new(auth));
        }
        let required = S::scope_set();
        let step_up = auth.step_up_scopes(&required);
        Err(ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            format!("insufficient_scope: this operation requires the scope \"{required}\""),
            Some(serde_json::json!({
                "error": "insufficient_scope",
                "required_scope": required.to_string(),
                "scope": step_up.to_string(),
            })),
        ))
    }
}
