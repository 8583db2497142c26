//! The bearer layer's hot path, for instruction counts: a fixed number of requests through one
//! variant, so that `valgrind --tool=callgrind` (which counts instructions, whatever else runs on
//! the machine) gives a per-request figure.
//!
//! ```console
//! $ cargo bench -p mcp-auth-resource --bench hot_path --no-run   # prints the binary's path
//! $ valgrind --tool=callgrind --collect-atstart=no --toggle-collect='hot_path::drive*' \
//!     target/release/deps/hot_path-<hash> cached-es256 20000
//! ```
//!
//! Divide the `Collected` count by the iterations; the added cost of a variant is its count minus
//! its bare one's. Every request is built inside the loop and runs `ready().call()` on a
//! current-thread runtime; the handler reads the body and answers an empty 200.
//!
//! | variant | request | stack |
//! | --- | --- | --- |
//! | `bare` | `GET`, one `Authorization` header | the handler |
//! | `cached-<fixture>` (`es256`, `rs256`, `eddsa`, `large` of `support/fixture.rs`) | the same, with that fixture's token | `BearerAuthLayer` + `CachedVerifier<JwtVerifier>`, the same token on every request (as in `benches/verify.rs`) |
//! | `bare-post` | `POST` of a JSON-RPC `tools/call`, `MCP-Protocol-Version: 2025-11-25`, an `Mcp-Session-Id` | the handler |
//! | `bearer-post` | the same | the bearer layer, ES256 |
//! | `full-session`, `full-tools` | the same | bearer → `SessionBindingLayer`; bearer → `ToolScopesLayer`: each layer of the full stack alone |
//! | `full-es256` | the same | bearer → `SessionBindingLayer` → `ToolScopesLayer` (the demo's stack) |
//! | `bare-wide`, `full-wide` | the same `POST` with 6 more headers a real client sends (`Host`, `User-Agent`, `Accept`, `Accept-Encoding`, `Content-Length`, `Connection`) | the handler; the demo's stack |
//!
//! Without arguments (`cargo bench -p mcp-auth-resource --bench hot_path`), every variant runs
//! for a rough wall-clock figure; use `benches/verify.rs` (criterion) for real timings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark driver: set-up fails loudly and results go to stdout"
)]

use std::{convert::Infallible, hint::black_box, time::Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{
    HeaderValue, Request, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE},
};
use mcp_auth_resource::{
    BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource, SessionBindingLayer,
    ToolScopesLayer,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

#[path = "support/fixture.rs"]
mod fixture;

use fixture::{Fixture, ISSUER, RESOURCE};

/// The JSON-RPC request of the `*-post` and `full-*` variants: a call of a tool that needs
/// `mcp:tools` (the tokens have it).
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{}}}"#;

/// Reads the whole body, answers an empty 200: the same work behind every stack.
async fn handle<B: http_body::Body>(request: Request<B>) -> Result<Response<Body>, Infallible> {
    let body = http_body_util::BodyExt::collect(request.into_body()).await;
    black_box(body.ok().map(http_body_util::Collected::to_bytes));
    Ok(Response::new(Body::empty()))
}

fn resource() -> ProtectedResource {
    ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap()
}

fn bearer(fixture: &Fixture) -> BearerAuthLayer<CachedVerifier<JwtVerifier>> {
    let resource = resource();
    let verifier = CachedVerifier::new(
        JwtVerifier::for_resource(ISSUER, &resource)
            .jwks_json(&fixture.jwks)
            .build()
            .unwrap(),
    );
    BearerAuthLayer::new(verifier, resource)
}

/// A request as the variants send it: `GET` with the token, or (`post`) the `tools/call` `POST`
/// of an MCP 2025-11-25 session.
fn request(authorization: &HeaderValue, post: bool, wide: bool) -> Request<Body> {
    if !post {
        let mut request = Request::new(Body::empty());
        request
            .headers_mut()
            .insert(AUTHORIZATION, authorization.clone());
        return request;
    }
    let mut request = Request::new(Body::from(Bytes::from_static(CALL)));
    *request.method_mut() = http::Method::POST;
    let headers = request.headers_mut();
    headers.insert(AUTHORIZATION, authorization.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-11-25"),
    );
    headers.insert(
        "mcp-session-id",
        HeaderValue::from_static("bench-session-1"),
    );
    if wide {
        for (name, value) in [
            (http::header::HOST, "127.0.0.1:8080"),
            (http::header::USER_AGENT, "node (mcp-client/1.0)"),
            (http::header::ACCEPT, "application/json, text/event-stream"),
            (http::header::ACCEPT_ENCODING, "gzip, deflate"),
            (http::header::CONNECTION, "keep-alive"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(CALL.len()));
    }
    request
}

/// `iters` requests, each built here and sent with `ready().call()`. Never inlined: callgrind
/// collects exactly this function (`--toggle-collect`).
#[inline(never)]
fn drive<S>(
    runtime: &tokio::runtime::Runtime,
    service: &mut S,
    authorization: &HeaderValue,
    post: bool,
    wide: bool,
    iters: u64,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    runtime.block_on(async {
        for _ in 0..iters {
            let ready = service.ready().await.unwrap();
            let response = ready
                .call(request(authorization, post, wide))
                .await
                .unwrap();
            black_box(response);
        }
    });
}

/// Runs one variant if `wanted` names it (or is `all` or absent).
fn run<S>(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    wanted: Option<&str>,
    mut service: S,
    authorization: &HeaderValue,
    iters: u64,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    if wanted.is_some_and(|w| w != name && w != "all") {
        return;
    }
    let wide = name.ends_with("-wide");
    let post = wide || name.ends_with("-post") || name.starts_with("full-");
    // Once outside the collected part: fills the cache (and binds the session), and asserts
    // the token is accepted.
    let response = runtime
        .block_on(service.clone().oneshot(request(authorization, post, wide)))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{name}");
    let start = Instant::now();
    drive(runtime, &mut service, authorization, post, wide, iters);
    let per = start.elapsed().as_nanos() / u128::from(iters);
    println!("{name:>14}: {per} ns/request (wall clock, {iters} requests)");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = args.first().map(String::as_str);
    let iters = args
        .get(1)
        .map_or(200_000, |n| n.parse().expect("ITERS is a number"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixtures = Fixture::all();
    let es256 = Fixture::bearer(&fixtures[0].token);
    let bare = service_fn(handle::<Body>);
    run(&runtime, "bare", wanted, bare, &es256, iters);
    for fixture in &fixtures {
        let name = format!("cached-{}", fixture.name);
        let authorization = Fixture::bearer(&fixture.token);
        let service = bearer(fixture).layer(service_fn(handle::<Body>));
        run(&runtime, &name, wanted, service, &authorization, iters);
    }
    run(&runtime, "bare-post", wanted, bare, &es256, iters);
    let service = bearer(&fixtures[0]).layer(service_fn(handle::<Body>));
    run(&runtime, "bearer-post", wanted, service, &es256, iters);
    let tool_scopes = ToolScopesLayer::new(resource())
        .default_scopes("mcp:tools".parse::<mcp_auth_resource::ScopeSet>().unwrap())
        .tool(
            "notes_admin",
            "mcp:admin".parse::<mcp_auth_resource::ScopeSet>().unwrap(),
        );
    let session = ServiceBuilder::new()
        .layer(bearer(&fixtures[0]))
        .layer(SessionBindingLayer::new())
        .service(service_fn(handle::<Body>));
    run(&runtime, "full-session", wanted, session, &es256, iters);
    let tools = ServiceBuilder::new()
        .layer(bearer(&fixtures[0]))
        .layer(tool_scopes.clone())
        .service(service_fn(handle));
    run(&runtime, "full-tools", wanted, tools, &es256, iters);
    let full = ServiceBuilder::new()
        .layer(bearer(&fixtures[0]))
        .layer(SessionBindingLayer::new())
        .layer(tool_scopes)
        .service(service_fn(handle));
    run(&runtime, "full-es256", wanted, full.clone(), &es256, iters);
    run(&runtime, "bare-wide", wanted, bare, &es256, iters);
    run(&runtime, "full-wide", wanted, full, &es256, iters);
}
