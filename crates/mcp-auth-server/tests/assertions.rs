//! JWT assertions at the token endpoint, over real HTTP on loopback (issue 14 items 6 and 7):
//! `private_key_jwt` client authentication for operator, dynamically registered and metadata
//! document clients, and the JWT bearer grant for identity assertion grants (ID-JAG) and
//! workload tokens. Every bad input is answered with the RFC's status and error code, and
//! nothing is issued.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::routing::get;
use common::{Harness, start, start_on};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_auth_core::Secret;
use mcp_auth_server::MachineClient;
use mcp_auth_server::cimd::CimdConfig;
use mcp_auth_server::jwt_bearer::{JWT_BEARER_GRANT_TYPE, JwtBearerIssuer};
use mcp_auth_server::store::MemoryStore;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const KEY_CLIENT: &str = "key-client";
const SECRET_CLIENT: &str = "xaa-client";
const SECRET: &str = "xaa-client-secret-0123456789abcdef0123";
const IDP: &str = "https://idp.example.com";
const WORKLOAD_ISSUER: &str = "https://workloads.example.com";
const WORKLOAD_CLIENT: &str = "nightly-workload";

/// An ES256 key pair: signs assertions, publishes its JWK.
struct Signer {
    key: EncodingKey,
    jwk: Value,
    kid: &'static str,
}

impl Signer {
    fn new(kid: &'static str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Self { key, jwk, kid }
    }

    fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.into());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> u64 {
    use mcp_auth_core::Clock as _;
    mcp_auth_core::SystemClock::default().unix_seconds()
}

fn jti() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// `alg: none` and HMAC versions of a token's claims (never accepted).
fn unsigned_and_hmac(claims: &Value, typ: &str) -> [String; 2] {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": typ})),
        b64(claims)
    );
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(typ.into());
    let hmac = jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(b"a-shared-secret-the-attacker-chose"),
    )
    .unwrap();
    [none, hmac]
}

/// Serve `jwks` on loopback; returns its URL and a fetch counter.
async fn serve_jwks(jwks: Value) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fetches)
}

fn loopback_cimd() -> Option<CimdConfig> {
    let mut config = CimdConfig::default();
    config.allow_loopback = true; // tests only
    Some(config)
}

fn client_claims(h: &Harness, client_id: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": h.base,
        "iat": now(),
        "exp": now() + 60,
        "jti": jti(),
    })
}

async fn post(h: &Harness, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = h.http.post(h.url(path)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn machine_with_key(h: &Harness, assertion: &str) -> (u16, Value) {
    post(
        h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY_CLIENT),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("resource", &h.resource),
        ],
    )
    .await
}

fn assert_error(got: &(u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["error"], code, "{what}: {}", got.1);
    assert!(got.1.get("access_token").is_none(), "{what}: issued");
    let description = got.1["error_description"].as_str().unwrap_or_default();
    assert!(!description.contains('"'), "{what}: {description}");
}

#[tokio::test]
async fn metadata_advertises_private_key_jwt_and_the_grant_only_when_an_issuer_is_trusted() {
    let h = start(|b| b).await;
    let m = h.server.metadata();
    assert!(
        m.token_endpoint_auth_methods_supported
            .contains(&"private_key_jwt".to_owned())
    );
    let algs = &m.token_endpoint_auth_signing_alg_values_supported;
    assert!(algs.contains(&"ES256".to_owned()) && algs.contains(&"RS256".to_owned()));
    assert!(algs.iter().all(|a| !a.starts_with("HS") && a != "none"));
    assert!(
        !m.grant_types_supported
            .iter()
            .any(|g| g == JWT_BEARER_GRANT_TYPE)
    );
    let idp = Signer::new("idp");
    let h = start(|b| {
        b.jwt_bearer_issuer(
            JwtBearerIssuer::id_jag(IDP)
                .jwks(idp.jwks())
                .scopes(["mcp:tools"]),
        )
    })
    .await;
    let served: Value = h
        .http
        .get(h.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        served["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER_GRANT_TYPE))
    );
    // Without a trusted issuer the grant type is unsupported, before any authentication.
    let plain = start(|b| b).await;
    let got = post(
        &plain,
        "/token",
        &[("grant_type", JWT_BEARER_GRANT_TYPE), ("assertion", "x")],
    )
    .await;
    assert_error(&got, 400, "unsupported_grant_type", "grant off");
}

#[tokio::test]
async fn an_operator_client_authenticates_with_private_key_jwt_once_per_assertion() {
    let key = Signer::new("k1");
    let jwks = key.jwks();
    let h = start(|b| {
        b.client_credentials(true)
            .machine_client(MachineClient::with_jwks(KEY_CLIENT, jwks).scopes(["notes:read"]))
    })
    .await;
    let assertion = key.sign(Some("JWT"), &client_claims(&h, KEY_CLIENT));
    let (status, body) = machine_with_key(&h, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");
    let token = body["access_token"].as_str().unwrap();
    let me: Value = h.call_mcp(token).await.json().await.unwrap();
    assert_eq!(me["client_id"], KEY_CLIENT);

    // The same assertion again: a replay (RFC 7523 §3 point 7), 401 invalid_client.
    let got = machine_with_key(&h, &assertion).await;
    assert_error(&got, 401, "invalid_client", "replayed jti");

    // Without client_id in the body the assertion's subject names the client; the explicit
    // type and the token endpoint as audience are accepted too.
    let mut claims = client_claims(&h, KEY_CLIENT);
    claims["aud"] = json!(h.url("/token"));
    let assertion = key.sign(Some("client-authentication+jwt"), &claims);
    let (status, body) = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_client_assertions_are_invalid_client_and_nothing_is_issued() {
    let key = Signer::new("k1");
    let other = Signer::new("k1");
    let jwks = key.jwks();
    let h = start(|b| {
        b.client_credentials(true)
            .machine_client(MachineClient::with_jwks(KEY_CLIENT, jwks).scopes(["notes:read"]))
            .machine_client(
                MachineClient::new(SECRET_CLIENT, Secret::new(SECRET)).scopes(["notes:read"]),
            )
    })
    .await;
    let with = |k: &str, v: Value| {
        let mut c = client_claims(&h, KEY_CLIENT);
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = client_claims(&h, KEY_CLIENT);
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            key.sign(None, &with("aud", json!("https://elsewhere.example.com"))),
        ),
        ("expired", key.sign(None, &with("exp", json!(now() - 120)))),
        ("no exp", key.sign(None, &without("exp"))),
        (
            "exp too far ahead",
            key.sign(None, &with("exp", json!(now() + 3600))),
        ),
        ("no jti", key.sign(None, &without("jti"))),
        (
            "iss is not the client",
            key.sign(None, &with("iss", json!("someone"))),
        ),
        (
            "sub is not the client",
            key.sign(None, &with("sub", json!(SECRET_CLIENT))),
        ),
        (
            "another key",
            other.sign(None, &client_claims(&h, KEY_CLIENT)),
        ),
        (
            "an access token type",
            key.sign(Some("at+jwt"), &client_claims(&h, KEY_CLIENT)),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, assertion) in &cases {
        let got = machine_with_key(&h, assertion).await;
        assert_error(&got, 401, "invalid_client", what);
    }
    for (n, assertion) in unsigned_and_hmac(&client_claims(&h, KEY_CLIENT), "JWT")
        .iter()
        .enumerate()
    {
        let got = machine_with_key(&h, assertion).await;
        assert_error(&got, 401, "invalid_client", ["alg none", "HS256"][n]);
    }

    // The key client may not fall back to nothing, and the secret client may not use keys.
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY_CLIENT),
        ],
    )
    .await;
    assert_error(&got, 401, "invalid_client", "no assertion");
    let mut claims = client_claims(&h, SECRET_CLIENT);
    claims["iss"] = json!(SECRET_CLIENT);
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_CLIENT),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &key.sign(None, &claims)),
        ],
    )
    .await;
    assert_error(&got, 401, "invalid_client", "method not registered");

    // Malformed requests: the assertion type alone, an unknown type, two methods at once.
    let assertion = key.sign(None, &client_claims(&h, KEY_CLIENT));
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY_CLIENT),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_error(&got, 400, "invalid_request", "type missing");
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY_CLIENT),
            ("client_assertion_type", "urn:example:saml"),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_error(&got, 401, "invalid_client", "unknown type");
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(SECRET_CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // None of the refused assertions burned the good one's identifier: it still works once.
    let (status, body) = machine_with_key(&h, &assertion).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn registered_and_metadata_document_clients_authenticate_with_their_jwks_uri() {
    let key = Signer::new("k1");
    let (jwks_uri, fetches) = serve_jwks(key.jwks()).await;
    let h = start(|b| b.client_id_metadata_documents(loopback_cimd())).await;

    // Open registration with a jwks_uri: a confidential client without a secret.
    let r = h
        .http
        .post(h.url("/register"))
        .json(&json!({
            "client_name": "Key client",
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": jwks_uri,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    let dynamic = body["client_id"].as_str().unwrap().to_owned();

    // A metadata document naming the same keys.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let document_url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let document = json!({
        "client_id": document_url,
        "client_name": "Key document client",
        "redirect_uris": ["http://127.0.0.1:9/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri,
    });
    let app = axum::Router::new().route(
        "/client.json",
        get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The revocation endpoint authenticates the client (RFC 7009 §2.1): 200 for an unknown
    // token once the client is authenticated, 401 when it is not.
    for client_id in [dynamic.as_str(), document_url.as_str()] {
        let assertion = key.sign(None, &client_claims(&h, client_id));
        let revoke = |assertion: String| {
            let client_id = client_id.to_owned();
            let h = &h;
            async move {
                post(
                    h,
                    "/revoke",
                    &[
                        ("token", "unknown"),
                        ("client_id", &client_id),
                        ("client_assertion_type", ASSERTION_TYPE),
                        ("client_assertion", &assertion),
                    ],
                )
                .await
            }
        };
        let (status, body) = revoke(assertion.clone()).await;
        assert_eq!(status, 200, "{client_id}: {body}");
        let got = revoke(assertion).await;
        assert_error(&got, 401, "invalid_client", "replayed at /revoke");
        let got = revoke(Signer::new("k1").sign(None, &client_claims(&h, client_id))).await;
        assert_error(&got, 401, "invalid_client", "another key at /revoke");
        // And a public-client request (no assertion) is refused for a key client.
        let got = post(
            &h,
            "/revoke",
            &[("token", "unknown"), ("client_id", client_id)],
        )
        .await;
        assert_error(&got, 401, "invalid_client", "no assertion at /revoke");
    }
    // One key set cache per URL: fetched once for both clients (and the unknown-key lookups
    // stay within the cool-down).
    assert_eq!(fetches.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_self_registered_client_may_not_point_its_jwks_uri_at_a_private_address() {
    // The default fetch policy: loopback and private addresses are refused.
    let key = Signer::new("k1");
    let (jwks_uri, fetches) = serve_jwks(key.jwks()).await;
    let h = start(|b| b).await;
    let r = h
        .http
        .post(h.url("/register"))
        .json(&json!({
            "client_name": "Key client",
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": jwks_uri,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = post(
        &h,
        "/revoke",
        &[
            ("token", "unknown"),
            ("client_id", &client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            (
                "client_assertion",
                &key.sign(None, &client_claims(&h, &client_id)),
            ),
        ],
    )
    .await;
    assert_error(&got, 401, "invalid_client", "loopback jwks_uri");
    assert_eq!(fetches.load(Ordering::Relaxed), 0);
}

fn id_jag(h: &Harness, client_id: &str) -> Value {
    json!({
        "iss": IDP,
        "sub": "alice@example.com",
        "aud": h.base,
        "client_id": client_id,
        "resource": h.resource,
        "scope": "mcp:tools notes:read",
        "iat": now(),
        "exp": now() + 300,
        "jti": jti(),
    })
}

async fn jwt_bearer(
    h: &Harness,
    client: Option<(&str, &str)>,
    assertion: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", JWT_BEARER_GRANT_TYPE),
        ("assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let mut request = h.http.post(h.url("/token"));
    request = match client {
        Some((id, secret)) => request.basic_auth(id, Some(secret)),
        None => {
            form.push(("client_id", WORKLOAD_CLIENT));
            request
        }
    };
    let r = request.form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn id_jag_server(idp: &Signer, configure: fn(JwtBearerIssuer) -> JwtBearerIssuer) -> Harness {
    let jwks = idp.jwks();
    start(move |b| {
        b.unadvertised_scopes(["notes:admin"])
            .client_credentials(true)
            .machine_client(
                MachineClient::new(SECRET_CLIENT, Secret::new(SECRET)).scopes(["notes:read"]),
            )
            .jwt_bearer_issuer(configure(JwtBearerIssuer::id_jag(IDP).jwks(jwks).scopes([
                "mcp:tools",
                "notes:read",
                "notes:write",
            ])))
    })
    .await
}

#[tokio::test]
async fn an_identity_assertion_grant_gets_a_token_for_its_user_once() {
    let idp = Signer::new("idp-1");
    let h = id_jag_server(&idp, |i| i).await;
    let assertion = idp.sign(Some("oauth-id-jag+jwt"), &id_jag(&h, SECRET_CLIENT));
    let (status, body) = jwt_bearer(
        &h,
        Some((SECRET_CLIENT, SECRET)),
        &assertion,
        &[
            ("resource", &h.resource),
            ("scope", "mcp:tools notes:admin"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Asked ∩ allowed: notes:admin is known but not allowed for this issuer.
    assert_eq!(body["scope"], "mcp:tools");
    assert!(body.get("refresh_token").is_none());
    let me: Value = h
        .call_mcp(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "alice@example.com");
    assert_eq!(me["client_id"], SECRET_CLIENT);

    // Replayed: invalid_grant, nothing issued.
    let got = jwt_bearer(&h, Some((SECRET_CLIENT, SECRET)), &assertion, &[]).await;
    assert_error(&got, 400, "invalid_grant", "replayed ID-JAG");

    // Without scope and resource: the grant's own (bounded by the issuer's allow list).
    let assertion = idp.sign(Some("oauth-id-jag+jwt"), &id_jag(&h, SECRET_CLIENT));
    let (status, body) = jwt_bearer(&h, Some((SECRET_CLIENT, SECRET)), &assertion, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp:tools notes:read");
}

#[tokio::test]
async fn bad_identity_assertion_grants_are_refused_and_nothing_is_issued() {
    let idp = Signer::new("idp-1");
    let stranger = Signer::new("idp-1");
    let h = id_jag_server(&idp, |i| i).await;
    let jag = |k: &str, v: Value| {
        let mut c = id_jag(&h, SECRET_CLIENT);
        c[k] = v;
        c
    };
    let typ = Some("oauth-id-jag+jwt");
    let client = Some((SECRET_CLIENT, SECRET));
    let cases: Vec<(&str, String)> = vec![
        ("expired", idp.sign(typ, &jag("exp", json!(now() - 120)))),
        (
            "wrong audience",
            idp.sign(typ, &jag("aud", json!("https://other-as.example.com"))),
        ),
        (
            "untrusted issuer",
            stranger.sign(typ, &jag("iss", json!("https://evil.example.com"))),
        ),
        (
            "trusted issuer, another key",
            stranger.sign(typ, &id_jag(&h, SECRET_CLIENT)),
        ),
        (
            "another client's grant",
            idp.sign(typ, &jag("client_id", json!("someone-else"))),
        ),
        ("no client_id", {
            let mut c = id_jag(&h, SECRET_CLIENT);
            c.as_object_mut().unwrap().remove("client_id");
            idp.sign(typ, &c)
        }),
        (
            "not an ID-JAG type",
            idp.sign(Some("JWT"), &id_jag(&h, SECRET_CLIENT)),
        ),
        ("no type", idp.sign(None, &id_jag(&h, SECRET_CLIENT))),
        (
            "lifetime too long",
            idp.sign(typ, &jag("exp", json!(now() + 2 * 3600))),
        ),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, assertion) in &cases {
        let got = jwt_bearer(&h, client, assertion, &[]).await;
        assert_error(&got, 400, "invalid_grant", what);
    }
    for (n, assertion) in unsigned_and_hmac(&id_jag(&h, SECRET_CLIENT), "oauth-id-jag+jwt")
        .iter()
        .enumerate()
    {
        let got = jwt_bearer(&h, client, assertion, &[]).await;
        assert_error(&got, 400, "invalid_grant", ["alg none", "HS256"][n]);
    }

    // A resource the ID-JAG does not name, and one the server does not serve.
    let other = "https://other.example.com/mcp";
    let got = jwt_bearer(
        &h,
        client,
        &idp.sign(typ, &jag("resource", json!(other))),
        &[("resource", &h.resource)],
    )
    .await;
    assert_error(&got, 400, "invalid_target", "resource not in the grant");
    let got = jwt_bearer(
        &h,
        client,
        &idp.sign(typ, &id_jag(&h, SECRET_CLIENT)),
        &[("resource", other)],
    )
    .await;
    assert_error(&got, 400, "invalid_target", "resource not served");
    // Scopes: unknown, or nothing left after the intersection.
    let got = jwt_bearer(
        &h,
        client,
        &idp.sign(typ, &id_jag(&h, SECRET_CLIENT)),
        &[("scope", "root")],
    )
    .await;
    assert_error(&got, 400, "invalid_scope", "unknown scope");
    let got = jwt_bearer(
        &h,
        client,
        &idp.sign(typ, &id_jag(&h, SECRET_CLIENT)),
        &[("scope", "notes:admin")],
    )
    .await;
    assert_error(&got, 400, "invalid_scope", "no allowed scope");
    // A client that does not authenticate may not present an ID-JAG; a wrong secret is 401.
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            (
                "client_id",
                &h.register_public("http://127.0.0.1:9/cb").await,
            ),
            ("assertion", &idp.sign(typ, &id_jag(&h, SECRET_CLIENT))),
        ],
    )
    .await;
    assert_error(&got, 400, "unauthorized_client", "public client");
    let got = jwt_bearer(
        &h,
        Some((SECRET_CLIENT, "wrong-secret")),
        &idp.sign(typ, &id_jag(&h, SECRET_CLIENT)),
        &[],
    )
    .await;
    assert_error(&got, 401, "invalid_client", "wrong secret");
    // A missing assertion.
    let r = h
        .http
        .post(h.url("/token"))
        .basic_auth(SECRET_CLIENT, Some(SECRET))
        .form(&[("grant_type", JWT_BEARER_GRANT_TYPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_jwt_bearer_grant_for_a_resource_the_policy_does_not_allow_is_invalid_target() {
    let idp = Signer::new("idp-1");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks = idp.jwks();
    let second = format!("{base}/second");
    let allowed = second.clone();
    let h = start_on(listener, Arc::new(MemoryStore::new()), move |b| {
        b.resource(&second)
            .client_credentials(true)
            .machine_client(
                MachineClient::new(SECRET_CLIENT, Secret::new(SECRET)).scopes(["notes:read"]),
            )
            .jwt_bearer_issuer(
                JwtBearerIssuer::id_jag(IDP)
                    .jwks(jwks)
                    .resource(allowed)
                    .scopes(["mcp:tools"]),
            )
    })
    .await;
    // The ID-JAG names the first resource; the issuer's policy allows only the second.
    let assertion = idp.sign(Some("oauth-id-jag+jwt"), &id_jag(&h, SECRET_CLIENT));
    let got = jwt_bearer(
        &h,
        Some((SECRET_CLIENT, SECRET)),
        &assertion,
        &[("resource", &h.resource)],
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_target",
        "resource outside the issuer policy",
    );
}

#[tokio::test]
async fn a_workload_token_from_a_trusted_platform_gets_a_token_for_its_listed_client() {
    let platform = Signer::new("wl-1");
    let (jwks_uri, _) = serve_jwks(platform.jwks()).await;
    let h = start(move |b| {
        b.jwt_bearer_issuer(
            JwtBearerIssuer::workload(WORKLOAD_ISSUER)
                .jwks_uri(jwks_uri)
                .client(WORKLOAD_CLIENT)
                .subject_prefix("workload:")
                .scopes(["notes:read"]),
        )
    })
    .await;
    let claims = |aud: &str| {
        json!({
            "iss": WORKLOAD_ISSUER,
            "sub": "system:serviceaccount:jobs:nightly",
            "aud": aud,
            "iat": now(),
            "exp": now() + 600,
            "jti": jti(),
        })
    };
    let token = platform.sign(None, &claims(&h.base));
    let (status, body) = jwt_bearer(&h, None, &token, &[("scope", "notes:read mcp:tools")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");
    let me: Value = h
        .call_mcp(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    // The issuer's prefix keeps workload subjects apart from users' names.
    assert_eq!(me["sub"], "workload:system:serviceaccount:jobs:nightly");
    assert_eq!(me["client_id"], WORKLOAD_CLIENT);

    let got = jwt_bearer(&h, None, &token, &[]).await;
    assert_error(&got, 400, "invalid_grant", "replayed workload token");
    let got = jwt_bearer(
        &h,
        None,
        &platform.sign(None, &claims("https://wrong.example")),
        &[],
    )
    .await;
    assert_error(&got, 400, "invalid_grant", "wrong audience");
    let mut expired = claims(&h.base);
    expired["exp"] = json!(now() - 120);
    let got = jwt_bearer(&h, None, &platform.sign(None, &expired), &[]).await;
    assert_error(&got, 400, "invalid_grant", "expired workload token");
    let got = jwt_bearer(
        &h,
        None,
        &platform.sign(Some("oauth-id-jag+jwt"), &claims(&h.base)),
        &[],
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_grant",
        "an ID-JAG type from a workload issuer",
    );
    // A client the issuer does not list.
    let other = h.register_public("http://127.0.0.1:9/cb").await;
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", &other),
            ("assertion", &platform.sign(None, &claims(&h.base))),
        ],
    )
    .await;
    assert_error(&got, 400, "unauthorized_client", "unlisted client");
    // The listed client is registered for this grant only.
    let got = post(
        &h,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", WORKLOAD_CLIENT),
        ],
    )
    .await;
    assert_eq!(got.0, 400, "{}", got.1);
}

#[tokio::test]
async fn issuer_configuration_mistakes_fail_the_build() {
    let idp = Signer::new("idp-1");
    let cases = [
        JwtBearerIssuer::id_jag(IDP).jwks(idp.jwks()),
        JwtBearerIssuer::id_jag(IDP)
            .jwks(idp.jwks())
            .scopes(["root"]),
        JwtBearerIssuer::workload(WORKLOAD_ISSUER)
            .jwks(idp.jwks())
            .scopes(["mcp:tools"]),
        JwtBearerIssuer::id_jag(IDP)
            .jwks(json!({"keys": []}))
            .scopes(["mcp:tools"]),
        JwtBearerIssuer::id_jag(IDP)
            .jwks(idp.jwks())
            .scopes(["mcp:tools"])
            .resource("https://elsewhere.example.com/mcp"),
        JwtBearerIssuer::id_jag(IDP)
            .jwks_uri("http://idp.example.com/jwks")
            .scopes(["mcp:tools"]),
    ];
    for issuer in cases {
        let shown = format!("{issuer:?}");
        let built = mcp_auth_server::AuthorizationServer::builder("https://mcp.example.com")
            .resource("https://mcp.example.com/mcp")
            .scopes(["mcp:tools"])
            .jwt_bearer_issuer(issuer)
            .build()
            .await;
        assert!(built.is_err(), "{shown}");
    }
}
