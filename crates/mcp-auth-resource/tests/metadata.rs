//! The RFC 9728 metadata router.
#![cfg(feature = "axum")]
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::State,
    response::Response,
    routing::{get, post},
};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mcp_auth_resource::{
    AuthInfo, BearerAuthLayer, ProtectedResource, ROOT_METADATA_PATH, TokenVerifier, VerifyError,
    VerifyErrorKind,
};
use tower::ServiceExt as _;

const PATH: &str = "/.well-known/oauth-protected-resource/mcp";

fn resource() -> ProtectedResource {
    ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().unwrap())
        .resource_name("Test server")
        .build()
        .unwrap()
}

async fn send(app: Router, method: Method, path: &str) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ORIGIN, "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    app.oneshot(request).await.unwrap()
}

async fn body(response: Response) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

fn headers(response: &Response) -> Vec<(String, String)> {
    let mut v: Vec<_> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn get_serves_the_precomputed_document_at_the_path_aware_url() {
    let resource = resource();
    let response = send(resource.metadata_router(), Method::GET, PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        headers(&response),
        pairs(&[
            ("access-control-allow-origin", "*"),
            ("cache-control", "public, max-age=3600"),
            (
                "content-length",
                &resource.metadata_json().len().to_string()
            ),
            ("content-type", "application/json"),
        ])
    );
    assert_eq!(&body(response).await, resource.metadata_json());
    assert_eq!(
        resource.metadata_json().as_ref(),
        br#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"],"resource_name":"Test server"}"#
            .as_slice(),
        "the document itself (pinned so a serialisation change is noticed)"
    );
}

#[tokio::test]
async fn the_root_well_known_url_serves_the_same_document() {
    let resource = resource();
    assert!(resource.serves_root_metadata());
    let response = send(resource.metadata_router(), Method::GET, ROOT_METADATA_PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(&body(response).await, resource.metadata_json());
}

#[tokio::test]
async fn the_root_url_is_not_served_when_turned_off() {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .serve_root_metadata(false)
        .build()
        .unwrap();
    let router = resource.metadata_router::<()>();
    let response = send(router.clone(), Method::GET, ROOT_METADATA_PATH).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = send(router, Method::GET, PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_resource_without_a_path_is_served_at_the_root_once() {
    let resource = ProtectedResource::builder("https://mcp.example.com")
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap();
    assert_eq!(resource.metadata_path(), ROOT_METADATA_PATH);
    let response = send(resource.metadata_router(), Method::GET, ROOT_METADATA_PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&body(response).await, resource.metadata_json());
}

#[tokio::test]
async fn paths_that_look_like_route_patterns_are_matched_literally() {
    let resource = ProtectedResource::builder("https://mcp.example.com/:tenant/*rest")
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap();
    let path = resource.metadata_path().to_owned();
    let router = resource.metadata_router::<()>();
    let response = send(router.clone(), Method::GET, &path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let response = send(
        router,
        Method::GET,
        "/.well-known/oauth-protected-resource/acme/anything",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_answers_with_the_headers_and_no_body() {
    let response = send(resource().metadata_router(), Method::HEAD, PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(body(response).await.is_empty());
}

#[tokio::test]
async fn options_preflight_is_answered_200_with_cors_headers_and_no_body() {
    for path in [PATH, ROOT_METADATA_PATH] {
        let request = Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "mcp-protocol-version",
            )
            .body(Body::empty())
            .unwrap();
        let response = resource()
            .metadata_router::<()>()
            .oneshot(request)
            .await
            .unwrap();
        // 200, not 204: axum adds `Content-Length: 0`, which a 204 must not carry.
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            headers(&response),
            pairs(&[
                ("access-control-allow-headers", "mcp-protocol-version"),
                ("access-control-allow-methods", "GET,HEAD,OPTIONS"),
                ("access-control-allow-origin", "*"),
                ("access-control-max-age", "86400"),
                ("content-length", "0"),
            ])
        );
        assert!(body(response).await.is_empty());
    }
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let response = send(resource().metadata_router(), method.clone(), PATH).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD,OPTIONS");
    }
}

#[tokio::test]
async fn cache_control_follows_the_configured_max_age() {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .metadata_max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let response = send(resource.metadata_router(), Method::GET, PATH).await;
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=60"
    );
}

#[derive(Debug)]
struct RejectAll;

impl TokenVerifier for RejectAll {
    async fn verify(&self, _: &str) -> Result<AuthInfo, VerifyError> {
        Err(VerifyErrorKind::Inactive.into())
    }
}

#[tokio::test]
async fn merged_outside_the_bearer_layer_the_document_needs_no_token() {
    #[derive(Clone)]
    struct AppState(&'static str);

    let resource = resource();
    let app: Router = Router::new()
        .route("/mcp", post(|State(s): State<AppState>| async move { s.0 }))
        .route("/other", get(|| async { "other" }))
        .layer(BearerAuthLayer::new(RejectAll, resource.clone()))
        .merge(resource.metadata_router())
        .with_state(AppState("state"));

    let response = send(app.clone(), Method::POST, "/mcp").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = send(app.clone(), Method::GET, "/other").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    for (method, status) in [
        (Method::GET, StatusCode::OK),
        (Method::HEAD, StatusCode::OK),
        (Method::OPTIONS, StatusCode::OK),
    ] {
        for path in [PATH, ROOT_METADATA_PATH] {
            let response = send(app.clone(), method.clone(), path).await;
            assert_eq!(response.status(), status, "{method} {path}");
            assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        }
    }
}
