//! Requests to an upstream provider: one client per login with no redirects, connect and total
//! timeouts, bounded bodies; the token endpoint (code exchange and refresh) shared by
//! [`OidcLogin`](crate::login::OidcLogin) and [`OAuth2Login`](crate::login::OAuth2Login).

use std::time::Duration;

use base64::Engine as _;
use http::{StatusCode, header};
use mcp_auth_core::Secret;
use serde_json::{Map, Value};

use super::{ClientAuthMethod, RefreshError, UpstreamError, UpstreamTokens};
use crate::error::ConfigError;

/// The largest provider response read (discovery, token, user info), in bytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The default total time one provider request may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Transport error, timeout, or a 5xx: the provider is unavailable.
    Unavailable(&'static str),
    /// A 4xx with an OAuth `error` code (or none).
    Refused(u16, Option<String>),
    /// A body that is too large or not a JSON object.
    Invalid(&'static str),
}

impl Failure {
    pub(crate) fn into_upstream(self, what: &str) -> UpstreamError {
        match self {
            Self::Unavailable(why) => UpstreamError::Unavailable(format!("{what}: {why}")),
            Self::Refused(status, Some(code)) => {
                // The code is an RFC 6749 error code from the provider: keep only safe characters.
                let code: String = code
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect();
                UpstreamError::Invalid(format!("{what}: status {status}, error {code}"))
            }
            Self::Refused(status, None) => {
                UpstreamError::Invalid(format!("{what}: status {status}"))
            }
            Self::Invalid(why) => UpstreamError::Invalid(format!("{what}: {why}")),
        }
    }
}

/// The HTTP client of one upstream login.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    client: reqwest::Client,
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::InvalidLifetime("upstream HTTP timeout"));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("mcp-auth-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| {
                ConfigError::Invalid("the upstream HTTP client could not be built".into())
            })?;
        Ok(Self { client })
    }

    /// GET a JSON object (with a bearer token, for user info).
    pub(crate) async fn get_json(
        &self,
        url: &str,
        bearer: Option<&Secret>,
    ) -> Result<Map<String, Value>, Failure> {
        let mut request = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose());
        }
        read_json(request.send().await).await
    }

    /// POST a form to a token endpoint, authenticating as the client.
    pub(crate) async fn token(
        &self,
        endpoint: &TokenEndpoint,
        form: &[(&str, &str)],
    ) -> Result<Map<String, Value>, Failure> {
        let mut request = self
            .client
            .post(&endpoint.url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let body = {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            match (&endpoint.client_secret, endpoint.method) {
                (Some(secret), ClientAuthMethod::ClientSecretBasic) => {
                    // RFC 6749 §2.3.1: each part form-urlencoded before Basic.
                    let enc = |v: &str| {
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                    };
                    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        enc(&endpoint.client_id),
                        enc(secret.expose())
                    ));
                    request = request.header(header::AUTHORIZATION, format!("Basic {credentials}"));
                }
                (Some(secret), ClientAuthMethod::ClientSecretPost) => {
                    body.append_pair("client_id", &endpoint.client_id);
                    body.append_pair("client_secret", secret.expose());
                }
                // No secret (or a method that takes none): the client id alone.
                _ => {
                    body.append_pair("client_id", &endpoint.client_id);
                }
            }
            body.finish()
        };
        read_json(request.body(body).send().await).await
    }
}

async fn read_json(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Map<String, Value>, Failure> {
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            Failure::Unavailable("the request timed out")
        } else {
            Failure::Unavailable("the request failed")
        }
    };
    let mut response = sent.map_err(transport)?;
    let status = response.status();
    if status.is_server_error() {
        return Err(Failure::Unavailable(
            "the provider answered with a server error",
        ));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Failure::Invalid("the response is too large"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Failure::Invalid("the response is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    let json = serde_json::from_slice::<Map<String, Value>>(&body);
    if status != StatusCode::OK {
        let code = json
            .ok()
            .and_then(|m| m.get("error").and_then(Value::as_str).map(str::to_owned));
        return Err(Failure::Refused(status.as_u16(), code));
    }
    json.map_err(|_| Failure::Invalid("the response is not a JSON object"))
}

/// A provider's token endpoint and this server's credentials there.
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) method: ClientAuthMethod,
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The tokens of a token response (RFC 6749 §5.1), and the ID token if any.
pub(crate) fn tokens_of(
    response: &Map<String, Value>,
    now: u64,
) -> Result<(UpstreamTokens, Option<String>), UpstreamError> {
    let invalid = |why: &str| UpstreamError::Invalid(format!("token response: {why}"));
    let access = response
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("no access_token"))?;
    match response.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        _ => return Err(invalid("token_type is not Bearer")),
    }
    let mut tokens = UpstreamTokens::new(access);
    if let Some(refresh) = response.get("refresh_token").and_then(Value::as_str) {
        tokens = tokens.with_refresh_token(refresh);
    }
    if let Some(expires_in) = response.get("expires_in").and_then(Value::as_u64) {
        tokens = tokens.with_expires_at(now.saturating_add(expires_in));
    }
    if let Some(scope) = response.get("scope").and_then(Value::as_str) {
        tokens = tokens.with_scope(scope);
    }
    let id_token = response
        .get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((tokens, id_token))
}

/// Exchange a code (RFC 6749 §4.1.3 with the PKCE verifier).
pub(crate) async fn exchange_code(
    client: &Client,
    endpoint: &TokenEndpoint,
    code: &str,
    request: &super::UpstreamRequest,
    now: u64,
) -> Result<(UpstreamTokens, Option<String>), UpstreamError> {
    let response = client
        .token(
            endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", request.redirect_uri()),
                ("code_verifier", request.code_verifier()),
            ],
        )
        .await
        .map_err(|f| f.into_upstream("token request"))?;
    tokens_of(&response, now)
}

/// Refresh (RFC 6749 §6): `invalid_grant` is a rejection, anything else unavailability.
pub(crate) async fn refresh(
    client: &Client,
    endpoint: &TokenEndpoint,
    refresh_token: &Secret,
    now: u64,
) -> Result<UpstreamTokens, RefreshError> {
    match client
        .token(
            endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
        )
        .await
    {
        Ok(response) => tokens_of(&response, now)
            .map(|(tokens, _)| tokens)
            .map_err(|e| RefreshError::Unavailable(e.to_string())),
        Err(Failure::Refused(_, Some(code))) if code == "invalid_grant" => {
            Err(RefreshError::Rejected)
        }
        Err(f) => Err(RefreshError::Unavailable(
            f.into_upstream("refresh").to_string(),
        )),
    }
}
