//! The MCP tools: a small notes service plus `whoami`, `admin_tool` and `upstream_profile`.
//!
//! `upstream_profile` calls the upstream OpenID provider's userinfo endpoint **as the user**,
//! with the user's upstream access token from the server's vault
//! ([`UpstreamAccess::from_parts`] on the HTTP request rmcp hands the tool; the vault refreshes
//! the token when it is due). When the vault says the user must sign in again (the provider
//! refused the refresh: the vault has revoked the user's grants here), the call fails with a
//! JSON-RPC error, and the MCP client's next request is answered 401, so it signs the user in
//! again. Without `--upstream-oidc` the tool answers a tool error saying so.
//!
//! Each handler states the scope it needs in its signature, `RequireScope<NotesWrite>`
//! (`mcp-auth-resource`'s `rmcp` feature): without that scope the handler does not run and the
//! client gets a JSON-RPC `-32600` error naming it. The same scope types configure the tool-scope
//! layer ([`crate::scopes::TOOL_SCOPES`]), which normally refuses such a call first, with an HTTP
//! 403 step-up challenge the client acts on; the handlers' check is the backstop for a router
//! that lost the layer. Without the bearer layer in front, the parameter fails the call with an
//! internal error.
use axum::http::request::Parts;
use mcp_auth_resource::RequireScope;
use mcp_auth_server::{
    AuthorizationServer,
    login::OidcLogin,
    upstream::UpstreamError,
    vault::{UpstreamAccess, VaultError},
};
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{common::Extension, router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolResult, ContentBlock, ErrorCode, Implementation, ServerCapabilities, ServerConfig,
    },
    schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;

use crate::notes::Notes;
use crate::scopes::{McpAdmin, McpTools, NotesAdmin, NotesRead, NotesWrite};

/// The MCP server of one session. All sessions share one [`Notes`].
#[derive(Debug, Clone)]
pub struct Tools {
    notes: Notes,
    upstream: Option<Upstream>,
    tool_router: ToolRouter<Self>,
}

/// What `upstream_profile` needs: the provider's login (its userinfo endpoint and bounds) and
/// the authorization server (to sign a user out whose upstream tokens are gone).
#[derive(Debug, Clone)]
pub struct Upstream {
    login: OidcLogin,
    server: AuthorizationServer,
}

impl Upstream {
    /// The upstream `login` the `server` signs users in with (its vault keeps their tokens).
    pub fn new(login: OidcLogin, server: AuthorizationServer) -> Self {
        Self { login, server }
    }
}

/// The JSON-RPC error of a tool call whose user must sign in again.
fn sign_in_again() -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        "the upstream account must be reconnected: sign in again",
        Some(serde_json::json!({ "error": "invalid_token" })),
    )
}

/// The arguments of `get_note` and `delete_note`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NoteId {
    /// The note's id, as `list_notes` shows it.
    pub id: u64,
}

/// The arguments of `add_note`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NewNote {
    /// The note's text (at most 4096 bytes).
    pub text: String,
}

fn json_result(value: &impl serde::Serialize) -> Result<CallToolResult, ErrorData> {
    let text = serde_json::to_string(value)
        .map_err(|e| ErrorData::internal_error(format!("cannot serialize: {e}"), None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

impl Tools {
    /// A server working on `notes`.
    pub fn new(notes: Notes) -> Self {
        Self {
            notes,
            upstream: None,
            tool_router: Self::tool_router(),
        }
    }

    /// With `upstream_profile` working against `upstream` (without it, that tool answers a
    /// tool error).
    #[must_use]
    pub fn with_upstream(mut self, upstream: Upstream) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// The names of the tools this server lists.
    pub fn tool_names() -> Vec<String> {
        Self::tool_router()
            .list_all()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }
}

#[tool_router]
impl Tools {
    /// Who is calling. Needs `mcp:tools`.
    #[tool(description = "Returns the caller's subject, client_id and granted scopes as JSON.")]
    async fn whoami(&self, auth: RequireScope<McpTools>) -> Result<CallToolResult, ErrorData> {
        json_result(&serde_json::json!({
            "subject": auth.subject(),
            "client_id": auth.client_id(),
            "scopes": auth.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        }))
    }

    /// The user's profile at the upstream provider. Needs `mcp:tools`.
    #[tool(
        description = "Returns the caller's profile at the upstream OpenID provider (its userinfo response) as JSON. Needs a server started with --upstream-oidc."
    )]
    async fn upstream_profile(
        &self,
        _auth: RequireScope<McpTools>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(upstream) = &self.upstream else {
            return Ok(tool_error(
                "this server does not sign users in upstream (start it with --upstream-oidc)",
            ));
        };
        let access = UpstreamAccess::from_parts(&parts)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let token = match access.access_token(upstream.login.issuer()).await {
            Ok(token) => token,
            // The vault revoked the user's grants: the next request answers 401.
            Err(VaultError::SignInRequired) => return Err(sign_in_again()),
            Err(error @ (VaultError::NotFound | VaultError::Undecryptable)) => {
                // No usable upstream tokens (deleted, or kept under another vault key): sign
                // the user out, so that the next request answers 401 and the sign-in stores
                // new ones.
                tracing::info!(sub = %access.subject(), %error, "no usable upstream tokens: signing the user out");
                upstream
                    .server
                    .sign_out(access.subject())
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                return Err(sign_in_again());
            }
            Err(error) => {
                return Ok(tool_error(format!(
                    "the upstream provider cannot be reached now ({error}); try again later"
                )));
            }
        };
        match upstream.login.user_info(&token).await {
            Ok(info) => json_result(&info),
            Err(UpstreamError::Unavailable(_)) => Ok(tool_error(
                "the upstream provider's userinfo endpoint is unavailable; try again later",
            )),
            Err(error) => Ok(tool_error(format!(
                "the upstream provider refused the userinfo request: {error}"
            ))),
        }
    }

    /// Every note. Needs `notes:read`.
    #[tool(description = "Lists every note (id, author, text) as JSON. Requires notes:read.")]
    async fn list_notes(
        &self,
        _auth: RequireScope<NotesRead>,
    ) -> Result<CallToolResult, ErrorData> {
        json_result(&self.notes.list())
    }

    /// One note. Needs `notes:read`.
    #[tool(description = "Returns one note by id as JSON. Requires notes:read.")]
    async fn get_note(
        &self,
        _auth: RequireScope<NotesRead>,
        Parameters(NoteId { id }): Parameters<NoteId>,
    ) -> Result<CallToolResult, ErrorData> {
        match self.notes.get(id) {
            Some(note) => json_result(&note),
            None => Ok(tool_error(format!("no note {id}"))),
        }
    }

    /// Adds a note signed by the caller. Needs `notes:write` (unadvertised: step-up).
    #[tool(description = "Adds a note and returns it as JSON. Requires notes:write.")]
    async fn add_note(
        &self,
        auth: RequireScope<NotesWrite>,
        Parameters(NewNote { text }): Parameters<NewNote>,
    ) -> Result<CallToolResult, ErrorData> {
        let author = auth.subject().unwrap_or("unknown");
        match self.notes.add(author, &text) {
            Ok(note) => json_result(&note),
            Err(error) => Ok(tool_error(error.to_string())),
        }
    }

    /// Deletes any note. Needs `notes:admin` (unadvertised: step-up).
    #[tool(description = "Deletes a note by id and returns it as JSON. Requires notes:admin.")]
    async fn delete_note(
        &self,
        _auth: RequireScope<NotesAdmin>,
        Parameters(NoteId { id }): Parameters<NoteId>,
    ) -> Result<CallToolResult, ErrorData> {
        match self.notes.delete(id) {
            Some(note) => json_result(&note),
            None => Ok(tool_error(format!("no note {id}"))),
        }
    }

    /// A privileged operation. Needs `mcp:admin` (unadvertised: step-up).
    #[tool(description = "A privileged operation (reports server statistics); requires mcp:admin.")]
    async fn admin_tool(&self, auth: RequireScope<McpAdmin>) -> Result<CallToolResult, ErrorData> {
        json_result(&serde_json::json!({
            "done_for": auth.subject(),
            "notes": self.notes.len(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "example-mcp-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "A notes service protected by OAuth. list_notes/get_note need notes:read, \
                 add_note notes:write, delete_note notes:admin, admin_tool mcp:admin; the \
                 server answers a call that needs more with HTTP 403 insufficient_scope so \
                 the client can ask for it (step-up).",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_one_row_in_the_scope_table_and_back() {
        let mut listed = Tools::tool_names();
        listed.sort();
        let mut table: Vec<String> = crate::scopes::TOOL_SCOPES
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        table.sort();
        assert_eq!(listed, table);
    }
}
