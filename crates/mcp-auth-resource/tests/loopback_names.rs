//! A loopback deployment answers to `localhost`, `127.0.0.1` and `[::1]` alike (issue 13 item 5):
//! over real HTTP, the metadata document, the 401 challenge, the 403 step-up challenge (from the
//! bearer layer and from the tool-scope layer) and the `Auth` extractor's challenge all use the
//! loopback name the client used, while the audience stays the configured one. Public resources,
//! other hosts and other ports are unchanged.
#![cfg(all(feature = "axum", feature = "mcp", feature = "remote"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::{Router, routing::post};
use mcp_auth_core::ScopeSet;
use mcp_auth_resource::{
    Auth, AuthInfo, BearerAuthLayer, ProtectedResource, TokenVerifier, ToolScopesLayer,
    VerifyError, VerifyErrorKind,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Accepts the token `reader` (scope `notes:read`) and nothing else.
#[derive(Debug, Clone)]
struct Reader;

impl TokenVerifier for Reader {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        if token == "reader" {
            Ok(AuthInfo::builder()
                .subject("alice")
                .scopes(ScopeSet::parse("notes:read").unwrap())
                .build())
        } else {
            Err(VerifyErrorKind::Inactive.into())
        }
    }
}

/// Serves `/mcp` (tool scopes: `add_note` needs `notes:write`) and `/whoami` (the `Auth`
/// extractor) behind an optional bearer layer, for the resource `http://127.0.0.1:PORT/mcp`.
async fn serve(optional: bool) -> (u16, ProtectedResource) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let resource = ProtectedResource::builder(format!("http://127.0.0.1:{port}/mcp"))
        .authorization_server(format!("http://127.0.0.1:{port}"))
        .scopes_supported("notes:read".parse().unwrap())
        .build()
        .unwrap();
    let tools = ToolScopesLayer::new(resource.clone()).tool(
        "add_note",
        "notes:write"
            .parse::<mcp_auth_resource::ScopeSet>()
            .unwrap(),
    );
    let mut bearer = BearerAuthLayer::new(Reader, resource.clone());
    if optional {
        bearer = bearer.optional();
    }
    let app = Router::new()
        .route("/mcp", post(|| async { "ran" }).layer(tools))
        .route(
            "/whoami",
            post(|auth: Auth| async move { auth.subject().unwrap_or("").to_owned() }),
        )
        .layer(bearer)
        .merge(resource.metadata_router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, resource)
}

/// A request to `127.0.0.1:port` that names `host` in its `Host` header (what a client that
/// was given `http://{host}/mcp` sends; this machine may not resolve `localhost` to `::1`).
async fn send(
    port: u16,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let http = reqwest::Client::new();
    let mut request = http
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn metadata(port: u16, host: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
        ))
        .header("host", host)
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn add_note() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_note", "arguments": {}}})
}

#[tokio::test]
async fn metadata_and_challenges_use_the_loopback_name_the_client_used() {
    let (port, resource) = serve(false).await;
    for name in ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"] {
        let host = format!("{name}:{port}");
        let spelled = name.to_ascii_lowercase();
        let mcp = format!("http://{spelled}:{port}/mcp");
        let metadata_url =
            format!("http://{spelled}:{port}/.well-known/oauth-protected-resource/mcp");

        let document = metadata(port, &host).await;
        assert_eq!(document["resource"], mcp.as_str(), "{name}");
        // The authorization server keeps its one issuer.
        assert_eq!(
            document["authorization_servers"],
            json!([format!("http://127.0.0.1:{port}")])
        );

        let anonymous = send(port, &host, "/mcp", None, add_note()).await;
        assert_eq!(anonymous.status(), 401);
        assert_eq!(
            challenge(&anonymous),
            format!(r#"Bearer resource_metadata="{metadata_url}", scope="notes:read""#)
        );

        let bad = send(port, &host, "/mcp", Some("forged"), add_note()).await;
        assert_eq!(bad.status(), 401);
        assert!(challenge(&bad).contains(&format!(r#"resource_metadata="{metadata_url}""#)));

        // The tool-scope layer's step-up, behind the bearer layer.
        let reader = send(port, &host, "/mcp", Some("reader"), add_note()).await;
        assert_eq!(reader.status(), 403);
        assert_eq!(
            challenge(&reader),
            format!(
                r#"Bearer error="insufficient_scope", scope="notes:read notes:write", resource_metadata="{metadata_url}""#
            )
        );
    }
    // What the configured identifier says is unchanged.
    assert_eq!(
        resource.resource().as_str(),
        format!("http://127.0.0.1:{port}/mcp")
    );
}

#[tokio::test]
async fn anonymous_requests_behind_an_optional_layer_are_challenged_in_the_clients_spelling() {
    let (port, _) = serve(true).await;
    let host = format!("localhost:{port}");
    let metadata_url = format!("http://localhost:{port}/.well-known/oauth-protected-resource/mcp");
    // The tool-scope layer (no bearer context: anonymous) and the extractor each challenge.
    for path in ["/mcp", "/whoami"] {
        let response = send(port, &host, path, None, add_note()).await;
        assert_eq!(response.status(), 401, "{path}");
        assert!(
            challenge(&response).contains(&format!(r#"resource_metadata="{metadata_url}""#)),
            "{path}: {}",
            challenge(&response)
        );
    }
    let reader = send(port, &host, "/whoami", Some("reader"), json!({})).await;
    assert_eq!(reader.text().await.unwrap(), "alice");
}

#[tokio::test]
async fn other_hosts_and_ports_get_the_configured_identifier() {
    let (port, _) = serve(false).await;
    let canonical = format!("http://127.0.0.1:{port}/mcp");
    let canonical_metadata =
        format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
        format!("127.0.0.2:{port}"),
        "not a host".to_owned(),
    ] {
        let document = metadata(port, &host).await;
        assert_eq!(document["resource"], canonical.as_str(), "{host}");
        let anonymous = send(port, &host, "/mcp", None, add_note()).await;
        assert!(
            challenge(&anonymous).contains(&format!(r#"resource_metadata="{canonical_metadata}""#)),
            "{host}"
        );
    }
}

#[test]
fn a_public_resource_has_no_loopback_views() {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap();
    let request = http::Request::get("/mcp")
        .header("host", "localhost")
        .body(())
        .unwrap();
    let seen = resource.as_addressed(request.uri(), request.headers());
    assert_eq!(seen.resource().as_str(), "https://mcp.example.com/mcp");
}
