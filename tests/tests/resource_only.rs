//! A resource-only deployment end to end, over real HTTP on loopback: `example-resource-server`
//! (an MCP server protected by `mcp-auth-resource` alone, issuing no tokens) trusts the demo
//! `example-mcp-server`'s embedded authorization server as its external IdP.
//!
//! ```text
//! http://127.0.0.1:<rs>    example-resource-server      PRM names the demo as authorization server
//! └── /mcp                 whoami (mcp:tools), admin_tool (mcp:admin, by step-up)
//! http://127.0.0.1:<demo>  example-mcp-server           issuer; tokens for its own /mcp and,
//! ├── /register /authorize /token /revoke /jwks.json    through `extra_resources` (RFC 8707),
//! └── /introspect (with introspection credentials)      for the resource server's /mcp
//! ```
//!
//! Start order: the resource server's listener is bound first (its URL is the extra resource the
//! demo must know), then the demo is built and served, then the resource server's app is built
//! with the demo's issuer.
//!
//! The client (the example's rmcp client with `mcp-auth-client`'s `TokenManager` under its
//! transport through `McpAuthClient`) is given only the resource server's URL: 401 → RFC 9728 metadata → the demo's RFC
//! 8414 metadata → dynamic registration → authorization (headless) → MCP calls → 403 step-up.
//!
//! Two ways of checking tokens, both against the same demo:
//! - **JWT**: keys found by discovery (the demo's `jwks_uri`), `aud` must be the resource server.
//! - **Introspection** (RFC 7662) at the demo's `/introspect`, with resource-server credentials.
//!   Wrong credentials are an outage, not a bad token: 503 with `Retry-After` (rule 6 of
//!   `mcp_auth_resource::IntrospectionVerifier`). A revoked token stays accepted while its answer
//!   is cached (rule 7: up to the cache TTL, 60 s by default in the example), and is refused once
//!   the cache entry is gone (a restart here, an advanced clock for a verifier built by hand);
//!   without a cache (`MCP_AUTH_INTROSPECTION_CACHE_SECS=0`) it is refused at the next request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{net::SocketAddr, time::Duration};

use example_mcp_client::mcp::{Error as McpError, McpClient};
use example_resource_server::{ADMIN_SCOPE, TOOLS_SCOPE};
use mcp_auth_client::{
    HeadlessBrowser, TokenEndpointAuthMethod, TokenManager,
    store::{MemoryTokenStore, RegistrationKind, StoredClient, StoredTokens, TokenKey, TokenStore},
};
use mcp_auth_core::{Clock, ManualClock, ResourceId, Secret, SystemClock};
use mcp_auth_resource::{ClientAuth, IntrospectionVerifier, TokenVerifier, VerifyErrorKind};
use serde_json::{Map, Value, json};
use support::{Demo, Running, client, granted, tool_text};
use tokio::net::TcpListener;

/// The resource server's client id at the demo's `/introspect`.
const INTROSPECTION_ID: &str = "rs";
const INTROSPECTION_SECRET: &str = "an-introspection-secret-for-the-resource-only-test";

// ---------------------------------------------------------------------------------------------
// The deployment
// ---------------------------------------------------------------------------------------------

/// How the resource server checks tokens.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// JWTs, keys by discovery.
    Jwt,
    /// RFC 7662 introspection at the demo, with this client secret (the right one or not).
    Introspection { secret: &'static str },
    /// Introspection with the right secret and no cache
    /// (`MCP_AUTH_INTROSPECTION_CACHE_SECS=0`): every request asks the demo.
    IntrospectionUncached,
}

/// The demo (authorization server) and the resource server, both running.
struct Deployment {
    mode: Mode,
    /// The demo's issuer, `http://<demo>`.
    issuer: String,
    /// The demo's own MCP endpoint.
    demo_mcp: String,
    /// The demo, logging every request.
    demo: Demo,
    /// Where the resource server listens (kept across a restart).
    rs_addr: SocketAddr,
    /// The resource server's MCP endpoint (its resource identifier).
    rs_mcp: String,
    /// `None` only while it restarts.
    rs: Option<Running>,
}

impl Deployment {
    async fn start(mode: Mode) -> Self {
        // 1. The resource server's listener first: its URL is an extra resource of the demo.
        let rs_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rs_addr = rs_listener.local_addr().unwrap();
        let rs_mcp = format!("http://{rs_addr}/mcp");

        // 2. The demo, issuing tokens for its own /mcp and for the resource server.
        let demo = Demo::start("127.0.0.1:0", |config| {
            config.extra_resources.push(rs_mcp.clone());
            if matches!(
                mode,
                Mode::Introspection { .. } | Mode::IntrospectionUncached
            ) {
                config.introspection_client = Some((
                    INTROSPECTION_ID.to_owned(),
                    Secret::new(INTROSPECTION_SECRET),
                ));
            }
        })
        .await;
        let issuer = demo.issuer();
        let demo_mcp = demo.url.clone();

        // 3. The resource server, trusting the demo's issuer.
        let rs = serve_resource_server(rs_listener, mode, &issuer);
        Self {
            mode,
            issuer,
            demo_mcp,
            demo,
            rs_addr,
            rs_mcp,
            rs: Some(rs),
        }
    }

    /// Stops the resource server and starts a new one on the same address: same resource, same
    /// settings, nothing cached.
    async fn restart_resource_server(&mut self) {
        self.rs.take().unwrap().stop().await;
        let listener = TcpListener::bind(self.rs_addr).await.unwrap();
        self.rs = Some(serve_resource_server(listener, self.mode, &self.issuer));
    }

    fn rs_metadata_url(&self) -> String {
        format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            self.rs_addr
        )
    }

    /// How many requests the demo received for `path`.
    fn demo_hits(&self, path: &str) -> usize {
        self.demo.hits(path)
    }

    async fn stop(self) {
        self.rs.unwrap().stop().await;
        self.demo.stop().await;
    }
}

fn serve_resource_server(listener: TcpListener, mode: Mode, issuer: &str) -> Running {
    let addr = listener.local_addr().unwrap();
    let (introspection_url, introspection_client) = match mode {
        Mode::Jwt => (None, None),
        Mode::Introspection { secret } => (
            Some(format!("{issuer}/introspect")),
            Some((INTROSPECTION_ID.to_owned(), secret.to_owned())),
        ),
        Mode::IntrospectionUncached => (
            Some(format!("{issuer}/introspect")),
            Some((INTROSPECTION_ID.to_owned(), INTROSPECTION_SECRET.to_owned())),
        ),
    };
    let introspection_cache_ttl =
        matches!(mode, Mode::IntrospectionUncached).then_some(Duration::ZERO);
    let config = example_resource_server::Config {
        addr,
        resource: format!("http://{addr}/mcp"),
        issuer: issuer.to_owned(),
        introspection_url,
        introspection_client,
        introspection_cache_ttl,
        accept_jwt_typ: false,
        accept_audience: None,
    };
    let router = example_resource_server::app(&config).unwrap();
    Running::axum(listener, router)
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

fn manager(url: &str, store: &MemoryTokenStore) -> TokenManager {
    TokenManager::builder(url)
        .client_name("resource-only e2e")
        .allow_insecure_loopback(true)
        .browser(HeadlessBrowser::new())
        .clock(ManualClock::new(SystemClock::default().now()))
        .store(store.clone())
        .build()
        .unwrap()
}

async fn current_token(manager: &TokenManager) -> String {
    manager
        .cached_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned()
}

/// The manager's stored record: access and refresh token, and the client they were issued to.
async fn stored(manager: &TokenManager, store: &MemoryTokenStore) -> (StoredTokens, StoredClient) {
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let tokens = store
        .load_tokens(&key)
        .await
        .unwrap()
        .expect("stored tokens");
    let client = store
        .load_client(&tokens.issuer)
        .await
        .unwrap()
        .expect("a registered client");
    (tokens, client)
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An `initialize` POST to `mcp` with `token`: the status and the `WWW-Authenticate` header.
async fn post_initialize(mcp: &str, token: &str) -> (u16, Option<String>, reqwest::Response) {
    let response = http()
        .post(mcp)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .bearer_auth(token)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge, response)
}

/// Asserts that `mcp` refuses `token` with 401 `invalid_token`.
async fn assert_invalid_token(mcp: &str, token: &str, why: &str) {
    let (status, challenge, _) = post_initialize(mcp, token).await;
    assert_eq!(status, 401, "{why}");
    let challenge = challenge.expect("a Bearer challenge");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{why}: {challenge}"
    );
}

/// The demo's RFC 7662 answer for `token`, asked with the right resource-server credentials.
async fn introspect(issuer: &str, token: &str) -> Value {
    let response = http()
        .post(format!("{issuer}/introspect"))
        .basic_auth(INTROSPECTION_ID, Some(INTROSPECTION_SECRET))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Revokes `token` at the demo's `/revoke` (RFC 7009) as `client`, authenticating the way the
/// client registered (a public client sends only its `client_id`).
async fn revoke(issuer: &str, client: &StoredClient, token: &str, hint: &str) {
    let mut form = vec![("token", token), ("token_type_hint", hint)];
    let mut request = http().post(format!("{issuer}/revoke"));
    match client.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretBasic => {
            let secret = client.client_secret.as_ref().unwrap().expose();
            request = request.basic_auth(&client.client_id, Some(secret));
        }
        TokenEndpointAuthMethod::ClientSecretPost => {
            form.push(("client_id", &client.client_id));
            form.push((
                "client_secret",
                client.client_secret.as_ref().unwrap().expose(),
            ));
        }
        _ => form.push(("client_id", &client.client_id)),
    }
    let response = request.form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200, "revocation accepted");
}

/// The claims of a JWT (payload decoded, signature not checked: the servers check it).
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64url_decode(payload)).unwrap()
}

/// Unpadded base64url (RFC 4648 §5), enough for a JWT payload.
fn base64url_decode(input: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        }
    };
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in input.bytes() {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The shared flow
// ---------------------------------------------------------------------------------------------

/// Given only the resource server's URL: 401 → PRM → the demo → registration → authorization →
/// `whoami` → 403 step-up → `admin_tool`. Returns the manager, its store and the open client.
async fn connect_and_step_up(
    deployment: &Deployment,
) -> (TokenManager, MemoryTokenStore, McpClient) {
    // What the client starts from: a 401 naming the metadata, which names the demo.
    let response = http().post(&deployment.rs_mcp).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"{TOOLS_SCOPE}\"",
            deployment.rs_metadata_url()
        )
        .as_str()
    );
    let prm: Value = http()
        .get(deployment.rs_metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], deployment.rs_mcp);
    assert_eq!(prm["authorization_servers"], json!([deployment.issuer]));

    let store = MemoryTokenStore::new();
    let manager = manager(&deployment.rs_mcp, &store);
    let mut mcp = client(&deployment.rs_mcp, &manager);
    let info = mcp.initialize("resource-only e2e").await.unwrap();
    assert!(
        info.legacy || info.protocol_version == "2026-07-28",
        "{info:?}"
    );
    assert_eq!(granted(&manager).await, TOOLS_SCOPE);
    assert_eq!(deployment.demo_hits("/register"), 1, "dynamic registration");
    assert_eq!(deployment.demo_hits("/authorize"), 1);

    let (tokens, registered) = stored(&manager, &store).await;
    assert_eq!(tokens.issuer, deployment.issuer);
    assert_eq!(tokens.resource, deployment.rs_mcp, "RFC 8707 resource sent");
    assert_eq!(registered.kind, RegistrationKind::Dynamic);
    assert!(tokens.refresh_token.is_some());

    let mut tools: Vec<String> = mcp
        .list_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    tools.sort();
    assert_eq!(tools, ["admin_tool", "whoami"]);

    let me: Value = serde_json::from_str(&tool_text(
        &mcp.call_tool("whoami", Map::new()).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["client_id"], registered.client_id.as_str());
    assert_eq!(me["scopes"], json!([TOOLS_SCOPE]));

    // admin_tool needs mcp:admin (unadvertised): HTTP 403, the client steps up, the call goes
    // through with a new token that keeps mcp:tools.
    let before = current_token(&manager).await;
    let done = tool_text(&mcp.call_tool("admin_tool", Map::new()).await.unwrap());
    assert_eq!(done, "admin operation done for alice");
    assert_eq!(
        granted(&manager).await,
        format!("{TOOLS_SCOPE} {ADMIN_SCOPE}")
    );
    assert_ne!(current_token(&manager).await, before, "a new token");
    assert_eq!(deployment.demo_hits("/authorize"), 2, "one step-up");
    assert_eq!(deployment.demo_hits("/register"), 1, "no new registration");

    let me: Value = serde_json::from_str(&tool_text(
        &mcp.call_tool("whoami", Map::new()).await.unwrap(),
    ))
    .unwrap();
    assert_eq!(me["scopes"], json!([TOOLS_SCOPE, ADMIN_SCOPE]));
    (manager, store, mcp)
}

/// The audience check both ways: the resource server's token is refused by the demo's own
/// `/mcp`, and a token the demo issued for its own `/mcp` is refused by the resource server.
async fn assert_audiences_do_not_mix(deployment: &Deployment, rs_token: &str) {
    assert_invalid_token(
        &deployment.demo_mcp,
        rs_token,
        "the demo's /mcp refuses a token for the resource server",
    )
    .await;

    let store = MemoryTokenStore::new();
    let demo_manager = manager(&deployment.demo_mcp, &store);
    let demo_token = demo_manager.access_token().await.unwrap();
    let demo_token = demo_token.expose();
    let claims = jwt_claims(demo_token);
    assert_eq!(claims["aud"], json!(deployment.demo_mcp));
    assert_eq!(
        post_initialize(&deployment.demo_mcp, demo_token).await.0,
        200
    );
    assert_invalid_token(
        &deployment.rs_mcp,
        demo_token,
        "the resource server refuses a token for the demo's /mcp",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_the_client_finds_the_demo_through_the_resource_server_and_steps_up() {
    let deployment = Deployment::start(Mode::Jwt).await;
    let (manager, store, mut mcp) = connect_and_step_up(&deployment).await;
    assert!(
        deployment.demo_hits("/jwks.json") >= 1,
        "keys by discovery: {:?}",
        deployment.demo.log()
    );
    assert_eq!(
        deployment.demo_hits("/introspect"),
        0,
        "not mounted, not asked"
    );

    let token = current_token(&manager).await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], json!(deployment.rs_mcp));
    assert_eq!(claims["iss"], json!(deployment.issuer));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], format!("{TOOLS_SCOPE} {ADMIN_SCOPE}"));
    assert_audiences_do_not_mix(&deployment, &token).await;

    // Documented trade-off (mcp-auth-server handlers/revoke.rs): a resource server validating
    // JWTs locally keeps accepting a revoked access token until its `exp`.
    let (_, registered) = stored(&manager, &store).await;
    revoke(&deployment.issuer, &registered, &token, "access_token").await;
    let me = tool_text(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert!(me.contains("alice"), "{me}");

    mcp.close().await.unwrap();
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_mode_the_client_finds_the_demo_through_the_resource_server_and_steps_up() {
    let deployment = Deployment::start(Mode::Introspection {
        secret: INTROSPECTION_SECRET,
    })
    .await;
    let (manager, _store, mut mcp) = connect_and_step_up(&deployment).await;
    assert!(deployment.demo_hits("/introspect") >= 1);
    assert_eq!(
        deployment.demo_hits("/jwks.json"),
        0,
        "the resource server never fetched keys: {:?}",
        deployment.demo.log()
    );

    let token = current_token(&manager).await;
    let answer = introspect(&deployment.issuer, &token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["aud"], json!(deployment.rs_mcp));
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["scope"], format!("{TOOLS_SCOPE} {ADMIN_SCOPE}"));
    assert_audiences_do_not_mix(&deployment, &token).await;

    mcp.close().await.unwrap();
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_introspection_credentials_are_an_outage_503_not_a_bad_token() {
    let deployment = Deployment::start(Mode::Introspection {
        secret: "not-the-introspection-secret",
    })
    .await;

    // The client authorizes once (the first 401 has no token), then its token cannot be checked:
    // 503 passes through the OAuth layer as it is, with no re-authorization loop.
    let store = MemoryTokenStore::new();
    let manager = manager(&deployment.rs_mcp, &store);
    let mut mcp = client(&deployment.rs_mcp, &manager);
    let error = mcp.initialize("resource-only e2e").await.unwrap_err();
    match &error {
        McpError::Status { status, .. } => assert_eq!(status.as_u16(), 503, "{error}"),
        other => panic!("expected the server's 503, got {other:?}"),
    }
    assert_eq!(deployment.demo_hits("/authorize"), 1, "no re-authorization");
    assert!(deployment.demo_hits("/introspect") >= 1);

    // The same token by hand: 503, Retry-After, no challenge (bearer layer docs: "Verifier
    // unavailable"), and an empty body: nothing of the endpoint's answer leaks.
    let token = current_token(&manager).await;
    let (status, challenge, response) = post_initialize(&deployment.rs_mcp, &token).await;
    assert_eq!(status, 503);
    assert_eq!(challenge, None);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(response.text().await.unwrap(), "");

    // The cause: the demo refuses those credentials; with the right ones the token is active.
    let refused = http()
        .post(format!("{}/introspect", deployment.issuer))
        .basic_auth(INTROSPECTION_ID, Some("not-the-introspection-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(introspect(&deployment.issuer, &token).await["active"], true);

    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_mode_a_revoked_grant_is_refused_once_its_cached_answer_is_gone() {
    let mut deployment = Deployment::start(Mode::Introspection {
        secret: INTROSPECTION_SECRET,
    })
    .await;
    let store = MemoryTokenStore::new();
    let manager = manager(&deployment.rs_mcp, &store);
    let mut mcp = client(&deployment.rs_mcp, &manager);
    mcp.initialize("resource-only e2e").await.unwrap();
    tool_text(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    let (tokens, registered) = stored(&manager, &store).await;
    let access = tokens.access_token.expose().to_owned();

    // Revoking the refresh token revokes its grant, and with it the grant's access tokens at
    // introspection.
    revoke(
        &deployment.issuer,
        &registered,
        tokens.refresh_token.as_ref().unwrap().expose(),
        "refresh_token",
    )
    .await;
    assert_eq!(
        introspect(&deployment.issuer, &access).await,
        json!({"active": false})
    );

    // Documented (introspection rule 7): the answer cached before the revocation keeps the token
    // working until the entry expires (the example keeps the default 60 s cache TTL).
    let introspections = deployment.demo_hits("/introspect");
    tool_text(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert_eq!(
        deployment.demo_hits("/introspect"),
        introspections,
        "answered from the cache"
    );
    mcp.close().await.unwrap();

    // A restarted resource server has no cache: the revoked token is refused.
    deployment.restart_resource_server().await;
    assert_invalid_token(
        &deployment.rs_mcp,
        &access,
        "a revoked token, introspected afresh",
    )
    .await;

    // The client recovers: 401 → its refresh is refused (revoked grant) → a new authorization.
    let mut mcp = client(&deployment.rs_mcp, &manager);
    mcp.initialize("resource-only e2e").await.unwrap();
    let me = tool_text(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert!(me.contains("alice"), "{me}");
    assert_ne!(current_token(&manager).await, access);
    assert_eq!(deployment.demo_hits("/authorize"), 2, "re-authorized once");
    mcp.close().await.unwrap();

    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_without_a_cache_refuses_a_revoked_token_at_once() {
    let deployment = Deployment::start(Mode::IntrospectionUncached).await;
    let store = MemoryTokenStore::new();
    let manager = manager(&deployment.rs_mcp, &store);
    let mut mcp = client(&deployment.rs_mcp, &manager);
    mcp.initialize("resource-only e2e").await.unwrap();
    let before = deployment.demo_hits("/introspect");
    tool_text(&mcp.call_tool("whoami", Map::new()).await.unwrap());
    assert!(
        deployment.demo_hits("/introspect") > before,
        "no cache: the call was introspected"
    );

    // The user revokes the access token alone; the very next request is refused.
    let access = current_token(&manager).await;
    let (_, registered) = stored(&manager, &store).await;
    revoke(&deployment.issuer, &registered, &access, "access_token").await;
    assert_invalid_token(&deployment.rs_mcp, &access, "revoked a moment ago").await;
    mcp.close().await.ok();
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introspection_cache_entry_outlives_a_revocation_by_at_most_its_ttl() {
    let deployment = Deployment::start(Mode::Introspection {
        secret: INTROSPECTION_SECRET,
    })
    .await;
    let store = MemoryTokenStore::new();
    let manager = manager(&deployment.rs_mcp, &store);
    let token = manager.access_token().await.unwrap();
    let token = token.expose().to_owned();
    let (_, registered) = stored(&manager, &store).await;

    // The resource server's verifier, built by hand with an injected clock and a 30 s TTL,
    // against the demo's real endpoint.
    let clock = ManualClock::new(SystemClock::default().now());
    let ttl = Duration::from_secs(30);
    let verifier = IntrospectionVerifier::builder(
        format!("{}/introspect", deployment.issuer),
        ResourceId::parse(&deployment.rs_mcp).unwrap(),
        ClientAuth::client_secret_basic(INTROSPECTION_ID, INTROSPECTION_SECRET),
    )
    .issuer(&deployment.issuer)
    .cache_ttl(ttl)
    .clock(clock.clone())
    .build()
    .unwrap();
    let info = verifier.verify(&token).await.unwrap();
    assert_eq!(info.subject(), Some("alice"));

    // An access token revoked by itself (deny-listed by its jti).
    revoke(&deployment.issuer, &registered, &token, "access_token").await;
    assert_eq!(
        introspect(&deployment.issuer, &token).await["active"],
        false
    );

    clock.advance(ttl - Duration::from_secs(1));
    assert!(
        matches!(verifier.verify_cached(&token), Some(Ok(_))),
        "still cached just before the TTL"
    );
    clock.advance(Duration::from_secs(2));
    assert!(verifier.verify_cached(&token).is_none(), "expired entry");
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Inactive);

    deployment.stop().await;
}
