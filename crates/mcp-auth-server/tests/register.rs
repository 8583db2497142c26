//! Dynamic client registration (RFC 7591) over real HTTP on loopback: successful public and
//! confidential registrations, and every rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, UNIX_EPOCH};

use mcp_auth_core::ManualClock;
use mcp_auth_server::store::{ClientAuthMethod, ClientSource, MemoryStore};
use mcp_auth_server::{AuthorizationServer, AuthorizationServerBuilder};
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Server {
    base: String,
    server: AuthorizationServer,
    http: reqwest::Client,
}

impl Server {
    async fn start(
        configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
    ) -> Self {
        Self::start_with(MemoryStore::new(), configure).await
    }

    async fn start_with(
        store: MemoryStore,
        configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let builder = AuthorizationServer::builder(&base)
            .resource(format!("{base}/mcp"))
            .scopes(["mcp:tools"])
            .store(store);
        let server = configure(builder).build().await.unwrap();
        let app: axum::Router = server.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { base, server, http }
    }

    async fn register(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/register", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Register and expect a 400 with `code`; returns the description.
    async fn refused(&self, body: &Value, code: &str) -> String {
        let response = self.register(body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], code, "{body} → {error}");
        let description = error["error_description"].as_str().unwrap().to_owned();
        assert!(!description.is_empty());
        description
    }
}

#[tokio::test]
async fn a_public_client_registers_and_gets_its_metadata_echoed() {
    let s = Server::start(|b| b).await;
    let response = s
        .register(&json!({
            "client_name": "MCP Inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:tools",
            "client_uri": "https://inspector.example.com",
            "x-unknown-member": {"ignored": true},
        }))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let info: Value = response.json().await.unwrap();

    let client_id = info["client_id"].as_str().unwrap();
    assert!(client_id.len() >= 22, "{client_id}");
    assert!(!client_id.contains("://"), "a DCR client_id is never a URL");
    assert!(info.get("client_secret").is_none());
    assert!(info.get("client_secret_expires_at").is_none());
    assert!(info["client_id_issued_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(info["client_name"], "MCP Inspector");
    assert_eq!(
        info["redirect_uris"],
        json!([
            "http://localhost:6274/oauth/callback",
            "http://127.0.0.1/callback"
        ])
    );
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert_eq!(info["scope"], "mcp:tools");
    assert_eq!(info["client_uri"], "https://inspector.example.com");
    assert!(
        info.get("x-unknown-member").is_none(),
        "unknown members are ignored, not echoed"
    );

    let stored = s
        .server
        .store()
        .get_client(client_id)
        .await
        .unwrap()
        .expect("stored");
    assert!(stored.is_public());
    assert!(stored.secret_hash.is_none());
    assert_eq!(stored.source, ClientSource::Dynamic);
    assert_eq!(stored.metadata.redirect_uris.len(), 2);
}

#[tokio::test]
async fn defaults_are_filled_in_and_echoed() {
    let s = Server::start(|b| b).await;
    let response = s
        .register(&json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(info["response_types"], json!(["code"]));
}

#[tokio::test]
async fn an_omitted_auth_method_registers_a_confidential_client_with_a_secret() {
    let s = Server::start(|b| b).await;
    let response = s
        .register(&json!({"redirect_uris": ["https://app.example.com/callback"]}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let info: Value = response.json().await.unwrap();
    assert_eq!(
        info["token_endpoint_auth_method"], "client_secret_basic",
        "RFC 7591 §2 default"
    );
    let secret = info["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url without padding");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(info["client_secret_expires_at"], 0);

    let client_id = info["client_id"].as_str().unwrap();
    let stored = s
        .server
        .store()
        .get_client(client_id)
        .await
        .unwrap()
        .expect("stored");
    assert!(!stored.is_public());
    assert_eq!(stored.auth_method, ClientAuthMethod::ClientSecretBasic);
    let hash = stored.secret_hash.expect("a hash, never the secret");
    assert!(hash.verify(secret));
    assert!(!format!("{stored:?}").contains(secret));
}

#[tokio::test]
async fn a_client_secret_post_client_registers() {
    let s = Server::start(|b| b).await;
    let response = s
        .register(&json!({
            "redirect_uris": ["https://app.example.com/callback"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_post");
    assert!(info["client_secret"].is_string());
}

#[tokio::test]
async fn an_anonymous_registrant_cannot_mint_machine_tokens() {
    // The hostile review's three requests, against a server that even allows the grant.
    for allowed in [false, true] {
        let s = Server::start(|b| b.client_credentials(allowed)).await;
        for body in [
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post", "scope": "mcp:tools"}),
        ] {
            s.refused(&body, "invalid_client_metadata").await;
        }
    }
}

#[tokio::test]
async fn every_confidential_registration_gets_a_new_client_id_and_secret() {
    let s = Server::start(|b| b).await;
    let body = json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_basic"});
    let a: Value = s.register(&body).await.json().await.unwrap();
    let b: Value = s.register(&body).await.json().await.unwrap();
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], b["client_secret"]);
}

#[tokio::test]
async fn with_reuse_turned_off_identical_public_registrations_get_new_client_ids() {
    let s = Server::start(|b| b.reuse_public_registrations(false)).await;
    let body = json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"});
    let a: Value = s.register(&body).await.json().await.unwrap();
    let b: Value = s.register(&body).await.json().await.unwrap();
    assert_ne!(a["client_id"], b["client_id"]);
}

fn desktop_app(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": ["http://127.0.0.1:33418/callback", "http://localhost:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "software_id": "com.example.desktop",
        "software_version": "1.4.2",
        "scope": "mcp:tools",
        "client_uri": "https://desktop.example.com",
    })
}

/// Sends `bodies` to `/register`, 20 at a time; the statuses and answers in order.
async fn register_all(s: &Server, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let mut answers = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(20) {
        let sent: Vec<_> = chunk
            .iter()
            .map(|body| {
                let request = s.http.post(format!("{}/register", s.base)).json(body);
                tokio::spawn(async move {
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    (status, response.json::<Value>().await.unwrap())
                })
            })
            .collect();
        for task in sent {
            answers.push(task.await.unwrap());
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_identical_public_registrations_make_one_client() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = MemoryStore::new();
    let s = Server::start_with(store.clone(), {
        let clock = clock.clone();
        move |b| b.clock(clock)
    })
    .await;
    let first: Value = s
        .register(&desktop_app("Desktop"))
        .await
        .json()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));

    let answers = register_all(&s, vec![desktop_app("Desktop"); 1000]).await;
    for (status, info) in &answers {
        assert_eq!(*status, 201, "{info}");
        assert_eq!(info["client_id"], first["client_id"]);
        assert_eq!(
            info["client_id_issued_at"], 1_700_000_000,
            "the original time"
        );
        assert_eq!(info, &first, "the same client information");
        assert!(info.get("client_secret").is_none());
    }
    assert!(
        format!("{store:?}").contains("clients: 1,"),
        "one client row: {store:?}"
    );

    // Anything that differs is another client: the name, or the order of the redirect URIs.
    let renamed: Value = s
        .register(&desktop_app("Desktop 2"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(renamed["client_id"], first["client_id"]);
    let mut reordered = desktop_app("Desktop");
    reordered["redirect_uris"] = json!([
        "http://localhost:33418/callback",
        "http://127.0.0.1:33418/callback"
    ]);
    let reordered: Value = s.register(&reordered).await.json().await.unwrap();
    assert_ne!(reordered["client_id"], first["client_id"]);
    // Defaults filled in: omitting what the server would fill in is the same registration.
    let mut defaults = desktop_app("Desktop");
    defaults.as_object_mut().unwrap().remove("response_types");
    let defaults: Value = s.register(&defaults).await.json().await.unwrap();
    assert_eq!(defaults["client_id"], first["client_id"]);
    assert!(format!("{store:?}").contains("clients: 3,"), "{store:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_distinct_public_registrations_are_still_rate_limited() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = MemoryStore::new();
    let s = Server::start_with(store.clone(), move |b| b.clock(clock)).await;
    let bodies = (0..1000)
        .map(|i| desktop_app(&format!("Desktop {i}")))
        .collect();
    let answers = register_all(&s, bodies).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let limited = answers
        .iter()
        .filter(|(status, e)| *status == 429 && e["error"] == "temporarily_unavailable")
        .count();
    assert_eq!(created, 60, "the default limit: 60 a minute");
    assert_eq!(limited, 940);
    assert!(format!("{store:?}").contains("clients: 60,"), "{store:?}");
    // A repeat of a stored registration is still answered while the limit holds.
    let repeat = answers.iter().find(|(status, _)| *status == 201).unwrap();
    let name = repeat.1["client_name"].as_str().unwrap();
    let again = s.register(&desktop_app(name)).await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["client_id"], repeat.1["client_id"]);
}

#[tokio::test]
async fn bad_redirect_uris_are_refused() {
    let s = Server::start(|b| b).await;
    for uris in [
        json!(["http://app.example.com/callback"]),
        json!(["https://app.example.com/callback#fragment"]),
        json!(["/callback"]),
        json!(["callback"]),
        json!(["myapp://callback"]),
        json!(["http://localhost.evil.com/callback"]),
        json!(["http://127.0.0.1@evil.com/callback"]),
        json!(["https://app.example.com/ok", "http://evil.example.com/cb"]),
        json!([]),
    ] {
        let body = json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"});
        s.refused(&body, "invalid_redirect_uri").await;
    }
    // Omitted altogether with the authorization_code grant.
    s.refused(
        &json!({"token_endpoint_auth_method": "none"}),
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn too_many_or_too_long_redirect_uris_are_refused() {
    let s = Server::start(|b| b).await;
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("https://app.example.com/cb/{i}"))
        .collect();
    let description = s
        .refused(
            &json!({"redirect_uris": eleven, "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        )
        .await;
    assert!(description.contains("10"), "{description}");
    let ten: Vec<String> = (0..10)
        .map(|i| format!("https://app.example.com/cb/{i}"))
        .collect();
    assert_eq!(
        s.register(&json!({"redirect_uris": ten, "token_endpoint_auth_method": "none"}))
            .await
            .status(),
        201
    );
    let long = format!("https://app.example.com/{}", "a".repeat(2100));
    s.refused(
        &json!({"redirect_uris": [long], "token_endpoint_auth_method": "none"}),
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn unsupported_grant_and_response_types_are_refused() {
    let s = Server::start(|b| b).await;
    let uris = json!(["https://app.example.com/cb"]);
    for body in [
        json!({"redirect_uris": uris, "grant_types": ["implicit"]}),
        json!({"redirect_uris": uris, "grant_types": ["password"]}),
        json!({"redirect_uris": uris, "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]}),
        json!({"redirect_uris": uris, "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        json!({"redirect_uris": uris, "response_types": ["token"]}),
        json!({"redirect_uris": uris, "response_types": ["code", "id_token"]}),
        json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
    ] {
        s.refused(&body, "invalid_client_metadata").await;
    }
}

#[tokio::test]
async fn unsupported_auth_methods_and_bad_display_metadata_are_refused() {
    let s = Server::start(|b| b).await;
    let uris = json!(["https://app.example.com/cb"]);
    for body in [
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_jwt"}),
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "tls_client_auth"}),
        json!({"redirect_uris": uris, "client_name": "n".repeat(201)}),
        json!({"redirect_uris": uris, "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": uris, "client_name": 42}),
        json!({"redirect_uris": "https://app.example.com/cb"}),
    ] {
        s.refused(&body, "invalid_client_metadata").await;
    }
}

#[tokio::test]
async fn non_json_bodies_are_refused() {
    let s = Server::start(|b| b).await;
    let url = format!("{}/register", s.base);
    let form = s
        .http
        .post(&url)
        .form(&[("redirect_uris", "https://app.example.com/cb")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let error: Value = form.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");

    let no_type = s
        .http
        .post(&url)
        .body(r#"{"redirect_uris":["https://app.example.com/cb"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(no_type.status(), 400);

    for body in ["not json", "[]", "{\"redirect_uris\": [", ""] {
        let response = s
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_client_metadata", "{body:?}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let s = Server::start(|b| b).await;
    let body = json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "token_endpoint_auth_method": "none",
        "padding": "x".repeat(20 * 1024),
    });
    let response = s.register(&body).await;
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
}

#[tokio::test]
async fn the_endpoint_answers_cors_preflight_and_only_post() {
    let s = Server::start(|b| b).await;
    let url = format!("{}/register", s.base);
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.status(),
        200,
        "tower-http's CorsLayer answers preflights with 200"
    );
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let get = s.http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn registration_can_be_turned_off() {
    let s = Server::start(|b| b.dynamic_registration(false)).await;
    let response =
        s.register(&json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(response.status(), 404);
}

const LOOPBACK_HTTP: [&str; 4] = [
    "http://127.0.0.1:53682/callback",
    "http://[::1]:8080/callback",
    "http://localhost:6274/oauth/callback",
    "http://localhost/callback",
];

#[tokio::test]
async fn a_web_client_with_a_loopback_http_redirect_is_refused() {
    let s = Server::start(|b| b).await;
    for uri in LOOPBACK_HTTP {
        let description = s
            .refused(
                &json!({
                    "redirect_uris": [uri],
                    "token_endpoint_auth_method": "none",
                    "application_type": "web",
                }),
                "invalid_redirect_uri",
            )
            .await;
        assert!(description.contains("native"), "{description}");
    }
    s.refused(
        &json!({
            "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1/cb"],
            "application_type": "web",
        }),
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn a_native_client_with_a_loopback_http_redirect_registers_and_its_type_is_echoed() {
    let s = Server::start(|b| b).await;
    for uri in LOOPBACK_HTTP {
        // What mcp-auth-client and the SEP-837 SDKs send.
        let response = s
            .register(&json!({
                "redirect_uris": [uri],
                "client_name": "CLI",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }))
            .await;
        assert_eq!(response.status(), 201, "{uri}");
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["application_type"], "native");
        assert_eq!(info["redirect_uris"], json!([uri]));
        let stored = s
            .server
            .store()
            .get_client(info["client_id"].as_str().unwrap())
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.metadata.application_type.as_deref(), Some("native"));
    }
}

#[tokio::test]
async fn without_application_type_a_loopback_http_redirect_registers_as_before() {
    let s = Server::start(|b| b).await;
    for uri in LOOPBACK_HTTP {
        // What MCP clients of the 2025-11-25 era (the TypeScript SDK, Claude Code) send.
        let response = s
            .register(&json!({
                "redirect_uris": [uri],
                "client_name": "Claude Code",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        assert_eq!(response.status(), 201, "{uri}");
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["redirect_uris"], json!([uri]));
        assert_eq!(
            info["application_type"], "native",
            "the kind the server inferred is recorded and echoed"
        );
    }
}

#[tokio::test]
async fn a_web_client_registers_https_redirects() {
    let s = Server::start(|b| b).await;
    for (declared, echoed) in [(json!("web"), "web"), (Value::Null, "web")] {
        let mut body = json!({"redirect_uris": ["https://app.example.com/cb"]});
        if !declared.is_null() {
            body["application_type"] = declared;
        }
        let response = s.register(&body).await;
        assert_eq!(response.status(), 201, "{body}");
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["application_type"], echoed);
    }
}

#[tokio::test]
async fn an_unknown_application_type_or_a_custom_scheme_is_refused() {
    let s = Server::start(|b| b).await;
    s.refused(
        &json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "desktop"}),
        "invalid_client_metadata",
    )
    .await;
    // MCP: every redirect URI is localhost or https, for native clients too.
    s.refused(
        &json!({
            "redirect_uris": ["com.example.app:/callback"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
        "invalid_redirect_uri",
    )
    .await;
}
