//! The bearer layer's credential reading (mcp-auth-resource `BearerAuthLayer`): any number of
//! `Authorization` values and any query, through the public layer.
//!
//! Properties: the verifier only ever sees a token that an independent reading of RFC 6750
//! §2.1 (`Bearer` any case, then a b64token) takes from the one `Authorization` header; every
//! such request reaches the verifier; a rejection never echoes the token; the status is one of
//! the documented ones.
#![no_main]

use std::{cell::RefCell, convert::Infallible, sync::OnceLock};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use mcp_auth_fuzz::{assert_not_echoed, block_on, contains, fields};
use mcp_auth_resource::{
    AuthInfo, BearerAuthLayer, ProtectedResource, TokenVerifier, VerifyError, VerifyErrorKind,
};
use tower::{Layer, ServiceExt, service_fn};

thread_local! {
    static SEEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Accepts tokens starting with `ok`; refuses others with a kind chosen by their length.
struct Recording;

impl TokenVerifier for Recording {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        SEEN.with(|s| *s.borrow_mut() = Some(token.to_owned()));
        if token.starts_with("ok") {
            return Ok(AuthInfo::builder().subject("alice").build());
        }
        Err(match token.len() % 4 {
            0 => VerifyErrorKind::Expired.into(),
            1 => VerifyErrorKind::Audience.into(),
            2 => VerifyErrorKind::Malformed.into(),
            _ => VerifyError::unavailable(None),
        })
    }
}

/// RFC 6750 §2.1 read independently: the token, or `None`.
fn reference(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let split = value.iter().position(|b| *b == b' ' || *b == b'\t')?;
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii_start();
    let body_len = token.len() - token.iter().rev().take_while(|b| **b == b'=').count();
    let ok = body_len > 0
        && token.len() <= 16 * 1024
        && token[..body_len]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b));
    ok.then_some(token)
}

/// Sends `request` through the layer (optional mode or not): status, headers, body.
fn call(
    request: Request<Full<Bytes>>,
    optional: bool,
) -> (StatusCode, http::response::Parts, Bytes) {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().expect("scope"))
        .build()
        .expect("resource");
    let mut layer = BearerAuthLayer::new(Recording, resource);
    if optional {
        layer = layer.optional();
    }
    let service = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    }));
    let response = block_on(service.oneshot(request)).expect("infallible");
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = block_on(body.collect()).expect("body").to_bytes();
    (status, parts, body)
}

/// Every text the layer answers with on its own (challenges, descriptions), from probe
/// requests whose tokens are too short to be echoed: a fuzzed token found in here is no echo.
fn fixed_texts() -> &'static [u8] {
    static TEXTS: OnceLock<Vec<u8>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let mut out = Vec::new();
        let probes: [(&str, &[&str]); 9] = [
            ("/mcp", &[]),
            ("/mcp", &["Bearer"]),
            ("/mcp", &["Basic abc"]),
            ("/mcp", &["Bearer a", "Bearer b"]),
            ("/mcp?access_token=a", &["Bearer a"]),
            ("/mcp", &["Bearer a"]),
            ("/mcp", &["Bearer ab"]),
            ("/mcp", &["Bearer abc"]),
            ("/mcp", &["Bearer %"]),
        ];
        for (uri, values) in probes {
            let mut b = Request::builder().uri(uri).method("POST");
            for v in values {
                b = b.header(AUTHORIZATION, *v);
            }
            let (_, parts, body) = call(b.body(Full::new(Bytes::new())).expect("probe"), false);
            for value in parts.headers.values() {
                out.extend_from_slice(value.as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(&body);
            out.push(b'\n');
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 5);
    let flags = f[0].first().copied().unwrap_or(1);
    let count = usize::from(flags % 4).min(3);
    let query = String::from_utf8_lossy(f[1]);
    let query: String = query
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '#')
        .collect();
    let uri = if query.is_empty() {
        "/mcp".to_owned()
    } else {
        format!("/mcp?{query}")
    };
    let mut builder = Request::builder().uri(&uri).method("POST");
    let mut values = Vec::new();
    for value in &f[2..2 + count] {
        let Ok(v) = http::HeaderValue::from_bytes(value) else {
            return;
        };
        values.push(v);
    }
    for v in &values {
        builder = builder.header(AUTHORIZATION, v.clone());
    }
    let Ok(request) = builder.body(Full::new(Bytes::new())) else {
        return;
    };
    SEEN.with(|s| *s.borrow_mut() = None);
    let (status, parts, body) = call(request, flags & 0x40 != 0);
    let seen = SEEN.with(|s| s.borrow_mut().take());

    let expected = (values.len() == 1)
        .then(|| reference(values[0].as_bytes()))
        .flatten();
    if let Some(token) = &seen {
        assert_eq!(
            Some(token.as_bytes()),
            expected,
            "the verifier saw a token the reference does not take"
        );
    }
    let query_has_token =
        contains(query.to_ascii_lowercase().as_bytes(), b"access") || query.contains('%');
    if expected.is_some() && !query_has_token {
        assert!(
            seen.is_some(),
            "a well-formed bearer request did not reach the verifier"
        );
    }
    assert!(
        matches!(
            status,
            StatusCode::OK
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::SERVICE_UNAVAILABLE
        ),
        "{status}"
    );
    if status != StatusCode::OK {
        for v in &values {
            let raw = String::from_utf8_lossy(v.as_bytes());
            if let Some(token) = raw.split_ascii_whitespace().nth(1)
                && !contains(fixed_texts(), token.as_bytes())
            {
                assert_not_echoed(&parts.headers, &body, token, "token");
            }
        }
    } else {
        assert!(body.as_ref() == b"inner");
    }
});
