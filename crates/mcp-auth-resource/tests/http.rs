//! The resource server end to end over real HTTP on loopback: an axum app behind
//! `BearerAuthLayer` with a `JwtVerifier` that discovers its keys from a fake authorization server
//! (`support::FakeIdp`, counting its hits), and an `IntrospectionVerifier` against a loopback
//! introspection endpoint. Every row of the response table, key rotation, the unknown-kid
//! cool-down, an IdP outage, algorithm confusion, audiences with and without a trailing slash,
//! scope step-up, and the 500 for a missing layer.
#![cfg(all(
    feature = "jwt",
    feature = "remote",
    feature = "introspection",
    feature = "axum"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Form, Json, Router, routing::get, routing::post};
use mcp_auth_core::ManualClock;
use mcp_auth_resource::{
    Auth, BearerAuthLayer, ClientAuth, IntrospectionVerifier, JwtVerifier, ProtectedResource,
    RequireScope, TokenVerifier,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use support::{FakeIdp, NOW, SigningKey};
use tokio::net::TcpListener;

mcp_auth_resource::scopes!(Admin = "mcp:admin");

struct Server {
    base: String,
    resource: String,
    http: reqwest::Client,
}

impl Server {
    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        req.send().await.unwrap()
    }

    fn invalid_token(&self, description: &str) -> String {
        format!(
            r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{}""#,
            self.metadata_url()
        )
    }
}

fn challenge(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `/mcp` and `/admin` behind the layer, `/no-layer` without it, the metadata outside it.
fn app<V: TokenVerifier + Clone>(
    resource: &ProtectedResource,
    layer: BearerAuthLayer<V>,
) -> Router {
    async fn whoami(auth: Auth) -> String {
        auth.subject().unwrap_or_default().to_owned()
    }
    async fn admin(auth: RequireScope<Admin>) -> String {
        format!("admin {}", auth.subject().unwrap_or_default())
    }
    let protected = Router::new()
        .route("/mcp", get(whoami).post(whoami))
        .route("/admin", get(admin))
        .layer(layer);
    Router::new()
        .merge(protected)
        .route("/no-layer", get(whoami))
        .merge(resource.metadata_router())
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

struct JwtFixture {
    server: Server,
    idp: FakeIdp,
    clock: ManualClock,
}

async fn jwt_fixture() -> JwtFixture {
    let idp = FakeIdp::start().await;
    let (listener, base) = listen().await;
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server(idp.issuer())
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let clock = support::clock();
    let verifier = JwtVerifier::for_resource(idp.issuer(), &resource)
        .discover_jwks()
        .clock(clock.clone())
        .unknown_kid_cooldown(Duration::from_secs(60))
        .background_refresh(false)
        .build()
        .unwrap();
    let router = app(&resource, BearerAuthLayer::new(verifier, resource.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    JwtFixture {
        server: Server {
            base,
            resource: resource.resource().to_string(),
            http: reqwest::Client::new(),
        },
        idp,
        clock,
    }
}

impl JwtFixture {
    fn token(&self) -> support::TokenBuilder {
        self.idp.token(&self.server.resource)
    }
}

#[tokio::test]
async fn no_credentials_get_401_with_resource_metadata_and_scope_but_no_error() {
    let f = jwt_fixture().await;
    let resp = f.server.get("/mcp", None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        challenge(&resp).unwrap(),
        format!(
            r#"Bearer resource_metadata="{}", scope="mcp:tools""#,
            f.server.metadata_url()
        )
    );
    // The challenge's URL serves the metadata, unauthenticated.
    let prm: Value = serde_json::from_str(
        &f.server
            .get("/.well-known/oauth-protected-resource/mcp", None)
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(prm["resource"], f.server.resource);
    assert_eq!(prm["authorization_servers"], json!([f.idp.issuer()]));
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let f = jwt_fixture().await;
    let good = f.token().sign(&f.idp.key("es-1"));

    let mut two = HeaderMap::new();
    two.append(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
    );
    two.append(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
    );
    let resp = f
        .server
        .http
        .get(format!("{}/mcp", f.server.base))
        .headers(two)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        challenge(&resp)
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request""#)
    );

    let resp = f
        .server
        .http
        .get(format!("{}/mcp?access_token={good}", f.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        challenge(&resp)
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request""#)
    );

    let resp = f
        .server
        .http
        .get(format!("{}/mcp", f.server.base))
        .header(AUTHORIZATION, "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        challenge(&resp)
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request""#)
    );
}

#[tokio::test]
async fn valid_tokens_reach_the_handler_with_any_scheme_case() {
    let f = jwt_fixture().await;
    for kid in ["es-1", "rs-1", "ed-1"] {
        let token = f.token().sign(&f.idp.key(kid));
        let resp = f
            .server
            .http
            .get(format!("{}/mcp", f.server.base))
            .header(AUTHORIZATION, format!("bEaReR {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{kid}");
        assert_eq!(resp.text().await.unwrap(), "alice");
    }
    assert_eq!(f.idp.jwks_hits(), 1);
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token_with_a_fixed_description() {
    let f = jwt_fixture().await;
    let key = f.idp.key("es-1");
    let cases = [
        (
            f.token().claim("exp", NOW - 3600).sign(&key),
            "The access token has expired",
        ),
        (
            f.token().claim("nbf", NOW + 3600).sign(&key),
            "The access token is not valid yet",
        ),
        (
            f.token().claim("iss", "http://127.0.0.1:1").sign(&key),
            "The access token was issued by an untrusted issuer",
        ),
        (
            f.idp.token("http://127.0.0.1:1/mcp").sign(&key),
            "The access token was not issued for this resource",
        ),
        (
            f.idp.token(&format!("{}/", f.server.resource)).sign(&key),
            "The access token was not issued for this resource",
        ),
        (
            f.token().header("typ", "JWT").sign(&key),
            "The token is not an access token",
        ),
        (
            f.token().unsigned(),
            "The access token signature is invalid",
        ),
        ("not-a-jwt".to_owned(), "The access token is malformed"),
    ];
    for (token, description) in cases {
        let resp = f.server.get("/mcp", Some(&token)).await;
        assert_eq!(resp.status(), 401, "{description}");
        assert_eq!(
            challenge(&resp).unwrap(),
            f.server.invalid_token(description)
        );
    }
}

#[tokio::test]
async fn audience_case_in_scheme_and_host_is_forgiven_but_a_path_slash_is_not() {
    let f = jwt_fixture().await;
    let key = f.idp.key("es-1");
    let upper = f
        .server
        .resource
        .replace("http://127.0.0.1", "HTTP://127.0.0.1");
    assert_eq!(
        f.server
            .get("/mcp", Some(&f.idp.token(&upper).sign(&key)))
            .await
            .status(),
        200
    );
    let slash = format!("{}/", f.server.resource);
    assert_eq!(
        f.server
            .get("/mcp", Some(&f.idp.token(&slash).sign(&key)))
            .await
            .status(),
        401
    );
    let array = f
        .token()
        .claim("aud", json!(["https://other.example", f.server.resource]))
        .sign(&key);
    assert_eq!(f.server.get("/mcp", Some(&array)).await.status(), 200);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let f = jwt_fixture().await;
    let rsa = f.idp.key("rs-1");
    for secret in [rsa.rsa_public_pem().into_bytes(), rsa.rsa_public_der()] {
        let forged = f
            .token()
            .sign(&SigningKey::hs256(&secret).with_kid(Some("rs-1")));
        let resp = f.server.get("/mcp", Some(&forged)).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(
            challenge(&resp).unwrap(),
            f.server
                .invalid_token("The access token signature is invalid")
        );
    }
}

#[tokio::test]
async fn missing_scope_gets_403_with_the_step_up_scopes() {
    let f = jwt_fixture().await;
    let key = f.idp.key("es-1");
    let token = f.token().claim("scope", "mcp:tools files:read").sign(&key);
    let resp = f.server.get("/admin", Some(&token)).await;
    assert_eq!(resp.status(), 403);
    // Granted-and-relevant (mcp:tools, advertised) plus the new scope; files:read is not ours.
    assert_eq!(
        challenge(&resp).unwrap(),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}""#,
            f.server.metadata_url()
        )
    );
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let admin = f.token().claim("scope", "mcp:tools mcp:admin").sign(&key);
    let resp = f.server.get("/admin", Some(&admin)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "admin alice");
}

#[tokio::test]
async fn an_extractor_without_the_layer_is_a_500_that_says_so() {
    let f = jwt_fixture().await;
    let token = f.token().sign(&f.idp.key("es-1"));
    let resp = f.server.get("/no-layer", Some(&token)).await;
    assert_eq!(resp.status(), 500);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Perhaps you forgot to add it?")
    );
}

#[tokio::test]
async fn key_rotation_is_picked_up_with_one_refetch() {
    let f = jwt_fixture().await;
    assert_eq!(
        f.server
            .get("/mcp", Some(&f.token().sign(&f.idp.key("es-1"))))
            .await
            .status(),
        200
    );
    assert_eq!(f.idp.jwks_hits(), 1);
    // The cool-down counts from the last fetch attempt, the initial fetch included.
    f.clock.advance(Duration::from_secs(61));
    f.idp.add_key(SigningKey::es256("es-2"));
    let rotated = f.token().sign(&f.idp.key("es-2"));
    assert_eq!(f.server.get("/mcp", Some(&rotated)).await.status(), 200);
    assert_eq!(f.idp.jwks_hits(), 2);
    // The withdrawn key stops working once the set is refetched.
    f.idp.withdraw_key("es-1");
    f.clock.advance(Duration::from_secs(61));
    f.idp.add_key(SigningKey::es256("es-3"));
    assert_eq!(
        f.server
            .get("/mcp", Some(&f.token().sign(&f.idp.key("es-3"))))
            .await
            .status(),
        200
    );
    let old = f.token().sign(&SigningKey::es256("es-1"));
    assert_eq!(f.server.get("/mcp", Some(&old)).await.status(), 401);
}

#[tokio::test]
async fn unknown_kids_cause_at_most_one_fetch_per_cool_down() {
    let f = jwt_fixture().await;
    assert_eq!(
        f.server
            .get("/mcp", Some(&f.token().sign(&f.idp.key("es-1"))))
            .await
            .status(),
        200
    );
    let before = f.idp.jwks_hits();
    // Within the cool-down of the initial fetch an unknown kid fetches nothing.
    let early = f.token().sign(&SigningKey::es256("unknown-early"));
    assert_eq!(f.server.get("/mcp", Some(&early)).await.status(), 401);
    assert_eq!(f.idp.jwks_hits(), before);
    f.clock.advance(Duration::from_secs(61));
    for i in 0..30 {
        let stranger = f.token().sign(&SigningKey::es256(&format!("unknown-{i}")));
        assert_eq!(f.server.get("/mcp", Some(&stranger)).await.status(), 401);
    }
    assert_eq!(f.idp.jwks_hits(), before + 1);
    // After the cool-down, one more.
    f.clock.advance(Duration::from_secs(61));
    let stranger = f.token().sign(&SigningKey::es256("unknown-late"));
    assert_eq!(f.server.get("/mcp", Some(&stranger)).await.status(), 401);
    assert_eq!(f.idp.jwks_hits(), before + 2);
}

#[tokio::test]
async fn idp_outage_keeps_known_keys_and_answers_503_for_unknown_ones() {
    let mut f = jwt_fixture().await;
    let good = f.token().sign(&f.idp.key("es-1"));
    assert_eq!(f.server.get("/mcp", Some(&good)).await.status(), 200);
    f.idp.stop().await;
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(f.server.get("/mcp", Some(&good)).await.status(), 200);
    let stranger = f.token().sign(&SigningKey::es256("new-after-outage"));
    let resp = f.server.get("/mcp", Some(&stranger)).await;
    assert_eq!(resp.status(), 503);
    assert!(
        challenge(&resp).is_none(),
        "an outage is not the client's fault: no challenge"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn idp_down_from_the_start_is_503_not_401() {
    let mut idp = FakeIdp::start().await;
    let issuer = idp.issuer().to_owned();
    let token_builder = idp.token("placeholder");
    let _ = token_builder;
    let key = idp.key("es-1");
    idp.stop().await;
    let (listener, base) = listen().await;
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server(&issuer)
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&issuer, &resource)
        .discover_jwks()
        .clock(support::clock())
        .build()
        .unwrap();
    let router = app(&resource, BearerAuthLayer::new(verifier, resource.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let server = Server {
        base,
        resource: resource.resource().to_string(),
        http: reqwest::Client::new(),
    };
    let token = support::TokenBuilder::new(&issuer, &server.resource).sign(&key);
    let resp = server.get("/mcp", Some(&token)).await;
    assert_eq!(resp.status(), 503);
    assert!(challenge(&resp).is_none());
}

/// A loopback RFC 7662 endpoint: `good` is active, anything else is not; `down` makes it answer 500.
async fn introspection_endpoint(
    resource: Arc<std::sync::Mutex<String>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
) -> String {
    let (listener, base) = listen().await;
    let router = Router::new().route(
        "/introspect",
        post(move |headers: axum::http::HeaderMap, Form(form): Form<HashMap<String, String>>| {
            let resource = resource.clone();
            let hits = hits.clone();
            let down = down.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
                }
                // rs:secret in HTTP Basic.
                assert_eq!(headers["authorization"], "Basic cnM6c2VjcmV0");
                let aud = resource.lock().unwrap().clone();
                let body = match form.get("token").map(String::as_str) {
                    Some("good") => json!({"active": true, "sub": "carol", "scope": "mcp:tools", "aud": aud, "exp": NOW + 300}),
                    _ => json!({"active": false}),
                };
                (axum::http::StatusCode::OK, Json(body))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("{base}/introspect")
}

#[tokio::test]
async fn opaque_tokens_are_checked_by_introspection() {
    let audience = Arc::new(std::sync::Mutex::new(String::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let endpoint = introspection_endpoint(audience.clone(), hits.clone(), down.clone()).await;
    let (listener, base) = listen().await;
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server("http://127.0.0.1:1")
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    *audience.lock().unwrap() = resource.resource().to_string();
    let clock = support::clock();
    let verifier = IntrospectionVerifier::builder(
        &endpoint,
        resource.resource().clone(),
        ClientAuth::client_secret_basic("rs", "secret"),
    )
    .clock(clock.clone())
    .negative_cache_ttl(Duration::ZERO)
    .build()
    .unwrap();
    let router = app(&resource, BearerAuthLayer::new(verifier, resource.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let server = Server {
        base,
        resource: resource.resource().to_string(),
        http: reqwest::Client::new(),
    };

    for _ in 0..5 {
        let resp = server.get("/mcp", Some("good")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "carol");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "five requests, one introspection call"
    );

    let resp = server.get("/mcp", Some("bad")).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        challenge(&resp).unwrap(),
        server.invalid_token("The access token is not active")
    );

    let resp = server.get("/admin", Some("good")).await;
    assert_eq!(resp.status(), 403);

    down.store(true, Ordering::SeqCst);
    let resp = server.get("/mcp", Some("unseen")).await;
    assert_eq!(
        resp.status(),
        503,
        "an unreachable introspection endpoint fails closed, as 503"
    );
    assert!(challenge(&resp).is_none());
    // The cached good token still works, until its exp.
    assert_eq!(server.get("/mcp", Some("good")).await.status(), 200);
    clock.advance(Duration::from_secs(400));
    assert_eq!(server.get("/mcp", Some("good")).await.status(), 503);
}

#[tokio::test]
async fn tool_step_up_keeps_the_bearer_layers_scope_floor_so_clients_cannot_loop() {
    use mcp_auth_resource::ToolScopesLayer;

    let idp = FakeIdp::start().await;
    let (listener, base) = listen().await;
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server(idp.issuer())
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(idp.issuer(), &resource)
        .discover_jwks()
        .clock(support::clock())
        .build()
        .unwrap();
    // The floor `corp:user` is not advertised in scopes_supported.
    let bearer = BearerAuthLayer::new(verifier, resource.clone())
        .required_scopes("corp:user".parse().unwrap());
    let tools = ToolScopesLayer::new(resource.clone()).tool(
        "admin_tool",
        "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
    );
    let router = Router::new()
        .route("/mcp", post(|| async { "called" }))
        .layer(tools)
        .layer(bearer);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let token = idp
        .token(resource.resource().as_str())
        .claim("scope", "corp:user mcp:tools")
        .sign(&idp.key("es-1"));
    let resp = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        challenge(&resp).unwrap(),
        format!(
            r#"Bearer error="insufficient_scope", scope="corp:user mcp:tools mcp:admin", resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        )
    );
}
