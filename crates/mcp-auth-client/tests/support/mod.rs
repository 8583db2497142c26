//! A fake MCP server and authorization server on loopback, configurable per test, that logs and
//! counts every request.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use mcp_auth_client::{HeadlessBrowser, TokenManagerBuilder};
use mcp_auth_core::ManualClock;
use sha2::Digest;

/// Where the protected resource metadata is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prm {
    /// `/.well-known/oauth-protected-resource/mcp`
    PathAware,
    /// `/.well-known/oauth-protected-resource`
    Root,
    /// `/custom/metadata/location.json`
    Custom,
    /// Nowhere (2025-03-26 back-compat).
    None,
}

/// Where the authorization server metadata is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsAt {
    Rfc8414,
    OidcInserted,
    OidcAppended,
    /// Not at all (2025-03-26 endpoint fallback).
    Nowhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iss {
    Omit,
    Correct,
    Wrong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Ok,
    InvalidGrant,
    Unavailable,
    Drop,
}

/// The knobs.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub prm: Prm,
    pub header_has_metadata: bool,
    pub challenge_scope: Option<String>,
    pub prm_scopes_supported: Option<Vec<String>>,
    pub prm_resource: Option<String>,
    pub issuer_path: String,
    pub as_at: AsAt,
    pub issuer_override: Option<String>,
    pub s256: bool,
    pub cimd_supported: bool,
    pub registration: bool,
    pub registration_secret: Option<String>,
    pub registration_method: Option<String>,
    pub auth_methods_supported: Vec<String>,
    pub iss_supported: bool,
    pub iss: Iss,
    pub refresh_mode: TokenMode,
    pub expires_in: u64,
    pub issue_refresh: bool,
    pub as_scopes_supported: Vec<String>,
    /// Scopes the MCP endpoint requires per JSON-RPC method name found in the body.
    pub required: HashMap<String, Vec<String>>,
    /// The MCP endpoint answers 403 to every token.
    pub always_403: bool,
    /// The PRM's `authorization_servers` (default: this server's own issuer).
    pub authorization_servers: Option<Vec<String>>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            prm: Prm::PathAware,
            header_has_metadata: true,
            challenge_scope: None,
            prm_scopes_supported: Some(vec!["mcp:tools".into()]),
            prm_resource: None,
            issuer_path: String::new(),
            as_at: AsAt::Rfc8414,
            issuer_override: None,
            s256: true,
            cimd_supported: false,
            registration: true,
            registration_secret: None,
            registration_method: None,
            auth_methods_supported: vec!["none".into()],
            iss_supported: false,
            iss: Iss::Omit,
            refresh_mode: TokenMode::Ok,
            expires_in: 3600,
            issue_refresh: true,
            as_scopes_supported: Vec::new(),
            required: HashMap::new(),
            always_403: false,
            authorization_servers: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    resource: String,
    scope: String,
}

/// A token endpoint request as received.
#[derive(Debug, Clone)]
pub struct TokenCall {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
pub struct Recorded {
    /// `METHOD path` of every request, in order.
    pub log: Vec<String>,
    pub authorize: Vec<HashMap<String, String>>,
    pub token: Vec<TokenCall>,
    pub register: Vec<serde_json::Value>,
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, String>,
    refresh: HashMap<String, (String, String)>,
}

pub struct Fake {
    pub base: String,
    pub knobs: Mutex<Knobs>,
    pub rec: Mutex<Recorded>,
    counter: AtomicUsize,
    pub token_hits: AtomicUsize,
    /// `/mcp` requests that carried no bearer token.
    pub anonymous_mcp: AtomicUsize,
    /// Authorization servers whose tokens the MCP endpoint accepts instead of its own (set
    /// after a migration).
    pub trusted: Mutex<Vec<Arc<Self>>>,
    /// A real MCP server (e.g. rmcp's) answering authorized `/mcp` requests.
    mcp_app: Option<Router>,
}

impl Fake {
    pub async fn start(knobs: Knobs) -> Arc<Self> {
        Self::start_inner(knobs, None).await
    }

    /// Like [`start`](Self::start), with `app` answering every authorized `/mcp` request.
    pub async fn start_with_mcp(knobs: Knobs, app: Router) -> Arc<Self> {
        Self::start_inner(knobs, Some(app)).await
    }

    async fn start_inner(knobs: Knobs, mcp_app: Option<Router>) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Self {
            base,
            knobs: Mutex::new(knobs),
            rec: Mutex::new(Recorded::default()),
            counter: AtomicUsize::new(0),
            token_hits: AtomicUsize::new(0),
            anonymous_mcp: AtomicUsize::new(0),
            trusted: Mutex::new(Vec::new()),
            mcp_app,
        });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&fake));
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn issuer(&self) -> String {
        let k = self.knobs.lock().unwrap();
        format!("{}{}", self.base, k.issuer_path)
    }

    pub fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.knobs.lock().unwrap());
    }

    pub fn log(&self) -> Vec<String> {
        self.rec.lock().unwrap().log.clone()
    }

    pub fn authorize_calls(&self) -> Vec<HashMap<String, String>> {
        self.rec.lock().unwrap().authorize.clone()
    }

    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.rec.lock().unwrap().token.clone()
    }

    pub fn registrations(&self) -> Vec<serde_json::Value> {
        self.rec.lock().unwrap().register.clone()
    }

    pub fn revoke_all_access_tokens(&self) {
        self.rec.lock().unwrap().access.clear();
    }

    /// This server's port: part of every id and token it issues, so two servers never issue
    /// the same one.
    pub fn tag(&self) -> &str {
        self.base.rsplit(':').next().unwrap_or_default()
    }

    fn next(&self) -> usize {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A manager builder wired for this server: loopback http, headless browser, manual clock.
    pub fn manager(&self, clock: &ManualClock) -> TokenManagerBuilder {
        mcp_auth_client::TokenManager::builder(&self.mcp_url())
            .allow_insecure_loopback(true)
            .browser(HeadlessBrowser::new())
            .clock(clock.clone())
            .authorization_timeout(Duration::from_secs(10))
            .retry(
                mcp_auth_client::RetryPolicy::new(3)
                    .initial_backoff(Duration::from_millis(5))
                    .max_backoff(Duration::from_millis(20)),
            )
    }
}

pub fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Infallible> {
    let path = uri.path().to_owned();
    fake.rec
        .lock()
        .unwrap()
        .log
        .push(format!("{method} {path}"));
    let k = fake.knobs.lock().unwrap().clone();
    let base = fake.base.clone();
    let issuer = format!("{base}{}", k.issuer_path);
    let prm_path = match k.prm {
        Prm::PathAware => Some("/.well-known/oauth-protected-resource/mcp"),
        Prm::Root => Some("/.well-known/oauth-protected-resource"),
        Prm::Custom => Some("/custom/metadata/location.json"),
        Prm::None => None,
    };
    let ip = &k.issuer_path;
    let as_path = match k.as_at {
        AsAt::Rfc8414 => Some(format!("/.well-known/oauth-authorization-server{ip}")),
        AsAt::OidcInserted => Some(format!("/.well-known/openid-configuration{ip}")),
        AsAt::OidcAppended => Some(format!("{ip}/.well-known/openid-configuration")),
        AsAt::Nowhere => None,
    };

    if path == "/mcp" {
        let answer = mcp(&fake, &k, &headers, &body, prm_path);
        if answer.status() == StatusCode::OK
            && let Some(app) = fake.mcp_app.clone()
        {
            use tower::ServiceExt;
            let mut req = http::Request::new(axum::body::Body::from(body));
            *req.method_mut() = method;
            *req.uri_mut() = uri;
            *req.headers_mut() = headers;
            return Ok(app.oneshot(req).await.unwrap());
        }
        return Ok(answer);
    }
    if Some(path.as_str()) == prm_path && method == Method::GET {
        let mut doc = serde_json::json!({
            "resource": k.prm_resource.clone().unwrap_or_else(|| format!("{base}/mcp")),
            "authorization_servers": k.authorization_servers.clone().unwrap_or_else(|| vec![issuer.clone()]),
        });
        if let Some(s) = &k.prm_scopes_supported {
            doc["scopes_supported"] = serde_json::json!(s);
        }
        return Ok(json(StatusCode::OK, doc));
    }
    if Some(&path) == as_path.as_ref() && method == Method::GET {
        let mut doc = serde_json::json!({
            "issuer": k.issuer_override.clone().unwrap_or_else(|| issuer.clone()),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": k.auth_methods_supported,
        });
        if k.s256 {
            doc["code_challenge_methods_supported"] = serde_json::json!(["S256"]);
        }
        if k.registration {
            doc["registration_endpoint"] = serde_json::json!(format!("{issuer}/register"));
        }
        if k.cimd_supported {
            doc["client_id_metadata_document_supported"] = serde_json::json!(true);
        }
        if k.iss_supported {
            doc["authorization_response_iss_parameter_supported"] = serde_json::json!(true);
        }
        if !k.as_scopes_supported.is_empty() {
            doc["scopes_supported"] = serde_json::json!(k.as_scopes_supported);
        }
        return Ok(json(StatusCode::OK, doc));
    }
    let endpoint = path.strip_prefix(ip.as_str()).unwrap_or("");
    match (method.clone(), endpoint) {
        (Method::GET, "/authorize") => {
            let q = query(&uri);
            fake.rec.lock().unwrap().authorize.push(q.clone());
            let code = format!("code-{}-{}", fake.tag(), fake.next());
            fake.rec.lock().unwrap().codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: q.get("client_id").cloned().unwrap_or_default(),
                    redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
                    challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                    resource: q.get("resource").cloned().unwrap_or_default(),
                    scope: q.get("scope").cloned().unwrap_or_default(),
                },
            );
            let mut target = url::Url::parse(q.get("redirect_uri").unwrap()).unwrap();
            {
                let mut pairs = target.query_pairs_mut();
                pairs.append_pair("code", &code);
                if let Some(state) = q.get("state") {
                    pairs.append_pair("state", state);
                }
                match k.iss {
                    Iss::Omit => {}
                    Iss::Correct => {
                        pairs.append_pair("iss", &issuer);
                    }
                    Iss::Wrong => {
                        pairs.append_pair("iss", "https://evil.example.com");
                    }
                }
            }
            Ok((StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response())
        }
        (Method::POST, "/token") => Ok(token(&fake, &k, &headers, &body).await),
        (Method::POST, "/register") if k.registration => {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            fake.rec.lock().unwrap().register.push(req.clone());
            let mut resp = serde_json::json!({
                "client_id": format!("dcr-{}-{}", fake.tag(), fake.next()),
                "redirect_uris": req["redirect_uris"],
                "client_name": req["client_name"],
            });
            if let Some(secret) = &k.registration_secret {
                resp["client_secret"] = serde_json::json!(secret);
                resp["client_secret_expires_at"] = serde_json::json!(0);
            }
            if let Some(m) = &k.registration_method {
                resp["token_endpoint_auth_method"] = serde_json::json!(m);
            }
            Ok(json(StatusCode::CREATED, resp))
        }
        _ => Ok(not_found()),
    }
}

fn mcp(
    fake: &Fake,
    k: &Knobs,
    headers: &HeaderMap,
    body: &Bytes,
    prm_path: Option<&str>,
) -> Response {
    let base = &fake.base;
    let mut challenge = String::from("Bearer");
    let mut params = Vec::new();
    if k.header_has_metadata
        && let Some(p) = prm_path
    {
        params.push(format!("resource_metadata=\"{base}{p}\""));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        fake.anonymous_mcp.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = &k.challenge_scope {
            params.push(format!("scope=\"{s}\""));
        }
        if !params.is_empty() {
            challenge.push(' ');
            challenge.push_str(&params.join(", "));
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    };
    let trusted = fake.trusted.lock().unwrap().clone();
    let granted = if trusted.is_empty() {
        fake.rec.lock().unwrap().access.get(&token).cloned()
    } else {
        trusted
            .iter()
            .find_map(|t| t.rec.lock().unwrap().access.get(&token).cloned())
    };
    let Some(granted) = granted else {
        params.insert(0, "error=\"invalid_token\"".to_owned());
        challenge.push(' ');
        challenge.push_str(&params.join(", "));
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    };
    let method = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let required = k.required.get(&method).cloned().unwrap_or_default();
    let granted: Vec<&str> = granted.split(' ').collect();
    if k.always_403 || !required.iter().all(|r| granted.contains(&r.as_str())) {
        let scope = if k.always_403 {
            "mcp:admin".to_owned()
        } else {
            required.join(" ")
        };
        params.insert(0, "error=\"insufficient_scope\"".to_owned());
        params.insert(1, format!("scope=\"{scope}\""));
        challenge.push(' ');
        challenge.push_str(&params.join(", "));
        return (
            StatusCode::FORBIDDEN,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    }
    (StatusCode::OK, format!("ok {token}")).into_response()
}

async fn token(fake: &Fake, k: &Knobs, headers: &HeaderMap, body: &Bytes) -> Response {
    fake.token_hits.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.rec.lock().unwrap().token.push(TokenCall {
        form: form.clone(),
        authorization,
    });
    let error = |status: StatusCode, code: &str| json(status, serde_json::json!({ "error": code }));
    let scope = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let grant = fake
                .rec
                .lock()
                .unwrap()
                .codes
                .remove(form.get("code").map(String::as_str).unwrap_or_default());
            let Some(grant) = grant else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != grant.challenge
                || form.get("redirect_uri") != Some(&grant.redirect_uri)
                || form.get("resource") != Some(&grant.resource)
            {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let _ = grant.client_id;
            grant.scope
        }
        // A machine client: any client authentication is accepted here (the tests check what
        // was sent); the scope is what was asked for.
        Some("client_credentials") => {
            if fake
                .rec
                .lock()
                .unwrap()
                .token
                .last()
                .and_then(|c| c.authorization.as_ref())
                .is_none()
                && !form.contains_key("client_secret")
                && !form.contains_key("client_assertion")
            {
                return error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            form.get("scope").cloned().unwrap_or_default()
        }
        // Workload identity: the assertion `expired` is refused, any other accepted.
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => match form.get("assertion") {
            Some(a) if a != "expired" => form.get("scope").cloned().unwrap_or_default(),
            _ => return error(StatusCode::BAD_REQUEST, "invalid_grant"),
        },
        Some("refresh_token") => {
            match k.refresh_mode {
                TokenMode::Ok => {}
                TokenMode::InvalidGrant => return error(StatusCode::BAD_REQUEST, "invalid_grant"),
                TokenMode::Unavailable => {
                    return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
                }
                TokenMode::Drop => panic!("fake token endpoint drops the connection"),
            }
            // Rotation: the refresh token is single use.
            let old = fake.rec.lock().unwrap().refresh.remove(
                form.get("refresh_token")
                    .map(String::as_str)
                    .unwrap_or_default(),
            );
            let Some((scope, resource)) = old else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if form.get("resource") != Some(&resource) {
                return error(StatusCode::BAD_REQUEST, "invalid_target");
            }
            scope
        }
        _ => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let n = fake.next();
    let access = format!("at-{}-{n}", fake.tag());
    let mut resp = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": k.expires_in,
    });
    let resource = form.get("resource").cloned().unwrap_or_default();
    {
        let mut rec = fake.rec.lock().unwrap();
        rec.access.insert(access, scope.clone());
        if k.issue_refresh {
            let refresh = format!("rt-{}-{n}", fake.tag());
            rec.refresh
                .insert(refresh.clone(), (scope.clone(), resource));
            resp["refresh_token"] = serde_json::json!(refresh);
        }
    }
    if !scope.is_empty() {
        resp["scope"] = serde_json::json!(scope);
    }
    json(StatusCode::OK, resp)
}

/// A tower service sending `http::Request<String>` with reqwest (the MCP client's transport).
#[derive(Clone, Debug, Default)]
pub struct Transport {
    client: reqwest::Client,
}

impl tower::Service<http::Request<String>> for Transport {
    type Response = http::Response<String>;
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<String>) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut out = http::Response::builder().status(response.status());
            for (k, v) in response.headers() {
                out = out.header(k, v);
            }
            let text = response.text().await?;
            Ok(out.body(text).unwrap())
        })
    }
}

/// A JSON-RPC request body.
pub fn rpc(method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}"}}"#)
}
