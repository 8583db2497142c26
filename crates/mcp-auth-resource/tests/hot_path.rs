//! The bearer layer's hot path allocates nothing of its own: a repeated token is answered by the
//! token cache without one allocation, and the whole layer, on a hit, allocates only the boxes
//! `http::Extensions` makes for the values it inserts (`AuthInfo`, its `Subject` and the layer
//! context), with tracing compiled in and no subscriber.
//!
//! Counted with a counting global allocator. Its counters are global, so this binary holds one
//! test: nothing else allocates while it measures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod support;

use std::{
    alloc::System,
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
};

use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_auth_resource::{
    AuthInfo, BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource, TokenVerifier,
};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::{SigningKey, TokenBuilder};
use tower::{Layer, Service, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

/// What `http::Extensions` boxes when the layer admits a request: the `AuthInfo`, the
/// `Subject` (the layer context rides in the `AuthInfo`).
const EXTENSION_VALUES: usize = 2;

/// Runs `f` and counts the allocations (and reallocations) made meanwhile.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    (out, change.allocations + change.reallocations)
}

/// Polls a future that must be ready at once.
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the hot path must not wait"),
    }
}

/// Markers that make a request's extension map exist with room for the layer's values, as in a
/// server where the router has already inserted its own (boxes of zero-sized values allocate
/// nothing).
#[derive(Clone, Copy)]
struct Room<const N: usize>;

fn request(authorization: &HeaderValue) -> Request<()> {
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    let ext = request.extensions_mut();
    ext.insert(Room::<0>);
    ext.insert(Room::<1>);
    ext.insert(Room::<2>);
    ext.insert(Room::<3>);
    ext.insert(Room::<4>);
    ext.remove::<Room<0>>();
    ext.remove::<Room<1>>();
    ext.remove::<Room<2>>();
    ext.remove::<Room<3>>();
    ext.remove::<Room<4>>();
    request
}

#[test]
fn a_repeated_token_allocates_nothing_but_the_extension_values() {
    let key = SigningKey::es256("k1");
    let jwks = json!({ "keys": [key.jwk()] }).to_string();
    let clock = support::clock();
    let token = TokenBuilder::new(ISSUER, RESOURCE).sign(&key);
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

    // The first time, the JWT verifier answers synchronously and the answer is cached.
    let first = verifier.verify_cached(&token).unwrap().unwrap();
    assert_eq!(first.subject(), Some("alice"));

    // The cache's hit path: not one allocation.
    let (hit, count) = allocations(|| verifier.verify_cached(&token));
    let hit = hit.expect("a cache hit").expect("a valid token");
    assert_eq!(count, 0, "CachedVerifier::verify_cached on a hit allocated");
    assert_eq!(hit.subject(), Some("alice"));
    drop(hit);

    // The whole layer on a hit: only the boxes of the extension values.
    let handler = service_fn(
        |request: Request<()>| -> Ready<Result<Response<()>, Infallible>> {
            assert!(request.extensions().get::<AuthInfo>().is_some());
            ready(Ok(Response::new(())))
        },
    );
    // With the `Subject` extension (mcp-auth-server's vault reads it): two values.
    let mut service = BearerAuthLayer::new(verifier.clone(), resource.clone())
        .with_subject_extension(true)
        .layer(handler);
    let authorization = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    for round in 0..3 {
        let request = request(&authorization);
        let (response, count) = allocations(|| {
            assert!(service.poll_ready(&mut cx).is_ready());
            let Ok(response) = now(service.call(request));
            response
        });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            count, EXTENSION_VALUES,
            "round {round}: the layer allocated more than its extension values"
        );
    }

    // By default only the `AuthInfo` is boxed.
    let mut service = BearerAuthLayer::new(verifier, resource).layer(handler);
    for round in 0..3 {
        let request = request(&authorization);
        let (response, count) = allocations(|| {
            assert!(service.poll_ready(&mut cx).is_ready());
            let Ok(response) = now(service.call(request));
            response
        });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            count, 1,
            "round {round}: the default layer allocated more than the AuthInfo's box"
        );
    }
}
