//! The spans of one full MCP authorization, exported to stdout through OpenTelemetry.
//!
//! Run with `cargo run -p example-otel`. In one process, over loopback HTTP: an embedded
//! authorization server (auto-approving one user), a protected `/mcp` endpoint
//! (`BearerAuthLayer`), and `mcp-auth-client`'s token manager. The client calls `/mcp`, gets
//! the 401 challenge, discovers, registers, authorizes (PKCE) and redeems the code, and calls
//! again with the token. Every span of the run (the server endpoints' `mcp_auth.authorize`,
//! `mcp_auth.token`, `mcp_auth.register`, `mcp_auth.metadata`, `mcp_auth.jwks`; the resource
//! layer's `mcp_auth.bearer`; the client's `mcp_auth.client.token`) goes through
//! `tracing-opentelemetry` to `opentelemetry-stdout`, which prints each one as it ends, with its
//! attributes (the span fields). Filter with `RUST_LOG` (default
//! `mcp_auth=info,mcp_auth_server=info,mcp_auth_client=info,mcp_auth_resource=debug`).
//!
//! Field names are stable (see the README's "Tracing" table): `client_id`, `sub_hash`,
//! `grant_type`, `decision`, `error`, `cache`, `verify_us`. No span carries a token, code,
//! verifier or secret.

use std::error::Error;
use std::net::SocketAddr;

use axum::{Router, routing::post};
use mcp_auth_client::{HeadlessBrowser, TokenManager};
use mcp_auth_resource::{BearerAuthLayer, JwtVerifier, ProtectedResource};
use mcp_auth_server::{AuthorizationServer, login::HeadlessLogin};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

const DEFAULT_FILTER: &str =
    "mcp_auth=info,mcp_auth_server=info,mcp_auth_client=info,mcp_auth_resource=debug";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // OpenTelemetry: every span exported to stdout as it ends.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let tracer = provider.tracer("mcp-auth-example-otel");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();

    let token = authorize_once().await?;
    eprintln!("one full authorization done: a {token}-byte access token");

    provider.shutdown()?;
    Ok(())
}

/// The authorization server, the protected endpoint and the client, in this process: returns
/// the length of the access token the client got (the token itself is never printed).
async fn authorize_once() -> Result<usize, Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let mcp_url = format!("{base}/mcp");

    let server = AuthorizationServer::builder(&base)
        .resource(&mcp_url)
        .scopes(["mcp:tools"])
        .login(HeadlessLogin::for_bind_addr("alice", addr)?)
        .build()
        .await?;
    let resource = ProtectedResource::builder(&mcp_url)
        .authorization_server(&base)
        .scopes_supported("mcp:tools".parse()?)
        .build()?;
    let verifier = JwtVerifier::for_resource(&base, &resource)
        .discover_jwks()
        .build()?;
    let app: Router = Router::new()
        .route("/mcp", post(|| async { "tool result" }))
        .layer(BearerAuthLayer::new(verifier, resource.clone()))
        .merge(resource.metadata_router())
        .merge(server.router());
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let manager = TokenManager::builder(&mcp_url)
        .client_name("otel example")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .build()?;
    let token = manager.access_token().await?;
    // The protected call with the token: the bearer layer's span, `decision=allow`.
    let status = call_mcp(addr, token.expose()).await?;
    eprintln!("POST /mcp with the token: {status}");
    serving.abort();
    Ok(token.expose().len())
}

/// `POST /mcp` with the bearer token over a plain TCP connection (HTTP/1.1), returning the
/// status line.
async fn call_mcp(addr: SocketAddr, token: &str) -> Result<String, Box<dyn Error>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}
