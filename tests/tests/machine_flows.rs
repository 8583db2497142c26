//! Grants without a browser, end to end over loopback (issue 14): `mcp-auth-client` obtains a
//! token from `mcp-auth-server` and calls a resource protected by `mcp-auth-resource` with it,
//! all real, for
//! (a) `client_credentials` with `private_key_jwt` (RFC 7523 client assertion),
//! (b) enterprise-managed authorization: the user's ID token exchanged (RFC 8693) at a loopback
//!     enterprise IdP written here for an ID-JAG, presented with the JWT bearer grant,
//! (c) workload identity: a platform-issued JWT presented with the JWT bearer grant, also with
//!     DPoP on at the authorization server and the resource (the token bound to the client's key).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod outbound;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_auth_client::{
    ClientCredentials, OAuthLayer, TokenManager,
    store::{MemoryTokenStore, TokenKey, TokenStore as _},
};
use mcp_auth_core::Secret;
use mcp_auth_resource::Auth;
use mcp_auth_resource::DpopConfig;
use mcp_auth_resource::JwtVerifier;
use mcp_auth_resource::{BearerAuthLayer, ProtectedResource};
use mcp_auth_server::jwt_bearer::JwtBearerIssuer;
use mcp_auth_server::{AuthorizationServer, MachineClient};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

const KEY_CLIENT: &str = "report-signer";
const XAA_CLIENT: &str = "xaa-agent";
const XAA_SECRET: &str = "xaa-agent-secret-0123456789abcdef01234";
const IDP_CLIENT: &str = "agent-at-the-idp";
const USER: &str = "alice@corp.example";
const WORKLOAD_ISSUER: &str = "https://oidc.platform.example";
const WORKLOAD_CLIENT: &str = "nightly-job";
const WORKLOAD_SUBJECT: &str = "system:serviceaccount:jobs:nightly";

/// An ES256 key: PKCS#8 (for PEM), signing key and public JWK.
struct Key {
    pkcs8: Vec<u8>,
    signing: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap()
            .as_ref()
            .to_vec();
        let signing = EncodingKey::from_ec_der(&pkcs8);
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap())
                .unwrap();
        jwk["kid"] = json!(kid);
        Self {
            pkcs8,
            signing,
            jwk,
        }
    }

    fn pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    fn sign(&self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk["kid"].as_str().map(str::to_owned);
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing).unwrap()
    }
}

fn now() -> u64 {
    use mcp_auth_core::Clock as _;
    mcp_auth_core::SystemClock::default().unix_seconds()
}

/// The loopback enterprise IdP: `POST /token` exchanges the user's ID token (RFC 8693) for an
/// ID-JAG for the requested authorization server and resource; `GET /jwks.json` serves its key.
struct Idp {
    base: String,
    id_token: String,
    exchanges: Arc<AtomicUsize>,
}

async fn idp(key: Arc<Key>) -> Idp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let id_token = key.sign(
        "JWT",
        &json!({
            "iss": base, "sub": USER, "aud": IDP_CLIENT,
            "iat": now(), "exp": now() + 3600,
        }),
    );
    let exchanges = Arc::new(AtomicUsize::new(0));
    let (issuer, expected, counter) = (base.clone(), id_token.clone(), exchanges.clone());
    let jwks = key.jwks();
    let app = Router::new()
        .route("/jwks.json", get(move || async move { Json(jwks) }))
        .route(
            "/token",
            post(
                move |Form(form): Form<std::collections::HashMap<String, String>>| {
                    let (key, issuer, expected, counter) = (
                        key.clone(),
                        issuer.clone(),
                        expected.clone(),
                        counter.clone(),
                    );
                    async move {
                        let field = |name: &str| form.get(name).map(String::as_str);
                        let refuse = |error: &str| {
                            (StatusCode::BAD_REQUEST, Json(json!({ "error": error })))
                        };
                        if field("grant_type")
                            != Some("urn:ietf:params:oauth:grant-type:token-exchange")
                        {
                            return refuse("unsupported_grant_type");
                        }
                        if field("requested_token_type")
                            != Some("urn:ietf:params:oauth:token-type:id-jag")
                            || field("subject_token_type")
                                != Some("urn:ietf:params:oauth:token-type:id_token")
                            || field("client_id") != Some(IDP_CLIENT)
                        {
                            return refuse("invalid_request");
                        }
                        if field("subject_token") != Some(expected.as_str()) {
                            return refuse("invalid_grant");
                        }
                        let (Some(audience), Some(resource)) =
                            (field("audience"), field("resource"))
                        else {
                            return refuse("invalid_request");
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut claims = json!({
                            "iss": issuer,
                            "sub": USER,
                            "aud": audience,
                            // The MCP client's id at the authorization server.
                            "client_id": XAA_CLIENT,
                            "resource": resource,
                            "iat": now(),
                            "exp": now() + 300,
                            "jti": format!("jag-{}", counter.load(Ordering::SeqCst)),
                        });
                        if let Some(scope) = field("scope") {
                            claims["scope"] = json!(scope);
                        }
                        let jag = key.sign("oauth-id-jag+jwt", &claims);
                        (
                            StatusCode::OK,
                            Json(json!({
                                "access_token": jag,
                                "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag",
                                "token_type": "N_A",
                                "expires_in": 300,
                            })),
                        )
                    }
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Idp {
        base,
        id_token,
        exchanges,
    }
}

struct Stack {
    base: String,
    url: String,
    token_requests: Arc<AtomicUsize>,
}

/// Our authorization server and our resource at one origin: the key client, the enterprise
/// client, the trusted IdP and the trusted platform.
async fn stack(client_key: &Key, idp: &Idp, platform: &Key, dpop: bool) -> Stack {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/mcp");
    let server = AuthorizationServer::builder(&base)
        .resource(&url)
        .scopes(["notes:read"])
        .client_credentials(true)
        .machine_client(
            MachineClient::with_jwks(KEY_CLIENT, client_key.jwks()).scopes(["notes:read"]),
        )
        .machine_client(
            MachineClient::new(XAA_CLIENT, Secret::new(XAA_SECRET)).scopes(["notes:read"]),
        )
        .jwt_bearer_issuer(
            JwtBearerIssuer::id_jag(&idp.base)
                .jwks_uri(format!("{}/jwks.json", idp.base))
                .client(XAA_CLIENT)
                .scopes(["notes:read"]),
        )
        .jwt_bearer_issuer(
            JwtBearerIssuer::workload(WORKLOAD_ISSUER)
                .jwks(platform.jwks())
                .client(WORKLOAD_CLIENT)
                .scopes(["notes:read"]),
        )
        .dpop(dpop)
        .build()
        .await
        .unwrap();
    let resource = ProtectedResource::builder(&url)
        .authorization_server(&base)
        .scopes_supported("notes:read".parse().unwrap())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(&base, &resource)
        .discover_jwks()
        .build()
        .unwrap();
    let mcp = Router::new()
        .route(
            "/mcp",
            post(|auth: Auth, body: String| async move {
                format!(
                    "{body} ok for {} via {} with {}",
                    auth.subject().unwrap_or("?"),
                    auth.client_id().unwrap_or("?"),
                    auth.scopes()
                )
            }),
        )
        .layer(if dpop {
            BearerAuthLayer::new(verifier, resource.clone()).dpop(DpopConfig::new())
        } else {
            BearerAuthLayer::new(verifier, resource.clone())
        });
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
        base,
        url,
        token_requests,
    }
}

async fn call(manager: TokenManager, url: &str) -> (StatusCode, String) {
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager))
        .service(outbound::http_service());
    let request = Request::post(url)
        .header("content-type", "text/plain")
        .body("read".to_owned())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    (response.status(), response.into_body())
}

struct World {
    client_key: Key,
    platform: Key,
    idp: Idp,
    stack: Stack,
}

async fn world() -> World {
    let client_key = Key::new("client-1");
    let platform = Key::new("platform-1");
    let idp = idp(Arc::new(Key::new("idp-1"))).await;
    let stack = stack(&client_key, &idp, &platform, false).await;
    World {
        client_key,
        platform,
        idp,
        stack,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_private_key_jwt_against_our_server() {
    let w = world().await;
    let credentials = ClientCredentials::new(KEY_CLIENT)
        .private_key_jwt(&w.client_key.pem(), "ES256")
        .unwrap();
    let manager = TokenManager::builder(&w.stack.url)
        .allow_insecure_loopback(true)
        .client_credentials(credentials)
        .client_credentials_grant(true)
        .interactive(false)
        .build()
        .unwrap();
    let (status, body) = call(manager.clone(), &w.stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("read ok for {KEY_CLIENT} via {KEY_CLIENT} with notes:read")
    );
    assert_eq!(w.stack.token_requests.load(Ordering::SeqCst), 1);
    // The token is reused; a forced new one needs a new assertion (its jti is single use).
    let (status, _) = call(manager.clone(), &w.stack.url).await;
    assert_eq!(status, 200);
    assert_eq!(w.stack.token_requests.load(Ordering::SeqCst), 1);
    manager.forget().await.unwrap();
    let (status, body) = call(manager, &w.stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.stack.token_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_managed_authorization_with_a_loopback_idp_against_our_server() {
    let w = world().await;
    let manager = TokenManager::builder(&w.stack.url)
        .allow_insecure_loopback(true)
        .client_credentials(ClientCredentials::new(XAA_CLIENT).secret(XAA_SECRET))
        .enterprise_managed_authorization(
            format!("{}/token", w.idp.base),
            IDP_CLIENT,
            w.idp.id_token.clone(),
        )
        .interactive(false)
        .build()
        .unwrap();
    let (status, body) = call(manager, &w.stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("read ok for {USER} via {XAA_CLIENT} with notes:read")
    );
    assert_eq!(w.idp.exchanges.load(Ordering::SeqCst), 1);
    assert_eq!(w.stack.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_with_a_platform_jwt_against_our_server() {
    let w = world().await;
    let jwt = w.platform.sign(
        "JWT",
        &json!({
            "iss": WORKLOAD_ISSUER,
            "sub": WORKLOAD_SUBJECT,
            "aud": w.stack.base,
            "iat": now(),
            "exp": now() + 600,
            "jti": "workload-token-1",
        }),
    );
    let manager = TokenManager::builder(&w.stack.url)
        .allow_insecure_loopback(true)
        .client_credentials(ClientCredentials::new(WORKLOAD_CLIENT))
        .jwt_bearer_grant(jwt)
        .interactive(false)
        .build()
        .unwrap();
    let (status, body) = call(manager, &w.stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("read ok for {WORKLOAD_SUBJECT} via {WORKLOAD_CLIENT} with notes:read")
    );
    assert_eq!(w.stack.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_with_dpop_gets_a_token_bound_to_the_clients_key() {
    let client_key = Key::new("client-1");
    let platform = Key::new("platform-1");
    let idp = idp(Arc::new(Key::new("idp-1"))).await;
    let stack = stack(&client_key, &idp, &platform, true).await;
    let jwt = platform.sign(
        "JWT",
        &json!({
            "iss": WORKLOAD_ISSUER,
            "sub": WORKLOAD_SUBJECT,
            "aud": stack.base,
            "iat": now(),
            "exp": now() + 600,
            "jti": "workload-token-dpop",
        }),
    );
    let store = MemoryTokenStore::new();
    let manager = TokenManager::builder(&stack.url)
        .allow_insecure_loopback(true)
        .client_credentials(ClientCredentials::new(WORKLOAD_CLIENT))
        .jwt_bearer_grant(jwt)
        .interactive(false)
        .store(store.clone())
        .build()
        .unwrap();
    let (status, body) = call(manager.clone(), &stack.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("read ok for {WORKLOAD_SUBJECT} via {WORKLOAD_CLIENT} with notes:read")
    );
    let key = TokenKey::new(manager.principal().clone(), manager.resource().clone());
    let record = store.load_tokens(&key).await.unwrap().unwrap();
    assert!(
        record.is_dpop(),
        "the JWT bearer grant answered token_type DPoP"
    );
    let payload = record
        .access_token
        .expose()
        .split('.')
        .nth(1)
        .map(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        })
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");
    // Without the key's proof, the same token is refused.
    let response = reqwest::Client::new()
        .post(&stack.url)
        .bearer_auth(record.access_token.expose())
        .body("read")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
