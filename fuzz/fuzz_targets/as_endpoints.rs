//! The authorization server's endpoints (mcp-auth-server's router): any query to
//! `GET /authorize`, any form to `POST /authorize`, `/token`, `/revoke`, `/introspect`, any
//! JSON to `/register`, with any `Authorization`, `Cookie` and `Content-Type`.
//!
//! Properties of every answer: never a 5xx; an error body is RFC 6749 §5.2 JSON with a string
//! `error` and an `error_description` without `"`; no value sent as a secret
//! (`client_secret`, `code_verifier`, `code`, `refresh_token`, `token`, `client_assertion`,
//! `password`; checked when the value is at least 12 characters and holds a `~`, which no
//! fixed text of the server does) comes back in a header or the body.
#![no_main]

use std::cell::RefCell;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use mcp_auth_core::{Secret, metadata::ClientMetadata};
use mcp_auth_fuzz::{assert_not_echoed, block_on, fields};
use mcp_auth_server::{
    AuthorizationServer, MachineClient,
    login::LocalLogin,
    store::{ClientRecord, MemoryStore},
};
use serde_json::Value;
use tower::ServiceExt;

/// Rebuilt every this many inputs, so that what the inputs store does not pile up.
const REBUILD_EVERY: u32 = 2000;

thread_local! {
    static SERVER: RefCell<Option<(axum::Router, u32)>> = const { RefCell::new(None) };
}

async fn build() -> axum::Router {
    let server = AuthorizationServer::builder("https://as.example.com")
        .resource("https://mcp.example.com/mcp")
        .scopes(["mcp:tools", "notes:read"])
        .offline_access(true)
        .store(MemoryStore::new())
        .login(LocalLogin::new().user("alice", "correct horse battery staple"))
        .dynamic_registration(true)
        .client_credentials(true)
        .machine_client(
            MachineClient::new(
                "machine",
                Secret::new("machine-secret-0123456789abcdef0123456789"),
            )
            .scopes(["mcp:tools"]),
        )
        .introspection_client(
            "introspector",
            &Secret::new("introspector-secret-0123456789abcdef0123"),
        )
        .registrations_per_minute(u32::MAX)
        .failed_client_auths(u32::MAX)
        .client_id_metadata_documents(None)
        .build()
        .await
        .expect("server");
    let mut metadata = ClientMetadata::default();
    metadata.redirect_uris = vec!["http://127.0.0.1/cb".to_owned()];
    metadata.token_endpoint_auth_method = Some("none".to_owned());
    server
        .store()
        .put_client(ClientRecord::public("public-client", metadata, 0))
        .await
        .expect("client");
    server.router()
}

fn router() -> axum::Router {
    SERVER.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some((router, uses)) if *uses < REBUILD_EVERY => {
                *uses += 1;
                router.clone()
            }
            _ => {
                let router = block_on(build());
                *slot = Some((router.clone(), 1));
                router
            }
        }
    })
}

const SECRET_PARAMS: [&str; 7] = [
    "client_secret",
    "code_verifier",
    "code",
    "refresh_token",
    "token",
    "client_assertion",
    "password",
];

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 5);
    let selector = f[0].first().copied().unwrap_or(0);
    let (method, path) = match selector % 6 {
        0 => (Method::GET, "/authorize"),
        1 => (Method::POST, "/authorize"),
        2 => (Method::POST, "/token"),
        3 => (Method::POST, "/revoke"),
        4 => (Method::POST, "/introspect"),
        _ => (Method::POST, "/register"),
    };
    let payload = f[1];
    let uri = if method == Method::GET {
        format!("{path}?{}", String::from_utf8_lossy(payload))
    } else {
        path.to_owned()
    };
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    let content_type = match (selector >> 3) % 4 {
        0 if path == "/register" => "application/json",
        0 => "application/x-www-form-urlencoded",
        1 => "application/x-www-form-urlencoded; charset=UTF-8",
        2 => "text/plain",
        _ => "",
    };
    if !content_type.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in [(header::AUTHORIZATION, f[2]), (header::COOKIE, f[3])] {
        if !value.is_empty() {
            let Ok(value) = http::HeaderValue::from_bytes(value) else {
                return;
            };
            builder = builder.header(name, value);
        }
    }
    if !f[4].is_empty() {
        let Ok(value) = http::HeaderValue::from_bytes(f[4]) else {
            return;
        };
        builder = builder.header("dpop", value);
    }
    let body = if method == Method::GET {
        Body::empty()
    } else {
        Body::from(Bytes::copy_from_slice(payload))
    };
    let Ok(request) = builder.body(body) else {
        return;
    };
    let response = block_on(router().oneshot(request)).expect("infallible");
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = block_on(body.collect()).expect("body").to_bytes();
    assert!(
        !status.is_server_error() || status == http::StatusCode::SERVICE_UNAVAILABLE,
        "{status} for {path}: {}",
        String::from_utf8_lossy(&body)
    );
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json && status.is_client_error() {
        let error: Value = serde_json::from_slice(&body).expect("an error body is JSON");
        assert!(error["error"].is_string(), "{error}");
        if let Some(d) = error.get("error_description") {
            let d = d.as_str().expect("a string description");
            assert!(!d.contains('"'), "{d:?}");
        }
    }
    // Secrets sent in the form or the query never come back.
    let query_or_form = if path == "/register" {
        &[][..]
    } else {
        payload
    };
    // A secret's value may also stand inside a parameter the server may show (an invalid
    // `redirect_uri` on the error page, say: found by this target, a fuzzer-made input whose
    // `redirect_uri` contained the text of its `code_verifier`); only a secret that no other
    // parameter carries must be absent.
    let params: Vec<_> = url::form_urlencoded::parse(query_or_form).collect();
    for (name, value) in &params {
        let shown_elsewhere = params.iter().any(|(other, v)| {
            !SECRET_PARAMS.contains(&other.as_ref()) && v.contains(value.as_ref())
        });
        if SECRET_PARAMS.contains(&name.as_ref()) && value.contains('~') && !shown_elsewhere {
            assert_not_echoed(&parts.headers, &body, value, name);
        }
    }
});
