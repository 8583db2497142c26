//! Client ID Metadata Documents over real HTTP on loopback: documents served by a second
//! loopback server that counts its hits, fetched by `CimdFetcher` (and once through
//! `/authorize`). Covers caching, every refusal, and the SSRF guard.
#![cfg(feature = "cimd")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use mcp_auth_server::AuthorizationServer;
use mcp_auth_server::cimd::{CimdConfig, CimdErrorKind, CimdFetcher};
use mcp_auth_server::store::{ClientSource, MemoryStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const NOW: u64 = 1_700_000_000;
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A canned answer.
#[derive(Clone)]
struct Canned {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Canned {
    fn json(body: &Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The loopback server that hosts the metadata documents.
struct Docs {
    base: String,
    hits: Arc<HashMap<String, AtomicUsize>>,
}

impl Docs {
    /// Serve the routes `build(base)` returns; each is counted.
    async fn start(build: impl FnOnce(&str) -> Vec<(&'static str, Canned)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes = build(&base);
        let hits: Arc<HashMap<String, AtomicUsize>> = Arc::new(
            routes
                .iter()
                .map(|(path, _)| ((*path).to_owned(), AtomicUsize::new(0)))
                .collect(),
        );
        let mut app = axum::Router::new();
        for (path, canned) in routes {
            let hits = hits.clone();
            app = app.route(
                path,
                get(move || {
                    let canned = canned.clone();
                    let hits = hits.clone();
                    async move {
                        hits[path].fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(canned.delay).await;
                        let mut response = http::Response::builder().status(canned.status);
                        for (name, value) in &canned.headers {
                            response = response.header(*name, value.as_str());
                        }
                        response.body(Body::from(canned.body)).unwrap()
                    }
                }),
            );
        }
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits[path].load(Ordering::SeqCst)
    }
}

/// A valid document for `client_id`.
fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Example MCP Client",
        "client_uri": "https://client.example.com",
        "redirect_uris": [REDIRECT, "https://client.example.com/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

fn document_with(client_id: &str, changes: &Value) -> Value {
    let mut doc = document(client_id);
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            doc.as_object_mut().unwrap().remove(key);
        } else {
            doc[key] = value.clone();
        }
    }
    doc
}

fn fetcher(configure: impl FnOnce(&mut CimdConfig)) -> CimdFetcher {
    let mut config = CimdConfig::default();
    config.allow_loopback = true;
    configure(&mut config);
    CimdFetcher::new(config).unwrap()
}

#[tokio::test]
async fn a_good_document_resolves_and_is_cached_for_its_max_age() {
    let docs = Docs::start(|base| {
        vec![(
            "/client.json",
            Canned::json(&document(&format!("{base}/client.json")))
                .header("cache-control", "public, max-age=300"),
        )]
    })
    .await;
    let f = fetcher(|_| {});
    let id = docs.url("/client.json");

    let client = f.resolve(&id, NOW).await.unwrap();
    assert_eq!(client.client_id, id);
    assert!(client.is_public());
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert_eq!(client.issued_at, NOW);
    assert_eq!(
        client.metadata.client_name.as_deref(),
        Some("Example MCP Client")
    );
    assert_eq!(
        client.metadata.redirect_uris,
        [REDIRECT, "https://client.example.com/callback"]
    );
    assert_eq!(docs.hits("/client.json"), 1);

    let again = f.resolve(&id, NOW + 299).await.unwrap();
    assert_eq!(again.client_id, id);
    assert_eq!(docs.hits("/client.json"), 1, "served from the cache");

    f.clone().resolve(&id, NOW + 300).await.unwrap();
    assert_eq!(
        docs.hits("/client.json"),
        2,
        "max-age elapsed: fetched again"
    );
}

#[tokio::test]
async fn cache_lifetimes_are_clamped_to_the_configured_bounds() {
    let docs = Docs::start(|base| {
        vec![
            ("/plain", Canned::json(&document(&format!("{base}/plain")))),
            (
                "/short",
                Canned::json(&document(&format!("{base}/short")))
                    .header("cache-control", "max-age=1"),
            ),
            (
                "/long",
                Canned::json(&document(&format!("{base}/long")))
                    .header("cache-control", "max-age=31536000"),
            ),
        ]
    })
    .await;
    let f = fetcher(|c| {
        c.min_cache = Duration::from_secs(60);
        c.max_cache = Duration::from_secs(600);
    });
    for path in ["/plain", "/short"] {
        f.resolve(&docs.url(path), NOW).await.unwrap();
        f.resolve(&docs.url(path), NOW + 59).await.unwrap();
        assert_eq!(docs.hits(path), 1, "{path}: kept for at least min_cache");
        f.resolve(&docs.url(path), NOW + 60).await.unwrap();
        assert_eq!(docs.hits(path), 2, "{path}");
    }
    f.resolve(&docs.url("/long"), NOW).await.unwrap();
    f.resolve(&docs.url("/long"), NOW + 599).await.unwrap();
    assert_eq!(docs.hits("/long"), 1);
    f.resolve(&docs.url("/long"), NOW + 600).await.unwrap();
    assert_eq!(docs.hits("/long"), 2, "kept for at most max_cache");
}

#[tokio::test]
async fn cache_control_no_store_is_respected() {
    let docs = Docs::start(|base| {
        vec![
            (
                "/no-store",
                Canned::json(&document(&format!("{base}/no-store")))
                    .header("cache-control", "no-store"),
            ),
            (
                "/no-cache",
                Canned::json(&document(&format!("{base}/no-cache")))
                    .header("cache-control", "no-cache, max-age=600"),
            ),
        ]
    })
    .await;
    let f = fetcher(|_| {});
    for path in ["/no-store", "/no-cache"] {
        f.resolve(&docs.url(path), NOW).await.unwrap();
        f.resolve(&docs.url(path), NOW).await.unwrap();
        assert_eq!(docs.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn error_responses_are_refused_and_never_cached() {
    let docs = Docs::start(|base| {
        let doc = document(&format!("{base}/x"));
        vec![
            (
                "/500",
                Canned::json(&doc)
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .header("cache-control", "max-age=600"),
            ),
            (
                "/404",
                Canned::json(&doc)
                    .status(StatusCode::NOT_FOUND)
                    .header("cache-control", "max-age=600"),
            ),
            ("/204", Canned::json(&doc).status(StatusCode::NO_CONTENT)),
        ]
    })
    .await;
    let f = fetcher(|_| {});
    for (path, code) in [("/500", "500"), ("/404", "404"), ("/204", "204")] {
        for _ in 0..2 {
            let error = f.resolve(&docs.url(path), NOW).await.unwrap_err();
            assert_eq!(error.kind(), CimdErrorKind::Status, "{path}");
            assert!(error.message().contains(code), "{}", error.message());
        }
        assert_eq!(docs.hits(path), 2, "{path}: the error was not cached");
    }
}

#[tokio::test]
async fn invalid_documents_are_refused_and_never_cached() {
    let docs = Docs::start(|base| {
        let url = |p: &str| format!("{base}{p}");
        vec![
            (
                "/wrong-id",
                Canned::json(&document(&format!("{base}/other")))
                    .header("cache-control", "max-age=600"),
            ),
            (
                "/trailing-slash-id",
                Canned::json(&document(&url("/trailing-slash-id/"))),
            ),
            (
                "/no-name",
                Canned::json(&document_with(
                    &url("/no-name"),
                    &json!({"client_name": null}),
                )),
            ),
            (
                "/no-redirects",
                Canned::json(&document_with(
                    &url("/no-redirects"),
                    &json!({"redirect_uris": []}),
                )),
            ),
            (
                "/bad-redirect",
                Canned::json(&document_with(
                    &url("/bad-redirect"),
                    &json!({"redirect_uris": ["http://evil.example.com/cb"]}),
                )),
            ),
            (
                "/not-json",
                Canned {
                    body: b"{not json".to_vec(),
                    ..Canned::json(&json!({}))
                },
            ),
            ("/array", Canned::json(&json!([1, 2, 3]))),
        ]
    })
    .await;
    let f = fetcher(|_| {});
    for path in [
        "/wrong-id",
        "/trailing-slash-id",
        "/no-name",
        "/no-redirects",
        "/bad-redirect",
        "/not-json",
        "/array",
    ] {
        for _ in 0..2 {
            let error = f.resolve(&docs.url(path), NOW).await.unwrap_err();
            assert_eq!(
                error.kind(),
                CimdErrorKind::InvalidDocument,
                "{path}: {error}"
            );
        }
        assert_eq!(
            docs.hits(path),
            2,
            "{path}: an invalid document was not cached"
        );
    }
    let error = f.resolve(&docs.url("/wrong-id"), NOW).await.unwrap_err();
    assert!(error.message().contains("client_id"), "{}", error.message());
    let error = f.resolve(&docs.url("/no-name"), NOW).await.unwrap_err();
    assert!(
        error.message().contains("client_name"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn shared_secret_documents_are_refused() {
    let docs = Docs::start(|base| {
        let url = |p: &str| format!("{base}{p}");
        vec![
            ("/basic", Canned::json(&document_with(&url("/basic"), &json!({"token_endpoint_auth_method": "client_secret_basic"})))),
            ("/post", Canned::json(&document_with(&url("/post"), &json!({"token_endpoint_auth_method": "client_secret_post"})))),
            ("/secret", Canned::json(&document_with(&url("/secret"), &json!({"client_secret": "hunter2"})))),
            (
                "/pkjwt",
                Canned::json(&document_with(
                    &url("/pkjwt"),
                    &json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.example.com/jwks"}),
                )),
            ),
            (
                "/pkjwt-no-keys",
                Canned::json(&document_with(
                    &url("/pkjwt-no-keys"),
                    &json!({"token_endpoint_auth_method": "private_key_jwt"}),
                )),
            ),
        ]
    })
    .await;
    let f = fetcher(|_| {});
    for path in ["/basic", "/post", "/secret", "/pkjwt-no-keys"] {
        let error = f.resolve(&docs.url(path), NOW).await.unwrap_err();
        assert_eq!(error.kind(), CimdErrorKind::AuthMethod, "{path}");
    }
    let error = f
        .resolve(&docs.url("/pkjwt-no-keys"), NOW)
        .await
        .unwrap_err();
    assert!(
        error.message().contains("private_key_jwt"),
        "{}",
        error.message()
    );
    // private_key_jwt with its keys (AS-37): a confidential client that must use them.
    let client = f.resolve(&docs.url("/pkjwt"), NOW).await.unwrap();
    assert_eq!(
        client.auth_method,
        mcp_auth_server::store::ClientAuthMethod::PrivateKeyJwt
    );
    assert!(!client.is_public());
}

#[tokio::test]
async fn oversized_documents_are_refused_with_content_length() {
    let docs = Docs::start(|base| {
        let big = document_with(
            &format!("{base}/big"),
            &json!({"padding": "x".repeat(6 * 1024)}),
        );
        // Exactly at the limit: accepted.
        let mut exact = serde_json::to_vec(&document(&format!("{base}/exact"))).unwrap();
        exact.resize(5 * 1024, b' ');
        let exact = Canned {
            body: exact,
            ..Canned::json(&json!({}))
        };
        vec![("/big", Canned::json(&big)), ("/exact", exact)]
    })
    .await;
    let f = fetcher(|_| {});
    let error = f.resolve(&docs.url("/big"), NOW).await.unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::TooLarge);
    assert!(error.message().contains("5120"), "{}", error.message());
    f.resolve(&docs.url("/exact"), NOW).await.unwrap();

    let small = fetcher(|c| c.max_bytes = 100);
    let error = small
        .resolve(&docs.url("/exact"), NOW + 1_000_000)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::TooLarge);
}

/// A raw HTTP/1.1 server answering every request with a chunked body (no `Content-Length`):
/// `prefix`, then `filler` repeated `repeat` times. Returns its base URL.
async fn chunked_server(prefix: Vec<u8>, filler: Vec<u8>, repeat: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (prefix, filler) = (prefix.clone(), filler.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = |data: &[u8]| {
                    [
                        format!("{:x}\r\n", data.len()).into_bytes(),
                        data.to_vec(),
                        b"\r\n".to_vec(),
                    ]
                    .concat()
                };
                if !prefix.is_empty() && socket.write_all(&chunk(&prefix)).await.is_err() {
                    return;
                }
                for _ in 0..repeat {
                    if socket.write_all(&chunk(&filler)).await.is_err() {
                        return; // the client hung up
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    base
}

#[tokio::test]
async fn oversized_chunked_documents_are_cut_off() {
    // 100 MiB of JSON whitespace, never announced: refused as soon as 5 KiB have arrived.
    let base = chunked_server(Vec::new(), vec![b' '; 1024], 100 * 1024).await;
    let f = fetcher(|c| c.timeout = Duration::from_secs(10));
    let started = Instant::now();
    let error = f
        .resolve(&format!("{base}/client.json"), NOW)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::TooLarge, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_small_chunked_document_is_accepted() {
    let base = chunked_server(b"{".to_vec(), b" ".to_vec(), 3).await;
    // `{` + spaces + end is not a document: refused as invalid JSON, not as too large.
    let f = fetcher(|_| {});
    let error = f
        .resolve(&format!("{base}/client.json"), NOW)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::InvalidDocument, "{error}");

    let id_base = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let id = format!("{base}/client.json");
        let doc = serde_json::to_vec(&document(&id)).unwrap();
        let (head, tail) = doc.split_at(doc.len() / 2);
        let (head, tail) = (head.to_vec(), tail.to_vec());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = l.accept().await {
                let (head, tail) = (head.clone(), tail.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                    for part in [&head, &tail] {
                        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                        out.extend_from_slice(part);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    let _ = socket.write_all(&out).await;
                });
            }
        });
        id
    };
    let client = f.resolve(&id_base, NOW).await.unwrap();
    assert_eq!(client.client_id, id_base);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let docs = Docs::start(|base| {
        vec![
            (
                "/moved",
                Canned::json(&json!({}))
                    .status(StatusCode::FOUND)
                    .header("location", format!("{base}/target")),
            ),
            ("/target", Canned::json(&document(&format!("{base}/moved")))),
        ]
    })
    .await;
    let f = fetcher(|_| {});
    let error = f.resolve(&docs.url("/moved"), NOW).await.unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::Redirect);
    assert!(error.message().contains("302"), "{}", error.message());
    assert_eq!(docs.hits("/moved"), 1);
    assert_eq!(docs.hits("/target"), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let docs = Docs::start(|base| {
        vec![(
            "/slow",
            Canned::json(&document(&format!("{base}/slow"))).delay(Duration::from_secs(3)),
        )]
    })
    .await;
    let f = fetcher(|c| c.timeout = Duration::from_millis(300));
    let started = Instant::now();
    let error = f.resolve(&docs.url("/slow"), NOW).await.unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::Timeout, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_non_json_content_type_is_refused() {
    let docs = Docs::start(|base| {
        let doc = document(&format!("{base}/html"));
        let html = Canned {
            headers: vec![("content-type", "text/html".into())],
            ..Canned::json(&doc)
        };
        let none = Canned {
            headers: Vec::new(),
            ..Canned::json(&document(&format!("{base}/none")))
        };
        let vendor = Canned {
            headers: vec![(
                "content-type",
                "application/client-metadata+json; charset=utf-8".into(),
            )],
            ..Canned::json(&document(&format!("{base}/vendor")))
        };
        vec![("/html", html), ("/none", none), ("/vendor", vendor)]
    })
    .await;
    let f = fetcher(|_| {});
    for path in ["/html", "/none"] {
        let error = f.resolve(&docs.url(path), NOW).await.unwrap_err();
        assert_eq!(error.kind(), CimdErrorKind::ContentType, "{path}");
    }
    f.resolve(&docs.url("/vendor"), NOW).await.unwrap();
}

#[tokio::test]
async fn loopback_and_private_addresses_are_refused_by_default() {
    let docs = Docs::start(|base| {
        vec![(
            "/client.json",
            Canned::json(&document(&format!("{base}/client.json"))),
        )]
    })
    .await;
    let port = docs.base.rsplit(':').next().unwrap().to_owned();
    let strict = CimdFetcher::new(CimdConfig::default()).unwrap();

    // The loopback server's own URL: http is not even a document URL by default.
    assert!(!strict.is_document_url(&docs.url("/client.json")));
    let error = strict
        .resolve(&docs.url("/client.json"), NOW)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::InvalidUrl);

    // https on a loopback literal, or a name that resolves to loopback: blocked before connecting.
    for id in [
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        "https://169.254.169.254/latest/meta-data/iam".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
        "https://[fd00:ec2::254]/client.json".to_owned(),
    ] {
        let error = strict.resolve(&id, NOW).await.unwrap_err();
        assert_eq!(error.kind(), CimdErrorKind::Blocked, "{id}: {error}");
        assert!(
            !error.message().contains("127.") && !error.message().contains("::1"),
            "the message names no address"
        );
    }
    assert_eq!(
        docs.hits("/client.json"),
        0,
        "nothing reached the loopback server"
    );

    // The same document is fine once loopback is allowed (tests only).
    fetcher(|_| {})
        .resolve(&docs.url("/client.json"), NOW)
        .await
        .unwrap();
    assert_eq!(docs.hits("/client.json"), 1);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_fetched_when_loopback_is_allowed() {
    let docs = Docs::start(|base| {
        let id = format!("{}/client.json", base.replace("127.0.0.1", "localhost"));
        vec![("/client.json", Canned::json(&document(&id)))]
    })
    .await;
    let id = docs.url("/client.json").replace("127.0.0.1", "localhost");
    // allow_loopback: the guarded resolver keeps 127.0.0.1 (and ::1, where nothing listens).
    let client = fetcher(|_| {}).resolve(&id, NOW).await.unwrap();
    assert_eq!(client.client_id, id);
}

#[tokio::test]
async fn an_unreachable_host_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = fetcher(|_| {})
        .resolve(&format!("http://{addr}/client.json"), NOW)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), CimdErrorKind::Unreachable, "{error}");
}

#[tokio::test]
async fn concurrent_resolves_share_one_fetch() {
    let docs = Docs::start(|base| {
        vec![(
            "/client.json",
            Canned::json(&document(&format!("{base}/client.json")))
                .delay(Duration::from_millis(300)),
        )]
    })
    .await;
    let f = fetcher(|_| {});
    let id = docs.url("/client.json");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (f, id) = (f.clone(), id.clone());
            tokio::spawn(async move { f.resolve(&id, NOW).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().client_id, id);
    }
    assert_eq!(docs.hits("/client.json"), 1);
}

#[tokio::test]
async fn concurrent_resolves_of_an_error_share_it_without_caching_it() {
    let docs = Docs::start(|base| {
        vec![(
            "/client.json",
            Canned::json(&document(&format!("{base}/client.json")))
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .delay(Duration::from_millis(300)),
        )]
    })
    .await;
    let f = fetcher(|_| {});
    let id = docs.url("/client.json");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (f, id) = (f.clone(), id.clone());
            tokio::spawn(async move { f.resolve(&id, NOW).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap_err().kind(),
            CimdErrorKind::Status
        );
    }
    assert_eq!(docs.hits("/client.json"), 1);
    f.resolve(&id, NOW).await.unwrap_err();
    assert_eq!(docs.hits("/client.json"), 2, "the error was not cached");
}

/// Through the authorization endpoint: a metadata-document client reaches the sign-in page; a
/// broken document gets an error page and never a redirect (AS-13, AS-38).
#[tokio::test]
async fn the_authorization_endpoint_uses_metadata_documents() {
    let docs = Docs::start(|base| {
        vec![
            (
                "/good.json",
                Canned::json(&document(&format!("{base}/good.json"))),
            ),
            (
                "/bad.json",
                Canned::json(&document(&format!("{base}/other.json"))),
            ),
        ]
    })
    .await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = CimdConfig::default();
    config.allow_loopback = true;
    let server = AuthorizationServer::builder(&base)
        .resource(format!("{base}/mcp"))
        .scopes(["mcp:tools"])
        .store(MemoryStore::new())
        .client_id_metadata_documents(Some(config))
        .build()
        .await
        .unwrap();
    let metadata = server.metadata();
    assert!(metadata.client_id_metadata_document_supported);
    let app: axum::Router = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let authorize = |client_id: String| {
        let http = http.clone();
        let url = format!("{base}/authorize");
        let resource = format!("{base}/mcp");
        async move {
            let url = url::Url::parse_with_params(
                &url,
                [
                    ("response_type", "code"),
                    ("client_id", client_id.as_str()),
                    ("redirect_uri", "http://127.0.0.1:53682/callback"),
                    (
                        "code_challenge",
                        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    ),
                    ("code_challenge_method", "S256"),
                    ("resource", resource.as_str()),
                    ("scope", "mcp:tools"),
                    ("state", "xyz"),
                ],
            )
            .unwrap();
            http.get(url).send().await.unwrap()
        }
    };

    let good = authorize(docs.url("/good.json")).await;
    assert_eq!(
        good.status(),
        200,
        "the loopback redirect URI matched on another port"
    );
    assert_eq!(docs.hits("/good.json"), 1);

    let bad = authorize(docs.url("/bad.json")).await;
    assert!(bad.status().is_client_error(), "{}", bad.status());
    assert!(
        bad.headers().get("location").is_none(),
        "no redirect before the client is trusted"
    );
    let page = bad.text().await.unwrap();
    assert!(page.contains("metadata document"), "{page}");
}
