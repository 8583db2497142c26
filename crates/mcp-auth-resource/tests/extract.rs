//! The axum extractors: `Auth`, `Option<Auth>`, `RequireScope<S>` and `Auth::require`.
#![cfg(feature = "axum")]
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;

use axum::{
    Router,
    body::Body,
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use http::{
    Request, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE},
};
use http_body_util::BodyExt as _;
use mcp_auth_core::ScopeSet;
use mcp_auth_resource::{
    Auth, AuthInfo, AuthRejection, BearerAuthLayer, BearerError, BearerErrorKind,
    InsufficientScope, JsonRejection, MissingBearerLayer, ProtectedResource, RequireScope,
    RequireScopeRejection, ScopeList, TokenVerifier, VerifyError, VerifyErrorKind, scopes,
};
use tower::ServiceExt as _;

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const MISSING_LAYER: &str =
    "`BearerAuthLayer` was not found in the request extensions. Perhaps you forgot to add it?";

scopes! {
    /// One scope.
    pub Admin = "mcp:admin";
    /// Two scopes, both required.
    pub FilesRw = "files:read", "files:write";
}

/// Each token names a fixed set of granted scopes.
#[derive(Debug)]
struct ScopesAreTheToken;

impl TokenVerifier for ScopesAreTheToken {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let scopes = match token {
            "none" => "",
            "tools" => "openid mcp:tools",
            "admin" => "mcp:tools mcp:admin",
            "read" => "openid mcp:tools files:read profile",
            "rw" => "files:read files:write",
            _ => return Err(VerifyErrorKind::InvalidSignature.into()),
        };
        Ok(AuthInfo::builder()
            .subject("alice")
            .scopes(scopes.parse().unwrap())
            .build())
    }
}

fn resource() -> ProtectedResource {
    ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .scopes_supported("mcp:tools files:read".parse().unwrap())
        .build()
        .unwrap()
}

async fn whoami(auth: Auth) -> String {
    format!("{}:{}", auth.subject().unwrap_or("?"), auth.scopes())
}

async fn maybe(auth: Option<Auth>) -> String {
    auth.map_or_else(
        || "guest".to_owned(),
        |a| a.subject().unwrap_or("?").to_owned(),
    )
}

async fn admin(auth: RequireScope<Admin>) -> String {
    format!("admin:{}", auth.subject().unwrap_or("?"))
}

async fn files(auth: RequireScope<FilesRw>) -> String {
    format!("files:{}", auth.into_inner().subject().unwrap_or("?"))
}

async fn runtime(auth: Auth) -> Result<&'static str, InsufficientScope> {
    auth.require(&"files:write".parse().unwrap())?;
    Ok("written")
}

fn routes() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/maybe", get(maybe))
        .route("/admin", get(admin))
        .route("/files", get(files))
        .route("/runtime", get(runtime))
}

fn app(layer: BearerAuthLayer<ScopesAreTheToken>) -> Router {
    routes().layer(layer)
}

fn required() -> Router {
    app(BearerAuthLayer::new(ScopesAreTheToken, resource()))
}

fn optional() -> Router {
    app(BearerAuthLayer::new(ScopesAreTheToken, resource()).optional())
}

async fn call(app: Router, path: &str, token: Option<&str>) -> Response {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    app.oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: Response) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

fn challenge(response: &Response) -> &str {
    response.headers()[WWW_AUTHENTICATE].to_str().unwrap()
}

fn insufficient(scope: &str) -> String {
    format!(r#"Bearer error="insufficient_scope", scope="{scope}", resource_metadata="{PRM}""#)
}

const INSUFFICIENT_BODY: &str = r#"{"error":"insufficient_scope","error_description":"The access token does not grant the scope this request requires"}"#;

#[tokio::test]
async fn auth_gives_the_handler_the_verified_token() {
    let response = call(required(), "/whoami", Some("tools")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "alice:openid mcp:tools");
}

#[tokio::test]
async fn auth_answers_an_anonymous_request_with_the_layers_401_challenge() {
    let response = call(optional(), "/whoami", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools files:read""#)
    );
    assert!(response.headers().get(CONTENT_TYPE).is_none());
    assert!(text(response).await.is_empty());

    // The same bytes as the layer's own 401 in required mode.
    let from_layer = call(required(), "/whoami", None).await;
    assert_eq!(
        from_layer.headers()[WWW_AUTHENTICATE],
        challenge(&call(optional(), "/whoami", None).await)
    );
}

#[tokio::test]
async fn optional_auth_is_none_for_anonymous_requests_and_some_for_tokens() {
    let response = call(optional(), "/maybe", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "guest");
    let response = call(optional(), "/maybe", Some("tools")).await;
    assert_eq!(text(response).await, "alice");
    // A bad token never reaches the handler, even when `None` would be accepted.
    let response = call(optional(), "/maybe", Some("forged")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).starts_with(r#"Bearer error="invalid_token""#));
}

#[tokio::test]
async fn every_extractor_answers_500_with_a_clear_message_when_the_layer_did_not_run() {
    for path in ["/whoami", "/maybe", "/admin", "/runtime"] {
        let response = call(routes(), path, Some("admin")).await;
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(text(response).await, MISSING_LAYER, "{path}");
    }
}

#[tokio::test]
async fn an_auth_info_inserted_by_something_else_is_not_taken_for_the_layer() {
    let app = routes().layer(axum::Extension(
        AuthInfo::builder().subject("mallory").build(),
    ));
    let response = call(app, "/whoami", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn require_scope_with_one_scope_passes_when_it_is_granted() {
    let response = call(required(), "/admin", Some("admin")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "admin:alice");
}

#[tokio::test]
async fn require_scope_with_one_scope_answers_403_with_step_up_scopes() {
    let response = call(required(), "/admin", Some("tools")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Granted and relevant (`mcp:tools` is supported) first, then the new scope; `openid` is
    // neither supported nor required, so it is not asked for again.
    assert_eq!(challenge(&response), insufficient("mcp:tools mcp:admin"));
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(text(response).await, INSUFFICIENT_BODY);
}

#[tokio::test]
async fn require_scope_with_two_scopes_requires_both() {
    let response = call(required(), "/files", Some("rw")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "files:alice");

    let response = call(required(), "/files", Some("read")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Step-up: granted-relevant (`mcp:tools`, `files:read`) then the missing `files:write`;
    // `openid` and `profile` are dropped.
    assert_eq!(
        challenge(&response),
        insufficient("mcp:tools files:read files:write")
    );

    let response = call(required(), "/files", Some("none")).await;
    assert_eq!(challenge(&response), insufficient("files:read files:write"));
}

#[tokio::test]
async fn require_scope_answers_anonymous_requests_with_401() {
    let response = call(optional(), "/admin", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools files:read""#)
    );
}

#[tokio::test]
async fn runtime_require_gives_the_same_403_as_the_type_level_check() {
    let response = call(required(), "/runtime", Some("read")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        insufficient("mcp:tools files:read files:write")
    );
    assert_eq!(text(response).await, INSUFFICIENT_BODY);

    let response = call(required(), "/runtime", Some("rw")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_layers_required_scopes_are_kept_in_extractor_step_up_challenges() {
    // `mcp:tools` is required by the layer; `ops` is not in `scopes_supported`, so the step-up
    // would drop it if the layer's floor were not part of the required set.
    let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .build()
        .unwrap();
    let layer = BearerAuthLayer::new(ScopesAreTheToken, resource)
        .required_scopes("mcp:tools".parse().unwrap());
    let response = call(app(layer), "/admin", Some("tools")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(challenge(&response), insufficient("mcp:tools mcp:admin"));
}

#[tokio::test]
async fn bearer_error_renders_as_an_rfc6749_json_response_in_axum() {
    let layer =
        BearerAuthLayer::new(ScopesAreTheToken, resource()).with_rejection_response(JsonRejection);
    let response = routes()
        .layer(layer)
        .oneshot(
            Request::builder()
                .uri("/whoami")
                .header(AUTHORIZATION, "Bearer forged")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .extensions()
            .get::<BearerError>()
            .map(BearerError::kind),
        Some(BearerErrorKind::InvalidToken(
            VerifyErrorKind::InvalidSignature
        ))
    );
    let error = response.extensions().get::<BearerError>().unwrap().clone();
    assert_eq!(
        text(response).await,
        r#"{"error":"invalid_token","error_description":"The access token signature is invalid"}"#
    );

    let rendered = error.into_response();
    assert_eq!(rendered.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rendered.headers()[CONTENT_TYPE], "application/json");
    assert!(rendered.extensions().get::<BearerError>().is_some());
}

#[test]
fn rejections_display_their_message_and_expose_the_leaf_through_source() {
    let rejection = RequireScopeRejection::from(AuthRejection::from(MissingBearerLayer::default()));
    assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rejection.to_string(), MISSING_LAYER);
    assert!(
        rejection
            .source()
            .is_some_and(|s| s.is::<MissingBearerLayer>())
    );
    assert_eq!(MissingBearerLayer::default().body_text(), MISSING_LAYER);
}

#[test]
fn scope_lists_made_by_the_macro_expose_their_scopes() {
    assert_eq!(Admin::SCOPES, ["mcp:admin"]);
    assert_eq!(FilesRw::SCOPES, ["files:read", "files:write"]);
    assert_eq!(
        FilesRw::scope_set(),
        "files:read files:write".parse::<ScopeSet>().unwrap()
    );
}

#[test]
fn extractors_and_rejections_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Auth>();
    assert_send_sync::<RequireScope<Admin>>();
    assert_send_sync::<AuthRejection>();
    assert_send_sync::<RequireScopeRejection>();
}
