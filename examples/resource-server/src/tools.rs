//! The MCP tools of the example: `whoami` and `admin_tool`.

use mcp_auth_resource::AuthInfo;
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::Extension},
    model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};

/// The MCP server. Tool scopes are enforced before a call reaches it (by the tool-scope layer);
/// the handlers read the caller's identity from the `AuthInfo` the bearer layer attached.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    tool_router: ToolRouter<Self>,
}

impl Tools {
    pub(crate) fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

fn auth_info(parts: &http::request::Parts) -> Result<&AuthInfo, ErrorData> {
    // The bearer layer runs on every request to /mcp, so this is always present; answering an
    // error rather than panicking keeps a misconfigured router from taking the server down.
    parts.extensions.get::<AuthInfo>().ok_or_else(|| {
        ErrorData::internal_error("no AuthInfo: is BearerAuthLayer installed?", None)
    })
}

#[tool_router]
impl Tools {
    /// Who is calling: the token's subject, client and scopes. Needs `mcp:tools`.
    #[tool(description = "Returns the caller's subject, client_id and granted scopes as JSON.")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let info = auth_info(&parts)?;
        let body = serde_json::json!({
            "subject": info.subject(),
            "client_id": info.client_id(),
            "scopes": info.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            body.to_string(),
        )]))
    }

    /// A privileged tool. Needs `mcp:admin`: a token without it gets an HTTP 403
    /// `insufficient_scope` challenge before this runs, so the client can step up.
    #[tool(description = "A privileged operation; requires the mcp:admin scope.")]
    async fn admin_tool(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let info = auth_info(&parts)?;
        let who = info.subject().unwrap_or("unknown");
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "admin operation done for {who}"
        ))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
