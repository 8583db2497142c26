//! A real authorization server on loopback, with a resource protected by `mcp-auth-resource`
//! at the same origin, and a small HTTP client that walks the browser flow by hand (cookies,
//! the consent form) the way a browser would.
#![allow(dead_code, unreachable_pub)]

mod temp_db;
#[allow(unused_imports, reason = "not every test file makes a database")]
pub use temp_db::TempDb;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use mcp_auth_resource::Auth;
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use mcp_auth_server::login::LocalLogin;
use mcp_auth_server::store::MemoryStore;
use mcp_auth_server::{AuthorizationServer, AuthorizationServerBuilder};
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::net::TcpListener;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const INTROSPECT_ID: &str = "resource-server";
pub const INTROSPECT_SECRET: &str = "introspection-secret-for-tests-0123456789";

pub struct Harness {
    pub base: String,
    pub resource: String,
    pub server: AuthorizationServer,
    pub http: reqwest::Client,
    /// Cookies this "browser" holds, by name.
    pub cookies: std::sync::Mutex<HashMap<String, String>>,
}

/// Start with the default test configuration, adjusted by `configure`.
pub async fn start(
    configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
) -> Harness {
    start_with_store(Arc::new(MemoryStore::new()), configure).await
}

pub async fn start_with_store(
    store: Arc<dyn mcp_auth_server::store::Store>,
    configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, store, configure).await
}

/// Start on a listener bound beforehand (when a peer must know the server's URL first).
pub async fn start_on(
    listener: TcpListener,
    store: Arc<dyn mcp_auth_server::store::Store>,
    configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
) -> Harness {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let builder = AuthorizationServer::builder(&base)
        .resource(&resource)
        .scopes(["mcp:tools", "notes:read"])
        .unadvertised_scopes(["notes:write", "mcp:admin"])
        .shared_store(store)
        .login(LocalLogin::new().user(USER, PASSWORD))
        .introspection_client(
            INTROSPECT_ID,
            &mcp_auth_core::Secret::new(INTROSPECT_SECRET),
        );
    let server = configure(builder).build().await.unwrap();

    let protected = ProtectedResource::builder(&resource)
        .authorization_server(&base)
        .scopes_supported("mcp:tools".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&base, &protected)
        .discover_jwks()
        .build()
        .unwrap();
    let mcp = Router::new()
        .route(
            "/mcp",
            get(|auth: Auth| async move {
                axum::Json(serde_json::json!({
                    "sub": auth.subject(),
                    "client_id": auth.client_id(),
                    "scope": auth.scopes().to_string(),
                }))
            }),
        )
        .layer(BearerAuthLayer::new(verifier, protected.clone()));
    let app = Router::new()
        .merge(server.router())
        .merge(protected.metadata_router())
        .merge(mcp);
    tokio::spawn(async move {
        // With the peer address, as a deployment that wants per-address throttling serves it.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    Harness {
        base,
        resource,
        server,
        http,
        cookies: Default::default(),
    }
}

/// PKCE pair.
pub fn pkce() -> (String, String) {
    let verifier = CodeVerifier::generate();
    let challenge = CodeChallenge::s256(&verifier);
    (verifier.expose().to_owned(), challenge.as_str().to_owned())
}

/// The value of `name="<field>"`'s `value` attribute in an HTML page.
pub fn hidden_field(html: &str, field: &str) -> Option<String> {
    let marker = format!("name=\"{field}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')?;
    Some(tag[v..v + end].replace("&amp;", "&"))
}

/// Query parameters of a `Location`.
pub fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap();
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let first = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            jar.insert(name.to_owned(), value.to_owned());
        }
    }

    /// Register a public client by DCR.
    pub async fn register_public(&self, redirect_uri: &str) -> String {
        // A new client each time: identical public registrations would return the first one.
        static REGISTERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = REGISTERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = self
            .http
            .post(self.url("/register"))
            .json(&serde_json::json!({
                "client_name": "Test Client",
                "software_version": format!("{n}"),
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// Register a confidential client by DCR; returns (client_id, client_secret).
    pub async fn register_confidential(
        &self,
        redirect_uri: &str,
        method: &str,
        grants: &[&str],
    ) -> (String, String) {
        let response = self
            .http
            .post(self.url("/register"))
            .json(&serde_json::json!({
                "client_name": "Confidential Client",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": method,
                "grant_types": grants,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The authorization URL for a request.
    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// `GET /authorize` as the browser (with its cookies).
    pub async fn browse(&self, url: &str) -> reqwest::Response {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Submit the consent page's form.
    pub async fn submit(&self, page: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(String, String)> = vec![
            (
                "transaction".into(),
                hidden_field(page, "transaction").expect("transaction field"),
            ),
            (
                "csrf".into(),
                hidden_field(page, "csrf").expect("csrf field"),
            ),
        ];
        form.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let response = self
            .http
            .post(self.url("/authorize"))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Standard authorization parameters.
    pub fn params<'a>(
        &'a self,
        client_id: &'a str,
        redirect_uri: &'a str,
        challenge: &'a str,
        scope: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "xyz-state"),
            ("resource", &self.resource),
            ("scope", scope),
        ]
    }

    /// Walk the whole browser flow (page, login, approve) and return the code.
    pub async fn authorize(
        &self,
        client_id: &str,
        redirect_uri: &str,
        challenge: &str,
        scope: &str,
    ) -> String {
        let url = self.authorize_url(&self.params(client_id, redirect_uri, challenge, scope));
        let response = self.browse(&url).await;
        let location = if response.status() == 303 {
            response.headers()["location"].to_str().unwrap().to_owned()
        } else {
            assert_eq!(response.status(), 200, "the consent page");
            let page = response.text().await.unwrap();
            let fields: Vec<(&str, &str)> = if page.contains("name=\"username\"") {
                vec![
                    ("username", USER),
                    ("password", PASSWORD),
                    ("decision", "approve"),
                ]
            } else {
                vec![("decision", "approve")]
            };
            let response = self.submit(&page, &fields).await;
            assert_eq!(response.status(), 303);
            response.headers()["location"].to_str().unwrap().to_owned()
        };
        assert!(location.starts_with(redirect_uri), "{location}");
        let q = query_of(&location);
        assert_eq!(q.get("state").map(String::as_str), Some("xyz-state"));
        assert_eq!(q.get("iss"), Some(&self.base));
        q.get("code")
            .unwrap_or_else(|| panic!("no code in {location}"))
            .clone()
    }

    /// POST a form to the token endpoint.
    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// POST a form to the revocation endpoint; the status.
    pub async fn token_revoke(&self, form: &[(&str, &str)]) -> u16 {
        self.http
            .post(self.url("/revoke"))
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Exchange a code for a public client.
    pub async fn exchange(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("resource", &self.resource),
        ])
        .await
    }

    /// Call the protected resource.
    pub async fn call_mcp(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/mcp"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Introspect with the resource server's credentials.
    pub async fn introspect(&self, token: &str) -> Value {
        let response = self
            .http
            .post(self.url("/introspect"))
            .basic_auth(INTROSPECT_ID, Some(INTROSPECT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// The `Retry-After` of a response, in seconds (it must be there, as a number).
pub fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
