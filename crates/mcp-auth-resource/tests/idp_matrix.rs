//! An IdP matrix: the documented metadata, JWK Set and access token shapes of Keycloak, Auth0,
//! Microsoft Entra ID (v2.0 endpoint) and Okta (custom authorization server), served by
//! `support::FakeIdp` on loopback (no containers, no live tenant), verified by a `JwtVerifier`
//! that discovers its keys, behind `BearerAuthLayer` over real HTTP.
//!
//! Per IdP: a realistic token is accepted and the `AuthInfo` has the right subject, scopes and
//! client; the same token is refused without `accept_jwt_typ()` where the IdP sends `typ: JWT`
//! (or no `typ`); a token for another audience is refused; and the metadata URL the discovery
//! used is pinned by the hit counters.
//!
//! Shapes (from the vendors' documentation):
//!
//! - Keycloak: `iss` = `<base>/realms/<realm>`, metadata only at
//!   `<iss>/.well-known/openid-configuration` (before 26.4, no RFC 8414 document at the inserted
//!   URL), header `typ: JWT`, `azp` (no `client_id`), `scope` string, `aud` an array (`account`
//!   plus what an audience mapper adds), an `RSA-OAEP` `use: enc` key next to the signing key.
//! - Auth0: `iss` = `https://<tenant>/` with the trailing slash, OIDC discovery at the origin,
//!   `aud` = [API identifier, `<iss>userinfo`], `scope` string; the RFC 9068 profile sends
//!   `typ: at+jwt` and `client_id`, the default ("Auth0") profile `typ: JWT` and `azp`.
//! - Entra ID v2.0: `iss` = `https://login.microsoftonline.com/<tid>/v2.0`, metadata only at
//!   `<iss>/.well-known/openid-configuration`, header `typ: JWT`, `scp` space-delimited string,
//!   `azp`, JWKs with `x5t`/`x5c`/`issuer` and no `alg`; `aud` of a v2.0 access token is the
//!   API's application (client) ID, a GUID.
//! - Okta custom authorization server: `iss` = `<base>/oauth2/<id>`, metadata at
//!   `<iss>/.well-known/...` (appended), header with `kid` and `alg` only (no `typ`), `scp` an
//!   array, the client in `cid` (no `client_id`, no `azp`), `uid`, `ver: 1`.
#![cfg(all(feature = "jwt", feature = "remote", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use axum::{Json, Router, routing::post};
use mcp_auth_resource::{
    Auth, BearerAuthLayer, JwtVerifier, ProtectedResource, TokenVerifier, VerifyErrorKind,
};
use reqwest::{StatusCode, header::AUTHORIZATION};
use serde_json::{Value, json};
use support::{FakeIdp, NOW, SigningKey, TokenBuilder, b64std, b64url};
use tokio::net::TcpListener;

/// An app on loopback with the same resource behind two verifiers of the same issuer: `/mcp`
/// with `accept_jwt_typ()` (what the IdP needs) and `/strict/mcp` with the strict RFC 9068
/// default.
struct Rs {
    base: String,
    resource: String,
    http: reqwest::Client,
}

/// The answer of a call: status, `WWW-Authenticate`, JSON body (the `AuthInfo` on success).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

impl Rs {
    async fn start(idp: &FakeIdp) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let resource = ProtectedResource::builder(format!("{base}/mcp"))
            .authorization_server(idp.issuer())
            .scopes_supported("mcp:tools".parse().unwrap())
            .build()
            .unwrap();
        let verifier = |accept_jwt_typ: bool| {
            let mut b = JwtVerifier::for_resource(idp.issuer(), &resource)
                .discover_jwks()
                .clock(support::clock())
                .background_refresh(false);
            if accept_jwt_typ {
                b = b.accept_jwt_typ();
            }
            b.build().unwrap()
        };

        async fn whoami(auth: Auth) -> Json<Value> {
            let mut scopes: Vec<&str> = auth.scopes().iter().map(|s| s.as_str()).collect();
            scopes.sort_unstable();
            Json(json!({
                "sub": auth.subject(),
                "client_id": auth.client_id(),
                "scopes": scopes,
                "aud": auth.audience(),
            }))
        }
        let lenient = Router::new()
            .route("/mcp", post(whoami))
            .layer(BearerAuthLayer::new(verifier(true), resource.clone()));
        let strict = Router::new()
            .route("/strict/mcp", post(whoami))
            .layer(BearerAuthLayer::new(verifier(false), resource.clone()));
        let router = Router::new()
            .merge(lenient)
            .merge(strict)
            .merge(resource.metadata_router());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base,
            resource: resource.resource().to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, token: &str) -> Reply {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            challenge,
            body,
        }
    }

    /// Accepted by `/mcp`: the `AuthInfo` as JSON.
    async fn accepted(&self, path: &str, token: &str) -> Value {
        let reply = self.post(path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.body
    }

    /// Refused with 401 `invalid_token` and the description of `kind`.
    async fn refused(&self, path: &str, token: &str, kind: VerifyErrorKind) {
        let reply = self.post(path, token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        let challenge = reply.challenge.unwrap();
        assert!(
            challenge.starts_with(&format!(
                r#"Bearer error="invalid_token", error_description="{}""#,
                kind.description()
            )),
            "{kind:?}: {challenge}"
        );
    }
}

/// The discovery hits so far: (RFC 8414, OIDC any form, OIDC appended form, JWKS, other).
fn hits(idp: &FakeIdp) -> (usize, usize, usize, usize, usize) {
    (
        idp.oauth_metadata_hits(),
        idp.openid_configuration_hits(),
        idp.openid_appended_hits(),
        idp.jwks_hits(),
        idp.other_hits(),
    )
}

/// A token with only the given claims (no `TokenBuilder` defaults such as `client_id`).
fn token_with(issuer: &str, claims: &Value) -> TokenBuilder {
    let mut b = TokenBuilder::new(issuer, "unused");
    for name in [
        "iss",
        "aud",
        "sub",
        "client_id",
        "scope",
        "iat",
        "exp",
        "jti",
    ] {
        b = b.without_claim(name);
    }
    for (name, value) in claims.as_object().unwrap() {
        b = b.claim(name, value.clone());
    }
    b
}

/// A placeholder `x5c` chain and `x5t` thumbprint for a JWK. They are not a real certificate
/// (the SPKI DER stands in for it): the verifier never reads `x5c`/`x5t`, it uses `n`/`e`.
fn x5(key: &SigningKey) -> (Value, String) {
    let der = key.rsa_public_der();
    (json!([b64std(&der)]), b64url(&der[..20]))
}

// ---------------------------------------------------------------------------------------------
// Keycloak

#[tokio::test]
async fn keycloak_realm() {
    let idp = FakeIdp::start_with_path("/realms/mcp").await;
    // Keycloak (before 26.4) serves `<iss>/.well-known/openid-configuration` (and the appended
    // `oauth-authorization-server`, which RFC 8414 clients do not try), nothing at the inserted
    // URLs.
    idp.serve_oauth_metadata(false);
    idp.serve_openid_inserted(false);
    let key = SigningKey::rs256("kc-sig-1");
    idp.set_keys(vec![key.clone()]);
    let mut enc = key.jwk();
    enc["kid"] = json!("kc-enc-1");
    enc["use"] = json!("enc");
    enc["alg"] = json!("RSA-OAEP");
    idp.add_raw_jwk(enc);
    let rs = Rs::start(&idp).await;

    let claims = |aud: Value| {
        json!({
            "exp": NOW + 300,
            "iat": NOW,
            "auth_time": NOW - 10,
            "jti": "onrtac:6f1c2a9e-0d7b-4f0e-9c51-6a8f3d2b1e47",
            "iss": idp.issuer(),
            "aud": aud,
            "sub": "8d1e3c7a-52b4-4e8f-a1d0-2f6b9c3e5a71",
            "typ": "Bearer",
            "azp": "mcp-client",
            "sid": "b5f0c9d2-7a61-4c3e-8f24-1d9e6b0a3c58",
            "acr": "1",
            "allowed-origins": ["http://127.0.0.1:6274"],
            "realm_access": {"roles": ["default-roles-mcp", "offline_access"]},
            "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
            "scope": "openid mcp:tools profile email",
            "email_verified": true,
            "preferred_username": "alice",
        })
    };
    let token = token_with(idp.issuer(), &claims(json!([rs.resource, "account"])))
        .header("typ", "JWT")
        .sign(&key);

    let info = rs.accepted("/mcp", &token).await;
    assert_eq!(info["sub"], "8d1e3c7a-52b4-4e8f-a1d0-2f6b9c3e5a71");
    assert_eq!(info["client_id"], "mcp-client", "azp");
    assert_eq!(
        info["scopes"],
        json!(["email", "mcp:tools", "openid", "profile"])
    );
    assert_eq!(info["aud"], json!([rs.resource, "account"]));
    // RFC 8414 inserted (404), OIDC inserted (404), OIDC appended (200), then the keys.
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0));

    // `typ: JWT` needs the opt-out; refused before any key lookup, so no request.
    rs.refused("/strict/mcp", &token, VerifyErrorKind::TokenType)
        .await;
    // Keycloak's default audience, without an audience mapper for the MCP server.
    let account_only = token_with(idp.issuer(), &claims(json!("account")))
        .header("typ", "JWT")
        .sign(&key);
    rs.refused("/mcp", &account_only, VerifyErrorKind::Audience)
        .await;
    let other = token_with(
        idp.issuer(),
        &claims(json!(["http://127.0.0.1:1/mcp", "account"])),
    )
    .header("typ", "JWT")
    .sign(&key);
    rs.refused("/mcp", &other, VerifyErrorKind::Audience).await;
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0), "keys cached");
}

// ---------------------------------------------------------------------------------------------
// Auth0

#[tokio::test]
async fn auth0_tenant_both_profiles() {
    // `https://<tenant>/`: the issuer ends with `/`; the metadata URLs drop it.
    let idp = FakeIdp::start_with_path("/").await;
    assert!(idp.issuer().ends_with('/'));
    // Modelled with the OpenID Connect document only.
    idp.serve_oauth_metadata(false);
    let key = SigningKey::rs256("auth0-kid-1");
    let mut jwk = key.jwk();
    let (x5c, x5t) = x5(&key);
    jwk["x5c"] = x5c;
    jwk["x5t"] = json!(x5t);
    idp.set_keys(vec![]);
    idp.add_raw_jwk(jwk);
    let rs = Rs::start(&idp).await;
    let userinfo = format!("{}userinfo", idp.issuer());

    let claims = |aud: Value, client: (&str, &str)| {
        let mut c = json!({
            "iss": idp.issuer(),
            "sub": "auth0|65a1f0c2d4e8b9a7c3f1e2d0",
            "aud": aud,
            "iat": NOW,
            "exp": NOW + 86_400,
            "scope": "openid profile mcp:tools",
            "jti": "73WakrfVbNJBaAmhQtEeDv",
        });
        c[client.0] = json!(client.1);
        c
    };
    let aud = json!([rs.resource, userinfo]);

    // RFC 9068 profile: `typ: at+jwt`, `client_id`: accepted by the strict default.
    let rfc9068 = token_with(
        idp.issuer(),
        &claims(aud.clone(), ("client_id", "Xo3dK9mRkq2LcFv8")),
    )
    .sign(&key);
    for path in ["/strict/mcp", "/mcp"] {
        let info = rs.accepted(path, &rfc9068).await;
        assert_eq!(info["sub"], "auth0|65a1f0c2d4e8b9a7c3f1e2d0");
        assert_eq!(info["client_id"], "Xo3dK9mRkq2LcFv8");
        assert_eq!(info["scopes"], json!(["mcp:tools", "openid", "profile"]));
    }
    // RFC 8414 at the origin (404), then OIDC at the origin (200): two verifiers, one fetch each.
    assert_eq!(hits(&idp), (2, 2, 2, 2, 0));

    // Default ("Auth0") profile: `typ: JWT`, `azp`: needs the opt-out.
    let legacy = token_with(idp.issuer(), &claims(aud, ("azp", "Xo3dK9mRkq2LcFv8")))
        .header("typ", "JWT")
        .sign(&key);
    let info = rs.accepted("/mcp", &legacy).await;
    assert_eq!(info["client_id"], "Xo3dK9mRkq2LcFv8", "azp");
    assert_eq!(info["scopes"], json!(["mcp:tools", "openid", "profile"]));
    rs.refused("/strict/mcp", &legacy, VerifyErrorKind::TokenType)
        .await;

    // Another API of the tenant.
    let other = token_with(
        idp.issuer(),
        &claims(
            json!(["https://api.example.com/", userinfo]),
            ("client_id", "Xo3dK9mRkq2LcFv8"),
        ),
    )
    .sign(&key);
    rs.refused("/mcp", &other, VerifyErrorKind::Audience).await;
    rs.refused("/strict/mcp", &other, VerifyErrorKind::Audience)
        .await;
    // Issuer without the trailing slash in the token: not the configured issuer.
    let no_slash = token_with(
        idp.issuer(),
        &claims(json!(rs.resource), ("client_id", "Xo3dK9mRkq2LcFv8")),
    )
    .claim("iss", idp.issuer().trim_end_matches('/'))
    .sign(&key);
    rs.refused("/strict/mcp", &no_slash, VerifyErrorKind::Issuer)
        .await;
    assert_eq!(hits(&idp), (2, 2, 2, 2, 0), "keys cached");

    // Configured without the trailing slash, the metadata's `issuer` does not match byte for
    // byte: no keys, 503-class `Unavailable`, the document's `jwks_uri` never used.
    let resource = mcp_auth_core::ResourceId::parse(&rs.resource).unwrap();
    let wrong = JwtVerifier::builder(idp.issuer().trim_end_matches('/'), &resource)
        .discover_jwks()
        .clock(support::clock())
        .background_refresh(false)
        .build()
        .unwrap();
    let err = wrong.verify(&rfc9068).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    assert_eq!(idp.jwks_hits(), 2);
}

// ---------------------------------------------------------------------------------------------
// Microsoft Entra ID (v2.0 endpoint)

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The API's application (client) ID: what v2.0 access tokens carry in `aud`.
const API_APP_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

#[tokio::test]
async fn entra_id_v2() {
    let idp = FakeIdp::start_with_path(&format!("/{TENANT}/v2.0")).await;
    // Only `https://login.microsoftonline.com/<tid>/v2.0/.well-known/openid-configuration`.
    idp.serve_oauth_metadata(false);
    idp.serve_openid_inserted(false);
    // Entra's keys: no `alg`, with `x5t` (= `kid`), `x5c` and a templated `issuer`.
    let key = SigningKey::rs256("KQ2tAcrE7lBaviGmDaw5bcP8-Qw");
    let mut jwk = key.jwk();
    let (x5c, _) = x5(&key);
    jwk.as_object_mut().unwrap().remove("alg");
    jwk["x5t"] = json!("KQ2tAcrE7lBaviGmDaw5bcP8-Qw");
    jwk["x5c"] = x5c;
    jwk["cloud_instance_name"] = json!("microsoftonline.com");
    jwk["issuer"] = json!("https://login.microsoftonline.com/{tenantid}/v2.0");
    idp.set_keys(vec![]);
    idp.add_raw_jwk(jwk);
    let rs = Rs::start(&idp).await;

    let claims = |aud: &str| {
        json!({
            "aud": aud,
            "iss": idp.issuer(),
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 3_600,
            "aio": "AWQAm/8TAAAA",
            "azp": "0f3b8c2e-91d4-4a6b-b7e5-3c2d1a0f9e84",
            "azpacr": "0",
            "name": "Alice Example",
            "oid": "00000000-0000-0000-66f3-3332eca7ea81",
            "preferred_username": "alice@contoso.com",
            "rh": "0.AXEA",
            "scp": "mcp.tools files.read",
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": TENANT,
            "uti": "fqiBqXLPj0eQa82S-IYFAA",
            "ver": "2.0",
        })
    };
    let sign = |aud: &str| {
        token_with(idp.issuer(), &claims(aud))
            .header("typ", "JWT")
            .sign(&key)
    };

    // The shape with the MCP resource URI in `aud`: accepted (keys without `alg` are fine).
    let with_uri = sign(&rs.resource);
    let info = rs.accepted("/mcp", &with_uri).await;
    assert_eq!(info["sub"], "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
    assert_eq!(
        info["client_id"], "0f3b8c2e-91d4-4a6b-b7e5-3c2d1a0f9e84",
        "azp"
    );
    assert_eq!(info["scopes"], json!(["files.read", "mcp.tools"]), "scp");
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0));
    rs.refused("/strict/mcp", &with_uri, VerifyErrorKind::TokenType)
        .await;

    // What a v2.0 access token actually carries: the API's client ID. It is not the resource
    // URI, so it is refused (see the README: Entra needs a verifier-side audience alias or v1.0
    // tokens, whose `aud` is the Application ID URI).
    rs.refused("/mcp", &sign(API_APP_ID), VerifyErrorKind::Audience)
        .await;
    rs.refused(
        "/mcp",
        &sign("https://graph.microsoft.com"),
        VerifyErrorKind::Audience,
    )
    .await;
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0), "keys cached");

    // The explicit opt-in for such IdPs: `accept_audience(<the API's client ID>)`.
    let aliased = JwtVerifier::builder(
        idp.issuer(),
        &mcp_auth_core::ResourceId::parse(&rs.resource).unwrap(),
    )
    .discover_jwks()
    .accept_jwt_typ()
    .accept_audience(API_APP_ID)
    .clock(support::clock())
    .background_refresh(false)
    .build()
    .unwrap();
    let info = aliased.verify(&sign(API_APP_ID)).await.unwrap();
    assert_eq!(
        info.subject(),
        Some("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ")
    );
    // Still only that alias: another API's token stays out.
    assert_eq!(
        aliased
            .verify(&sign("https://graph.microsoft.com"))
            .await
            .unwrap_err()
            .kind(),
        VerifyErrorKind::Audience
    );
}

// ---------------------------------------------------------------------------------------------
// Okta (custom authorization server)

#[tokio::test]
async fn okta_custom_authorization_server() {
    let idp = FakeIdp::start_with_path("/oauth2/default").await;
    // `<iss>/.well-known/oauth-authorization-server` and `<iss>/.well-known/openid-configuration`
    // (both appended); only the second is on the RFC 8414/OIDC client's list.
    idp.serve_oauth_metadata(false);
    idp.serve_openid_inserted(false);
    let key = SigningKey::rs256("ZkvelLN_seik7w4pc_prCcfUf-h2hFfiwkDeCrs0iUc");
    idp.set_keys(vec![key.clone()]);
    let rs = Rs::start(&idp).await;

    let claims = |aud: &str| {
        json!({
            "ver": 1,
            "jti": "AT.MNAoEQ_jbKqoinrQo1D0XKjMX28U5d7ZszBceot7-Ts",
            "iss": idp.issuer(),
            "aud": aud,
            "iat": NOW,
            "exp": NOW + 3_600,
            "cid": "0oa8f5j3ecb5w3dF35d7",
            "uid": "00u1a2b3c4d5e6f7g8h9",
            "scp": ["openid", "mcp:tools"],
            "auth_time": NOW - 30,
            "sub": "alice@example.com",
        })
    };
    // Header: `kid` and `alg` only.
    let sign = |aud: &str| {
        token_with(idp.issuer(), &claims(aud))
            .without_header("typ")
            .sign(&key)
    };

    // The custom authorization server's audience set to the MCP resource URI.
    let token = sign(&rs.resource);
    let info = rs.accepted("/mcp", &token).await;
    assert_eq!(info["sub"], "alice@example.com");
    assert_eq!(info["scopes"], json!(["mcp:tools", "openid"]), "scp array");
    // Okta names the client in `cid`.
    assert_eq!(info["client_id"], "0oa8f5j3ecb5w3dF35d7", "cid");
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0));

    // No `typ` at all: refused by the strict default like `typ: JWT`.
    rs.refused("/strict/mcp", &token, VerifyErrorKind::TokenType)
        .await;
    // The default audience of a new custom authorization server.
    rs.refused("/mcp", &sign("api://default"), VerifyErrorKind::Audience)
        .await;
    assert_eq!(hits(&idp), (1, 2, 1, 1, 0), "keys cached");
}
