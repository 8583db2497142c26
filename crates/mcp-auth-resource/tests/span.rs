//! The bearer layer's `bearer_auth` span: one per request, with stable fields recorded only when
//! a subscriber enables it.
#![cfg(feature = "tracing")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod support;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    fmt,
    sync::{Arc, Mutex},
};

use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_auth_resource::{BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource};
use serde_json::json;
use support::{SigningKey, TokenBuilder};
use tower::{Layer, ServiceExt, service_fn};
use tracing::{
    Id, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Record},
};
use tracing_subscriber::{
    layer::{Context, SubscriberExt as _},
    registry::LookupSpan,
};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

type Fields = BTreeMap<String, String>;

/// Collects the fields of every closed `bearer_auth` and `tool_scopes` span (with its name).
#[derive(Clone, Default)]
struct Capture {
    open: Arc<Mutex<BTreeMap<u64, Fields>>>,
    closed: Arc<Mutex<Vec<Fields>>>,
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name == "mcp_auth.bearer" || name == "mcp_auth.tool_scopes" {
            let mut fields = Fields::new();
            fields.insert("span".to_owned(), name.to_owned());
            attrs.record(&mut Visitor(&mut fields));
            self.open.lock().unwrap().insert(id.into_u64(), fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Visitor(fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(fields) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(fields);
        }
    }
}

#[tokio::test]
async fn every_request_gets_one_span_with_decision_cache_and_hashed_subject() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let key = SigningKey::es256("k1");
    let jwks = json!({ "keys": [key.jwk()] }).to_string();
    let clock = support::clock();
    let token = TokenBuilder::new(ISSUER, RESOURCE).sign(&key);
    let narrow = TokenBuilder::new(ISSUER, RESOURCE)
        .claim("sub", "bob")
        .claim("scope", "other")
        .sign(&key);
    let resource = ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .build()
        .unwrap();
    let verifier = CachedVerifier::builder(
        JwtVerifier::for_resource(ISSUER, &resource)
            .jwks_json(&jwks)
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
    .clock(clock)
    .build();
    let service = BearerAuthLayer::new(verifier, resource)
        .required_scopes("mcp:tools".parse().unwrap())
        .layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let send = |authorization: Option<String>| {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(AUTHORIZATION, value.parse().unwrap());
        }
        service.clone().oneshot(request)
    };

    let statuses = [
        send(Some(format!("Bearer {token}")))
            .await
            .unwrap()
            .status(),
        send(Some(format!("Bearer {token}")))
            .await
            .unwrap()
            .status(),
        send(None).await.unwrap().status(),
        send(Some("Basic abc".to_owned())).await.unwrap().status(),
        send(Some(format!("Bearer {narrow}")))
            .await
            .unwrap()
            .status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::BAD_REQUEST,
            StatusCode::FORBIDDEN
        ]
    );

    let spans: Vec<Fields> = capture
        .closed
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f["span"] == "mcp_auth.bearer")
        .cloned()
        .collect();
    assert_eq!(spans.len(), 5, "one span per request: {spans:?}");
    let field = |i: usize, name: &str| spans[i].get(name).map(String::as_str);
    let alice = "2bd806c97f0e00af"; // SHA-256("alice"), first 16 hex digits

    // A new token: verified (a miss, with the verifier's latency), allowed.
    assert_eq!(field(0, "decision"), Some("allow"));
    assert_eq!(field(0, "cache"), Some("miss"));
    assert!(field(0, "verify_us").is_some());
    assert_eq!(field(0, "client_id"), Some("client-1"));
    assert_eq!(field(0, "sub_hash"), Some(alice));
    // The same token again: a hit, no verifier latency.
    assert_eq!(field(1, "decision"), Some("allow"));
    assert_eq!(field(1, "cache"), Some("hit"));
    assert_eq!(field(1, "verify_us"), None);
    assert_eq!(field(1, "sub_hash"), Some(alice));
    // No token: a challenge, and no cache involved.
    assert_eq!(field(2, "decision"), Some("challenge"));
    assert_eq!(field(2, "cache"), None);
    // A malformed request: denied.
    assert_eq!(field(3, "decision"), Some("deny"));
    // A valid token without the required scope: a step-up challenge, naming who asked.
    assert_eq!(field(4, "decision"), Some("challenge"));
    assert_eq!(field(4, "client_id"), Some("client-1"));
    assert!(field(4, "sub_hash").is_some_and(|h| h != alice && h.len() == 16));

    // Never the token, nor the subject.
    for span in &spans {
        for value in span.values().filter(|v| *v != "mcp_auth.bearer") {
            assert!(!value.contains(&token) && value != "alice", "{span:?}");
        }
    }
}

#[tokio::test]
async fn the_tool_scope_layer_records_its_decision_and_what_the_call_needed() {
    use mcp_auth_resource::ToolScopesLayer;

    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let resource = ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .build()
        .unwrap();
    let layer = ToolScopesLayer::new(resource).tool(
        "admin_tool",
        "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
    );
    let service = layer.layer(service_fn(|_: Request<_>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let call = |tool: &str, info: Option<mcp_auth_resource::AuthInfo>| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
        );
        let mut request = Request::post("/mcp")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        if let Some(info) = info {
            request.extensions_mut().insert(info);
        }
        service.clone().oneshot(request)
    };
    let admin = mcp_auth_resource::AuthInfo::builder()
        .subject("alice")
        .scopes("mcp:admin".parse().unwrap())
        .build();
    let reader = mcp_auth_resource::AuthInfo::builder()
        .subject("bob")
        .scopes("mcp:tools".parse().unwrap())
        .build();
    assert_eq!(
        call("admin_tool", Some(admin)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        call("admin_tool", Some(reader)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    let spans: Vec<Fields> = capture
        .closed
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f["span"] == "mcp_auth.tool_scopes")
        .cloned()
        .collect();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0].get("decision").map(String::as_str), Some("allow"));
    assert_eq!(spans[0].get("calls").map(String::as_str), Some("1"));
    assert_eq!(
        spans[0].get("required").map(String::as_str),
        Some("mcp:admin")
    );
    assert_eq!(
        spans[1].get("decision").map(String::as_str),
        Some("challenge")
    );
}
