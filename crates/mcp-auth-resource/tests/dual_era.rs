//! The MCP layers serving both protocol eras over real HTTP on loopback: MCP 2026-07-28 (no
//! sessions; `Mcp-Method` / `Mcp-Name` headers checked against the body, HTTP 400 with JSON-RPC
//! `-32020` on a mismatch) and 2025-11-25 (sessions bound to their owner, no such headers), with
//! `offline_access` kept out of the metadata and the challenges, and one step-up challenge naming
//! every scope a call needs.
//!
//! The stack is the one the crate documents: `BearerAuthLayer` (a `JwtVerifier` on a fake IdP,
//! scope floor `mcp:tools`) → `SessionBindingLayer` → `ToolScopesLayer` → a fake dual-era MCP
//! server that records every call it runs.
#![cfg(all(feature = "mcp", feature = "jwt", feature = "remote", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::Router;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use mcp_auth_resource::{
    BearerAuthLayer, JwtVerifier, ProtectedResource, SessionBindingLayer, ToolScopesLayer,
    mcp::ToolScopesBody,
};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use support::FakeIdp;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// What the fake MCP server ran: one entry per request it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    name: Option<String>,
    session: Option<String>,
}

/// A dual-era MCP server stand-in. Legacy: `initialize` without a session opens `sess-N`, a known
/// session answers, an unknown one gets 404. Modern: answers every request; a session id reaching
/// it would be a bug in front of it, answered 500.
#[derive(Clone, Default)]
struct FakeMcp {
    seen: Arc<Mutex<Vec<Seen>>>,
    sessions: Arc<Mutex<Vec<String>>>,
    minted: Arc<AtomicUsize>,
}

impl FakeMcp {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn ran(&self, tool: &str) -> bool {
        self.seen()
            .iter()
            .any(|s| s.method == "tools/call" && s.name.as_deref() == Some(tool))
    }

    async fn handle(
        self,
        req: Request<ToolScopesBody<axum::body::Body>>,
    ) -> Response<BoxBody<Bytes, Infallible>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let session = parts
            .headers
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let modern = parts
            .headers
            .get("mcp-protocol-version")
            .is_some_and(|v| v == MODERN);
        let method = message["method"].as_str().unwrap_or_default().to_owned();
        self.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            name: message["params"]["name"].as_str().map(str::to_owned),
            session: session.clone(),
        });
        let reply = |status: StatusCode| {
            let mut response = Response::new(BoxBody::new(Full::new(Bytes::from(
                json!({"jsonrpc": "2.0", "id": message["id"], "result": {}}).to_string(),
            ))));
            *response.status_mut() = status;
            response
        };
        if modern {
            return reply(if session.is_some() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            });
        }
        match session {
            None if method == "initialize" => {
                let id = format!("sess-{}", self.minted.fetch_add(1, Ordering::SeqCst));
                self.sessions.lock().unwrap().push(id.clone());
                let mut response = reply(StatusCode::OK);
                response
                    .headers_mut()
                    .insert("mcp-session-id", HeaderValue::from_str(&id).unwrap());
                response
            }
            None => reply(StatusCode::BAD_REQUEST),
            Some(id) if self.sessions.lock().unwrap().contains(&id) => reply(StatusCode::OK),
            Some(_) => reply(StatusCode::NOT_FOUND),
        }
    }
}

struct Stack {
    base: String,
    idp: FakeIdp,
    resource: ProtectedResource,
    server: FakeMcp,
    http: reqwest::Client,
}

/// The documented stack on loopback. `scopes_supported` is configured with `offline_access`,
/// which must never be published or challenged.
async fn stack() -> Stack {
    let idp = FakeIdp::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server(idp.issuer())
        .scopes_supported("mcp:tools offline_access".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(idp.issuer(), &resource)
        .discover_jwks()
        .clock(support::clock())
        .build()
        .unwrap();
    let tool_scopes = ToolScopesLayer::new(resource.clone())
        .tool(
            "admin_tool",
            "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        )
        .tool(
            "report",
            "files:read mcp:audit"
                .parse::<mcp_auth_resource::ScopeSet>()
                .unwrap(),
        )
        .tool(
            "café",
            "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        );
    let server = FakeMcp::default();
    let inner = server.clone();
    let mcp = ServiceBuilder::new()
        .layer(
            BearerAuthLayer::new(verifier, resource.clone())
                .required_scopes("mcp:tools".parse().unwrap()),
        )
        .layer(SessionBindingLayer::new())
        .layer(tool_scopes)
        .service_fn(move |req| {
            let server = inner.clone();
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        });
    let router = Router::new()
        .route_service("/mcp", mcp)
        .merge(resource.metadata_router());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Stack {
        base,
        idp,
        resource,
        server,
        http: reqwest::Client::new(),
    }
}

impl Stack {
    fn token(&self, sub: &str, scope: &str) -> String {
        self.idp
            .token(self.resource.resource().as_str())
            .claim("sub", sub)
            .claim("scope", scope)
            .sign(&self.idp.key("es-1"))
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    /// POSTs `body` with `token` and the given extra headers.
    async fn post(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/mcp", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap()
    }
}

/// A 2026-07-28 `tools/call` body (protocol version in `_meta`).
fn modern_call(id: u64, tool: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": tool, "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
}

fn modern_list(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/list",
        "params": { "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN } }
    })
}

fn legacy_call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    })
}

/// Asserts a `400` with the JSON-RPC `HeaderMismatch` error echoing `id`, and returns its message.
async fn assert_header_mismatch(response: reqwest::Response, id: Value) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], id);
    assert_eq!(body["error"]["code"], -32020);
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Header mismatch"), "{message}");
    message
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_mcp_name_naming_a_harmless_tool_over_a_privileged_call_is_400_and_the_tool_never_runs()
{
    let s = stack().await;
    // Whatever the token grants: without mcp:admin (a lying header must not turn the 403 into a
    // pass) and with it (the body is what runs, the header is what a gateway routed on).
    for scope in ["mcp:tools", "mcp:tools mcp:admin"] {
        let token = s.token("alice", scope);
        let response = s
            .post(
                Some(&token),
                &[
                    ("mcp-protocol-version", MODERN),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "whoami"),
                ],
                &modern_call(41, "admin_tool"),
            )
            .await;
        let message = assert_header_mismatch(response, json!(41)).await;
        assert!(message.contains("Mcp-Name"), "{message}");
    }
    // The same lie on a 2025-11-25 request that carries the header is refused too.
    let token = s.token("alice", "mcp:tools mcp:admin");
    let response = s
        .post(
            Some(&token),
            &[("mcp-protocol-version", LEGACY), ("mcp-name", "whoami")],
            &legacy_call(42, "admin_tool"),
        )
        .await;
    assert_header_mismatch(response, json!(42)).await;
    assert!(
        s.server.seen().is_empty(),
        "the MCP server ran {:?}",
        s.server.seen()
    );
}

#[tokio::test]
async fn a_2026_request_without_mcp_method_is_400() {
    let s = stack().await;
    let token = s.token("alice", "mcp:tools mcp:admin");
    for body in [modern_list(1), modern_call(1, "admin_tool")] {
        let response = s
            .post(
                Some(&token),
                &[("mcp-protocol-version", MODERN), ("mcp-name", "admin_tool")],
                &body,
            )
            .await;
        let message = assert_header_mismatch(response, json!(1)).await;
        assert_eq!(
            message,
            "Header mismatch: the Mcp-Method header is required"
        );
    }
    // A 2026-07-28 tools/call without Mcp-Name is refused as well.
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
            ],
            &modern_call(2, "admin_tool"),
        )
        .await;
    let message = assert_header_mismatch(response, json!(2)).await;
    assert!(message.contains("Mcp-Name header is required"), "{message}");
    assert!(s.server.seen().is_empty());
}

#[tokio::test]
async fn mcp_method_disagreeing_with_the_body_method_is_400() {
    let s = stack().await;
    let token = s.token("alice", "mcp:tools");
    // A harmless method in the header over a privileged call in the body: 400, not 403.
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
            &modern_call(3, "admin_tool"),
        )
        .await;
    let message = assert_header_mismatch(response, json!(3)).await;
    assert!(message.contains("Mcp-Method"), "{message}");
    // The other way round, and with a different case: values are case-sensitive.
    for (method, name) in [("tools/call", Some("admin_tool")), ("Tools/List", None)] {
        let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
        if let Some(name) = name {
            headers.push(("mcp-name", name));
        }
        let response = s.post(Some(&token), &headers, &modern_list(4)).await;
        assert_header_mismatch(response, json!(4)).await;
    }
    assert!(s.server.seen().is_empty());
}

#[tokio::test]
async fn truthful_2026_headers_pass_and_the_body_still_decides_the_scopes() {
    let s = stack().await;
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "admin_tool"),
    ];
    let tools = s.token("alice", "mcp:tools");
    let response = s
        .post(Some(&tools), &headers, &modern_call(5, "admin_tool"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    assert!(!s.server.ran("admin_tool"));

    let admin = s.token("alice", "mcp:tools mcp:admin");
    let response = s
        .post(Some(&admin), &headers, &modern_call(6, "admin_tool"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(s.server.ran("admin_tool"));

    // A name outside plain ASCII travels Base64-encoded and is compared after decoding.
    let response = s
        .post(
            Some(&admin),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?Y2Fmw6k=?="),
            ],
            &modern_call(7, "café"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(s.server.ran("café"));

    // Anonymous (no token) never reaches the header check: the bearer layer answers first.
    let response = s.post(None, &headers, &modern_call(8, "admin_tool")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_body_that_speaks_2026_cannot_pass_as_2025_by_its_header() {
    let s = stack().await;
    let token = s.token("alice", "mcp:tools mcp:admin");
    // No standard headers at all, and a 2025-11-25 (or no) version header: the body's _meta
    // says 2026-07-28, so the headers were required and are checked.
    for version in [Some(LEGACY), None] {
        let headers: Vec<(&str, &str)> = version
            .map(|v| vec![("mcp-protocol-version", v)])
            .unwrap_or_default();
        let response = s
            .post(Some(&token), &headers, &modern_call(9, "admin_tool"))
            .await;
        let message = assert_header_mismatch(response, json!(9)).await;
        assert!(message.contains("MCP-Protocol-Version"), "{message}");
    }
    assert!(s.server.seen().is_empty());
}

#[tokio::test]
async fn batch_bodies_are_400_in_2026_and_need_the_union_of_their_calls_in_2025() {
    let s = stack().await;
    let token = s.token("alice", "mcp:tools");
    let batch = json!([modern_call(10, "admin_tool"), modern_list(11)]);
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "admin_tool"),
            ],
            &batch,
        )
        .await;
    let message = assert_header_mismatch(response, Value::Null).await;
    assert!(message.contains("batch"), "{message}");

    // A 2025-11-25 batch without the headers is checked as before: one 403 naming every scope
    // of every call, and the bearer layer's floor.
    let batch = json!([legacy_call(12, "admin_tool"), legacy_call(13, "report")]);
    let response = s
        .post(Some(&token), &[("mcp-protocol-version", LEGACY)], &batch)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin files:read mcp:audit", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    assert!(s.server.seen().is_empty());
}

#[tokio::test]
async fn one_step_up_names_every_scope_the_call_needs() {
    let s = stack().await;
    // `report` needs two scopes; the token has the floor and one of them.
    let token = s.token("alice", "mcp:tools files:read");
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "report"),
            ],
            &modern_call(14, "report"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools files:read mcp:audit", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    // Re-authorized for exactly the challenged set, the call passes at once.
    let token = s.token("alice", "mcp:tools files:read mcp:audit");
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "report"),
            ],
            &modern_call(15, "report"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_2025_session_keeps_its_binding_and_a_stale_session_id_on_a_2026_request_is_ignored() {
    let s = stack().await;
    let alice = s.token("alice", "mcp:tools");
    let bob = s.token("bob", "mcp:tools");

    // 2025-11-25, exactly as before: Alice's session is hers.
    let response = s.post(Some(&alice), &[], &initialize()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let sid = session.as_str();
    let legacy = [("mcp-protocol-version", LEGACY), ("mcp-session-id", sid)];
    let response = s
        .post(Some(&alice), &legacy, &legacy_call(20, "whoami"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = s
        .post(Some(&bob), &legacy, &legacy_call(21, "whoami"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // 2026-07-28 with Alice's stale session id: Bob passes (no session to check, not an
    // error), and the server never sees the id.
    let modern = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/list"),
        ("mcp-session-id", sid),
    ];
    let seen_before = s.server.seen().len();
    let response = s.post(Some(&bob), &modern, &modern_list(22)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = s.server.seen();
    assert_eq!(seen.len(), seen_before + 1);
    assert_eq!(
        seen.last().unwrap(),
        &Seen {
            method: "tools/list".to_owned(),
            name: None,
            session: None
        }
    );

    // Still Alice's session for 2025-11-25 requests, and still not Bob's.
    let response = s
        .post(Some(&alice), &legacy, &legacy_call(23, "whoami"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = s
        .post(Some(&bob), &legacy, &legacy_call(24, "whoami"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn offline_access_is_never_published_nor_challenged() {
    let s = stack().await;
    // Configured in scopes_supported, not published.
    let metadata = s.http.get(s.metadata_url()).send().await.unwrap();
    assert_eq!(metadata.status(), StatusCode::OK);
    let metadata: Value = serde_json::from_slice(&metadata.bytes().await.unwrap()).unwrap();
    assert_eq!(metadata["scopes_supported"], json!(["mcp:tools"]));

    // The 401 challenge (challenge scopes default to scopes_supported) leaves it out.
    let response = s.post(None, &[], &initialize()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer resource_metadata="{}", scope="mcp:tools""#,
            s.metadata_url()
        )
    );

    // A 403 to a token that holds offline_access would keep it as a granted scope; it does not.
    let token = s.token("alice", "offline_access mcp:tools");
    let response = s
        .post(
            Some(&token),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "admin_tool"),
            ],
            &modern_call(30, "admin_tool"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let header = challenge(&response);
    assert!(!header.contains("offline_access"), "{header}");
    assert_eq!(
        header,
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    // The bearer floor's own 403 leaves it out too.
    let token = s.token("alice", "offline_access files:read");
    let response = s.post(Some(&token), &[], &initialize()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let header = challenge(&response);
    assert!(!header.contains("offline_access"), "{header}");
    assert!(header.contains(r#"scope="mcp:tools""#), "{header}");
}
