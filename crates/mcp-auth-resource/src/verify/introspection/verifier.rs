//! [`IntrospectionVerifier`], its builder and [`ClientAuth`]; the rules are in the [module docs](super).
use std::{error::Error as StdError, fmt, future::Future, sync::Arc, time::Duration};

use mcp_auth_core::{Clock, ResourceId, ScopeSet, Secret};
use serde_json::{Map, Value};

use crate::{
    CachedVerifier, TokenVerifier, VerifyError, VerifyErrorKind, verify::cache::CacheConfig,
    verify::cache::TokenCache, verify::claims::audiences, verify::claims::check_confirmation,
    verify::claims::client_id, verify::claims::collect_scopes, verify::claims::is_after_leeway,
    verify::claims::numeric_date,
};

use super::{DEFAULT_CACHE_TTL, DEFAULT_LEEWAY, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TIMEOUT};
use crate::{AuthInfo, ConfigError, error::fetch_url};

/// Longest token sent for introspection; longer ones are [`Malformed`](VerifyErrorKind::Malformed).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// `Retry-After` when the endpoint did not say.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RESPONSE_SIZE_LIMIT: usize = 1024 * 1024;
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// How the resource server authenticates to the introspection endpoint (RFC 7662 §2.1, RFC 6749
/// §2.3.1). Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientAuth(AuthKind);

#[derive(Clone)]
enum AuthKind {
    Basic { client_id: String, secret: Secret },
    Post { client_id: String, secret: Secret },
    None,
}

impl ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded client id and secret. The method
    /// every authorization server supports; use it unless yours says otherwise.
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self(AuthKind::Basic {
            client_id: client_id.into(),
            secret: secret.into(),
        })
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self(AuthKind::Post {
            client_id: client_id.into(),
            secret: secret.into(),
        })
    }

    /// No client authentication, for an endpoint protected some other way (a private network, a
    /// mesh with mutual TLS). RFC 7662 §2.1 requires the endpoint to authorize its callers.
    #[must_use]
    pub const fn none() -> Self {
        Self(AuthKind::None)
    }

    /// The `token_endpoint_auth_method` name of this method.
    #[must_use]
    pub const fn method(&self) -> &'static str {
        match self.0 {
            AuthKind::Basic { .. } => "client_secret_basic",
            AuthKind::Post { .. } => "client_secret_post",
            AuthKind::None => "none",
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            AuthKind::Basic { client_id, secret } | AuthKind::Post { client_id, secret } => f
                .debug_struct("ClientAuth")
                .field("method", &self.method())
                .field("client_id", client_id)
                .field("secret", secret)
                .finish(),
            AuthKind::None => f
                .debug_struct("ClientAuth")
                .field("method", &self.method())
                .finish(),
        }
    }
}

/// Verifies opaque access tokens with RFC 7662 introspection. See the
/// [module docs](crate::verify::introspection) for the rules and an example.
///
/// Cloning is cheap and shares the HTTP client and the cache.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    cached: CachedVerifier<Introspector>,
}

impl IntrospectionVerifier {
    /// Starts a verifier for the introspection endpoint `endpoint` (https, or http on loopback),
    /// accepting tokens for `audience` (usually [`ProtectedResource::resource`](crate::ProtectedResource::resource)),
    /// authenticating with `auth`.
    pub fn builder(
        endpoint: impl Into<String>,
        audience: ResourceId,
        auth: ClientAuth,
    ) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            endpoint: endpoint.into(),
            audience,
            auth,
            issuer: None,
            allow_missing_audience: false,
            leeway: DEFAULT_LEEWAY,
            timeout: DEFAULT_TIMEOUT,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            cache: CacheConfig::new(DEFAULT_CACHE_TTL),
        }
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        self.cached.clear();
    }

    /// The number of cached answers, including expired ones not dropped yet. For metrics and
    /// tests: it visits every shard of the cache.
    #[must_use]
    pub fn cache_entry_count(&self) -> u64 {
        self.cached.entry_count()
    }
}

impl TokenVerifier for IntrospectionVerifier {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        self.cached.verify(token)
    }

    fn verify_cached(&self, token: &str) -> Option<Result<AuthInfo, VerifyError>> {
        self.cached.verify_cached(token)
    }

    fn recall(&self, token: &[u8]) -> Option<Result<AuthInfo, VerifyError>> {
        self.cached.recall(token)
    }
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.cached.get_ref().0;
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &config.endpoint.as_str())
            .field("audience", &config.audience)
            .field("issuer", &config.issuer)
            .field("auth", &config.auth)
            .field("allow_missing_audience", &config.allow_missing_audience)
            .field("leeway", &config.leeway)
            .field("max_response_size", &config.max_response_size)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IntrospectionVerifier`]. Start with [`IntrospectionVerifier::builder`].
#[must_use]
pub struct IntrospectionVerifierBuilder {
    endpoint: String,
    audience: ResourceId,
    auth: ClientAuth,
    issuer: Option<String>,
    allow_missing_audience: bool,
    leeway: Duration,
    timeout: Duration,
    max_response_size: usize,
    cache: CacheConfig,
}

impl IntrospectionVerifierBuilder {
    /// The trusted issuer: a response with a different `iss` is refused
    /// ([`Issuer`](VerifyErrorKind::Issuer)). Compared as an exact string.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Accepts active tokens whose introspection response has no `aud` at all.
    ///
    /// Only for authorization servers that never return `aud`, and only when every token they
    /// issue is meant for this resource: without `aud`, nothing else proves the token was issued for
    /// this server (SPEC RS-22). A present `aud` is still checked.
    pub fn allow_missing_audience(mut self) -> Self {
        self.allow_missing_audience = true;
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default [`DEFAULT_LEEWAY`], at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Time limit of one introspection request, from connecting to the end of the body (default
    /// [`DEFAULT_TIMEOUT`], more than zero and at most 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body read (default [`DEFAULT_MAX_RESPONSE_SIZE`], at most 1 MiB); a
    /// larger one is [`Unavailable`](VerifyErrorKind::Unavailable).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// Maximum number of cached answers (default 10 000); `0` disables the cache.
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache.capacity = entries;
        self
    }

    /// How long an active token stays cached (default [`DEFAULT_CACHE_TTL`]); never past its
    /// `exp`. This bounds how long a revoked token keeps working. `Duration::ZERO` disables the
    /// positive cache.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache.positive_ttl = ttl;
        self
    }

    /// How long an inactive (or otherwise bad) token's verdict stays cached (default 10 s);
    /// `Duration::ZERO` disables the negative cache.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache.negative_ttl = ttl;
        self
    }

    /// Where time comes from (default the system clock), for `exp`, `nbf` and cache expiry.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.cache.clock = Arc::new(clock);
        self
    }

    /// Checks the settings and builds the verifier.
    ///
    /// # Errors
    /// - [`ConfigError::InvalidUrl`] / [`ConfigError::InsecureUrl`]: the endpoint is not an
    ///   absolute https URL (http is allowed only on loopback).
    /// - [`ConfigError::OutOfRange`]: the timeout, the response size limit or the leeway.
    /// - [`ConfigError::HttpClient`]: the HTTP client could not be built.
    pub fn build(self) -> Result<IntrospectionVerifier, ConfigError> {
        let endpoint = fetch_url(&self.endpoint, "introspection endpoint")?;
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(ConfigError::OutOfRange {
                what: "introspection timeout",
            });
        }
        if self.max_response_size == 0 || self.max_response_size > MAX_RESPONSE_SIZE_LIMIT {
            return Err(ConfigError::OutOfRange {
                what: "introspection max response size",
            });
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::OutOfRange {
                what: "introspection leeway",
            });
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("mcp-auth-resource/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ConfigError::HttpClient)?;
        let auth = match self.auth.0 {
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            AuthKind::Basic { client_id, secret } => AuthKind::Basic {
                client_id: form_encode(&client_id),
                secret: Secret::new(form_encode(secret.expose())),
            },
            other => other,
        };
        let clock = Arc::clone(&self.cache.clock);
        let introspector = Introspector(Arc::new(Config {
            client,
            endpoint,
            audience: self.audience,
            issuer: self.issuer,
            auth: ClientAuth(auth),
            allow_missing_audience: self.allow_missing_audience,
            leeway: self.leeway.as_secs(),
            max_response_size: self.max_response_size,
            clock,
        }));
        Ok(IntrospectionVerifier {
            cached: CachedVerifier::from_parts(introspector, TokenCache::new(self.cache)),
        })
    }
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("endpoint", &self.endpoint)
            .field("audience", &self.audience)
            .field("auth", &self.auth)
            .field("issuer", &self.issuer)
            .field("allow_missing_audience", &self.allow_missing_audience)
            .field("leeway", &self.leeway)
            .field("timeout", &self.timeout)
            .field("max_response_size", &self.max_response_size)
            .field("cache", &self.cache)
            .finish()
    }
}

/// The uncached introspection call.
#[derive(Clone)]
struct Introspector(Arc<Config>);

struct Config {
    client: reqwest::Client,
    endpoint: url::Url,
    audience: ResourceId,
    issuer: Option<String>,
    /// Basic credentials are stored already form-encoded.
    auth: ClientAuth,
    allow_missing_audience: bool,
    leeway: u64,
    max_response_size: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.0.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenVerifier for Introspector {
    fn verify(&self, token: &str) -> impl Future<Output = Result<AuthInfo, VerifyError>> + Send {
        self.0.introspect(token)
    }
}

impl Config {
    async fn introspect(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(VerifyErrorKind::Malformed.into());
        }
        let claims = match self.call(token).await {
            Ok(claims) => claims,
            Err(failure) => {
                let retry_after = failure.retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                #[cfg(feature = "tracing")]
                {
                    let cause = failure.source.as_ref().map(tracing::field::display);
                    if failure.kind.is_credentials() {
                        tracing::error!(
                            endpoint = %self.endpoint,
                            error = %failure,
                            "introspection endpoint refused this resource server's credentials"
                        );
                    } else {
                        tracing::warn!(
                            endpoint = %self.endpoint,
                            error = %failure,
                            cause,
                            "introspection unavailable"
                        );
                    }
                }
                return Err(VerifyError::unavailable(Some(retry_after)).with_source(failure));
            }
        };
        self.check(claims).map_err(|kind| {
            #[cfg(feature = "tracing")]
            tracing::debug!(?kind, "introspection: token refused");
            VerifyError::new(kind)
        })
    }

    /// One HTTP exchange: the response's JSON object, or why there is none.
    async fn call(&self, token: &str) -> Result<Map<String, Value>, Failure> {
        let mut form: Vec<(&str, &str)> =
            vec![("token", token), ("token_type_hint", "access_token")];
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.auth.0 {
            AuthKind::Basic { client_id, secret } => {
                request = request.basic_auth(client_id, Some(secret.expose()));
            }
            AuthKind::Post { client_id, secret } => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose()));
            }
            AuthKind::None => {}
        }
        let mut response = request
            .form(&form)
            .send()
            .await
            .map_err(Failure::transport)?;
        drop(form);

        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.clamp(1, 300)));
            let kind = if matches!(status.as_u16(), 401 | 403) {
                FailureKind::Credentials(status.as_u16())
            } else {
                FailureKind::Status(status.as_u16())
            };
            return Err(Failure {
                kind,
                retry_after,
                source: None,
            });
        }
        let max = self.max_response_size;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(FailureKind::TooLarge.into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
            if body.len() + chunk.len() > max {
                return Err(FailureKind::TooLarge.into());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| FailureKind::NotJson.into())
    }

    /// RFC 7662 §2.2 response checks (rules 1-5 of the module docs).
    fn check(&self, claims: Map<String, Value>) -> Result<AuthInfo, VerifyErrorKind> {
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(VerifyErrorKind::Inactive);
        }
        check_confirmation(&claims)?;
        let now = self.clock.unix_seconds();
        let mut info = AuthInfo::builder();

        if let Some(exp) = claims.get("exp") {
            let exp = numeric_date(exp).ok_or(VerifyErrorKind::MissingClaim)?;
            if now >= exp.saturating_add(self.leeway) {
                return Err(VerifyErrorKind::Expired);
            }
            info = info.expires_at(exp);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(VerifyErrorKind::MissingClaim)?;
            if is_after_leeway(nbf, now, self.leeway) {
                return Err(VerifyErrorKind::NotYetValid);
            }
        }
        if let Some(iat) = claims.get("iat") {
            let iat = numeric_date(iat).ok_or(VerifyErrorKind::MissingClaim)?;
            if is_after_leeway(iat, now, self.leeway) {
                return Err(VerifyErrorKind::NotYetValid);
            }
            info = info.issued_at(iat);
        }

        match claims.get("iss") {
            None | Some(Value::Null) => {}
            Some(Value::String(iss)) => {
                if self.issuer.as_ref().is_some_and(|expected| expected != iss) {
                    return Err(VerifyErrorKind::Issuer);
                }
                info = info.issuer(iss.as_str());
            }
            Some(_) => return Err(VerifyErrorKind::Issuer),
        }

        let audience = match claims.get("aud") {
            None | Some(Value::Null) if self.allow_missing_audience => Vec::new(),
            None | Some(Value::Null) => return Err(VerifyErrorKind::Audience),
            Some(aud) => {
                let audience = audiences(aud).ok_or(VerifyErrorKind::Audience)?;
                if !audience.iter().any(|aud| self.audience.matches(aud)) {
                    return Err(VerifyErrorKind::Audience);
                }
                audience
            }
        };
        info = info.audience(audience);

        let mut scopes = ScopeSet::new();
        collect_scopes(claims.get("scope"), &mut scopes);
        info = info.scopes(scopes);
        if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
            info = info.subject(sub);
        }
        if let Some(client_id) = client_id(&claims) {
            info = info.client_id(client_id);
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            info = info.jwt_id(jti);
        }
        Ok(info.claims(claims).build())
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Why the introspection endpoint gave no usable answer (the source of an `Unavailable` error).
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    retry_after: Option<Duration>,
    source: Option<reqwest::Error>,
}

#[derive(Debug, Clone, Copy)]
enum FailureKind {
    Unreachable,
    Timeout,
    Transport,
    Status(u16),
    Credentials(u16),
    TooLarge,
    NotJson,
}

impl FailureKind {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    const fn is_credentials(self) -> bool {
        matches!(self, Self::Credentials(_))
    }
}

impl Failure {
    fn transport(error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            FailureKind::Timeout
        } else if error.is_connect() {
            FailureKind::Unreachable
        } else {
            FailureKind::Transport
        };
        Self {
            kind,
            retry_after: None,
            source: Some(error),
        }
    }
}

impl From<FailureKind> for Failure {
    fn from(kind: FailureKind) -> Self {
        Self {
            kind,
            retry_after: None,
            source: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Unreachable => f.write_str("introspection endpoint unreachable"),
            FailureKind::Timeout => f.write_str("introspection request timed out"),
            FailureKind::Transport => f.write_str("introspection request failed"),
            FailureKind::Status(code) => write!(f, "introspection endpoint answered HTTP {code}"),
            FailureKind::Credentials(code) => write!(
                f,
                "introspection endpoint refused the resource server's credentials (HTTP {code})"
            ),
            FailureKind::TooLarge => f.write_str("introspection response too large"),
            FailureKind::NotJson => f.write_str("introspection response is not a JSON object"),
        }
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use mcp_auth_core::ManualClock;
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn config(allow_missing_audience: bool, issuer: Option<&str>) -> Config {
        Config {
            client: reqwest::Client::new(),
            endpoint: url::Url::parse("http://127.0.0.1:1/introspect").unwrap(),
            audience: ResourceId::parse("https://mcp.example.com/mcp").unwrap(),
            issuer: issuer.map(str::to_owned),
            auth: ClientAuth::none(),
            allow_missing_audience,
            leeway: 0,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            clock: Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))),
        }
    }

    fn check(config: &Config, value: Value) -> Result<AuthInfo, VerifyErrorKind> {
        let Value::Object(map) = value else { panic!() };
        config.check(map)
    }

    #[test]
    fn response_checks_table() {
        let strict = config(false, Some("https://as.example"));
        let aud = "https://mcp.example.com/mcp";
        let cases: Vec<(Value, Result<(), VerifyErrorKind>)> = vec![
            (json!({"active": true, "aud": aud}), Ok(())),
            (
                json!({"active": "true", "aud": aud}),
                Err(VerifyErrorKind::Inactive),
            ),
            (
                json!({"active": 1, "aud": aud}),
                Err(VerifyErrorKind::Inactive),
            ),
            (json!({"aud": aud}), Err(VerifyErrorKind::Inactive)),
            (json!({"active": true}), Err(VerifyErrorKind::Audience)),
            (
                json!({"active": true, "aud": null}),
                Err(VerifyErrorKind::Audience),
            ),
            (
                json!({"active": true, "aud": []}),
                Err(VerifyErrorKind::Audience),
            ),
            (
                json!({"active": true, "aud": 5}),
                Err(VerifyErrorKind::Audience),
            ),
            (
                json!({"active": true, "aud": [aud, 5]}),
                Err(VerifyErrorKind::Audience),
            ),
            (json!({"active": true, "aud": ["x", aud]}), Ok(())),
            (
                json!({"active": true, "aud": "HTTPS://MCP.example.com:443/mcp"}),
                Ok(()),
            ),
            (
                json!({"active": true, "aud": "https://mcp.example.com/mcp/"}),
                Err(VerifyErrorKind::Audience),
            ),
            (
                json!({"active": true, "aud": "https://mcp.example.com"}),
                Err(VerifyErrorKind::Audience),
            ),
            (
                json!({"active": true, "aud": aud, "exp": NOW}),
                Err(VerifyErrorKind::Expired),
            ),
            (json!({"active": true, "aud": aud, "exp": NOW + 1}), Ok(())),
            (
                json!({"active": true, "aud": aud, "exp": (NOW + 1) as f64 + 0.5}),
                Ok(()),
            ),
            (
                json!({"active": true, "aud": aud, "exp": "soon"}),
                Err(VerifyErrorKind::MissingClaim),
            ),
            (
                json!({"active": true, "aud": aud, "exp": -1}),
                Err(VerifyErrorKind::Expired),
            ),
            (
                json!({"active": true, "aud": aud, "nbf": NOW + 1}),
                Err(VerifyErrorKind::NotYetValid),
            ),
            (json!({"active": true, "aud": aud, "nbf": NOW}), Ok(())),
            (
                json!({"active": true, "aud": aud, "iat": NOW + 1}),
                Err(VerifyErrorKind::NotYetValid),
            ),
            (json!({"active": true, "aud": aud, "iat": NOW}), Ok(())),
            (
                json!({"active": true, "aud": aud, "iat": NOW - 3600}),
                Ok(()),
            ),
            (
                json!({"active": true, "aud": aud, "iat": "now"}),
                Err(VerifyErrorKind::MissingClaim),
            ),
            (
                json!({"active": true, "aud": aud, "iss": "https://as.example"}),
                Ok(()),
            ),
            (
                json!({"active": true, "aud": aud, "iss": "https://as.example/"}),
                Err(VerifyErrorKind::Issuer),
            ),
            (
                json!({"active": true, "aud": aud, "iss": 1}),
                Err(VerifyErrorKind::Issuer),
            ),
        ];
        for (response, expected) in cases {
            let got = check(&strict, response.clone()).map(|_| ());
            assert_eq!(got, expected, "{response}");
        }
    }

    #[test]
    fn iat_in_the_future_is_refused_beyond_the_leeway() {
        let config = Config {
            leeway: 60,
            ..config(false, None)
        };
        let aud = "https://mcp.example.com/mcp";
        for (iat, expected) in [
            (NOW + 61, Err(VerifyErrorKind::NotYetValid)),
            (NOW + 60, Ok(())),
            (NOW - 3600, Ok(())),
        ] {
            let got = check(&config, json!({"active": true, "aud": aud, "iat": iat})).map(|_| ());
            assert_eq!(got, expected, "iat {iat}");
        }
    }

    #[test]
    fn missing_audience_is_accepted_only_when_allowed_and_present_audience_still_checked() {
        let lenient = config(true, None);
        assert!(check(&lenient, json!({"active": true})).is_ok());
        assert!(
            check(
                &lenient,
                json!({"active": true, "aud": "https://other.example"})
            )
            .is_err()
        );
        assert!(check(&config(false, None), json!({"active": true})).is_err());
    }

    #[test]
    fn fields_and_claims_are_carried_over() {
        let info = check(
            &config(false, None),
            json!({
                "active": true, "aud": "https://mcp.example.com/mcp", "scope": "a  b:c bad\"scope",
                "sub": "u1", "azp": "c1", "username": "alice", "exp": NOW + 60, "iat": NOW, "jti": "j",
                "iss": "https://as.example",
            }),
        )
        .unwrap();
        assert_eq!(info.scopes().to_string(), "a b:c");
        assert_eq!(info.subject(), Some("u1"));
        assert_eq!(info.client_id(), Some("c1"));
        assert_eq!(info.issuer(), Some("https://as.example"));
        assert_eq!(info.expires_at_unix(), Some(NOW + 60));
        assert_eq!(info.issued_at_unix(), Some(NOW));
        assert_eq!(info.jwt_id(), Some("j"));
        assert_eq!(info.claim("username"), Some(&json!("alice")));
        assert_eq!(info.audience(), ["https://mcp.example.com/mcp"]);
    }

    #[test]
    fn scope_array_is_tolerated() {
        let mut scopes = ScopeSet::new();
        collect_scopes(Some(&json!(["a", "b", 3, "a"])), &mut scopes);
        assert_eq!(scopes.to_string(), "a b");
    }

    #[test]
    fn client_auth_debug_never_shows_the_secret() {
        let auth = ClientAuth::client_secret_post("rs", "hunter2");
        let printed = format!("{auth:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("client_secret_post"));
    }
}
