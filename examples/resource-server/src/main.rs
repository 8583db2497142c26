//! An MCP server protected by `mcp-auth-resource`, trusting an external authorization server.
//!
//! Run with `cargo run -p example-resource-server`, then:
//!
//! ```sh
//! # The RFC 9728 metadata clients discover first:
//! curl -s http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp
//! # Without a token: 401 and the challenge that points at the metadata:
//! curl -si -X POST http://127.0.0.1:8080/mcp
//! ```
//!
//! Settings come from the environment (`MCP_AUTH_ADDR`, `MCP_AUTH_RESOURCE`, `MCP_AUTH_ISSUER`,
//! `MCP_AUTH_INTROSPECTION_URL`, `MCP_AUTH_INTROSPECTION_CLIENT_ID`/`_SECRET`,
//! `MCP_AUTH_ACCEPT_JWT_TYP`); see the README next to this file.

use example_resource_server::{Config, app};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,mcp_auth_resource=debug")),
        )
        .init();
    let config = Config::from_env()?;
    let router = app(&config)?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    tracing::info!(
        addr = %config.addr,
        resource = %config.resource,
        issuer = %config.issuer,
        mode = if config.introspection_url.is_some() { "introspection" } else { "jwt" },
        "MCP server listening; metadata at /.well-known/oauth-protected-resource/mcp",
    );
    // TCP_NODELAY: rmcp answers in SSE, and without it the last small write of each answer
    // waits for the client's delayed ACK (about 40 ms per call on a kept-alive connection).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
