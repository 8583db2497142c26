//! Per-request cost of bearer-token verification, measured in process.
//!
//! Every benchmark drives a tower service with `ready().await?.call(request)` on a current-thread
//! tokio runtime: no sockets, no HTTP parsing, only the layer and an inner handler that answers an
//! empty 200. The request is built inside the timed loop for every variant (one `Authorization`
//! header), so the `bare` baseline includes that cost and "added cost" is `variant - bare`.
//!
//! For each fixture of `support/fixture.rs` (keys generated once with aws-lc-rs): ES256, RS256
//! and EdDSA tokens with `typ: at+jwt`, `kid`, `iss`, `aud`, `sub`, `client_id`, `scope`, `exp`,
//! `iat`, `jti`, and `large`, an Entra ID / Okta-sized RS256 token (36 claims, 3.7 KB):
//!
//! | id | what it measures |
//! | --- | --- |
//! | `bare` | the inner handler alone, the baseline |
//! | `ours_uncached` | `BearerAuthLayer` + `JwtVerifier` (static JWK Set, no token cache): every request does the full check, signature included, so it costs what a new token costs (signing a fresh token per iteration would measure the signer instead) |
//! | `ours_cached` | `BearerAuthLayer` + `CachedVerifier<JwtVerifier>`, the same token every time: the cache-hit path |
//! | `raw_aws_lc_rs` | `UnparsedPublicKey::verify` over the signing input: the floor for a new token |
//! | `jwt_authorizer` | jwt-authorizer 0.15's layer, keys from a static JWK Set (ES256 and RS256 only) |
//! | `oauth_resource_server` | oauth-resource-server 0.4's `HttpAuthLayer`, keys seeded with `initial_jwks` (ES256 and RS256 only) |
//!
//! The added cost of a repeated token is `ours_cached - bare` of one group. For instruction
//! counts instead of wall-clock time (stable while other processes share the cores), see
//! `benches/hot_path.rs`.
//!
//! Run with `cargo bench -p mcp-auth-resource --bench verify` (append `-- --quick` for a fast pass).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use aws_lc_rs::signature::UnparsedPublicKey;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use mcp_auth_resource::{BearerAuthLayer, CachedVerifier, JwtVerifier, ProtectedResource};
use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator, http_layer::HttpAuthLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

#[path = "support/fixture.rs"]
mod fixture;

use fixture::{Fixture, ISSUER, RESOURCE};

/// A request carrying `authorization`, built the same way for every variant.
fn request(authorization: &HeaderValue) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    request
        .headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    request
}

/// The inner handler: an empty 200, whatever the body type the layer in front wants.
fn handler<B: Default>()
-> impl Service<Request<Body>, Response = Response<B>, Error = Infallible, Future: Send> + Clone + Send
{
    service_fn(|_request: Request<Body>| async { Ok(Response::new(B::default())) })
}

/// Sends one request and returns the status, outside the timed loop.
fn status_of<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    authorization: &str,
) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
{
    let request = request(&HeaderValue::try_from(authorization).unwrap());
    let response = runtime.block_on(service.clone().oneshot(request));
    let Ok(response) = response;
    response.status()
}

/// Asserts the service accepts the fixture's token and refuses a tampered and a garbage one, so a
/// benchmark can never silently measure a rejection path.
fn assert_answers<S, B>(runtime: &tokio::runtime::Runtime, fixture: &Fixture, id: &str, service: &S)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
{
    let ok = status_of(runtime, service, &format!("Bearer {}", fixture.token));
    assert_eq!(
        ok,
        StatusCode::OK,
        "{}/{id}: the token must be accepted",
        fixture.name
    );
    if id != "bare" {
        for bad in [fixture.tampered.as_str(), "garbage"] {
            let status = status_of(runtime, service, &format!("Bearer {bad}"));
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{}/{id}: a bad token must be refused",
                fixture.name
            );
        }
    }
}

/// Times `iters` sequential `ready().call()` round trips of one service instance, all requests
/// carrying the fixture's token.
fn time_service<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    authorization: &HeaderValue,
    iters: u64,
) -> Duration
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
{
    let mut service = service.clone();
    runtime.block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let ready = service.ready().await.unwrap();
            let response = ready.call(request(authorization)).await.unwrap();
            black_box(response);
        }
        start.elapsed()
    })
}

/// Builds one variant, asserts it answers as it should, then benchmarks it.
fn bench_service<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    fixture: &Fixture,
    id: &str,
    service: S,
) where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
{
    assert_answers(runtime, fixture, id, &service);
    let authorization = Fixture::bearer(&fixture.token);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| time_service(runtime, &service, &authorization, iters));
    });
}

/// Builds an async value on the runtime (competitors' builders are `async`).
fn build<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    runtime.block_on(future)
}

fn jwt_authorizer_service(
    runtime: &tokio::runtime::Runtime,
    fixture: &Fixture,
) -> impl Service<Request<Body>, Response = Response<impl Sized>, Error = Infallible> + Clone {
    use jwt_authorizer::{IntoLayer as _, JwtAuthorizer, Validation};

    /// What a handler would read: jwt-authorizer deserializes these after its own checks.
    #[derive(Clone, serde::Deserialize)]
    #[allow(dead_code, reason = "deserialized to cost what a real handler would")]
    struct Claims {
        sub: String,
        scope: String,
    }

    // `from_jwks_text` keeps the key set in memory (no refresh, no network); the key's `alg`
    // narrows the accepted algorithms to the one the token uses, like the others.
    let authorizer = build(
        runtime,
        JwtAuthorizer::<Claims>::from_jwks_text(&fixture.jwks)
            .validation(Validation::new().iss(&[ISSUER]).aud(&[RESOURCE]).leeway(60))
            .build(),
    )
    .unwrap();
    // The inner response must be jwt-authorizer's own axum 0.7 `Response`
    // (`S::Response: From<AuthError>`): the body type is inferred from that bound, so this file
    // needs no axum 0.7 dependency. Its `Body::empty()` and axum 0.8's are both a boxed ZST.
    authorizer.into_layer().layer(handler())
}

fn oauth_resource_server_service(
    fixture: &Fixture,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    let config = OAuthConfig {
        enabled: true,
        issuer: ISSUER.into(),
        // Never fetched: the key set is seeded below and the token's `kid` is in it.
        jwks_uri: Some(format!("{ISSUER}/jwks")),
        audience: RESOURCE.into(),
        resource: RESOURCE.into(),
        // Same checks as ours: RFC 9068 `typ`, no route-level scope.
        require_at_jwt: true,
        leeway_secs: 60,
        ..OAuthConfig::default()
    }
    .resolve(KeyNaming::Dotted("oauth"))
    .unwrap()
    .expect("OAuth is enabled");
    let validator = OAuthValidator::builder(&config)
        .initial_jwks(&fixture.jwks)
        .build()
        .unwrap();
    let layer = HttpAuthLayer::builder()
        .oauth(Arc::new(validator))
        .build()
        .unwrap();
    layer.layer(handler())
}

/// Our resource, as an MCP server would configure it.
fn protected_resource() -> ProtectedResource {
    ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap()
}

/// Our verifier with the static key set: defaults otherwise (`typ` must be `at+jwt`, every
/// asymmetric algorithm allowed, 60 s leeway).
fn jwt_verifier(resource: &ProtectedResource, fixture: &Fixture) -> JwtVerifier {
    JwtVerifier::for_resource(ISSUER, resource)
        .jwks_json(&fixture.jwks)
        .build()
        .unwrap()
}

fn bench_algorithm(c: &mut Criterion, runtime: &tokio::runtime::Runtime, fixture: &Fixture) {
    let mut group = c.benchmark_group(fixture.name);

    bench_service(&mut group, runtime, fixture, "bare", handler::<Body>());

    let key = UnparsedPublicKey::new(fixture.verification, fixture.public_key.as_slice());
    key.verify(&fixture.signing_input, &fixture.signature)
        .expect("the raw signature verifies");
    assert!(
        key.verify(&fixture.signing_input, &fixture.signature[1..])
            .is_err()
    );
    group.bench_function("raw_aws_lc_rs", |b| {
        b.iter(|| {
            black_box(&key)
                .verify(
                    black_box(&fixture.signing_input),
                    black_box(&fixture.signature),
                )
                .unwrap();
        });
    });

    let resource = protected_resource();
    let layer = BearerAuthLayer::new(jwt_verifier(&resource, fixture), resource.clone());
    bench_service(
        &mut group,
        runtime,
        fixture,
        "ours_uncached",
        layer.layer(handler::<Body>()),
    );

    let verifier = CachedVerifier::new(jwt_verifier(&resource, fixture));
    let layer = BearerAuthLayer::new(verifier, resource);
    // `assert_answers` has already put the token into the cache: every timed request is a hit.
    bench_service(
        &mut group,
        runtime,
        fixture,
        "ours_cached",
        layer.layer(handler::<Body>()),
    );

    if matches!(fixture.name, "es256" | "rs256") {
        let service = jwt_authorizer_service(runtime, fixture);
        bench_service(&mut group, runtime, fixture, "jwt_authorizer", service);

        let service = build(runtime, async { oauth_resource_server_service(fixture) });
        bench_service(
            &mut group,
            runtime,
            fixture,
            "oauth_resource_server",
            service,
        );
    }

    group.finish();
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for fixture in Fixture::all() {
        bench_algorithm(c, &runtime, &fixture);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = verify
}
criterion_main!(benches);
