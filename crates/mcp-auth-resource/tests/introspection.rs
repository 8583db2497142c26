//! `IntrospectionVerifier` against a real RFC 7662 endpoint on loopback.
#![cfg(feature = "introspection")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use mcp_auth_core::{ManualClock, ResourceId};
use mcp_auth_resource::{
    ClientAuth, ConfigError, IntrospectionVerifier, IntrospectionVerifierBuilder, TokenVerifier,
    VerifyErrorKind,
};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const RESOURCE: &str = "https://mcp.example.com/mcp";
const CLIENT_ID: &str = "rs client";
const CLIENT_SECRET: &str = "s3cr:et/+é";
/// `Basic base64("rs+client:s3cr%3Aet%2F%2B%C3%A9")`: RFC 6749 §2.3.1 form-encodes both parts.
const EXPECTED_BASIC: &str = "Basic cnMrY2xpZW50OnMzY3IlM0FldCUyRiUyQiVDMyVBOQ==";

/// How the fake authorization server answers.
#[derive(Clone, Debug)]
enum Mode {
    Normal,
    Status(StatusCode),
    Unavailable {
        retry_after: &'static str,
    },
    Garbage,
    JsonArray,
    Sleep(Duration),
    /// A body of this many bytes, with a Content-Length.
    Huge(usize),
    /// A body of this many bytes, streamed without a Content-Length.
    HugeStreamed(usize),
    Redirect,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ExpectAuth {
    Basic,
    Post,
    None,
}

#[derive(Debug)]
struct Idp {
    hits: AtomicUsize,
    mode: Mutex<Mode>,
    expect: ExpectAuth,
    /// token -> introspection response; unknown tokens are `{"active": false}`.
    tokens: Mutex<HashMap<String, Value>>,
    delay: Mutex<Duration>,
}

impl Idp {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn add(&self, token: &str, response: Value) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), response);
    }
}

async fn introspect(State(idp): State<Arc<Idp>>, headers: HeaderMap, body: String) -> Response {
    idp.hits.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    // Client authentication, exactly as configured.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let authenticated = match idp.expect {
        ExpectAuth::Basic => {
            authorization.as_deref() == Some(EXPECTED_BASIC) && !form.contains_key("client_secret")
        }
        ExpectAuth::Post => {
            authorization.is_none()
                && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
        ExpectAuth::None => authorization.is_none() && !form.contains_key("client_secret"),
    };
    if !authenticated {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}").into_response();
    }
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        form.get("token_type_hint").map(String::as_str),
        Some("access_token")
    );
    let delay = *idp.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = idp.mode.lock().unwrap().clone();
    match mode {
        Mode::Normal => {
            let token = form.get("token").cloned().unwrap_or_default();
            let response = idp
                .tokens
                .lock()
                .unwrap()
                .get(&token)
                .cloned()
                .unwrap_or_else(|| json!({"active": false}));
            axum::Json(response).into_response()
        }
        Mode::Status(status) => (status, "oops").into_response(),
        Mode::Unavailable { retry_after } => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after)],
            "later",
        )
            .into_response(),
        Mode::Garbage => (StatusCode::OK, "<html>not json</html>").into_response(),
        Mode::JsonArray => (StatusCode::OK, "[{\"active\":true}]").into_response(),
        Mode::Sleep(d) => {
            tokio::time::sleep(d).await;
            axum::Json(json!({"active": true, "aud": RESOURCE})).into_response()
        }
        Mode::Huge(n) => {
            let padding = "x".repeat(n);
            axum::Json(json!({"active": true, "aud": RESOURCE, "padding": padding})).into_response()
        }
        Mode::HugeStreamed(n) => {
            let chunks = (0..n / 1024 + 1).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap()
        }
        Mode::Redirect => (
            StatusCode::FOUND,
            [(header::LOCATION, "/introspect-elsewhere")],
        )
            .into_response(),
    }
}

async fn elsewhere(State(idp): State<Arc<Idp>>) -> Response {
    idp.hits.fetch_add(100, Ordering::SeqCst);
    axum::Json(json!({"active": true, "aud": RESOURCE})).into_response()
}

async fn start(expect: ExpectAuth) -> (Arc<Idp>, String) {
    let idp = Arc::new(Idp {
        hits: AtomicUsize::new(0),
        mode: Mutex::new(Mode::Normal),
        expect,
        tokens: Mutex::new(HashMap::new()),
        delay: Mutex::new(Duration::ZERO),
    });
    let app = Router::new()
        .route("/introspect", post(introspect))
        .route("/introspect-elsewhere", post(elsewhere).get(elsewhere))
        .with_state(Arc::clone(&idp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (idp, format!("http://{addr}/introspect"))
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn builder(endpoint: &str, clock: &ManualClock) -> IntrospectionVerifierBuilder {
    IntrospectionVerifier::builder(
        endpoint,
        ResourceId::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET),
    )
    .clock(clock.clone())
    .leeway(Duration::ZERO)
}

fn active(extra: Value) -> Value {
    let mut response = json!({
        "active": true,
        "aud": RESOURCE,
        "scope": "mcp:tools files:read",
        "sub": "user-1",
        "client_id": "client-1",
        "username": "alice",
        "exp": NOW + 3600,
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut response, extra) {
        base.extend(extra);
    }
    response
}

#[tokio::test]
async fn active_token_is_accepted_with_scopes_and_claims() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok-1", active(json!({})));
    let verifier = builder(&url, &clock()).build().unwrap();

    let info = verifier.verify("tok-1").await.unwrap();
    assert!(info.has_scope("mcp:tools"));
    assert!(info.has_scope("files:read"));
    assert_eq!(info.subject(), Some("user-1"));
    assert_eq!(info.client_id(), Some("client-1"));
    assert_eq!(info.claim("username"), Some(&json!("alice")));
    assert_eq!(info.expires_at_unix(), Some(NOW + 3600));
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn inactive_or_unknown_token_is_refused_as_inactive() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add(
        "no-active-member",
        json!({"aud": RESOURCE, "scope": "mcp:tools"}),
    );
    let verifier = builder(&url, &clock()).build().unwrap();

    let err = verifier.verify("revoked").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Inactive);
    assert!(!err.is_unavailable());
    let err = verifier.verify("no-active-member").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Inactive);
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add(
        "other",
        active(json!({"aud": "https://other.example.com/mcp"})),
    );
    idp.add("prefix", active(json!({"aud": "https://mcp.example.com"})));
    idp.add(
        "list",
        active(json!({"aud": ["https://other.example.com", RESOURCE]})),
    );
    let verifier = builder(&url, &clock()).build().unwrap();

    for token in ["other", "prefix"] {
        let err = verifier.verify(token).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Audience, "{token}");
    }
    assert!(verifier.verify("list").await.is_ok());
}

#[tokio::test]
async fn audience_trailing_slash_is_forgiven_only_for_a_bare_origin() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("slash", active(json!({"aud": "https://mcp.example.com/"})));
    idp.add("bare", active(json!({"aud": "https://MCP.example.com"})));
    idp.add(
        "path-slash",
        active(json!({"aud": "https://mcp.example.com/mcp/"})),
    );

    let origin = IntrospectionVerifier::builder(
        &url,
        ResourceId::parse("https://mcp.example.com").unwrap(),
        ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET),
    )
    .clock(clock())
    .build()
    .unwrap();
    assert!(origin.verify("slash").await.is_ok());
    assert!(origin.verify("bare").await.is_ok());

    let with_path = builder(&url, &clock()).build().unwrap();
    let err = with_path.verify("path-slash").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Audience);
}

#[tokio::test]
async fn missing_audience_is_refused_unless_allowed() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add(
        "no-aud",
        json!({"active": true, "scope": "mcp:tools", "exp": NOW + 60}),
    );

    let strict = builder(&url, &clock()).build().unwrap();
    let err = strict.verify("no-aud").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Audience);

    let lenient = builder(&url, &clock())
        .allow_missing_audience()
        .build()
        .unwrap();
    assert!(
        lenient
            .verify("no-aud")
            .await
            .unwrap()
            .has_scope("mcp:tools")
    );
}

#[tokio::test]
async fn expired_token_is_refused_even_if_the_server_says_active() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("old", active(json!({"exp": NOW - 1})));
    idp.add("edge", active(json!({"exp": NOW})));
    idp.add("future", active(json!({"nbf": NOW + 600})));
    let verifier = builder(&url, &clock()).build().unwrap();

    for token in ["old", "edge"] {
        let err = verifier.verify(token).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Expired, "{token}");
    }
    let err = verifier.verify("future").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::NotYetValid);

    // Inside the leeway, a slightly stale `exp` is tolerated (clock skew with the server).
    let lenient = builder(&url, &clock())
        .leeway(Duration::from_secs(30))
        .build()
        .unwrap();
    assert!(lenient.verify("old").await.is_ok());
}

#[tokio::test]
async fn iat_in_the_future_is_refused_even_if_the_server_says_active() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("ahead", active(json!({"iat": NOW + 3600})));
    idp.add("edge", active(json!({"iat": NOW + 60})));
    idp.add("past", active(json!({"iat": NOW - 3600})));
    let verifier = builder(&url, &clock())
        .leeway(Duration::from_secs(60))
        .build()
        .unwrap();

    let err = verifier.verify("ahead").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::NotYetValid);
    assert!(!err.is_unavailable());
    assert_eq!(
        verifier.verify("edge").await.unwrap().issued_at_unix(),
        Some(NOW + 60)
    );
    assert_eq!(
        verifier.verify("past").await.unwrap().issued_at_unix(),
        Some(NOW - 3600)
    );
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("good-iss", active(json!({"iss": "https://as.example.com"})));
    idp.add(
        "bad-iss",
        active(json!({"iss": "https://evil.example.com"})),
    );
    let verifier = builder(&url, &clock())
        .issuer("https://as.example.com")
        .build()
        .unwrap();

    assert_eq!(
        verifier.verify("good-iss").await.unwrap().issuer(),
        Some("https://as.example.com")
    );
    let err = verifier.verify("bad-iss").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Issuer);
}

#[tokio::test]
async fn client_secret_basic_is_sent_form_encoded() {
    // The server answers 401 unless the Authorization header is exactly right.
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    let verifier = builder(&url, &clock()).build().unwrap();
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn client_secret_post_is_sent_in_the_body() {
    let (idp, url) = start(ExpectAuth::Post).await;
    idp.add("tok", active(json!({})));
    let verifier = IntrospectionVerifier::builder(
        &url,
        ResourceId::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_post(CLIENT_ID, CLIENT_SECRET),
    )
    .clock(clock())
    .build()
    .unwrap();
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn no_client_auth_sends_no_credentials() {
    let (idp, url) = start(ExpectAuth::None).await;
    idp.add("tok", active(json!({})));
    let verifier = IntrospectionVerifier::builder(
        &url,
        ResourceId::parse(RESOURCE).unwrap(),
        ClientAuth::none(),
    )
    .clock(clock())
    .build()
    .unwrap();
    assert!(verifier.verify("tok").await.is_ok());
}

#[tokio::test]
async fn rejected_resource_server_credentials_are_unavailable_not_401() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    let verifier = IntrospectionVerifier::builder(
        &url,
        ResourceId::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_basic(CLIENT_ID, "wrong"),
    )
    .clock(clock())
    .build()
    .unwrap();
    let err = verifier.verify("tok").await.unwrap_err();
    assert!(err.is_unavailable());
    // The cause is kept for logs, and it never contains the token or the secret.
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("401"), "{cause}");
    assert!(
        !cause.contains("tok") && !cause.contains("wrong"),
        "{cause}"
    );
}

#[tokio::test]
async fn repeated_verifications_make_one_introspection_call() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    let clock = clock();
    let verifier = builder(&url, &clock).build().unwrap();

    assert!(verifier.verify_cached("tok").is_none());
    for _ in 0..50 {
        assert!(verifier.verify("tok").await.unwrap().has_scope("mcp:tools"));
    }
    // The bearer layer's synchronous fast path answers from the cache too.
    assert!(verifier.verify_cached("tok").unwrap().is_ok());
    clock.advance(Duration::from_secs(59));
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(idp.hits(), 1);

    // After the cache TTL (default 60 s) the server is asked again.
    clock.advance(Duration::from_secs(1));
    assert!(verifier.verify_cached("tok").is_none());
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_new_token_share_one_call() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    *idp.delay.lock().unwrap() = Duration::from_millis(100);
    let verifier = builder(&url, &clock()).build().unwrap();

    let calls = (0..20).map(|_| verifier.verify("tok"));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn cache_entry_never_outlives_exp() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("short", active(json!({"exp": NOW + 30})));
    let clock = clock();
    let verifier = builder(&url, &clock)
        .cache_ttl(Duration::from_secs(600))
        .build()
        .unwrap();

    assert!(verifier.verify("short").await.is_ok());
    clock.advance(Duration::from_secs(29));
    assert!(verifier.verify_cached("short").unwrap().is_ok());
    assert_eq!(idp.hits(), 1);

    // At `exp` the cached answer is gone; the server is asked again and the token is expired.
    clock.advance(Duration::from_secs(1));
    assert!(verifier.verify_cached("short").is_none());
    let err = verifier.verify("short").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Expired);
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn inactive_answers_are_cached_briefly() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    let clock = clock();
    let verifier = builder(&url, &clock).build().unwrap();

    for _ in 0..5 {
        let err = verifier.verify("revoked").await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Inactive);
    }
    assert_eq!(
        verifier
            .verify_cached("revoked")
            .unwrap()
            .unwrap_err()
            .kind(),
        VerifyErrorKind::Inactive
    );
    assert_eq!(idp.hits(), 1);

    // After the negative TTL (default 10 s), the server is asked again: here it now says active.
    clock.advance(Duration::from_secs(10));
    idp.add("revoked", active(json!({})));
    assert!(verifier.verify("revoked").await.is_ok());
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn negative_cache_can_be_disabled() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    let verifier = builder(&url, &clock())
        .negative_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(verifier.verify("revoked").await.is_err());
    }
    assert_eq!(idp.hits(), 3);
}

#[tokio::test]
async fn cache_can_be_disabled() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    let verifier = builder(&url, &clock()).cache_capacity(0).build().unwrap();
    for _ in 0..3 {
        assert!(verifier.verify("tok").await.is_ok());
    }
    assert!(verifier.verify_cached("tok").is_none());
    assert_eq!(idp.hits(), 3);
}

#[tokio::test]
async fn endpoint_down_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let verifier = builder(&url, &clock()).build().unwrap();

    let err = verifier.verify("tok").await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    assert!(err.retry_after().is_some());
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("unreachable"), "{source}");
}

#[tokio::test]
async fn failing_endpoint_answers_are_unavailable_never_401() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    let verifier = builder(&url, &clock())
        .max_response_size(4096)
        .build()
        .unwrap();

    let modes = [
        (Mode::Status(StatusCode::INTERNAL_SERVER_ERROR), "HTTP 500"),
        (Mode::Status(StatusCode::BAD_GATEWAY), "HTTP 502"),
        (Mode::Status(StatusCode::BAD_REQUEST), "HTTP 400"),
        (
            Mode::Status(StatusCode::FORBIDDEN),
            "credentials (HTTP 403)",
        ),
        (Mode::Status(StatusCode::NOT_FOUND), "HTTP 404"),
        (Mode::Garbage, "not a JSON object"),
        (Mode::JsonArray, "not a JSON object"),
        (Mode::Huge(8 * 1024), "too large"),
        (Mode::HugeStreamed(8 * 1024), "too large"),
        (Mode::Redirect, "HTTP 302"),
    ];
    for (mode, cause) in modes {
        idp.set_mode(mode.clone());
        let err = verifier.verify("tok").await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Unavailable, "{mode:?}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains(cause), "{mode:?}: {source}");
    }
    // The redirect was not followed (following it would add 100 hits).
    assert!(idp.hits() < 100);
}

#[tokio::test]
async fn retry_after_from_the_server_is_passed_on() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.set_mode(Mode::Unavailable { retry_after: "7" });
    let verifier = builder(&url, &clock()).build().unwrap();
    let err = verifier.verify("tok").await.unwrap_err();
    assert!(err.is_unavailable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn slow_endpoint_times_out_as_unavailable() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.set_mode(Mode::Sleep(Duration::from_secs(5)));
    let verifier = builder(&url, &clock())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = verifier.verify("tok").await.unwrap_err();
    assert!(err.is_unavailable());
    assert!(started.elapsed() < Duration::from_secs(3));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("timed out"), "{source}");
}

#[tokio::test]
async fn unavailable_is_not_cached() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    idp.add("tok", active(json!({})));
    idp.set_mode(Mode::Status(StatusCode::INTERNAL_SERVER_ERROR));
    let verifier = builder(&url, &clock()).build().unwrap();

    assert!(verifier.verify("tok").await.unwrap_err().is_unavailable());
    assert!(verifier.verify_cached("tok").is_none());
    idp.set_mode(Mode::Normal);
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn oversized_or_empty_token_is_malformed_without_a_call() {
    let (idp, url) = start(ExpectAuth::Basic).await;
    let verifier = builder(&url, &clock()).build().unwrap();
    for token in [String::new(), "a".repeat(20 * 1024)] {
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Malformed);
    }
    assert_eq!(idp.hits(), 0);
}

#[test]
fn builder_refuses_bad_settings() {
    let build = |url: &str| {
        IntrospectionVerifier::builder(
            url,
            ResourceId::parse(RESOURCE).unwrap(),
            ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET),
        )
    };
    assert!(matches!(
        build("http://as.example.com/introspect").build(),
        Err(ConfigError::InsecureUrl { .. })
    ));
    assert!(matches!(
        build("not a url").build(),
        Err(ConfigError::InvalidUrl { .. })
    ));
    assert!(matches!(
        build("https://as.example.com/introspect")
            .timeout(Duration::ZERO)
            .build(),
        Err(ConfigError::OutOfRange { .. })
    ));
    assert!(matches!(
        build("https://as.example.com/introspect")
            .max_response_size(0)
            .build(),
        Err(ConfigError::OutOfRange { .. })
    ));
    assert!(build("https://as.example.com/introspect").build().is_ok());
    assert!(build("http://localhost:8080/introspect").build().is_ok());
    assert!(build("http://[::1]:8080/introspect").build().is_ok());
}

#[test]
fn debug_output_never_contains_the_client_secret() {
    let verifier = IntrospectionVerifier::builder(
        "https://as.example.com/introspect",
        ResourceId::parse(RESOURCE).unwrap(),
        ClientAuth::client_secret_basic(CLIENT_ID, "hunter2-secret"),
    );
    let printed = format!("{verifier:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    let printed = format!("{:?}", verifier.build().unwrap());
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("REDACTED"), "{printed}");
}
