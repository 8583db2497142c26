//! `OriginGuardLayer`: Origin validation (MCP transport) and Host checks (DNS rebinding).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on broken fixtures"
)]

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use mcp_auth_resource::{
    ConfigError, OriginGuard, OriginGuardLayer, OriginRejection, OriginRejectionKind,
    origin::ResponseFuture,
};
use tower::{Layer, ServiceExt};

/// Sends a request with these `Host` and `Origin` headers (each may repeat) to `uri`; returns
/// the response and whether the inner service ran.
async fn send(
    guard: &OriginGuardLayer,
    uri: &str,
    hosts: &[&str],
    origins: &[&[u8]],
) -> (Response<Full<Bytes>>, bool) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"mcp")))) }
    });
    let mut request = Request::post(uri).body(Full::new(Bytes::new())).unwrap();
    for host in hosts {
        request
            .headers_mut()
            .append(header::HOST, HeaderValue::from_str(host).unwrap());
    }
    for origin in origins {
        request
            .headers_mut()
            .append(header::ORIGIN, HeaderValue::from_bytes(origin).unwrap());
    }
    let response = guard.clone().layer(inner).oneshot(request).await.unwrap();
    (response, calls.load(Ordering::SeqCst) == 1)
}

async fn status(guard: &OriginGuardLayer, host: &str, origin: Option<&str>) -> StatusCode {
    let origins: Vec<&[u8]> = origin.map(str::as_bytes).into_iter().collect();
    send(guard, "/mcp", &[host], &origins).await.0.status()
}

async fn refusal(
    guard: &OriginGuardLayer,
    uri: &str,
    hosts: &[&str],
    origins: &[&[u8]],
) -> OriginRejectionKind {
    let (response, called) = send(guard, uri, hosts, origins).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!called, "the inner service must not run");
    let kind = response
        .extensions()
        .get::<OriginRejection>()
        .expect("a rejection in the extensions")
        .kind();
    assert!(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
    kind
}

fn public() -> OriginGuardLayer {
    OriginGuardLayer::builder()
        .allow_host("mcp.example.com")
        .unwrap()
        .allow_origin("https://app.example.com")
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn loopback_hosts_pass_on_any_port() {
    let guard = OriginGuardLayer::loopback();
    for host in [
        "localhost",
        "LocalHost:1234",
        "127.0.0.1",
        "127.0.0.1:8080",
        "[::1]",
        "[::1]:3000",
        "[0:0:0:0:0:0:0:1]:65535",
    ] {
        assert_eq!(status(&guard, host, None).await, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn a_rebinding_request_is_refused_by_its_host() {
    let guard = OriginGuardLayer::loopback();
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "127.0.0.2",
        "127.1",
        "0.0.0.0",
        "[::2]",
        "[::ffff:127.0.0.1]",
    ] {
        let kind = refusal(&guard, "/mcp", &[host], &[]).await;
        assert_eq!(kind, OriginRejectionKind::HostNotAllowed, "{host}");
    }
    // Even when the page's own origin comes along.
    let kind = refusal(
        &guard,
        "/mcp",
        &["evil.example:8080"],
        &[b"http://evil.example:8080"],
    )
    .await;
    assert_eq!(kind, OriginRejectionKind::HostNotAllowed);
}

#[tokio::test]
async fn a_missing_duplicate_or_malformed_host_is_refused() {
    let guard = OriginGuardLayer::loopback();
    assert_eq!(
        refusal(&guard, "/mcp", &[], &[]).await,
        OriginRejectionKind::MissingHost
    );
    assert_eq!(
        refusal(&guard, "/mcp", &["localhost", "localhost"], &[]).await,
        OriginRejectionKind::MultipleHosts
    );
    assert_eq!(
        refusal(&guard, "/mcp", &["localhost", "evil.example"], &[]).await,
        OriginRejectionKind::MultipleHosts
    );
    for host in [
        "",
        "localhost:",
        "localhost:99999",
        "user@localhost",
        "::1",
        "[::1",
        "localhost/x",
        "local host",
    ] {
        assert_eq!(
            refusal(&guard, "/mcp", &[host], &[]).await,
            OriginRejectionKind::InvalidHost,
            "{host:?}"
        );
    }
}

#[tokio::test]
async fn the_request_target_authority_is_checked_like_the_host_header() {
    let guard = OriginGuardLayer::loopback();
    // HTTP/2 `:authority` (no Host header) and absolute-form targets.
    let (response, called) = send(&guard, "http://localhost:8080/mcp", &[], &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(called);
    assert_eq!(
        refusal(&guard, "http://evil.example/mcp", &[], &[]).await,
        OriginRejectionKind::HostNotAllowed
    );
    // Both present: both must be allowed.
    assert_eq!(
        refusal(&guard, "http://evil.example/mcp", &["localhost"], &[]).await,
        OriginRejectionKind::HostNotAllowed
    );
    assert_eq!(
        refusal(&guard, "http://localhost/mcp", &["evil.example"], &[]).await,
        OriginRejectionKind::HostNotAllowed
    );
}

#[tokio::test]
async fn an_absent_origin_is_allowed_for_non_browser_clients() {
    let (response, called) = send(
        &OriginGuardLayer::loopback(),
        "/mcp",
        &["localhost:8080"],
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(called);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "mcp"
    );
    assert_eq!(
        status(&public(), "mcp.example.com", None).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn loopback_origins_pass_with_any_port_over_http_or_https() {
    let guard = OriginGuardLayer::loopback();
    for origin in [
        "http://localhost",
        "http://localhost:5173",
        "https://localhost:8443",
        "http://127.0.0.1:3000",
        "https://127.0.0.1",
        "http://[::1]:5173",
        "https://[::1]",
        "HTTP://LOCALHOST:80",
    ] {
        assert_eq!(
            status(&guard, "127.0.0.1:8080", Some(origin)).await,
            StatusCode::OK,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused() {
    let guard = OriginGuardLayer::loopback();
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.2:8080",
        "ws://localhost:8080",
        "chrome-extension://abcdef",
    ] {
        let kind = refusal(&guard, "/mcp", &["127.0.0.1:8080"], &[origin.as_bytes()]).await;
        assert_eq!(kind, OriginRejectionKind::OriginNotAllowed, "{origin}");
    }
}

#[tokio::test]
async fn a_null_origin_is_refused() {
    for null in [b"null".as_slice(), b"NULL"] {
        let kind = refusal(
            &OriginGuardLayer::loopback(),
            "/mcp",
            &["localhost"],
            &[null],
        )
        .await;
        assert_eq!(kind, OriginRejectionKind::NullOrigin);
        let kind = refusal(&public(), "/mcp", &["mcp.example.com"], &[null]).await;
        assert_eq!(kind, OriginRejectionKind::NullOrigin);
    }
}

#[tokio::test]
async fn more_than_one_origin_header_is_refused_even_if_each_is_allowed() {
    let guard = OriginGuardLayer::loopback();
    let kind = refusal(
        &guard,
        "/mcp",
        &["localhost"],
        &[b"http://localhost:5173", b"http://localhost:5173"],
    )
    .await;
    assert_eq!(kind, OriginRejectionKind::MultipleOrigins);
    let kind = refusal(
        &guard,
        "/mcp",
        &["localhost"],
        &[b"http://localhost", b"https://evil.example"],
    )
    .await;
    assert_eq!(kind, OriginRejectionKind::MultipleOrigins);
}

#[tokio::test]
async fn a_malformed_origin_is_refused() {
    let guard = OriginGuardLayer::loopback();
    for origin in [
        b"http://localhost/".as_slice(),
        b"http://localhost:5173/mcp",
        b"localhost",
        b"http://",
        b"file://",
        b"http://user@localhost",
        b"http://localhost:port",
        b"",
        b"http://\xfflocalhost",
    ] {
        let kind = refusal(&guard, "/mcp", &["localhost"], &[origin]).await;
        assert_eq!(
            kind,
            OriginRejectionKind::InvalidOrigin,
            "{:?}",
            String::from_utf8_lossy(origin)
        );
    }
}

#[tokio::test]
async fn a_public_guard_matches_hosts_case_insensitively_on_any_port() {
    let guard = public();
    for host in ["mcp.example.com", "MCP.Example.COM", "mcp.example.com:8443"] {
        assert_eq!(status(&guard, host, None).await, StatusCode::OK, "{host}");
    }
    for host in [
        "localhost",
        "127.0.0.1",
        "example.com",
        "mcp.example.com.evil.example",
        "xmcp.example.com",
    ] {
        assert_eq!(
            status(&guard, host, None).await,
            StatusCode::FORBIDDEN,
            "{host}"
        );
    }
}

#[tokio::test]
async fn a_public_guard_compares_origins_by_scheme_host_and_port() {
    let guard = public();
    for origin in [
        "https://app.example.com",
        "https://app.example.com:443",
        "HTTPS://APP.example.com",
    ] {
        assert_eq!(
            status(&guard, "mcp.example.com", Some(origin)).await,
            StatusCode::OK,
            "{origin}"
        );
    }
    for origin in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://app.example.com:443",
        "https://evil.app.example.com",
        "https://mcp.example.com",
        "http://localhost:5173",
    ] {
        assert_eq!(
            status(&guard, "mcp.example.com", Some(origin)).await,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn a_host_allowed_with_a_port_needs_that_port() {
    let guard = OriginGuardLayer::builder()
        .allow_host("mcp.example.com:8443")
        .unwrap()
        .allow_origin("http://app.example.com:8080")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        status(&guard, "mcp.example.com:8443", None).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&guard, "mcp.example.com", None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&guard, "mcp.example.com:443", None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(
            &guard,
            "mcp.example.com:8443",
            Some("http://app.example.com:8080")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status(
            &guard,
            "mcp.example.com:8443",
            Some("http://app.example.com")
        )
        .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn allow_loopback_adds_the_local_names_to_a_public_guard() {
    let guard = OriginGuardLayer::builder()
        .allow_host("mcp.example.com")
        .unwrap()
        .allow_loopback()
        .build()
        .unwrap();
    assert_eq!(
        status(&guard, "[::1]:8080", Some("http://[::1]:5173")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&guard, "mcp.example.com", None).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&guard, "evil.example", None).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn for_bind_addr_picks_loopback_mode_only_for_loopback_addresses() {
    for addr in ["127.0.0.1:8080", "[::1]:8080", "[::ffff:127.0.0.1]:8080"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let guard = OriginGuardLayer::for_bind_addr(addr).build().unwrap();
        assert_eq!(
            status(&guard, "localhost:8080", Some("http://localhost:5173")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&guard, "evil.example:8080", None).await,
            StatusCode::FORBIDDEN
        );
    }
    for addr in ["0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080"] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert!(
            matches!(
                OriginGuardLayer::for_bind_addr(addr).build(),
                Err(ConfigError::Origin { .. })
            ),
            "{addr}: a non-loopback bind without hosts must not build"
        );
        let guard = OriginGuardLayer::for_bind_addr(addr)
            .allow_host("mcp.example.com")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            status(&guard, "mcp.example.com", None).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&guard, "localhost", None).await,
            StatusCode::FORBIDDEN
        );
    }
}

#[test]
fn a_guard_without_allowed_hosts_cannot_be_built() {
    assert!(matches!(
        OriginGuardLayer::builder().build(),
        Err(ConfigError::Origin { .. })
    ));
    let only_origins = OriginGuardLayer::builder()
        .allow_origin("https://app.example.com")
        .unwrap();
    assert!(matches!(
        only_origins.build(),
        Err(ConfigError::Origin { .. })
    ));
}

#[test]
fn invalid_entries_are_configuration_errors() {
    for host in [
        "",
        "https://mcp.example.com",
        "*.example.com",
        "*",
        "mcp.example.com/mcp",
        "user@mcp.example.com",
        "mcp.example.com:",
        "mcp.example.com:70000",
        "::1",
        "mcp example.com",
    ] {
        assert!(
            matches!(
                OriginGuardLayer::builder().allow_host(host),
                Err(ConfigError::Origin { .. })
            ),
            "{host:?}"
        );
    }
    for origin in [
        "",
        "null",
        "*",
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://*.example.com",
        "https://user@app.example.com",
        "https://",
    ] {
        assert!(
            matches!(
                OriginGuardLayer::builder().allow_origin(origin),
                Err(ConfigError::Origin { .. })
            ),
            "{origin:?}"
        );
    }
    assert!(OriginGuardLayer::builder().allow_host("[::1]:8080").is_ok());
    assert!(OriginGuardLayer::builder().allow_host("10.0.0.1").is_ok());
    assert!(
        OriginGuardLayer::builder()
            .allow_origin("http://[::1]:5173")
            .is_ok()
    );
}

#[test]
fn services_and_futures_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    type Inner =
        tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;
    assert_send::<OriginGuard<Inner>>();
    assert_sync::<OriginGuard<Inner>>();
    assert_send::<
        ResponseFuture<std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>, Full<Bytes>>,
    >();
    assert_sync::<OriginGuardLayer>();
}
