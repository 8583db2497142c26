//! `SessionBindingLayer`: an MCP session is usable only by the user who created it.
#![cfg(feature = "mcp")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on broken fixtures"
)]

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, UNIX_EPOCH},
};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use mcp_auth_core::ManualClock;
use mcp_auth_resource::{
    Anonymous, AuthInfo, ConfigError, SessionBinding, SessionBindingLayer, SessionBindingRejection,
    SessionBindingRejectionKind, mcp::session::ResponseFuture,
};
use tower::{Layer, Service, ServiceExt};

const ISSUER: &str = "https://auth.example.com";

/// A stand-in for an MCP Streamable HTTP server: `initialize` (no session id) opens `sess-N`,
/// a known session answers 200, an unknown one 404, `DELETE` ends a session, and
/// `x-fail: 1` makes it answer 500.
#[derive(Clone, Default)]
struct FakeMcp {
    sessions: Arc<Mutex<HashSet<String>>>,
    calls: Arc<AtomicUsize>,
}

impl FakeMcp {
    fn with_session(id: &str) -> Self {
        let server = Self::default();
        server.sessions.lock().unwrap().insert(id.to_owned());
        server
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request<String>> for FakeMcp {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<String>) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(String::new());
        let mut sessions = self.sessions.lock().unwrap();
        if req.headers().contains_key("x-fail") {
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        } else if let Some(id) = req.headers().get("mcp-session-id") {
            let id = id.to_str().unwrap();
            let known = if req.method() == Method::DELETE {
                sessions.remove(id)
            } else {
                sessions.contains(id)
            };
            if !known {
                *response.status_mut() = StatusCode::NOT_FOUND;
            }
        } else {
            let id = format!("sess-{n}");
            sessions.insert(id.clone());
            response
                .headers_mut()
                .insert("mcp-session-id", HeaderValue::from_str(&id).unwrap());
        }
        std::future::ready(Ok(response))
    }
}

fn user(sub: &str) -> AuthInfo {
    AuthInfo::builder()
        .issuer(ISSUER)
        .subject(sub)
        .client_id("client-1")
        .build()
}

fn request(method: Method, who: Option<AuthInfo>, session: Option<&str>) -> Request<String> {
    let mut req = Request::builder().method(method).uri("/mcp");
    if let Some(session) = session {
        req = req.header("mcp-session-id", session);
    }
    let mut req = req.body(String::new()).unwrap();
    match who {
        Some(info) => {
            req.extensions_mut().insert(info);
        }
        None => {
            req.extensions_mut().insert(Anonymous::default());
        }
    }
    req
}

struct Harness {
    layer: SessionBindingLayer,
    server: FakeMcp,
    service: SessionBinding<FakeMcp>,
}

impl Harness {
    fn new(layer: SessionBindingLayer, server: FakeMcp) -> Self {
        let service = layer.layer(server.clone());
        Self {
            layer,
            server,
            service,
        }
    }

    async fn send(&self, req: Request<String>) -> Response<String> {
        self.service.clone().oneshot(req).await.unwrap()
    }

    async fn post(&self, who: Option<AuthInfo>, session: Option<&str>) -> StatusCode {
        self.send(request(Method::POST, who, session))
            .await
            .status()
    }

    async fn initialize(&self, who: AuthInfo) -> String {
        let response = self.send(request(Method::POST, Some(who), None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned()
    }
}

fn harness() -> Harness {
    Harness::new(SessionBindingLayer::new(), FakeMcp::default())
}

fn rejection_kind(response: &Response<String>) -> SessionBindingRejectionKind {
    response
        .extensions()
        .get::<SessionBindingRejection>()
        .expect("a rejection in the extensions")
        .kind()
}

#[tokio::test]
async fn initialize_binds_the_new_session_to_its_creator() {
    let h = harness();
    assert_eq!(h.layer.bound_sessions(), 0);
    let session = h.initialize(user("alice")).await;
    assert_eq!(h.layer.bound_sessions(), 1);
    assert_eq!(h.service.bound_sessions(), 1);
    assert_eq!(
        h.post(Some(user("bob")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_owner_keeps_using_the_session() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    for _ in 0..3 {
        assert_eq!(
            h.post(Some(user("alice")), Some(&session)).await,
            StatusCode::OK
        );
    }
    assert_eq!(h.server.calls(), 4);
    assert_eq!(h.layer.bound_sessions(), 1);
}

#[tokio::test]
async fn another_subject_gets_404_and_the_server_never_sees_the_request() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let calls = h.server.calls();
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let response = h
            .send(request(method, Some(user("mallory")), Some(&session)))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.body().is_empty());
        assert_eq!(
            rejection_kind(&response),
            SessionBindingRejectionKind::OwnerMismatch
        );
    }
    assert_eq!(h.server.calls(), calls);
    // Mallory's DELETE did not end Alice's session or its binding.
    assert_eq!(
        h.post(Some(user("alice")), Some(&session)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_anonymous_request_on_a_bound_session_gets_404() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let calls = h.server.calls();
    let response = h.send(request(Method::POST, None, Some(&session))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rejection_kind(&response),
        SessionBindingRejectionKind::Anonymous
    );
    assert_eq!(h.server.calls(), calls);
}

#[tokio::test]
async fn a_request_without_any_auth_marker_is_anonymous_too() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let req = Request::post("/mcp")
        .header("mcp-session-id", &session)
        .body(String::new())
        .unwrap();
    assert_eq!(h.send(req).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_anonymous_initialize_binds_nothing() {
    let h = harness();
    let response = h.send(request(Method::POST, None, None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.layer.bound_sessions(), 0);
}

#[tokio::test]
async fn an_unknown_session_is_bound_to_its_first_user_when_the_server_accepts_it() {
    // The server knows a session the binder never saw (created before a restart).
    let h = Harness::new(
        SessionBindingLayer::new(),
        FakeMcp::with_session("from-before-restart"),
    );
    assert_eq!(
        h.post(Some(user("alice")), Some("from-before-restart"))
            .await,
        StatusCode::OK
    );
    assert_eq!(h.layer.bound_sessions(), 1);
    let calls = h.server.calls();
    assert_eq!(
        h.post(Some(user("bob")), Some("from-before-restart")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.server.calls(), calls);
    assert_eq!(
        h.post(Some(user("alice")), Some("from-before-restart"))
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn made_up_session_ids_that_the_server_refuses_are_not_bound() {
    let h = harness();
    for i in 0..10 {
        let id = format!("guess-{i}");
        assert_eq!(
            h.post(Some(user("mallory")), Some(&id)).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(h.layer.bound_sessions(), 0);
}

#[tokio::test]
async fn a_successful_delete_forgets_the_binding() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let response = h
        .send(request(Method::DELETE, Some(user("alice")), Some(&session)))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.layer.bound_sessions(), 0);
}

#[tokio::test]
async fn a_failed_delete_keeps_the_binding() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let mut req = request(Method::DELETE, Some(user("alice")), Some(&session));
    req.headers_mut()
        .insert("x-fail", HeaderValue::from_static("1"));
    assert_eq!(
        h.send(req).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(h.layer.bound_sessions(), 1);
    assert_eq!(
        h.post(Some(user("bob")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_idle_binding_expires_after_the_ttl_and_each_use_refreshes_it() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
    let layer = SessionBindingLayer::new()
        .idle_ttl(Duration::from_secs(3600))
        .unwrap()
        .clock(clock.clone());
    let h = Harness::new(layer, FakeMcp::default());
    let session = h.initialize(user("alice")).await;

    // Used every 59 minutes, the binding stays.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(59 * 60));
        assert_eq!(
            h.post(Some(user("alice")), Some(&session)).await,
            StatusCode::OK
        );
    }
    // A refused request does not refresh it.
    clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(
        h.post(Some(user("bob")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
    // An hour idle since Alice's last use: forgotten, so the next user is trusted on first use
    // (the server still keeps the session, which is why the TTL should cover its timeout).
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        h.post(Some(user("bob")), Some(&session)).await,
        StatusCode::OK
    );
    assert_eq!(
        h.post(Some(user("alice")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_store_never_holds_more_than_its_capacity_and_drops_the_least_recently_used() {
    let layer = SessionBindingLayer::new().capacity(2).unwrap();
    let h = Harness::new(layer, FakeMcp::default());
    let first = h.initialize(user("alice")).await;
    let second = h.initialize(user("alice")).await;
    // The first is used again; the second becomes the least recently used.
    assert_eq!(
        h.post(Some(user("alice")), Some(&first)).await,
        StatusCode::OK
    );
    let third = h.initialize(user("alice")).await;
    assert_eq!(h.layer.bound_sessions(), 2);

    for session in [&first, &third] {
        assert_eq!(
            h.post(Some(user("bob")), Some(session)).await,
            StatusCode::NOT_FOUND
        );
    }
    // The second was evicted: trusted on first use again.
    assert_eq!(
        h.post(Some(user("bob")), Some(&second)).await,
        StatusCode::OK
    );
    for _ in 0..100 {
        h.initialize(user("carol")).await;
        assert!(h.layer.bound_sessions() <= 2);
    }
}

#[tokio::test]
async fn the_owner_is_the_client_id_when_the_token_has_no_subject() {
    let h = harness();
    let service = |client_id: &str| {
        AuthInfo::builder()
            .issuer(ISSUER)
            .client_id(client_id)
            .build()
    };
    let session = h.initialize(service("robot")).await;
    assert_eq!(h.layer.bound_sessions(), 1);
    assert_eq!(
        h.post(Some(service("robot")), Some(&session)).await,
        StatusCode::OK
    );
    assert_eq!(
        h.post(Some(service("other-robot")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
    // A user whose `sub` equals the client id is still someone else.
    let user_named_robot = AuthInfo::builder().issuer(ISSUER).subject("robot").build();
    assert_eq!(
        h.post(Some(user_named_robot), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_subject_wins_over_the_client_id() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let alice_from_another_client = AuthInfo::builder()
        .issuer(ISSUER)
        .subject("alice")
        .client_id("client-2")
        .build();
    assert_eq!(
        h.post(Some(alice_from_another_client), Some(&session))
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_same_subject_from_another_issuer_is_another_owner() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let other_alice = AuthInfo::builder()
        .issuer("https://other-idp.example.com")
        .subject("alice")
        .build();
    assert_eq!(
        h.post(Some(other_alice), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
    let issuerless_alice = AuthInfo::builder().subject("alice").build();
    assert_eq!(
        h.post(Some(issuerless_alice), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_token_with_neither_subject_nor_client_id_has_no_owner() {
    let h = harness();
    let nobody = AuthInfo::builder().issuer(ISSUER).build();
    h.initialize(nobody.clone()).await;
    assert_eq!(h.layer.bound_sessions(), 0);
    let session = h.initialize(user("alice")).await;
    let response = h
        .send(request(Method::POST, Some(nobody), Some(&session)))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rejection_kind(&response),
        SessionBindingRejectionKind::Anonymous
    );
}

#[tokio::test]
async fn more_than_one_session_id_header_is_refused_with_400() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let calls = h.server.calls();
    let mut req = request(Method::POST, Some(user("alice")), Some(&session));
    req.headers_mut()
        .append("mcp-session-id", HeaderValue::from_static("sess-other"));
    let response = h.send(req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        rejection_kind(&response),
        SessionBindingRejectionKind::MultipleSessionIds
    );
    assert_eq!(h.server.calls(), calls);
}

/// Sets the request's `MCP-Protocol-Version`.
fn with_version(mut req: Request<String>, version: &'static str) -> Request<String> {
    req.headers_mut()
        .insert("mcp-protocol-version", HeaderValue::from_static(version));
    req
}

#[tokio::test]
async fn a_2026_request_passes_and_its_stale_session_id_is_removed() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    let calls = h.server.calls();
    for method in [Method::POST, Method::GET, Method::DELETE] {
        for version in ["2026-07-28", "2027-03-01", "not-a-date"] {
            let req = with_version(
                request(method.clone(), Some(user("mallory")), Some(&session)),
                version,
            );
            let response = h.send(req).await;
            // The fake server saw no session id: it treated the request as an `initialize` and
            // opened a new session (a real 2026-07-28 server would not, and would answer it).
            assert_eq!(response.status(), StatusCode::OK, "{method} {version}");
            assert_ne!(response.headers()["mcp-session-id"], session.as_str());
        }
    }
    assert_eq!(h.server.calls(), calls + 9);
    // Mallory's DELETE did not end Alice's session, and the session is still only hers.
    assert_eq!(
        h.post(Some(user("alice")), Some(&session)).await,
        StatusCode::OK
    );
    assert_eq!(
        h.post(Some(user("mallory")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_session_opened_by_a_request_with_a_2026_version_header_is_still_bound() {
    // A dual-era client may send its `initialize` with its preferred (2026-07-28) version; the
    // server answers it as 2025-11-25 and opens a session, which is bound as in rule 1.
    let h = harness();
    let req = with_version(
        request(Method::POST, Some(user("alice")), None),
        "2026-07-28",
    );
    let response = h.send(req).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.layer.bound_sessions(), 1);
    assert_eq!(
        h.post(Some(user("bob")), Some(&session)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.post(Some(user("alice")), Some(&session)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_2026_request_with_several_session_ids_or_none_is_not_refused() {
    let h = harness();
    let mut req = with_version(
        request(Method::POST, Some(user("alice")), Some("a")),
        "2026-07-28",
    );
    req.headers_mut()
        .append("mcp-session-id", HeaderValue::from_static("b"));
    assert_eq!(h.send(req).await.status(), StatusCode::OK);
    let req = with_version(request(Method::POST, None, None), "2026-07-28");
    assert_eq!(h.send(req).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_2025_or_older_version_header_keeps_the_binding_check() {
    let h = harness();
    let session = h.initialize(user("alice")).await;
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let req = with_version(
            request(Method::POST, Some(user("bob")), Some(&session)),
            version,
        );
        assert_eq!(
            h.send(req).await.status(),
            StatusCode::NOT_FOUND,
            "{version}"
        );
    }
}

#[tokio::test]
async fn clones_of_the_layer_share_one_store() {
    let layer = SessionBindingLayer::new();
    let a = Harness::new(layer.clone(), FakeMcp::default());
    let session = a.initialize(user("alice")).await;
    let mut b = layer.layer(a.server.clone());
    let response = b
        .ready()
        .await
        .unwrap()
        .call(request(Method::POST, Some(user("bob")), Some(&session)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn zero_capacity_or_ttl_is_a_config_error() {
    assert!(matches!(
        SessionBindingLayer::new().capacity(0),
        Err(ConfigError::OutOfRange { .. })
    ));
    assert!(matches!(
        SessionBindingLayer::new().idle_ttl(Duration::ZERO),
        Err(ConfigError::OutOfRange { .. })
    ));
    assert_eq!(SessionBindingLayer::DEFAULT_CAPACITY, 100_000);
    assert_eq!(
        SessionBindingLayer::DEFAULT_IDLE_TTL,
        Duration::from_secs(86_400)
    );
}

#[test]
fn debug_output_shows_settings_and_no_session_ids() {
    let layer = SessionBindingLayer::new();
    let debug = format!("{layer:?}");
    assert!(debug.contains("capacity: 100000"), "{debug}");
    assert!(debug.contains("bound_sessions: 0"), "{debug}");
}

#[test]
fn service_and_future_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    type Fut = ResponseFuture<
        Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send + Sync>>,
        String,
    >;
    assert_send::<SessionBinding<FakeMcp>>();
    assert_sync::<SessionBinding<FakeMcp>>();
    assert_send::<SessionBindingLayer>();
    assert_sync::<SessionBindingLayer>();
    assert_send::<Fut>();
    assert_sync::<Fut>();
    assert_send::<<SessionBinding<FakeMcp> as Service<Request<String>>>::Future>();
    assert_sync::<<SessionBinding<FakeMcp> as Service<Request<String>>>::Future>();
}
