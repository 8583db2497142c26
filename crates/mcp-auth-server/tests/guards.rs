//! The router's tower-http guards over real HTTP: the body limit set by `max_body_size` answers
//! in each endpoint's own shape (413 `invalid_request` JSON with CORS at `/token`, an error page
//! at `/authorize`), for a declared `Content-Length` and for a chunked body alike; the builder
//! refuses limits out of range; CORS preflights come from `CorsLayer`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::start;
use mcp_auth_server::{AuthorizationServer, ConfigError};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const LIMIT: usize = 2048;

/// A raw HTTP/1.1 POST with a chunked body (no `Content-Length`): the status line, headers and
/// body of the answer.
async fn post_chunked(base: &str, path: &str, content_type: &str, body: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(512) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413_invalid_request_at_the_token_endpoint() {
    let h = start(|b| b.max_body_size(LIMIT)).await;
    let padding = "x".repeat(LIMIT * 2);
    let form = [("grant_type", "refresh_token"), ("padding", &padding)];

    // Declared with Content-Length: refused before the body is read.
    let response = h
        .http
        .post(format!("{}/token", h.base))
        .header("origin", "https://app.example.com")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
    assert_eq!(error["error_description"], "the request body is too large");

    // Chunked: met while the handler reads it, the same answer.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = post_chunked(
        &h.base,
        "/token",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");

    // Under the limit the endpoint reads the form and answers as usual (no such client).
    let response = h
        .http
        .post(format!("{}/token", h.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", "nobody"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_client");
}

#[tokio::test]
async fn a_form_over_the_limit_at_authorize_gets_the_error_page() {
    let h = start(|b| b.max_body_size(LIMIT)).await;
    let padding = "x".repeat(LIMIT * 2);
    let response = h
        .http
        .post(format!("{}/authorize", h.base))
        .form(&[("transaction", "t"), ("padding", &padding)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The form was too large.")
    );
}

#[tokio::test]
async fn preflights_are_answered_by_the_cors_layer_and_authorize_has_no_cors() {
    let h = start(|b| b).await;
    for path in [
        "/token",
        "/revoke",
        "/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = h
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", h.base))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        assert_eq!(headers["access-control-allow-methods"], "GET,POST,OPTIONS");
        assert_eq!(
            headers["access-control-allow-headers"],
            "authorization,content-type,mcp-protocol-version"
        );
        assert_eq!(headers["access-control-max-age"], "86400");
        assert!(headers.get("access-control-allow-credentials").is_none());
    }
    let response = h
        .http
        .get(format!("{}/authorize", h.base))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn the_builder_refuses_limits_out_of_range() {
    let build = |b: mcp_auth_server::AuthorizationServerBuilder| async move {
        b.resource("http://127.0.0.1:9/mcp").build().await
    };
    let b = AuthorizationServer::builder("http://127.0.0.1:9");
    assert!(matches!(
        build(b.max_body_size(100)).await,
        Err(ConfigError::Invalid(_))
    ));
    let b = AuthorizationServer::builder("http://127.0.0.1:9");
    assert!(matches!(
        build(b.request_timeout(Duration::ZERO)).await,
        Err(ConfigError::InvalidLifetime(_))
    ));
    let b = AuthorizationServer::builder("http://127.0.0.1:9");
    assert!(matches!(
        build(b.request_timeout(Duration::from_secs(3600))).await,
        Err(ConfigError::InvalidLifetime(_))
    ));
    let b = AuthorizationServer::builder("http://127.0.0.1:9");
    assert!(
        build(
            b.max_body_size(4096)
                .request_timeout(Duration::from_secs(5))
        )
        .await
        .is_ok()
    );
}
