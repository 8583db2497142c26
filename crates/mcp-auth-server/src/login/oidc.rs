//! [`OidcLogin`]: sign users in at any OpenID Connect provider, from its issuer URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{Clock, Secret, SystemClock};
use mcp_auth_jwt::{
    HeaderPolicy, JwksLocation, JwsAlgorithm, JwsVerifier, KeySource, RemoteJwks, RemoteTiming,
    VerifyErrorKind,
};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::redirect::{Admission, admit, authorization_url, display_name};
use super::{Login, LoginFuture, RedirectLogin, User};
use crate::ConfigError;
use crate::upstream::http::{self, Client, TokenEndpoint};
use crate::upstream::{
    ClientAuthMethod, RefreshError, UpstreamClient, UpstreamError, UpstreamRequest, UpstreamSignIn,
    UpstreamTokens,
};

/// The default clock-skew leeway for the ID token's `exp` and `iat`.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The longest `sub` accepted (OpenID Connect Core §2: at most 255 ASCII characters).
const MAX_SUB: usize = 255;

/// Signs users in at an OpenID Connect provider (Google, Keycloak, Entra ID, Auth0, Okta, …).
///
/// From the issuer URL alone: the provider's `/.well-known/openid-configuration` is fetched on
/// the first sign-in (so a provider that is down when the server starts does not stop it; the
/// sign-in answers 503 until it is back) and its `issuer` must equal the configured one byte
/// for byte. Then, for each sign-in:
///
/// 1. authorization code flow with PKCE S256, `state` and `nonce`;
/// 2. the token request authenticates with `client_secret_basic` (default) or
///    `client_secret_post`;
/// 3. the ID token is verified: signature against the provider's JWK Set (fetched and cached
///    by `mcp-auth-jwt`'s [`RemoteJwks`]: one refetch per cool-down on an unknown `kid`, stale
///    keys through an outage, size caps), asymmetric algorithms only (no `alg: none`, no HMAC,
///    so no HMAC with a public key), `iss`, `aud` (must contain the client id), `azp` (when
///    present, or when `aud` has several entries, it must be the client id), `exp` and `iat`
///    with a leeway (default 60 s), `nonce`;
/// 4. claims missing from the ID token that the admission rules or the display name need are
///    read from the `userinfo_endpoint` (its `sub` must match);
/// 5. the admission rules, when set: [`allow_email_domains`](OidcLoginBuilder::allow_email_domains)
///    (only with `email_verified: true`), [`allow_subjects`](OidcLoginBuilder::allow_subjects),
///    [`require_claim_value`](OidcLoginBuilder::require_claim_value) (a group or role).
///
/// The user's subject is `{issuer}#{sub}`: stable (OpenID Connect `sub` never changes for a
/// user at a provider) and namespaced, so two providers' users never collide.
///
/// Every provider request has a total timeout (default 10 s) and a 256 KiB body cap, and
/// follows no redirect. [`OidcLogin`] also implements [`UpstreamClient`], so the
/// [`Vault`](crate::vault::Vault) refreshes the user's provider tokens through it.
///
/// # Example
///
/// ```
/// use mcp_auth_server::{AuthorizationServer, login::{OidcLogin, RedirectLogin}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let login = OidcLogin::builder("https://accounts.google.com", "1234.apps.googleusercontent.com")
///     .client_secret("GOCSPX-secret")
///     .provider_name("Google")
///     .allow_email_domains(["example.com"])
///     .authorization_param("access_type", "offline")
///     .build()?;
/// assert_eq!(login.upstream_id(), "https://accounts.google.com");
///
/// let server = AuthorizationServer::builder("https://mcp.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .login(login)
///     .build()
///     .await?;
/// // Register this at the provider:
/// assert_eq!(
///     server.upstream_redirect_uri().as_deref(),
///     Some("https://mcp.example.com/login/callback")
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct OidcLogin(Arc<Inner>);

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    method: Option<ClientAuthMethod>,
    scope: String,
    provider_name: String,
    extra_params: Vec<(String, String)>,
    rules: Admission,
    leeway: u64,
    http: Client,
    clock: Arc<dyn Clock>,
    jwks_timing: RemoteTiming,
    discovered: tokio::sync::OnceCell<Discovered>,
}

/// What discovery found.
struct Discovered {
    authorization_endpoint: url::Url,
    token: TokenEndpoint,
    userinfo_endpoint: Option<String>,
    jws: JwsVerifier,
}

impl fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcLogin")
            .field("issuer", &self.0.issuer)
            .field("client_id", &self.0.client_id)
            .field(
                "client_secret",
                &self.0.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("scope", &self.0.scope)
            .field("rules", &self.0.rules)
            .finish_non_exhaustive()
    }
}

/// Configures an [`OidcLogin`]; start with [`OidcLogin::builder`].
#[must_use]
pub struct OidcLoginBuilder {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    method: Option<ClientAuthMethod>,
    scopes: Vec<String>,
    provider_name: Option<String>,
    extra_params: Vec<(String, String)>,
    rules: Admission,
    leeway: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    jwks_timing: RemoteTiming,
}

impl fmt::Debug for OidcLoginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcLoginBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OidcLogin {
    /// Start configuring a login at the provider `issuer` (https; plain http only on
    /// loopback), as the client `client_id` registered there.
    pub fn builder(issuer: impl Into<String>, client_id: impl Into<String>) -> OidcLoginBuilder {
        OidcLoginBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            method: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            provider_name: None,
            extra_params: Vec::new(),
            rules: Admission::default(),
            leeway: DEFAULT_LEEWAY,
            timeout: http::DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock::default()),
            jwks_timing: RemoteTiming::default(),
        }
    }

    /// The provider's issuer.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// Fetch the provider's discovery document now (it is otherwise fetched on the first
    /// sign-in): call it at startup to fail fast or to warm up. A failure is not cached.
    ///
    /// # Errors
    /// [`UpstreamError::Unavailable`] when the provider cannot be reached,
    /// [`UpstreamError::Invalid`] when its document is unusable (another `issuer`, an endpoint
    /// that is not https).
    pub async fn discover(&self) -> Result<(), UpstreamError> {
        self.discovered().await.map(|_| ())
    }

    /// The provider's `userinfo_endpoint` (after discovery), if it has one.
    ///
    /// # Errors
    /// As [`discover`](Self::discover).
    pub async fn userinfo_endpoint(&self) -> Result<Option<String>, UpstreamError> {
        Ok(self.discovered().await?.userinfo_endpoint.clone())
    }

    /// Call the provider's user-info endpoint with a user's upstream access token (from the
    /// [`Vault`](crate::vault::Vault)), with the login's time and size bounds: what a tool that
    /// shows the user's upstream profile needs.
    ///
    /// # Errors
    /// [`UpstreamError::Unavailable`] (unreachable, 5xx, timeout), [`UpstreamError::Invalid`]
    /// (no user-info endpoint, the token refused, a body that is not a JSON object or too large).
    pub async fn user_info(
        &self,
        access_token: &Secret,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let Some(url) = self.userinfo_endpoint().await? else {
            return Err(UpstreamError::Invalid(
                "the provider has no userinfo_endpoint".into(),
            ));
        };
        self.0
            .http
            .get_json(&url, Some(access_token))
            .await
            .map_err(|f| f.into_upstream("user info"))
    }

    async fn discovered(&self) -> Result<&Discovered, UpstreamError> {
        self.0
            .discovered
            .get_or_try_init(|| discover(&self.0))
            .await
    }
}

impl OidcLoginBuilder {
    /// The client secret registered at the provider (none: a public client, which sends only
    /// `client_id` and relies on PKCE).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }

    /// How to authenticate at the token endpoint. Default: `client_secret_basic`, or
    /// `client_secret_post` when the provider's discovery document lists only that.
    pub fn client_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// The scopes asked of the provider (default `openid email profile`; `openid` is always
    /// added). Add `offline_access` (or Google's `access_type=offline` parameter) for refresh
    /// tokens.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The name the consent page shows ("you will sign in with …"); default: the issuer's host.
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider_name = Some(name.into());
        self
    }

    /// An extra parameter for the provider's authorization request (Google's
    /// `access_type=offline`, `prompt=consent`, Entra's `domain_hint`). The protocol's own
    /// parameters cannot be overridden.
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// Admit only users whose **verified** email (`email_verified: true`) is in one of these
    /// domains (case-insensitive, exact domain: `example.com` does not admit
    /// `mail.example.com`).
    pub fn allow_email_domains<I, T>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.rules
            .email_domains
            .extend(domains.into_iter().map(|d| d.into().to_ascii_lowercase()));
        self
    }

    /// Admit only these provider subjects (the ID token's `sub`, not namespaced).
    pub fn allow_subjects<I, T>(mut self, subjects: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.rules
            .subjects
            .extend(subjects.into_iter().map(Into::into));
        self
    }

    /// Admit only users whose claim `claim` (a string, or an array of strings such as `groups`
    /// or `roles`) holds `value`.
    pub fn require_claim_value(
        mut self,
        claim: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.rules.claim = Some((claim.into(), value.into()));
        self
    }

    /// Clock-skew leeway for `exp` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Total time one provider request may take (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timing of the provider's JWK Set cache (default [`RemoteTiming::default`]).
    pub fn jwks_timing(mut self, timing: RemoteTiming) -> Self {
        self.jwks_timing = timing;
        self
    }

    /// The clock (tests use [`ManualClock`](mcp_auth_core::ManualClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Check the settings. Nothing is fetched yet.
    ///
    /// # Errors
    /// [`ConfigError::InvalidIssuer`] for an issuer that is not https (or http on loopback) or
    /// has a query or fragment; [`ConfigError::Invalid`] for an empty client id or a leeway
    /// over 300 s.
    pub fn build(self) -> Result<OidcLogin, ConfigError> {
        let issuer = self.issuer;
        let url = mcp_auth_jwt::fetchable_url(&issuer)
            .map_err(|_| ConfigError::InvalidIssuer(issuer.clone()))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::InvalidIssuer(issuer));
        }
        if self.client_id.is_empty() {
            return Err(ConfigError::Invalid(
                "the upstream client id is empty".into(),
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(ConfigError::InvalidLifetime("ID token leeway"));
        }
        let mut scopes = vec!["openid".to_owned()];
        for s in self.scopes {
            if !s.is_empty() && !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let provider_name = self
            .provider_name
            .unwrap_or_else(|| url.host_str().unwrap_or("the identity provider").to_owned());
        Ok(OidcLogin(Arc::new(Inner {
            client_id: self.client_id,
            client_secret: self.client_secret,
            method: self.method,
            scope: scopes.join(" "),
            provider_name,
            extra_params: self.extra_params,
            rules: self.rules,
            leeway: self.leeway.as_secs(),
            http: Client::new(self.timeout)?,
            clock: self.clock,
            jwks_timing: self.jwks_timing,
            discovered: tokio::sync::OnceCell::new(),
            issuer,
        })))
    }
}

/// OpenID Connect Discovery 1.0 §4: `{issuer}/.well-known/openid-configuration`.
async fn discover(inner: &Inner) -> Result<Discovered, UpstreamError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        inner.issuer.trim_end_matches('/')
    );
    let doc = inner
        .http
        .get_json(&url, None)
        .await
        .map_err(|f| f.into_upstream("discovery"))?;
    let invalid = |why: &str| UpstreamError::Invalid(format!("discovery: {why}"));
    if doc.get("issuer").and_then(Value::as_str) != Some(inner.issuer.as_str()) {
        return Err(invalid("the document names another issuer"));
    }
    let endpoint = |name: &str| -> Result<url::Url, UpstreamError> {
        doc.get(name)
            .and_then(Value::as_str)
            .and_then(|u| mcp_auth_jwt::fetchable_url(u).ok())
            .ok_or_else(|| invalid(&format!("no usable {name}")))
    };
    let authorization_endpoint = endpoint("authorization_endpoint")?;
    let token_endpoint = endpoint("token_endpoint")?;
    let jwks_uri = endpoint("jwks_uri")?;
    let userinfo_endpoint = endpoint("userinfo_endpoint").ok().map(String::from);
    let listed = |name: &str, value: &str| {
        doc.get(name)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(value)))
    };
    let method = inner.method.unwrap_or(
        if doc.get("token_endpoint_auth_methods_supported").is_some()
            && !listed(
                "token_endpoint_auth_methods_supported",
                "client_secret_basic",
            )
            && listed(
                "token_endpoint_auth_methods_supported",
                "client_secret_post",
            )
        {
            ClientAuthMethod::ClientSecretPost
        } else {
            ClientAuthMethod::ClientSecretBasic
        },
    );
    // Asymmetric algorithms only: `none` and HMAC are never accepted for an ID token here.
    let mut algorithms: Vec<JwsAlgorithm> = doc
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|a| a.parse::<JwsAlgorithm>().ok())
                .filter(|a| a.is_asymmetric())
                .collect()
        })
        .unwrap_or_default();
    if algorithms.is_empty() {
        algorithms = JwsAlgorithm::ASYMMETRIC.to_vec();
    }
    let keys = RemoteJwks::new(
        JwksLocation::JwksUri(jwks_uri.to_string()),
        inner.jwks_timing,
        Arc::clone(&inner.clock),
    )
    .map_err(|e| invalid(&e.to_string()))?;
    Ok(Discovered {
        authorization_endpoint,
        token: TokenEndpoint {
            url: token_endpoint.to_string(),
            client_id: inner.client_id.clone(),
            client_secret: inner.client_secret.clone(),
            method,
        },
        userinfo_endpoint,
        jws: JwsVerifier::new(
            HeaderPolicy::new(algorithms, true),
            KeySource::Remote(keys),
            None,
        ),
    })
}

/// The ID token checks after the signature (OpenID Connect Core §3.1.3.7).
fn check_id_token(
    inner: &Inner,
    claims: &Map<String, Value>,
    nonce: &str,
    now: u64,
) -> Result<String, UpstreamError> {
    let invalid = |why: &str| UpstreamError::Invalid(format!("ID token: {why}"));
    if claims.get("iss").and_then(Value::as_str) != Some(inner.issuer.as_str()) {
        return Err(invalid("wrong issuer"));
    }
    let client_id = inner.client_id.as_str();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(invalid("not issued for this client (aud)"));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => {}
        Some(_) => return Err(invalid("issued to another party (azp)")),
        None if audiences.len() > 1 => return Err(invalid("several audiences and no azp")),
        None => {}
    }
    let leeway = inner.leeway;
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if now <= exp.saturating_add(leeway) => {}
        Some(_) => return Err(invalid("expired")),
        None => return Err(invalid("no exp")),
    }
    match claims.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= now.saturating_add(leeway) => {}
        Some(_) => return Err(invalid("issued in the future (iat)")),
        None => return Err(invalid("no iat")),
    }
    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_ok {
        return Err(invalid("wrong nonce"));
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() && sub.len() <= MAX_SUB => Ok(sub.to_owned()),
        _ => Err(invalid("no usable sub")),
    }
}

impl OidcLogin {
    async fn sign_in(
        &self,
        code: &str,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSignIn, UpstreamError> {
        let inner = &self.0;
        let discovered = self.discovered().await?;
        let now = inner.clock.unix_seconds();
        let (tokens, id_token) =
            http::exchange_code(&inner.http, &discovered.token, code, request, now).await?;
        let id_token = id_token
            .ok_or_else(|| UpstreamError::Invalid("the token response has no ID token".into()))?;
        let mut claims = match discovered.jws.verify(&id_token).await {
            Ok(claims) => claims,
            Err(e) if e.kind() == VerifyErrorKind::Unavailable => {
                return Err(UpstreamError::Unavailable(
                    "the provider's signing keys could not be fetched".into(),
                ));
            }
            Err(e) => {
                return Err(UpstreamError::Invalid(format!(
                    "ID token: {}",
                    match e.kind() {
                        VerifyErrorKind::UnknownKey => "signed with an unknown key",
                        VerifyErrorKind::Algorithm =>
                            "signed with an algorithm that is not accepted",
                        VerifyErrorKind::InvalidSignature => "the signature does not verify",
                        _ => "malformed",
                    }
                )));
            }
        };
        let sub = check_id_token(inner, &claims, request.nonce(), inner.clock.unix_seconds())?;
        let has_email = claims.contains_key("email") && claims.contains_key("email_verified");
        let needs_more = (!inner.rules.email_domains.is_empty() && !has_email)
            || inner
                .rules
                .claim
                .as_ref()
                .is_some_and(|(c, _)| !claims.contains_key(c))
            || display_name(&claims, "name").is_none();
        if needs_more && let Some(userinfo) = &discovered.userinfo_endpoint {
            match inner
                .http
                .get_json(userinfo, Some(&tokens.access_token))
                .await
            {
                Ok(info) if info.get("sub").and_then(Value::as_str) == Some(sub.as_str()) => {
                    for (k, v) in info {
                        claims.entry(k).or_insert(v);
                    }
                }
                Ok(_) => {
                    return Err(UpstreamError::Invalid(
                        "user info: the subject differs from the ID token's".into(),
                    ));
                }
                Err(f) => return Err(f.into_upstream("user info")),
            }
        }
        admit(&inner.rules, &sub, &claims)?;
        let mut user = User::new(format!("{}#{sub}", inner.issuer));
        if let Some(name) = display_name(&claims, "name") {
            user = user.with_display_name(name);
        }
        Ok(UpstreamSignIn::new(user, tokens))
    }
}

impl Login for OidcLogin {
    fn has_password_form(&self) -> bool {
        false
    }

    fn redirect(&self) -> Option<&dyn RedirectLogin> {
        Some(self)
    }
}

impl RedirectLogin for OidcLogin {
    fn provider_name(&self) -> &str {
        &self.0.provider_name
    }

    fn upstream_id(&self) -> &str {
        &self.0.issuer
    }

    fn upstream_scope(&self) -> &str {
        &self.0.scope
    }

    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<String, UpstreamError>> {
        Box::pin(async move {
            let discovered = self.discovered().await?;
            Ok(authorization_url(
                &discovered.authorization_endpoint,
                &self.0.client_id,
                &self.0.scope,
                request,
                true,
                &self.0.extra_params,
            ))
        })
    }

    fn finish<'a>(
        &'a self,
        code: &'a str,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<UpstreamSignIn, UpstreamError>> {
        Box::pin(self.sign_in(code, request))
    }
}

impl UpstreamClient for OidcLogin {
    fn upstream_id(&self) -> &str {
        &self.0.issuer
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
        Box::pin(async move {
            let discovered = self
                .discovered()
                .await
                .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
            http::refresh(
                &self.0.http,
                &discovered.token,
                refresh_token,
                self.0.clock.unix_seconds(),
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> OidcLogin {
        OidcLogin::builder("https://idp.example.com", "client-1")
            .build()
            .unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn id_token_claims_are_checked_one_by_one() {
        let l = login();
        let base = serde_json::json!({
            "iss": "https://idp.example.com", "aud": "client-1", "sub": "u1",
            "exp": 1000, "iat": 900, "nonce": "n"
        });
        let check = |patch: Value, now: u64| {
            let mut c = claims(base.clone());
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
            check_id_token(&l.0, &c, "n", now)
        };
        assert_eq!(check(serde_json::json!({}), 950).unwrap(), "u1");
        assert_eq!(
            check(serde_json::json!({"aud": ["client-1"]}), 950).unwrap(),
            "u1"
        );
        for (patch, why) in [
            (
                serde_json::json!({"iss": "https://idp.example.com/"}),
                "wrong issuer",
            ),
            (serde_json::json!({"aud": "client-2"}), "aud"),
            (serde_json::json!({"aud": ["client-1", "other"]}), "no azp"),
            (serde_json::json!({"azp": "other"}), "azp"),
            (serde_json::json!({"nonce": "m"}), "nonce"),
            (serde_json::json!({"nonce": null}), "nonce"),
            (serde_json::json!({"exp": null}), "no exp"),
            (serde_json::json!({"iat": 2000}), "future"),
            (serde_json::json!({"sub": ""}), "sub"),
        ] {
            let e = check(patch.clone(), 950).unwrap_err();
            assert!(e.to_string().contains(why), "{patch}: {e}");
        }
        assert!(
            check(
                serde_json::json!({"aud": ["client-1", "other"], "azp": "client-1"}),
                950
            )
            .is_ok()
        );
        // Leeway: 60 s past exp is fine, 61 s is not.
        assert!(check(serde_json::json!({}), 1060).is_ok());
        assert!(
            check(serde_json::json!({}), 1061)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
    }

    #[test]
    fn admission_rules() {
        let rules = Admission {
            email_domains: vec!["example.com".into()],
            subjects: Vec::new(),
            claim: Some(("groups".into(), "admins".into())),
        };
        let ok = claims(
            serde_json::json!({"email": "a@Example.COM", "email_verified": true, "groups": ["x", "admins"]}),
        );
        assert!(admit(&rules, "s", &ok).is_ok());
        let unverified = claims(
            serde_json::json!({"email": "a@example.com", "email_verified": false, "groups": ["admins"]}),
        );
        assert!(
            matches!(admit(&rules, "s", &unverified), Err(UpstreamError::Refused(m)) if m.contains("verified"))
        );
        let other = claims(
            serde_json::json!({"email": "a@mail.example.com", "email_verified": true, "groups": ["admins"]}),
        );
        assert!(
            matches!(admit(&rules, "s", &other), Err(UpstreamError::Refused(m)) if m.contains("example.com"))
        );
        let no_group = claims(
            serde_json::json!({"email": "a@example.com", "email_verified": "true", "groups": "users"}),
        );
        assert!(
            matches!(admit(&rules, "s", &no_group), Err(UpstreamError::Refused(m)) if m.contains("admins"))
        );
        let subjects = Admission {
            subjects: vec!["s1".into()],
            ..Admission::default()
        };
        assert!(admit(&subjects, "s1", &Map::new()).is_ok());
        assert!(admit(&subjects, "s2", &Map::new()).is_err());
    }

    #[test]
    fn config_is_checked_and_secrets_are_not_printed() {
        assert!(
            OidcLogin::builder("http://idp.example.com", "c")
                .build()
                .is_err()
        );
        assert!(
            OidcLogin::builder("https://idp.example.com?x=1", "c")
                .build()
                .is_err()
        );
        assert!(
            OidcLogin::builder("https://idp.example.com", "")
                .build()
                .is_err()
        );
        assert!(
            OidcLogin::builder("http://127.0.0.1:9", "c")
                .build()
                .is_ok()
        );
        let l = OidcLogin::builder("https://idp.example.com", "c")
            .client_secret("top-secret")
            .scopes(["email"])
            .build()
            .unwrap();
        assert!(!format!("{l:?}").contains("top-secret"));
        assert_eq!(l.upstream_scope(), "openid email");
        assert_eq!(l.provider_name(), "idp.example.com");
    }

    #[test]
    fn authorization_url_carries_pkce_state_nonce_and_never_overrides_ours() {
        let request = UpstreamRequest::generate("https://as.example/login/callback").unwrap();
        let base = url::Url::parse("https://idp.example.com/auth?tenant=t").unwrap();
        let extra = vec![
            ("access_type".to_owned(), "offline".to_owned()),
            ("state".to_owned(), "evil".to_owned()),
        ];
        let url = url::Url::parse(&authorization_url(
            &base, "c", "openid", &request, true, &extra,
        ))
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "t");
        assert_eq!(q["state"], request.state());
        assert_eq!(q["nonce"], request.nonce());
        assert_eq!(q["code_challenge"], request.code_challenge());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(url.query_pairs().filter(|(k, _)| k == "state").count(), 1);
    }
}
