//! `mcp-auth-client` against `mcp-auth-server` and `mcp-auth-resource`, all real, over loopback:
//! the client's first request is refused with a 401, it discovers the authorization server from
//! the resource's metadata, registers dynamically, authorizes (headless browser, headless
//! login), retries with its token; a write then gets a 403 `insufficient_scope`, the client
//! steps up to the union of scopes and retries; an expired token is refreshed (rotated) without
//! a new authorization.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod outbound;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{Request, StatusCode};
use mcp_auth_client::HeadlessBrowser;
use mcp_auth_client::{OAuthLayer, TokenManager};
use mcp_auth_core::{Clock, ManualClock, ScopeSet, Secret, SystemClock};
use mcp_auth_resource::Auth;
use mcp_auth_resource::Either;
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use mcp_auth_resource::{ClientAuth, IntrospectionVerifier};
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::login::HeadlessLogin;
use tower::{Service, ServiceBuilder, ServiceExt};

const INTROSPECT_ID: &str = "resource-server";
const INTROSPECT_SECRET: &str = "an-introspection-secret-for-the-e2e-test";

/// Either verifier behind one layer type.
type Verifier = Either<JwtVerifier, IntrospectionVerifier>;

struct Stack {
    url: String,
    token_requests: Arc<AtomicUsize>,
}

/// One origin: the authorization server, the resource metadata, and `/mcp` behind the bearer
/// layer. `/mcp` answers "read" with `notes:read` and "write" only with `notes:write`.
/// How the resource server validates tokens.
#[derive(Clone, Copy)]
enum Validation {
    /// JWT, keys discovered from the authorization server's metadata.
    Jwt,
    /// RFC 7662 introspection at the authorization server, with resource-server credentials.
    Introspection,
}

async fn stack(validation: Validation) -> Stack {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/mcp");
    let server = AuthorizationServer::builder(&base)
        .resource(&url)
        .scopes(["notes:read"])
        .unadvertised_scopes(["notes:write"])
        .login(HeadlessLogin::new("alice"))
        .introspection_client(INTROSPECT_ID, &Secret::new(INTROSPECT_SECRET))
        .build()
        .await
        .unwrap();
    let resource = ProtectedResource::builder(&url)
        .authorization_server(&base)
        .scopes_supported("notes:read".parse().unwrap())
        .build()
        .unwrap();
    let verifier: Verifier = match validation {
        Validation::Jwt => Either::Left(
            JwtVerifier::for_resource(&base, &resource)
                .discover_jwks()
                .build()
                .unwrap(),
        ),
        Validation::Introspection => Either::Right(
            IntrospectionVerifier::builder(
                format!("{base}/introspect"),
                resource.resource().clone(),
                ClientAuth::client_secret_basic(INTROSPECT_ID, INTROSPECT_SECRET),
            )
            .issuer(&base)
            .build()
            .unwrap(),
        ),
    };
    let mcp = Router::new()
        .route(
            "/mcp",
            post(|auth: Auth, body: String| async move {
                if body == "write"
                    && let Err(step_up) = auth.require(&ScopeSet::parse("notes:write").unwrap())
                {
                    return step_up.into_response();
                }
                format!(
                    "{body} ok for {} with {}",
                    auth.subject().unwrap_or("?"),
                    auth.scopes()
                )
                .into_response()
            }),
        )
        .layer(BearerAuthLayer::new(verifier, resource.clone()));
    let token_requests = Arc::new(AtomicUsize::new(0));
    let counter = token_requests.clone();
    let app = Router::new()
        .merge(server.router())
        .merge(resource.metadata_router())
        .merge(mcp)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    if req.uri().path() == "/token" {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    next.run(req).await
                }
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stack {
        url,
        token_requests,
    }
}

async fn send<S>(client: &S, url: &str, body: &str) -> (StatusCode, String)
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    let request = Request::post(url)
        .header("content-type", "text/plain")
        .body(body.to_owned())
        .unwrap();
    let response = client.clone().oneshot(request).await.unwrap();
    (response.status(), response.into_body())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_discovers_registers_authorizes_steps_up_and_refreshes_against_our_server() {
    let stack = stack(Validation::Jwt).await;
    let clock = ManualClock::new(SystemClock::default().now());
    let manager = TokenManager::builder(&stack.url)
        .client_name("e2e client")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(outbound::http_service());

    // 401 → discovery → DCR → authorize → token → retry.
    let (status, body) = send(&client, &stack.url, "read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "read ok for alice with notes:read");
    assert_eq!(stack.token_requests.load(Ordering::SeqCst), 1);

    // 403 insufficient_scope → step-up to the union → retry.
    let (status, body) = send(&client, &stack.url, "write").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("notes:read") && body.contains("notes:write"),
        "granted scopes kept: {body}"
    );
    assert_eq!(stack.token_requests.load(Ordering::SeqCst), 2);

    // The access token expires (client clock); the next call refreshes instead of re-authorizing.
    let before = manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned();
    clock.advance(Duration::from_secs(16 * 60));
    let (status, body) = send(&client, &stack.url, "write").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stack.token_requests.load(Ordering::SeqCst),
        3,
        "one refresh"
    );
    let after = manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned();
    assert_ne!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_server_validating_by_introspection_accepts_our_tokens_and_steps_up() {
    let stack = stack(Validation::Introspection).await;
    let manager = TokenManager::builder(&stack.url)
        .client_name("e2e client")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager))
        .service(outbound::http_service());
    let (status, body) = send(&client, &stack.url, "read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "read ok for alice with notes:read");
    let (status, body) = send(&client, &stack.url, "write").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("notes:write"), "{body}");
}

/// Issue 13 item 5: a loopback deployment configured as `127.0.0.1` serves a client that was
/// given `http://localhost:PORT/mcp` (and `[::1]` spellings alike): the resource describes itself
/// in the client's spelling, the authorization server issues the token for its configured
/// identifier, and the resource's exact audience check accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_given_localhost_signs_in_and_steps_up_against_a_127_0_0_1_deployment() {
    for validation in [Validation::Jwt, Validation::Introspection] {
        let stack = stack(validation).await;
        let local = stack.url.replacen("127.0.0.1", "localhost", 1);
        assert_ne!(local, stack.url);
        let manager = TokenManager::builder(&local)
            .client_name("e2e client")
            .allow_insecure_loopback(true)
            .browser(HeadlessBrowser::new())
            .build()
            .unwrap();
        let client = ServiceBuilder::new()
            .layer(OAuthLayer::new(manager.clone()))
            .service(outbound::http_service());
        let (status, body) = send(&client, &local, "read").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "read ok for alice with notes:read");
        let (status, body) = send(&client, &local, "write").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("notes:write"), "{body}");

        // The same token works at the configured spelling: one audience, not two.
        let token = manager.cached_token().await.unwrap().unwrap();
        let response = reqwest::Client::new()
            .post(&stack.url)
            .bearer_auth(token.expose())
            .body("read")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}
