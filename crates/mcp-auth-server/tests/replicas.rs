#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two replicas of one authorization server on one shared database: nothing a flow needs is
//! kept in one process. Each replica is a separate `AuthorizationServer` with its own
//! connection pool on the same SQLite file, serving its own port; the test client addresses
//! them directly (the issuer names the address a load balancer would have).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_auth_core::Secret;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use mcp_auth_core::revocation::RevocationList;
use mcp_auth_server::login::LocalLogin;
use mcp_auth_server::store::{SqliteStore, Store};
use mcp_auth_server::{AuthorizationServer, AuthorizationServerBuilder, MachineClient};
use reqwest::redirect::Policy;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use common::TempDb;

const ISSUER: &str = "http://127.0.0.1:1";
const RESOURCE: &str = "http://127.0.0.1:1/mcp";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const MACHINE_ID: &str = "nightly-report";
const MACHINE_SECRET: &str = "nightly-report-secret-0123456789abcdef";

struct Replica {
    base: String,
    server: AuthorizationServer,
}

struct Cluster {
    replicas: Vec<Replica>,
    http: reqwest::Client,
    _file: TempDb,
}

async fn cluster(
    name: &str,
    configure: impl Fn(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
) -> Cluster {
    let file = TempDb::new(&format!("replicas-{name}"));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // One pool per replica: two "processes" on one database.
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&file.0).await.unwrap());
        let builder = AuthorizationServer::builder(ISSUER)
            .resource(RESOURCE)
            .scopes(["mcp:tools", "notes:read"])
            .shared_store(store)
            .login(LocalLogin::new().user(USER, PASSWORD))
            .client_credentials(true)
            .machine_client(
                MachineClient::new(MACHINE_ID, Secret::new(MACHINE_SECRET)).scopes(["notes:read"]),
            );
        let server = configure(builder).build().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = server.router::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        replicas.push(Replica { base, server });
    }
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    Cluster {
        replicas,
        http,
        _file: file,
    }
}

fn claims_of(jwt: &str) -> Map<String, Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn cookie_header(jar: &HashMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn keep_cookies(jar: &mut HashMap<String, String>, response: &reqwest::Response) {
    for value in response.headers().get_all("set-cookie") {
        let pair = value.to_str().unwrap().split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        jar.insert(name.to_owned(), value.to_owned());
    }
}

fn hidden(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = page.find(&marker).expect("field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_on_one_replica_is_refused_by_the_other_within_a_second() {
    let c = cluster("revoke", |b| b).await;
    let (a, b) = (&c.replicas[0], &c.replicas[1]);
    let response = c
        .http
        .post(format!("{}/token", a.base))
        .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
        .form(&[("grant_type", "client_credentials"), ("resource", RESOURCE)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&token);
    assert!(!b.server.revocations().is_revoked(&claims));

    // Revoked at replica B (the other one): A's list knows within a second.
    let response = c
        .http
        .post(format!("{}/revoke", b.base))
        .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(b.server.revocations().is_revoked(&claims), "at once here");
    let started = Instant::now();
    while !a.server.revocations().is_revoked(&claims) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the other replica still accepts the revoked token after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_started_on_one_replica_finishes_on_the_other_and_refreshes_anywhere() {
    let c = cluster("flow", |b| b).await;
    let (a, b) = (&c.replicas[0], &c.replicas[1]);
    let response = c
        .http
        .post(format!("{}/register", a.base))
        .json(&serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": "replica test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let client: Value = response.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    let verifier = CodeVerifier::generate();
    let challenge = CodeChallenge::s256(&verifier);
    let mut url = url::Url::parse(&format!("{}/authorize", a.base)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("resource", RESOURCE),
        ("scope", "mcp:tools"),
    ]);
    let mut jar = HashMap::new();
    // The page from A ...
    let response = c.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    keep_cookies(&mut jar, &response);
    let page = response.text().await.unwrap();
    // ... a wrong password at B (the page comes back from B's copy of the transaction) ...
    let form = |password: &str| {
        vec![
            ("transaction".to_owned(), hidden(&page, "transaction")),
            ("csrf".to_owned(), hidden(&page, "csrf")),
            ("username".to_owned(), USER.to_owned()),
            ("password".to_owned(), password.to_owned()),
            ("decision".to_owned(), "approve".to_owned()),
        ]
    };
    let response = c
        .http
        .post(format!("{}/authorize", b.base))
        .header("cookie", cookie_header(&jar))
        .form(&form("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong username or password")
    );
    // ... the right one at A, the transaction is taken once.
    let response = c
        .http
        .post(format!("{}/authorize", a.base))
        .header("cookie", cookie_header(&jar))
        .form(&form(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    keep_cookies(&mut jar, &response);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let replay = c
        .http
        .post(format!("{}/authorize", b.base))
        .header("cookie", cookie_header(&jar))
        .form(&form(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400, "the transaction was decided");

    // The session made at A signs the next authorization in at B without a page.
    let response = c
        .http
        .get(url.as_str().replace(&a.base, &b.base))
        .header("cookie", cookie_header(&jar))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "session and consent shared");

    // Code exchanged at B, refreshed at A, then at B.
    let response = c
        .http
        .post(format!("{}/token", b.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.expose()),
            ("resource", RESOURCE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut tokens: Value = response.json().await.unwrap();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for replica in [a, b] {
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let response = c
            .http
            .post(format!("{}/token", replica.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokens = response.json().await.unwrap();
    }
    let claims = claims_of(tokens["access_token"].as_str().unwrap());

    // The first refresh token, reused at A long after: the family is revoked everywhere.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let response = c
        .http
        .post(format!("{}/token", a.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first_refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    // Inside the grace window a replay with unused successors would be forgiven; its
    // successors were used, so this is reuse.
    assert_eq!(response.status(), 400);
    let started = Instant::now();
    while !b.server.revocations().is_revoked(&claims) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_count_across_replicas() {
    let c = cluster("limits", |b| b.registrations_per_minute(2)).await;
    let register = |base: String, n: usize| {
        let http = c.http.clone();
        async move {
            http.post(format!("{base}/register"))
                .json(&serde_json::json!({
                    "redirect_uris": [format!("http://127.0.0.1:9/cb{n}")],
                    "token_endpoint_auth_method": "none",
                }))
                .send()
                .await
                .unwrap()
        }
    };
    let (a, b) = (&c.replicas[0], &c.replicas[1]);
    assert_eq!(register(a.base.clone(), 1).await.status(), 201);
    assert_eq!(register(b.base.clone(), 2).await.status(), 201);
    let third = register(a.base.clone(), 3).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
}
