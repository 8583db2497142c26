//! `ToolScopesLayer`: per-tool scopes on `tools/call`, checked before the MCP server runs.
#![cfg(feature = "mcp")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on broken fixtures"
)]

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use mcp_auth_core::ScopeSet;
use mcp_auth_resource::{
    AuthInfo, ConfigError, HeaderMismatchKind, ProtectedResource, ToolScopes, ToolScopesLayer,
    ToolScopesRejection, ToolScopesRejectionKind, mcp::ResponseFuture, mcp::ToolScopesBody,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

fn resource() -> ProtectedResource {
    ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap()
}

fn layer() -> ToolScopesLayer {
    ToolScopesLayer::new(resource())
        .tool(
            "admin_tool",
            "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        )
        .tool(
            "report",
            "files:read".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        )
}

fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

fn full(data: impl Into<Bytes>) -> Full<Bytes> {
    Full::new(data.into())
}

fn post<B>(body: B) -> Request<B> {
    Request::post("/mcp")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

/// What the inner service received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
    marker: Option<&'static str>,
}

/// Sends `req` through `layer` to an inner service that records what it gets, with an `AuthInfo`
/// granting `grant` inserted first (none when `grant` is `None`, as for an anonymous request).
async fn send<B>(
    layer: ToolScopesLayer,
    grant: Option<&str>,
    mut req: Request<B>,
) -> (Response<Full<Bytes>>, Option<Seen>)
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    if let Some(grant) = grant {
        let info = AuthInfo::builder()
            .subject("user-1")
            .scopes(grant.parse().unwrap())
            .build();
        req.extensions_mut().insert(info);
    }
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: Request<ToolScopesBody<B>>| {
        let record = Arc::clone(&record);
        async move {
            let (parts, body) = req.into_parts();
            let collected = body.collect().await.ok().expect("inner body reads");
            *record.lock().unwrap() = Some(Seen {
                method: parts.method,
                headers: parts.headers,
                trailers: collected.trailers().cloned(),
                body: collected.to_bytes(),
                marker: parts.extensions.get::<&'static str>().copied(),
            });
            Ok::<_, Infallible>(Response::new(full("from the MCP server")))
        }
    });
    let response = layer.layer(inner).oneshot(req).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (response, seen)
}

fn challenge(response: &Response<Full<Bytes>>) -> &str {
    response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
}

fn rejection_kind(response: &Response<Full<Bytes>>) -> ToolScopesRejectionKind {
    response
        .extensions()
        .get::<ToolScopesRejection>()
        .expect("a rejection in the extensions")
        .kind()
}

async fn body_of(response: Response<Full<Bytes>>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_call_of_a_scoped_tool_with_the_scope_reaches_the_server() {
    let body = call("admin_tool");
    let (response, seen) = send(
        layer(),
        Some("mcp:tools mcp:admin"),
        post(full(body.clone())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_of(response).await, "from the MCP server");
    assert_eq!(seen.unwrap().body, body);
}

#[tokio::test]
async fn a_call_of_a_scoped_tool_without_the_scope_gets_403_with_a_step_up_challenge() {
    let (response, seen) = send(layer(), Some("mcp:tools"), post(full(call("admin_tool")))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{PRM}""#
        )
    );
    let rejection = response.extensions().get::<ToolScopesRejection>().unwrap();
    assert_eq!(rejection.kind(), ToolScopesRejectionKind::InsufficientScope);
    assert_eq!(rejection.required_scopes().to_string(), "mcp:admin");
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    assert!(body_of(response).await.is_empty());
    assert!(seen.is_none(), "the MCP server must not see the call");
}

#[tokio::test]
async fn the_step_up_challenge_keeps_granted_scopes_that_are_still_relevant() {
    // `openid` is neither supported by the resource nor required: left out. `files:read` is
    // required by the batch and already granted: kept.
    let batch = format!("[{},{}]", call("report"), call("admin_tool"));
    let (response, _) = send(
        layer(),
        Some("openid files:read mcp:tools"),
        post(full(batch)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="files:read mcp:tools mcp:admin", resource_metadata="{PRM}""#
        )
    );
}

#[tokio::test]
async fn an_anonymous_call_of_a_scoped_tool_gets_401_with_the_missing_token_challenge() {
    let (response, seen) = send(layer(), None, post(full(call("admin_tool")))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools""#)
    );
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        resource().missing_token_challenge()
    );
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::MissingToken
    );
    assert!(seen.is_none());
}

#[tokio::test]
async fn an_anonymous_call_of_an_unscoped_tool_passes() {
    let (response, seen) = send(layer(), None, post(full(call("whoami")))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.is_some());
}

#[tokio::test]
async fn tool_names_match_exactly() {
    for name in [
        "Admin_tool",
        "admin_tool ",
        " admin_tool",
        "admin_tool\\u0000",
    ] {
        let (response, _) = send(layer(), Some("mcp:tools"), post(full(call(name)))).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{name:?} is another tool"
        );
    }
    // JSON escapes are decoded first, as the MCP server decodes them.
    let (response, _) = send(
        layer(),
        Some("mcp:tools"),
        post(full(call("admin\\u005ftool"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn default_scopes_apply_to_unmapped_tools_and_tool_scopes_replace_them() {
    let layer = layer().default_scopes("mcp:tools".parse::<mcp_auth_resource::ScopeSet>().unwrap());
    let (response, _) = send(
        layer.clone(),
        Some("files:read"),
        post(full(call("whoami"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response
            .extensions()
            .get::<ToolScopesRejection>()
            .unwrap()
            .required_scopes()
            .to_string(),
        "mcp:tools"
    );
    // `report` needs `files:read` only: its scopes replace the default.
    let (response, _) = send(layer, Some("files:read"), post(full(call("report")))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_tool_mapped_to_no_scope_is_public_even_with_a_default() {
    let layer = layer()
        .default_scopes("mcp:tools".parse::<mcp_auth_resource::ScopeSet>().unwrap())
        .tool("ping", "".parse::<mcp_auth_resource::ScopeSet>().unwrap());
    let (response, _) = send(layer, None, post(full(call("ping")))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn mapping_a_tool_twice_adds_scopes_and_never_weakens() {
    let layer = layer()
        .tool(
            "admin_tool",
            "".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        )
        .tool(
            "admin_tool",
            "audit".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        );
    assert_eq!(
        layer.tool_scopes("admin_tool").unwrap().to_string(),
        "mcp:admin audit"
    );
    let (response, _) = send(layer, Some("mcp:admin"), post(full(call("admin_tool")))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_batch_needs_the_union_of_its_calls() {
    let batch = format!(
        r#"[{},{{"jsonrpc":"2.0","id":2,"method":"tools/list"}},{}]"#,
        call("report"),
        call("admin_tool")
    );
    assert_eq!(
        layer().required_scopes(batch.as_bytes()).to_string(),
        "files:read mcp:admin"
    );
    for grant in ["files:read", "mcp:admin"] {
        let (response, seen) = send(layer(), Some(grant), post(full(batch.clone()))).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{grant} alone is not enough"
        );
        assert!(seen.is_none(), "a batch is refused as a whole");
    }
    let (response, _) = send(layer(), Some("files:read mcp:admin"), post(full(batch))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn duplicate_keys_need_the_strictest_set() {
    let strictest = "mcp:admin files:read";
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"admin_tool"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","name":"whoami"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"admin_tool"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"},"params":{"name":"admin_tool"}}"#,
    ] {
        assert_eq!(
            layer().required_scopes(body.as_bytes()).to_string(),
            strictest,
            "{body}"
        );
        let (response, seen) = send(layer(), Some("mcp:tools mcp:admin"), post(full(body))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
        assert!(seen.is_none());
    }
}

#[tokio::test]
async fn serde_json_private_keys_need_the_strictest_set() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"$serde_json::private::RawValue":"{\"name\":\"admin_tool\"}"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","$serde_json::private::RawValue":"{\"name\":\"admin_tool\"}"}}"#,
        r#"{"jsonrpc":"2.0","id":{"$serde_json::private::Number":"1"},"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"a":[{"$serde_json::private::RawValue":"1"}]}}}"#,
    ] {
        assert_eq!(
            layer().required_scopes(body.as_bytes()),
            *layer().strictest_scopes(),
            "{body}"
        );
        let (response, _) = send(layer(), Some("mcp:tools"), post(full(body))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    }
}

#[tokio::test]
async fn unparseable_or_ambiguous_bodies_need_the_strictest_set() {
    for body in [
        "",
        "{",
        "not json",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}} trailing"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":42}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":["tools/call"],"params":{"name":"whoami"}}"#,
        r#""tools/call""#,
        r#"[1]"#,
    ] {
        assert_eq!(
            layer().required_scopes(body.as_bytes()).to_string(),
            "mcp:admin files:read",
            "{body:?}"
        );
        let (response, _) = send(layer(), Some("mcp:tools mcp:admin"), post(full(body))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body:?}");
        assert_eq!(
            challenge(&response),
            format!(
                r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin files:read", resource_metadata="{PRM}""#
            )
        );
        let (response, _) = send(layer(), None, post(full(body))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body:?}");
    }
    // With every scope, even an ambiguous body reaches the server (which then answers it).
    let (response, _) = send(layer(), Some("mcp:admin files:read"), post(full("{"))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_content_type_does_not_decide_whether_a_body_is_checked() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = Request::post("/mcp");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(full(call("admin_tool"))).unwrap();
        let (response, _) = send(layer(), Some("mcp:tools"), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{content_type:?}");
    }
}

#[tokio::test]
async fn other_methods_pass_through() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"admin_tool","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":7,"result":{"name":"admin_tool"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"admin_tool"}}"#,
    ] {
        let (response, seen) = send(layer(), None, post(full(body))).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        assert_eq!(seen.unwrap().body, body);
    }
}

#[tokio::test]
async fn the_body_is_replayed_byte_for_byte_with_head_extensions_and_trailers() {
    // Odd whitespace, escapes and key order survive untouched; chunks are re-joined.
    let text = "  {\"params\" : {\"arguments\":{\"q\":\"\\u00e9\\n\"}, \"name\":\"admin_tool\"},\n\"method\":\"tools/call\",\"id\":1,\"jsonrpc\":\"2.0\"}\r\n";
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(7).collect();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    let mut request = post(Chunked::new(&chunks, Some(trailers.clone())));
    request
        .headers_mut()
        .insert("x-request-id", "42".parse().unwrap());
    request.extensions_mut().insert("marker");
    let (response, seen) = send(layer(), Some("mcp:admin"), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.unwrap();
    assert_eq!(seen.body, text.as_bytes());
    assert_eq!(seen.trailers, Some(trailers));
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.headers["x-request-id"], "42");
    assert_eq!(seen.marker, Some("marker"));
}

#[tokio::test]
async fn a_body_declared_over_the_limit_gets_413_without_being_read() {
    let layer = layer().max_body_size(4096).unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let mut request = post(Untouched::new(&polled));
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, "4097".parse().unwrap());
    let (response, seen) = send(layer, Some("mcp:admin"), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::BodyTooLarge
    );
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert!(seen.is_none());
    assert!(!polled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_body_that_knows_its_length_over_the_limit_gets_413_without_being_read() {
    let layer = layer().max_body_size(4096).unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    // No header: the body's own exact length is the declaration.
    let request = post(Untouched::exact(&polled, 4097));
    let (response, seen) = send(layer, Some("mcp:admin"), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::BodyTooLarge
    );
    assert!(seen.is_none());
    assert!(!polled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_body_that_knows_its_length_is_measured_by_it_not_by_the_header() {
    // In-process only (hyper derives the one from the other): an exact 100 bytes under a
    // `Content-Length` over the limit is read, not refused; reading is bounded by the limit
    // anyway.
    let layer = layer().max_body_size(4096).unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let mut request = post(Untouched::exact(&polled, 100));
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, "4097".parse().unwrap());
    // The layer reads (the body never ends): still waiting, not refused.
    let sent = tokio::time::timeout(
        Duration::from_millis(200),
        send(layer, Some("mcp:admin"), request),
    )
    .await;
    assert!(sent.is_err(), "refused without reading");
    assert!(polled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_gets_413() {
    let layer = layer().max_body_size(4096).unwrap();
    // No length declared: chunks of 1000 bytes until the limit is crossed.
    let chunk = vec![b' '; 1000];
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 5).collect();
    let (response, seen) = send(
        layer.clone(),
        Some("mcp:admin"),
        post(Chunked::new(&chunks, None)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(seen.is_none());

    // Exactly at the limit is fine.
    let mut body = call("admin_tool").into_bytes();
    body.resize(4096, b' ');
    let (response, seen) = send(layer, Some("mcp:admin"), post(full(body.clone()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.unwrap().body, body);
}

#[tokio::test]
async fn a_body_that_fails_to_read_gets_400() {
    let (response, seen) = send(layer(), Some("mcp:admin"), post(Failing)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::BodyReadFailed
    );
    assert!(seen.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_completes_gets_408_after_the_timeout() {
    let layer = layer().body_timeout(Duration::from_secs(2)).unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let started = tokio::time::Instant::now();
    let (response, seen) = send(layer, Some("mcp:admin"), post(Untouched::new(&polled))).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::BodyTimeout
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert!(polled.load(Ordering::SeqCst));
    assert!(seen.is_none());
}

#[tokio::test]
async fn requests_other_than_post_pass_without_their_body_being_read() {
    for method in [
        Method::GET,
        Method::DELETE,
        Method::PUT,
        Method::HEAD,
        Method::OPTIONS,
    ] {
        let polled = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let inner = tower::service_fn(move |_req: Request<ToolScopesBody<Untouched>>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())) }
        });
        let request = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .body(Untouched::new(&polled))
            .unwrap();
        // Anonymous: a GET stream is the bearer layer's business, not this one's.
        let response = layer().layer(inner).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!polled.load(Ordering::SeqCst), "{method} body was read");
    }
}

#[tokio::test]
async fn with_no_scope_configured_posts_pass_without_their_body_being_read() {
    let polled = Arc::new(AtomicBool::new(false));
    let inner = tower::service_fn(|_req: Request<ToolScopesBody<Untouched>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let layer = ToolScopesLayer::new(resource())
        .tool("ping", "".parse::<mcp_auth_resource::ScopeSet>().unwrap());
    let response = layer
        .layer(inner)
        .oneshot(post(Untouched::new(&polled)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!polled.load(Ordering::SeqCst));
}

#[tokio::test]
async fn with_no_scope_configured_the_2026_headers_are_left_to_the_mcp_server() {
    // Rule 1 pinned: the layer reads no body, so it cannot check the headers against it.
    let layer = ToolScopesLayer::new(resource())
        .tool("ping", "".parse::<mcp_auth_resource::ScopeSet>().unwrap());
    let mut request = post(full(call("admin_tool")));
    for (name, value) in [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ] {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (response, seen) = send(layer, None, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.is_some());
}

#[tokio::test]
async fn a_header_mismatch_is_answered_before_the_scope_check_with_a_json_rpc_error() {
    let mut request = post(full(call("admin_tool")));
    for (name, value) in [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ] {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    // Anonymous: the scope check would say 401; the header check answers first.
    let (response, seen) = send(layer(), None, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        rejection_kind(&response),
        ToolScopesRejectionKind::HeaderMismatch(HeaderMismatchKind::NameMismatch)
    );
    let rejection = response.extensions().get::<ToolScopesRejection>().unwrap();
    assert!(rejection.required_scopes().is_empty());
    assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        rejection.to_string(),
        HeaderMismatchKind::NameMismatch.message()
    );
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_slice(&body_of(response).await).unwrap();
    assert_eq!(
        body,
        json!({
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": HeaderMismatchKind::CODE, "message": HeaderMismatchKind::NameMismatch.message()}
        })
    );
    assert!(seen.is_none());
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn works_as_an_axum_router_layer() {
    use axum::{Router, body::Body, routing};
    use tower::util::MapRequestLayer;

    // The last layer added runs first: the AuthInfo is in place before ToolScopes runs.
    let app = Router::new()
        .route("/mcp", routing::post(|body: String| async move { body }))
        .layer(layer())
        .layer(MapRequestLayer::new(|mut req: Request<Body>| {
            let info = AuthInfo::builder()
                .scopes("mcp:tools".parse().unwrap())
                .build();
            req.extensions_mut().insert(info);
            req
        }));
    let response = app
        .clone()
        .oneshot(post(Body::from(call("admin_tool"))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app.oneshot(post(Body::from(call("whoami")))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(echoed, call("whoami"));
}

#[test]
fn configuration_is_checked_when_built() {
    assert!(matches!(
        "bad\"scope"
            .parse::<mcp_auth_resource::ScopeSet>()
            .map(|scopes| layer().tool("x", scopes))
            .map_err(ConfigError::from),
        Err(ConfigError::Scope(_))
    ));
    assert!(matches!(
        "a\\b"
            .parse::<mcp_auth_resource::ScopeSet>()
            .map(|scopes| layer().default_scopes(scopes))
            .map_err(ConfigError::from),
        Err(ConfigError::Scope(_))
    ));
    for size in [0, 4095, 64 * 1024 * 1024 + 1, usize::MAX] {
        assert!(
            matches!(
                layer().max_body_size(size),
                Err(ConfigError::OutOfRange { .. })
            ),
            "{size}"
        );
    }
    for size in [4096, 1 << 20, 64 * 1024 * 1024] {
        assert!(layer().max_body_size(size).is_ok(), "{size}");
    }
    for timeout in [Duration::ZERO, Duration::from_secs(301)] {
        assert!(matches!(
            layer().body_timeout(timeout),
            Err(ConfigError::OutOfRange { .. })
        ));
    }
    assert!(layer().body_timeout(Duration::from_millis(1)).is_ok());
    assert_eq!(
        layer().strictest_scopes().to_string(),
        "mcp:admin files:read"
    );
    assert_eq!(ToolScopesLayer::DEFAULT_MAX_BODY_SIZE, 1 << 20);
    assert_eq!(
        ToolScopesLayer::DEFAULT_BODY_TIMEOUT,
        Duration::from_secs(10)
    );
}

#[test]
fn services_and_futures_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    type Inner = tower::util::BoxCloneSyncService<
        Request<ToolScopesBody<Full<Bytes>>>,
        Response<Full<Bytes>>,
        Infallible,
    >;
    assert_send::<ToolScopes<Inner>>();
    assert_sync::<ToolScopes<Inner>>();
    assert_send::<ResponseFuture<Inner, Full<Bytes>>>();
    assert_send::<ToolScopesBody<Full<Bytes>>>();
    assert_sync::<ToolScopesLayer>();
}

#[test]
fn debug_output_never_shows_the_body() {
    let body = ToolScopesBody::new(Full::new(Bytes::from_static(b"secret")));
    assert!(!format!("{body:?}").contains("secret"));
    let _ = format!("{:?}", layer());
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}|name|method|params", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_classifier(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = layer().required_scopes(&bytes);
    }

    /// Any message whose top-level method is `tools/call` of a mapped tool, whatever else it holds
    /// (extra members, odd `id`s, nested junk, a batch around it), never classifies as "no scope
    /// needed": it needs at least the tool's scopes.
    #[test]
    fn a_call_of_a_mapped_tool_always_needs_its_scopes(
        tool in prop_oneof![Just("admin_tool"), Just("report")],
        id in json_value(),
        arguments in json_value(),
        extra in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
        params_extra in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
        neighbours in prop::collection::vec(json_value(), 0..3),
        batch in any::<bool>(),
    ) {
        let mut params = json!({ "name": tool, "arguments": arguments });
        for (k, v) in params_extra {
            if k != "name" { params[k] = v; }
        }
        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
        for (k, v) in extra {
            if k != "method" && k != "params" { message[k] = v; }
        }
        let body = if batch {
            let mut items = neighbours;
            items.push(message);
            Value::Array(items)
        } else {
            message
        };
        let layer = layer();
        let required = layer.required_scopes(body.to_string().as_bytes());
        let needed = layer.tool_scopes(tool).unwrap();
        prop_assert!(required.contains_all(needed), "{body} needs only {required}");
    }

    /// Whatever the body, the answer is either empty, a union of configured sets, or the
    /// strictest set: never a scope that was not configured.
    #[test]
    fn required_scopes_are_always_within_the_strictest_set(value in json_value()) {
        let layer = layer();
        let required: ScopeSet = layer.required_scopes(value.to_string().as_bytes());
        prop_assert!(layer.strictest_scopes().contains_all(&required));
    }
}

/// A body in several chunks, then optional trailers, with no declared length.
struct Chunked {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Chunked {
    fn new(chunks: &[&[u8]], trailers: Option<HeaderMap>) -> Self {
        Self {
            chunks: chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect(),
            trailers,
        }
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(match self.chunks.pop_front() {
            Some(chunk) => Some(Ok(Frame::data(chunk))),
            None => self.trailers.take().map(|t| Ok(Frame::trailers(t))),
        })
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A body that never yields, and records whether anyone polled it.
struct Untouched(Arc<AtomicBool>, Option<u64>);

impl Untouched {
    fn new(polled: &Arc<AtomicBool>) -> Self {
        Self(Arc::clone(polled), None)
    }

    /// The same body, saying it has exactly `len` bytes (as hyper's does for a
    /// `Content-Length`).
    fn exact(polled: &Arc<AtomicBool>, len: u64) -> Self {
        Self(Arc::clone(polled), Some(len))
    }
}

impl Body for Untouched {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Pending
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.1.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A body whose first frame is an error.
struct Failing;

impl Body for Failing {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
    }
}
