//! The bearer layer: every row of the response table, byte for byte.
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{
    HeaderValue, Request, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE},
};
use http_body_util::{BodyExt as _, Full};
use mcp_auth_resource::{
    Anonymous, AuthInfo, BearerAuth, BearerAuthLayer, BearerError, BearerErrorKind,
    InvalidRequestKind, JsonRejection, ProtectedResource, TokenVerifier, VerifyError,
    VerifyErrorKind, bearer::ResponseFuture,
};
use tower::{Layer as _, Service, ServiceBuilder, ServiceExt as _, service_fn};

type Body = Full<Bytes>;

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A verifier with a fixed table of tokens. `verify` yields once, so a request that needs it is
/// not ready on its first poll; `verify_cached` answers two tokens at once.
#[derive(Debug, Default)]
struct TestVerifier {
    verify_calls: AtomicUsize,
    cached_calls: AtomicUsize,
}

fn alice() -> AuthInfo {
    AuthInfo::builder()
        .subject("alice")
        .client_id("client-1")
        .jwt_id("jti-1")
        .scopes("mcp:tools openid".parse().unwrap())
        .build()
}

impl TokenVerifier for TestVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        self.verify_calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        match token {
            "good" | "padded==" => Ok(alice()),
            "admin" => Ok(AuthInfo::builder()
                .subject("root")
                .scopes("mcp:tools mcp:admin".parse().unwrap())
                .build()),
            "expired" => Err(VerifyErrorKind::Expired.into()),
            "audience" => Err(VerifyErrorKind::Audience.into()),
            "issuer" => Err(VerifyErrorKind::Issuer.into()),
            "signature" => Err(VerifyErrorKind::InvalidSignature.into()),
            "inactive" => Err(VerifyErrorKind::Inactive.into()),
            "down" => Err(VerifyError::unavailable(None)),
            "down-hint" => Err(VerifyError::unavailable(Some(Duration::from_millis(2_500)))),
            _ => Err(VerifyErrorKind::Malformed.into()),
        }
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        self.cached_calls.fetch_add(1, Ordering::SeqCst);
        match token {
            "cached" => Some(Ok(alice())),
            "cached-expired" => Some(Err(VerifyErrorKind::Expired.into())),
            "cached-down" => Some(Err(VerifyError::unavailable(None))),
            _ => None,
        }
    }
}

fn resource() -> ProtectedResource {
    ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap()
}

/// Echoes who called: `x-subject` for an authenticated request, `x-anonymous` for an anonymous
/// one. Its future is ready at once.
fn echo() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ Sync {
    service_fn(|req: Request<Body>| async move {
        let mut response = Response::new(Body::from("ok"));
        if let Some(info) = req.extensions().get::<AuthInfo>() {
            let subject = info.subject().unwrap_or("").to_owned();
            response
                .headers_mut()
                .insert("x-subject", HeaderValue::try_from(subject).unwrap());
        }
        if req.extensions().get::<Anonymous>().is_some() {
            response
                .headers_mut()
                .insert("x-anonymous", HeaderValue::from_static("1"));
        }
        Ok::<_, Infallible>(response)
    })
}

fn request(auth: &[&str]) -> Request<Body> {
    request_to("/mcp", auth)
}

fn request_to(uri: &str, auth: &[&str]) -> Request<Body> {
    let mut builder = Request::builder().method("POST").uri(uri);
    for value in auth {
        builder = builder.header(AUTHORIZATION, *value);
    }
    builder.body(Body::default()).unwrap()
}

async fn send(layer: BearerAuthLayer<Arc<TestVerifier>>, req: Request<Body>) -> Response<Body> {
    layer.layer(echo()).oneshot(req).await.unwrap()
}

fn layer() -> (BearerAuthLayer<Arc<TestVerifier>>, Arc<TestVerifier>) {
    let verifier = Arc::new(TestVerifier::default());
    (
        BearerAuthLayer::new(Arc::clone(&verifier), resource()),
        verifier,
    )
}

fn challenge(response: &Response<Body>) -> &str {
    response.headers()[WWW_AUTHENTICATE].to_str().unwrap()
}

fn kind(response: &Response<Body>) -> BearerErrorKind {
    response
        .extensions()
        .get::<BearerError>()
        .expect("the layer attaches its error to every rejection")
        .kind()
}

async fn body(response: Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

fn invalid_request(description: &str) -> String {
    format!(
        r#"Bearer error="invalid_request", error_description="{description}", resource_metadata="{PRM}""#
    )
}

fn invalid_token(description: &str) -> String {
    format!(
        r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{PRM}""#
    )
}

#[tokio::test]
async fn request_without_credentials_gets_401_with_resource_metadata_and_scope_but_no_error() {
    let (layer, verifier) = layer();
    let response = send(layer, request(&[])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools""#)
    );
    assert_eq!(kind(&response), BearerErrorKind::MissingToken);
    assert_eq!(response.headers().len(), 1, "only WWW-Authenticate");
    assert!(body(response).await.is_empty());
    assert_eq!(verifier.cached_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_token_challenge_omits_scope_when_the_resource_names_none() {
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap();
    let layer = BearerAuthLayer::new(Arc::new(TestVerifier::default()), resource);
    let response = send(layer, request(&[])).await;
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer resource_metadata="{PRM}""#)
    );
}

#[tokio::test]
async fn access_token_query_parameter_is_400_even_when_a_valid_header_is_present_too() {
    let (layer, verifier) = layer();
    let response = send(
        layer.clone(),
        request_to("/mcp?x=1&access_token=good", &["Bearer good"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        challenge(&response),
        invalid_request(
            "The access token must be sent in the Authorization header, not in the URI query"
        )
    );
    assert_eq!(
        kind(&response),
        BearerErrorKind::InvalidRequest(InvalidRequestKind::TokenInQuery)
    );

    // Without a header it is still 400, not "no credentials".
    let response = send(layer, request_to("/mcp?access_token=good", &[])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn two_authorization_headers_are_400_invalid_request() {
    let (layer, verifier) = layer();
    let response = send(layer, request(&["Bearer good", "Bearer good"])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        challenge(&response),
        invalid_request("The request has more than one Authorization header")
    );
    assert_eq!(
        kind(&response),
        BearerErrorKind::InvalidRequest(InvalidRequestKind::DuplicateAuthorization)
    );
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn basic_and_other_schemes_are_400_invalid_request() {
    for value in ["Basic dXNlcjpwYXNz", "Basic", "DPoP abc", "Token good"] {
        let (layer, _) = layer();
        let response = send(layer, request(&[value])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value}");
        assert_eq!(
            challenge(&response),
            invalid_request("Only the Bearer authorization scheme is supported"),
            "{value}"
        );
        assert_eq!(
            kind(&response),
            BearerErrorKind::InvalidRequest(InvalidRequestKind::UnsupportedScheme)
        );
    }
}

#[tokio::test]
async fn empty_header_and_bearer_without_a_token_are_400_invalid_request() {
    for value in ["", "Bearer", "Bearer ", "bearer   "] {
        let (layer, _) = layer();
        let response = send(layer, request(&[value])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(
            challenge(&response),
            invalid_request("The Authorization header has no bearer token"),
            "{value:?}"
        );
        assert_eq!(
            kind(&response),
            BearerErrorKind::InvalidRequest(InvalidRequestKind::EmptyCredentials)
        );
    }
}

#[tokio::test]
async fn token_that_is_not_a_b64token_is_401_invalid_token_and_never_reaches_the_verifier() {
    let oversized = format!("Bearer {}", "a".repeat(16 * 1024 + 1));
    for value in [
        "Bearer a b",
        "Bearer a,b",
        "Bearer \"quoted\"",
        "Bearer =abc",
        oversized.as_str(),
    ] {
        let (layer, verifier) = layer();
        let response = send(layer, request(&[value])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&response),
            invalid_token("The access token is malformed")
        );
        assert_eq!(
            kind(&response),
            BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed)
        );
        assert_eq!(verifier.cached_calls.load(Ordering::SeqCst), 0);
        assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn rejected_tokens_get_401_invalid_token_with_a_fixed_description_per_kind() {
    let table = [
        (
            "expired",
            VerifyErrorKind::Expired,
            "The access token has expired",
        ),
        (
            "audience",
            VerifyErrorKind::Audience,
            "The access token was not issued for this resource",
        ),
        (
            "issuer",
            VerifyErrorKind::Issuer,
            "The access token was issued by an untrusted issuer",
        ),
        (
            "signature",
            VerifyErrorKind::InvalidSignature,
            "The access token signature is invalid",
        ),
        (
            "inactive",
            VerifyErrorKind::Inactive,
            "The access token is not active",
        ),
        (
            "unknown",
            VerifyErrorKind::Malformed,
            "The access token is malformed",
        ),
    ];
    for (token, verify_kind, description) in table {
        let (layer, _) = layer();
        let response = send(layer, request(&[&format!("Bearer {token}")])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(challenge(&response), invalid_token(description), "{token}");
        assert_eq!(kind(&response), BearerErrorKind::InvalidToken(verify_kind));
        assert!(body(response).await.is_empty());
    }
}

#[tokio::test]
async fn challenges_are_byte_for_byte_identical_across_layers_and_requests() {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (layer, _) = layer();
        for auth in [
            &[][..],
            &["Bearer expired"][..],
            &["Basic x"][..],
            &["Bearer a b"][..],
        ] {
            let response = send(layer.clone(), request(auth)).await;
            seen.push(response.headers()[WWW_AUTHENTICATE].clone());
        }
    }
    assert_eq!(seen[0..4], seen[4..8]);
    assert_eq!(seen[0..4], seen[8..12]);
}

#[tokio::test]
async fn unavailable_verifier_gets_503_with_retry_after_and_no_challenge() {
    let (layer, _) = layer();
    let response = send(layer, request(&["Bearer down"])).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "5");
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(kind(&response), BearerErrorKind::Unavailable);
    let error = response.extensions().get::<BearerError>().unwrap();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(5)));
    assert!(error.challenge().is_none());
}

#[tokio::test]
async fn retry_after_uses_the_verifiers_hint_rounded_up_then_the_layers_setting() {
    let (layer, _) = layer();
    let response = send(layer.clone(), request(&["Bearer down-hint"])).await;
    assert_eq!(response.headers()[RETRY_AFTER], "3");

    let layer = layer.retry_after(Duration::from_secs(30));
    let response = send(layer.clone(), request(&["Bearer down"])).await;
    assert_eq!(response.headers()[RETRY_AFTER], "30");

    let layer = layer.retry_after(Duration::ZERO);
    let response = send(layer, request(&["Bearer down"])).await;
    assert_eq!(
        response.headers()[RETRY_AFTER],
        "1",
        "never less than a second"
    );
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    for value in ["Bearer good", "bearer good", "BEARER good", "bEaReR good"] {
        let (layer, _) = layer();
        let response = send(layer, request(&[value])).await;
        assert_eq!(response.status(), StatusCode::OK, "{value}");
        assert_eq!(response.headers()["x-subject"], "alice");
    }
}

#[tokio::test]
async fn runs_of_spaces_or_tabs_between_scheme_and_token_are_tolerated() {
    for value in [
        "Bearer   good",
        "Bearer\tgood",
        "Bearer good  ",
        "Bearer padded==",
    ] {
        let (layer, _) = layer();
        let response = send(layer, request(&[value])).await;
        assert_eq!(response.status(), StatusCode::OK, "{value:?}");
    }
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_auth_info_in_the_extensions() {
    let (layer, verifier) = layer();
    let response = send(layer, request(&["Bearer good"])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-subject"], "alice");
    assert!(response.headers().get("x-anonymous").is_none());
    assert!(response.extensions().get::<BearerError>().is_none());
    assert_eq!(verifier.cached_calls.load(Ordering::SeqCst), 1);
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn verify_cached_hit_calls_the_inner_service_directly_without_verify() {
    let (layer, verifier) = layer();
    let mut service = layer.layer(echo());

    // The cached path completes on the first poll: no verification future in between.
    let future = service
        .ready()
        .await
        .unwrap()
        .call(request(&["Bearer cached"]));
    let response = future.now_or_never().expect("ready at once").unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-subject"], "alice");
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 0);

    // The uncached path waits for `verify` (which yields once).
    let future = service
        .ready()
        .await
        .unwrap()
        .call(request(&["Bearer good"]));
    assert!(future.now_or_never().is_none());
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cached_rejections_are_answered_without_verify() {
    let (layer, verifier) = layer();
    let response = send(layer.clone(), request(&["Bearer cached-expired"])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        invalid_token("The access token has expired")
    );
    let response = send(layer, request(&["Bearer cached-down"])).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "5");
    assert_eq!(verifier.verify_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn optional_mode_lets_requests_without_credentials_through_as_anonymous() {
    let (layer, _) = layer();
    let response = send(layer.optional(), request(&[])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-anonymous"], "1");
    assert!(response.headers().get("x-subject").is_none());
}

#[tokio::test]
async fn optional_mode_still_rejects_bad_tokens_and_malformed_requests() {
    let (layer, _) = layer();
    let layer = layer.optional();
    let response = send(layer.clone(), request(&["Bearer expired"])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        invalid_token("The access token has expired")
    );
    let response = send(layer.clone(), request(&["Basic x"])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(layer.clone(), request_to("/mcp?access_token=x", &[])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(layer.clone(), request(&["Bearer down"])).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = send(layer, request(&["Bearer good"])).await;
    assert_eq!(response.headers()["x-subject"], "alice");
}

#[tokio::test]
async fn required_scopes_reject_tokens_without_them_with_403_and_step_up_scopes() {
    let (layer, _) = layer();
    let layer = layer.required_scopes("mcp:admin".parse().unwrap());
    // Through `verify`.
    let response = send(layer.clone(), request(&["Bearer good"])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{PRM}""#
        )
    );
    assert_eq!(kind(&response), BearerErrorKind::InsufficientScope);
    // Through `verify_cached`: the same answer.
    let cached = send(layer.clone(), request(&["Bearer cached"])).await;
    assert_eq!(cached.status(), StatusCode::FORBIDDEN);
    assert_eq!(challenge(&cached), challenge(&response));
    // A token with the scope passes.
    let response = send(layer.clone(), request(&["Bearer admin"])).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Anonymous requests of an optional layer are not affected.
    let response = send(layer.optional(), request(&[])).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn json_rejection_sends_rfc6749_bodies_except_for_missing_credentials() {
    let (layer, _) = layer();
    let layer = layer.with_rejection_response(JsonRejection);

    let response = layer
        .layer(echo())
        .oneshot(request(&["Bearer expired"]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        challenge(&response),
        invalid_token("The access token has expired")
    );
    assert_eq!(
        body(response).await,
        r#"{"error":"invalid_token","error_description":"The access token has expired"}"#
    );

    let response = layer
        .layer(echo())
        .oneshot(request(&["Bearer down"]))
        .await
        .unwrap();
    assert_eq!(
        body(response).await,
        r#"{"error":"temporarily_unavailable","error_description":"The token could not be verified now"}"#
    );

    let response = layer.layer(echo()).oneshot(request(&[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(CONTENT_TYPE).is_none());
    assert!(body(response).await.is_empty());
}

#[tokio::test]
async fn custom_rejection_response_keeps_the_error_in_the_extensions() {
    let (layer, _) = layer();
    let layer = layer.with_rejection_response(|error: &BearerError| {
        error.to_response(Body::from(format!("denied: {error}")))
    });
    let response = layer
        .layer(echo())
        .oneshot(request(&["Bearer expired"]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        invalid_token("The access token has expired")
    );
    assert_eq!(
        kind(&response),
        BearerErrorKind::InvalidToken(VerifyErrorKind::Expired)
    );
    assert_eq!(body(response).await, "denied: The access token has expired");
}

/// An inner service that must be made ready before each call; its clones start not ready.
#[derive(Debug, Default)]
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        Self { ready: false }
    }
}

impl Service<Request<Body>> for MustBeReady {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        std::future::ready(Ok(Response::new(Body::from("ok"))))
    }
}

#[tokio::test]
async fn asynchronous_verification_calls_the_inner_service_that_poll_ready_reserved() {
    let (layer, _) = layer();
    let mut service = layer.layer(MustBeReady::default());
    for token in ["Bearer good", "Bearer cached", "Bearer good"] {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request(&[token]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{token}");
    }
}

#[tokio::test]
async fn service_builder_and_service_constructor_give_the_same_layer() {
    let verifier = Arc::new(TestVerifier::default());
    let service = ServiceBuilder::new()
        .layer(BearerAuth::layer(Arc::clone(&verifier), resource()))
        .service(echo());
    let response = service.oneshot(request(&["Bearer good"])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let service = BearerAuth::new(echo(), verifier, resource());
    let response = service.oneshot(request(&[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn service_and_layer_are_send_and_sync_and_the_future_is_send() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    type Inner = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;
    assert_send::<BearerAuthLayer<TestVerifier>>();
    assert_sync::<BearerAuthLayer<TestVerifier>>();
    assert_send::<BearerAuth<Inner, TestVerifier>>();
    assert_sync::<BearerAuth<Inner, TestVerifier>>();
    assert_send::<ResponseFuture<Inner, Body>>();
    assert_send::<BearerError>();
    assert_sync::<BearerError>();
}

#[test]
fn bearer_error_kinds_map_to_their_status_and_error_code() {
    use mcp_auth_core::error::ErrorCode;
    let table = [
        (BearerErrorKind::MissingToken, 401, None),
        (
            BearerErrorKind::InvalidRequest(InvalidRequestKind::TokenInQuery),
            400,
            Some(ErrorCode::InvalidRequest),
        ),
        (
            BearerErrorKind::InvalidToken(VerifyErrorKind::Expired),
            401,
            Some(ErrorCode::InvalidToken),
        ),
        (
            BearerErrorKind::InsufficientScope,
            403,
            Some(ErrorCode::InsufficientScope),
        ),
        (
            BearerErrorKind::Unavailable,
            503,
            Some(ErrorCode::TemporarilyUnavailable),
        ),
    ];
    for (kind, status, code) in table {
        assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        assert_eq!(kind.error_code(), code, "{kind:?}");
    }
}

#[cfg(feature = "tracing")]
#[tokio::test]
async fn decisions_are_logged_with_the_subject_but_never_the_token() {
    use std::io;

    // One global subscriber for the whole test binary: with a thread-local (`set_default`) one,
    // a callsite first hit by a parallel test thread can be cached as "never interested" and the
    // event is lost. Events are formatted on the emitting thread, so the writer records only on a
    // thread that asked for it.
    thread_local! {
        static CAPTURE: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
    }
    struct ThreadCapture;
    impl io::Write for ThreadCapture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(v) = c.borrow_mut().as_mut() {
                    v.extend_from_slice(buf);
                }
            });
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| ThreadCapture)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));

    let (layer, _) = layer();
    for auth in [
        "Bearer cached",
        "Bearer good",
        "Bearer expired",
        "Bearer down",
    ] {
        send(layer.clone(), request(&[auth])).await;
    }
    send(
        layer.clone(),
        request_to("/mcp?access_token=querysecret", &[]),
    )
    .await;
    let logs =
        String::from_utf8(CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default()).unwrap();
    assert!(logs.contains("bearer token accepted"), "{logs}");
    assert!(logs.contains("alice") && logs.contains("jti-1"), "{logs}");
    assert!(logs.contains("token verifier unavailable"), "{logs}");
    assert!(logs.contains("InvalidToken(Expired)"), "{logs}");
    for secret in ["Bearer", "good", "querysecret"] {
        assert!(!logs.contains(secret), "{secret:?} leaked into: {logs}");
    }
}

#[tokio::test]
async fn the_subject_goes_into_the_extensions_alone_and_an_anonymous_request_carries_none() {
    // What mcp-auth-server's upstream token vault reads (it does not depend on this crate).
    let core_subject = service_fn(|req: Request<Body>| async move {
        let subject = req
            .extensions()
            .get::<mcp_auth_core::Subject>()
            .map_or("-", mcp_auth_core::Subject::as_str)
            .to_owned();
        Ok::<_, Infallible>(Response::new(Body::from(subject)))
    });
    let (layer, _) = layer();
    let layer = layer.with_subject_extension(true);
    for token in ["Bearer good", "Bearer cached"] {
        let response = layer
            .clone()
            .layer(core_subject)
            .oneshot(request(&[token]))
            .await
            .unwrap();
        assert_eq!(body(response).await, "alice", "{token}");
    }
    // A subject planted before the layer never survives an anonymous pass.
    let mut planted = request(&[]);
    planted
        .extensions_mut()
        .insert(mcp_auth_core::Subject::new("mallory"));
    let response = layer
        .optional()
        .layer(core_subject)
        .oneshot(planted)
        .await
        .unwrap();
    assert_eq!(body(response).await, "-");
}
