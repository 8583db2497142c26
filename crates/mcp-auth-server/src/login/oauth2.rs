//! [`OAuth2Login`]: sign users in at a plain OAuth 2.0 provider (GitHub-style, no OpenID
//! Connect): the user is whoever the provider's user-info endpoint says the access token
//! belongs to.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{Clock, Secret, SystemClock};
use serde_json::Value;

use super::redirect::{Admission, admit, authorization_url, display_name};
use super::{Login, LoginFuture, RedirectLogin, User};
use crate::ConfigError;
use crate::upstream::http::{self, Client, TokenEndpoint};
use crate::upstream::{
    ClientAuthMethod, RefreshError, UpstreamClient, UpstreamError, UpstreamRequest, UpstreamSignIn,
    UpstreamTokens,
};

/// Signs users in at an OAuth 2.0 provider without OpenID Connect (GitHub, and APIs like it).
///
/// Configured with the provider's authorization, token and user-info URLs and the JSON fields
/// of the user-info response that hold the user's id (a string or an integer; default `id`)
/// and display name (default `name`, then `login`). Each sign-in: authorization code with PKCE
/// S256 and `state`, a token request (`client_secret_basic` by default,
/// [`client_secret_post`](ClientAuthMethod::ClientSecretPost) on request), then
/// `GET user-info` with the new access token. The subject is `{upstream_id}#{id}`, where
/// `upstream_id` defaults to the authorization URL's origin (`https://github.com`).
///
/// There is no ID token, so the user is exactly who the provider's API says; use
/// [`allow_subjects`](OAuth2LoginBuilder::allow_subjects) to limit who may sign in. Requests
/// are bounded like [`OidcLogin`](super::OidcLogin)'s. It implements [`UpstreamClient`] for
/// providers that issue refresh tokens.
///
/// # Example
///
/// GitHub (an OAuth App; its callback URL is the server's
/// [`upstream_redirect_uri`](crate::AuthorizationServer::upstream_redirect_uri)):
///
/// ```
/// use mcp_auth_server::login::{OAuth2Login, RedirectLogin};
///
/// let github = OAuth2Login::builder(
///     "https://github.com/login/oauth/authorize",
///     "https://github.com/login/oauth/access_token",
///     "https://api.github.com/user",
///     "Iv1.0123456789abcdef",
/// )
/// .client_secret("github-client-secret")
/// .provider_name("GitHub")
/// .scopes(["read:user"])
/// .user_id_field("id")
/// .display_name_field("login")
/// .build()?;
/// assert_eq!(github.upstream_id(), "https://github.com");
/// # Ok::<(), mcp_auth_server::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct OAuth2Login(Arc<Inner>);

struct Inner {
    upstream_id: String,
    authorization_endpoint: url::Url,
    token: TokenEndpoint,
    userinfo_endpoint: String,
    scope: String,
    provider_name: String,
    id_field: String,
    name_field: String,
    extra_params: Vec<(String, String)>,
    rules: Admission,
    http: Client,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for OAuth2Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Login")
            .field("upstream_id", &self.0.upstream_id)
            .field("token", &self.0.token)
            .field("scope", &self.0.scope)
            .finish_non_exhaustive()
    }
}

/// Configures an [`OAuth2Login`]; start with [`OAuth2Login::builder`].
#[must_use]
pub struct OAuth2LoginBuilder {
    authorization_url: String,
    token_url: String,
    userinfo_url: String,
    client_id: String,
    client_secret: Option<Secret>,
    method: ClientAuthMethod,
    scopes: Vec<String>,
    upstream_id: Option<String>,
    provider_name: Option<String>,
    id_field: String,
    name_field: String,
    extra_params: Vec<(String, String)>,
    rules: Admission,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for OAuth2LoginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2LoginBuilder")
            .field("authorization_url", &self.authorization_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OAuth2Login {
    /// Start configuring a login with the provider's authorization, token and user-info URLs
    /// (https; plain http only on loopback) and the client id registered there.
    pub fn builder(
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
        userinfo_url: impl Into<String>,
        client_id: impl Into<String>,
    ) -> OAuth2LoginBuilder {
        OAuth2LoginBuilder {
            authorization_url: authorization_url.into(),
            token_url: token_url.into(),
            userinfo_url: userinfo_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            method: ClientAuthMethod::ClientSecretBasic,
            scopes: Vec::new(),
            upstream_id: None,
            provider_name: None,
            id_field: "id".into(),
            name_field: "name".into(),
            extra_params: Vec::new(),
            rules: Admission::default(),
            timeout: http::DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock::default()),
        }
    }
}

impl OAuth2LoginBuilder {
    /// The client secret registered at the provider.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }

    /// How to authenticate at the token endpoint (default `client_secret_basic`).
    pub fn client_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = method;
        self
    }

    /// The scopes asked of the provider (default: none, the provider's default).
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The provider's stable identifier: the prefix of subjects and the vault key (default: the
    /// authorization URL's origin).
    pub fn upstream_id(mut self, id: impl Into<String>) -> Self {
        self.upstream_id = Some(id.into());
        self
    }

    /// The name the consent page shows (default: the authorization URL's host).
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider_name = Some(name.into());
        self
    }

    /// The user-info field holding the user's id, a string or an integer (default `id`).
    pub fn user_id_field(mut self, field: impl Into<String>) -> Self {
        self.id_field = field.into();
        self
    }

    /// The user-info field holding the display name (default `name`; `login` and `email` are
    /// tried after it).
    pub fn display_name_field(mut self, field: impl Into<String>) -> Self {
        self.name_field = field.into();
        self
    }

    /// An extra parameter for the authorization request (the protocol's own cannot be
    /// overridden).
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// Admit only these user ids (as the user-info field holds them, integers in decimal).
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

    /// Total time one provider request may take (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock (for the tokens' expiry).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a URL that is not https (or http on loopback), an empty
    /// client id or an empty field name.
    pub fn build(self) -> Result<OAuth2Login, ConfigError> {
        let url = |raw: &str, what: &str| {
            mcp_auth_jwt::fetchable_url(raw).map_err(|_| {
                ConfigError::Invalid(
                    format!("the upstream {what} URL must be https (http only on loopback)").into(),
                )
            })
        };
        let authorization_endpoint = url(&self.authorization_url, "authorization")?;
        let token = url(&self.token_url, "token")?;
        let userinfo = url(&self.userinfo_url, "user-info")?;
        if self.client_id.is_empty() || self.id_field.is_empty() || self.name_field.is_empty() {
            return Err(ConfigError::Invalid(
                "the upstream client id and field names must not be empty".into(),
            ));
        }
        let upstream_id = self
            .upstream_id
            .unwrap_or_else(|| authorization_endpoint.origin().ascii_serialization());
        let provider_name = self.provider_name.unwrap_or_else(|| {
            authorization_endpoint
                .host_str()
                .unwrap_or("the sign-in provider")
                .to_owned()
        });
        Ok(OAuth2Login(Arc::new(Inner {
            upstream_id,
            authorization_endpoint,
            token: TokenEndpoint {
                url: token.into(),
                client_id: self.client_id,
                client_secret: self.client_secret,
                method: self.method,
            },
            userinfo_endpoint: userinfo.into(),
            scope: self.scopes.join(" "),
            provider_name,
            id_field: self.id_field,
            name_field: self.name_field,
            extra_params: self.extra_params,
            rules: self.rules,
            http: Client::new(self.timeout)?,
            clock: self.clock,
        })))
    }
}

impl OAuth2Login {
    /// Call the provider's user-info URL with a user's upstream access token (from the
    /// [`Vault`](crate::vault::Vault)), with the login's time and size bounds.
    ///
    /// # Errors
    /// [`UpstreamError::Unavailable`] (unreachable, 5xx, timeout), [`UpstreamError::Invalid`]
    /// (the token refused, a body that is not a JSON object or too large).
    pub async fn user_info(
        &self,
        access_token: &Secret,
    ) -> Result<serde_json::Map<String, Value>, UpstreamError> {
        self.0
            .http
            .get_json(&self.0.userinfo_endpoint, Some(access_token))
            .await
            .map_err(|f| f.into_upstream("user info"))
    }

    async fn sign_in(
        &self,
        code: &str,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSignIn, UpstreamError> {
        let inner = &self.0;
        let now = inner.clock.unix_seconds();
        let (tokens, _) =
            http::exchange_code(&inner.http, &inner.token, code, request, now).await?;
        let info = inner
            .http
            .get_json(&inner.userinfo_endpoint, Some(&tokens.access_token))
            .await
            .map_err(|f| f.into_upstream("user info"))?;
        let id = match info.get(&inner.id_field) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            _ => {
                return Err(UpstreamError::Invalid(format!(
                    "user info: no usable {} field",
                    inner.id_field
                )));
            }
        };
        admit(&inner.rules, &id, &info)?;
        let mut user = User::new(format!("{}#{id}", inner.upstream_id));
        if let Some(name) = display_name(&info, &inner.name_field) {
            user = user.with_display_name(name);
        }
        Ok(UpstreamSignIn::new(user, tokens))
    }
}

impl Login for OAuth2Login {
    fn has_password_form(&self) -> bool {
        false
    }

    fn redirect(&self) -> Option<&dyn RedirectLogin> {
        Some(self)
    }
}

impl RedirectLogin for OAuth2Login {
    fn provider_name(&self) -> &str {
        &self.0.provider_name
    }

    fn upstream_id(&self) -> &str {
        &self.0.upstream_id
    }

    fn upstream_scope(&self) -> &str {
        &self.0.scope
    }

    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<String, UpstreamError>> {
        let url = authorization_url(
            &self.0.authorization_endpoint,
            &self.0.token.client_id,
            &self.0.scope,
            request,
            false,
            &self.0.extra_params,
        );
        Box::pin(async move { Ok(url) })
    }

    fn finish<'a>(
        &'a self,
        code: &'a str,
        request: &'a UpstreamRequest,
    ) -> LoginFuture<'a, Result<UpstreamSignIn, UpstreamError>> {
        Box::pin(self.sign_in(code, request))
    }
}

impl UpstreamClient for OAuth2Login {
    fn upstream_id(&self) -> &str {
        &self.0.upstream_id
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> LoginFuture<'a, Result<UpstreamTokens, RefreshError>> {
        Box::pin(http::refresh(
            &self.0.http,
            &self.0.token,
            refresh_token,
            self.0.clock.unix_seconds(),
        ))
    }
}
