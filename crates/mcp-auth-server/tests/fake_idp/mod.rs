//! A fake OpenID Connect (and GitHub-style OAuth 2.0) provider on loopback, for the cases a real
//! provider cannot be made to produce: forged ID tokens, oversize and slow answers, outages.
//! It approves every authorization request at once (like a provider where the user is already
//! signed in and has consented), checks PKCE and the client's credentials at its token
//! endpoint, and signs ID tokens as [`Mode`] says.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_auth_core::pkce::{CodeChallenge, CodeVerifier};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "upstream-client";
pub const CLIENT_SECRET: &str = "upstream-secret-0123456789abcdef";
pub const SUB: &str = "user-1";

/// What the token endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Good,
    UnknownKid,
    AlgNone,
    /// HS256 with the provider's public JWK (as JSON text) as the secret.
    HmacWithPublicKey,
    WrongAud,
    WrongIss,
    Expired,
    WrongNonce,
    /// A 2 MiB token response.
    Oversize,
    /// Answers after 3 s.
    Slow,
    /// 503 from the token endpoint.
    Down,
    /// The authorization endpoint answers `error=access_denied`.
    Deny,
}

pub struct Fake {
    pub issuer: String,
    pub mode: Mutex<Mode>,
    /// The user's email claims (email, email_verified).
    pub email: Mutex<(String, bool)>,
    key: EncodingKey,
    jwks: Value,
    public_jwk_json: String,
    /// code → (nonce, code_challenge, redirect_uri).
    codes: Mutex<HashMap<String, (String, String, String)>>,
    pub token_hits: AtomicUsize,
    pub jwks_hits: AtomicUsize,
}

impl Fake {
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn id_token(&self, nonce: &str) -> String {
        let mode = *self.mode.lock().unwrap();
        let now = mcp_auth_core::Clock::unix_seconds(&mcp_auth_core::SystemClock::default());
        let (email, verified) = self.email.lock().unwrap().clone();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": SUB,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "email": email,
            "email_verified": verified,
            "name": "Fake User",
        });
        match mode {
            Mode::WrongAud => claims["aud"] = json!("someone-else"),
            Mode::WrongIss => claims["iss"] = json!(format!("{}/other", self.issuer)),
            Mode::Expired => {
                claims["exp"] = json!(now - 3600);
                claims["iat"] = json!(now - 7200);
            }
            Mode::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
            _ => {}
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        match mode {
            Mode::UnknownKid => {
                header.kid = Some("k-unknown".into());
                jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
            }
            Mode::AlgNone => {
                let b64 = |v: &Value| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
                };
                format!(
                    "{}.{}.",
                    b64(&json!({"alg": "none", "kid": "k1"})),
                    b64(&claims)
                )
            }
            Mode::HmacWithPublicKey => {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("k1".into());
                let key = EncodingKey::from_secret(self.public_jwk_json.as_bytes());
                jsonwebtoken::encode(&header, &claims, &key).unwrap()
            }
            _ => jsonwebtoken::encode(&header, &claims, &self.key).unwrap(),
        }
    }
}

/// Start a fake provider on `listener` (or a fresh loopback port).
pub async fn start_on(listener: Option<TcpListener>) -> (Arc<Fake>, tokio::task::JoinHandle<()>) {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let _ = pair.public_key();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
    jwk["kid"] = json!("k1");
    jwk["use"] = json!("sig");
    let public_jwk_json = jwk.to_string();
    let fake = Arc::new(Fake {
        issuer,
        mode: Mutex::new(Mode::Good),
        email: Mutex::new(("user-1@example.com".into(), true)),
        key,
        jwks: json!({ "keys": [jwk] }),
        public_jwk_json,
        codes: Mutex::new(HashMap::new()),
        token_hits: AtomicUsize::new(0),
        jwks_hits: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .route("/userinfo", get(userinfo))
        .with_state(fake.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, task)
}

type St = State<Arc<Fake>>;

async fn discovery(State(f): St) -> Response {
    let i = &f.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["ES256", "none", "HS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
    .into_response()
}

async fn jwks(State(f): St) -> Response {
    f.jwks_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(f.jwks.clone()).into_response()
}

async fn authorize(State(f): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let redirect = q["redirect_uri"].clone();
    let state = q["state"].clone();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    let mut location = url::Url::parse(&redirect).unwrap();
    if *f.mode.lock().unwrap() == Mode::Deny {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &state);
    } else {
        let code = format!("code-{}", f.codes.lock().unwrap().len());
        f.codes.lock().unwrap().insert(
            code.clone(),
            (
                q.get("nonce").cloned().unwrap_or_default(),
                q["code_challenge"].clone(),
                redirect,
            ),
        );
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &state);
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

async fn token(State(f): St, headers: HeaderMap, body: String) -> Response {
    f.token_hits.fetch_add(1, Ordering::SeqCst);
    let mode = *f.mode.lock().unwrap();
    match mode {
        Mode::Down => return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        Mode::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
        Mode::Oversize => {
            let big = "x".repeat(2 * 1024 * 1024);
            return axum::Json(json!({"access_token": big, "token_type": "Bearer"}))
                .into_response();
        }
        _ => {}
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
    if !authed {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let bad_grant = || {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return if form.get("refresh_token").map(String::as_str) == Some("upstream-refresh") {
            axum::Json(json!({"access_token": "upstream-access-2", "token_type": "Bearer", "expires_in": 600})).into_response()
        } else {
            bad_grant()
        };
    }
    let Some((nonce, challenge, redirect)) = form
        .get("code")
        .and_then(|c| f.codes.lock().unwrap().remove(c))
    else {
        return bad_grant();
    };
    let verifier_ok = form
        .get("code_verifier")
        .and_then(|v| CodeVerifier::new(v.clone()).ok())
        .is_some_and(|v| CodeChallenge::s256(&v).as_str() == challenge);
    if !verifier_ok || form.get("redirect_uri") != Some(&redirect) {
        return bad_grant();
    }
    axum::Json(json!({
        "access_token": "upstream-access-1",
        "token_type": "Bearer",
        "expires_in": 600,
        "refresh_token": "upstream-refresh",
        "id_token": f.id_token(&nonce),
        "scope": "openid email profile",
    }))
    .into_response()
}

async fn userinfo(State(f): St, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some("upstream-access-1") && token != Some("upstream-access-2") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (email, verified) = f.email.lock().unwrap().clone();
    // Both the OIDC claims and a GitHub-style numeric id and login.
    axum::Json(json!({
        "sub": SUB, "email": email, "email_verified": verified, "name": "Fake User",
        "id": 12345, "login": "octo-fake",
    }))
    .into_response()
}
