//! The manager's flows: load, refresh, authorize, register, step up.

use std::{
    sync::{Arc, PoisonError},
    time::{Duration, SystemTime},
};

use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderMap, header::WWW_AUTHENTICATE};
use mcp_auth_core::{
    OFFLINE_ACCESS, ScopeSet, Secret,
    challenge::{BearerChallenge, parse},
    error::{ErrorCode, ErrorResponse},
    is_loopback_host,
    metadata::ClientInformation,
    pkce::{CodeChallenge, CodeVerifier, S256},
};
use serde_json::Value;

use super::TokenManager;
use crate::{
    authorize::LoopbackRedirect,
    discovery::{Discoverer, Discovery, checked},
    dpop::{self, Binding, NonceHeader, ProofKey},
    error::{AuthError, AuthErrorKind},
    registration::TokenEndpointAuthMethod,
    store::{RegistrationKind, StoredClient, StoredTokens},
    token::AccessToken,
};

/// Which scopes an authorization asks for.
pub(super) enum Scopes {
    /// The selection strategy (SPEC C-20): the challenge's `scope`, else the PRM's
    /// `scopes_supported`, else none.
    Select,
    /// Exactly these.
    Exactly(ScopeSet),
    /// Step-up: what the selection strategy gives, plus what was granted before (SPEC C-29).
    StepUp(ScopeSet),
}

/// The first `Bearer` challenge among a response's `WWW-Authenticate` headers; for a server that
/// challenges with `DPoP` only (RFC 9449 §7.1), its `DPoP` challenge read the same way
/// (`resource_metadata`, `scope`, `error`).
pub(crate) fn bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse(v).ok())
        .find_map(|challenges| BearerChallenge::find(&challenges))
        .or_else(|| dpop::dpop_as_bearer(headers))
}

/// A successful token response.
struct Grant {
    access_token: Secret,
    /// `token_type` `DPoP`: the access token is bound to the proof key.
    dpop: bool,
    expires_in: Option<u64>,
    refresh_token: Option<Secret>,
    scope: Option<ScopeSet>,
}

fn random_state() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| {
        AuthError::new(AuthErrorKind::Protocol).with_detail("the random source failed")
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// OIDC Dynamic Client Registration's `application_type` for a redirect URI (SEP-837, SPEC-2026
/// N-11): `native` for a loopback or custom-scheme redirect, `web` for an https one.
fn application_type(redirect_uri: &str) -> &'static str {
    match url::Url::parse(redirect_uri) {
        Ok(url) if url.scheme() == "https" && !url.host_str().is_some_and(is_loopback_host) => {
            "web"
        }
        _ => "native",
    }
}

fn same_token(tokens: &StoredTokens, value: Option<&str>) -> bool {
    value.is_some_and(|v| tokens.access_token.expose() == v)
}

impl TokenManager {
    fn unix_now(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The token ready to send, with its DPoP key when it is DPoP-bound.
    fn to_access(&self, tokens: &StoredTokens) -> AccessToken {
        AccessToken::with_details(
            tokens.access_token.clone(),
            tokens
                .expires_at
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            tokens.scope.clone(),
        )
        .with_binding(self.binding_of(tokens))
    }

    /// A stored DPoP key, parsed once per record.
    fn proof_key(&self, stored: &Secret) -> Result<ProofKey, AuthError> {
        let mut cache = self
            .state
            .dpop_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((known, key)) = cache.as_ref()
            && known == stored
        {
            return Ok(key.clone());
        }
        let key = ProofKey::from_stored(stored)?;
        *cache = Some((stored.clone(), key.clone()));
        Ok(key)
    }

    /// What a DPoP-bound token is presented with; `None` for a bearer token, or for a DPoP-bound
    /// one whose key is missing or unreadable (such a token is not [`usable`](Self::usable)).
    fn binding_of(&self, tokens: &StoredTokens) -> Option<Binding> {
        if !tokens.is_dpop() {
            return None;
        }
        let key = self.proof_key(tokens.dpop_key.as_ref()?).ok()?;
        Some(Binding {
            key,
            nonces: Arc::clone(&self.shared.nonces),
            clock: Arc::clone(&self.shared.clock),
        })
    }

    /// Whether DPoP is used with `found`'s authorization server: compiled in, not turned off,
    /// and `ES256` among the metadata's `dpop_signing_alg_values_supported`.
    pub(super) fn dpop_offered(&self, found: &Discovery) -> bool {
        cfg!(feature = "dpop")
            && self.shared.config.dpop
            && found
                .authorization_server_metadata()
                .extra
                .get("dpop_signing_alg_values_supported")
                .and_then(Value::as_array)
                .is_some_and(|algs| algs.iter().any(|a| a.as_str() == Some(dpop::ALGORITHM)))
    }

    /// The DPoP key for a new grant from `found`'s authorization server: `None` when DPoP is not
    /// [offered](Self::dpop_offered); else the key stored with this principal's tokens, or a new
    /// one (kept with the tokens the grant brings).
    async fn grant_key(&self, found: &Discovery) -> Result<Option<ProofKey>, AuthError> {
        if !self.dpop_offered(found) {
            return Ok(None);
        }
        let stored = match self.current_tokens() {
            Some(current) => current.dpop_key.clone(),
            None => self
                .shared
                .store
                .load_tokens(&self.state.key)
                .await?
                .and_then(|t| t.dpop_key),
        };
        if let Some(stored) = stored
            && let Ok(key) = self.proof_key(&stored)
        {
            return Ok(Some(key));
        }
        event!(debug, "generating a DPoP key");
        ProofKey::generate().map(Some)
    }

    /// Whether a token is valid now with the refresh buffer to spare. The buffer is at most half
    /// the token's lifetime, so a token shorter-lived than the buffer is not refreshed each call.
    /// A DPoP-bound token whose key is gone is not usable.
    fn usable(&self, tokens: &StoredTokens) -> bool {
        if tokens.is_dpop() && self.binding_of(tokens).is_none() {
            return false;
        }
        let Some(expires_at) = tokens.expires_at else {
            return true;
        };
        let mut buffer = self.shared.config.refresh_buffer.as_secs();
        if let Some(obtained_at) = tokens.obtained_at {
            buffer = buffer.min(expires_at.saturating_sub(obtained_at) / 2);
        }
        expires_at > self.unix_now().saturating_add(buffer)
    }

    fn current_tokens(&self) -> Option<Arc<StoredTokens>> {
        self.state
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .clone()
    }

    pub(super) fn set_current(&self, tokens: Option<StoredTokens>) {
        let mut current = self
            .state
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        current.loaded = true;
        current.tokens = tokens.map(Arc::new);
    }

    /// The in-memory token, if loaded and usable. No lock held across an await.
    pub(super) fn memory_token(&self) -> Option<AccessToken> {
        let current = self
            .state
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !current.loaded {
            return None;
        }
        current
            .tokens
            .as_deref()
            .filter(|t| self.usable(t))
            .map(|t| self.to_access(t))
    }

    /// Under the flight lock: a usable token that is not `rejected`, from memory, the store or a
    /// refresh; `None` when only an authorization can help.
    pub(super) async fn usable_locked(
        &self,
        rejected: Option<&str>,
    ) -> Result<Option<AccessToken>, AuthError> {
        if let Some(current) = self.current_tokens()
            && self.usable(&current)
            && !same_token(&current, rejected)
        {
            return Ok(Some(self.to_access(&current)));
        }
        // Slow path: read the store again (another process may have stored a token).
        let stored = self.shared.store.load_tokens(&self.state.key).await?;
        let Some(stored) = stored else {
            self.set_current(None);
            return Ok(None);
        };
        if self.usable(&stored) && !same_token(&stored, rejected) {
            let token = self.to_access(&stored);
            self.set_current(Some(stored));
            return Ok(Some(token));
        }
        let has_refresh = stored.refresh_token.is_some();
        self.set_current(Some(stored));
        if !has_refresh {
            return Ok(None);
        }
        self.refresh_locked(rejected).await
    }

    /// Refreshes under the store lock, adopting a token another process stored meanwhile.
    async fn refresh_locked(
        &self,
        rejected: Option<&str>,
    ) -> Result<Option<AccessToken>, AuthError> {
        let store = &self.shared.store;
        let key = &self.state.key;
        let _lock = store.lock(key).await?;
        let Some(record) = store.load_tokens(key).await? else {
            self.set_current(None);
            return Ok(None);
        };
        if self.usable(&record) && !same_token(&record, rejected) {
            event!(
                debug,
                "adopted a token stored by another manager or process"
            );
            let token = self.to_access(&record);
            self.set_current(Some(record));
            return Ok(Some(token));
        }
        let Some(refresh_token) = record.refresh_token.clone() else {
            self.set_current(Some(record));
            return Ok(None);
        };
        let client = self.client_for_refresh(&record).await?;
        // A public client's refresh token is bound to the DPoP key (RFC 9449 §5): the refresh
        // carries a proof with the same key whenever the record has one.
        let proof_key = match &record.dpop_key {
            Some(stored) if cfg!(feature = "dpop") && self.shared.config.dpop => {
                Some(self.proof_key(stored)?)
            }
            _ => None,
        };
        let retry = self.shared.config.retry;
        let mut attempt = 0;
        let result = loop {
            let form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh_token.expose().to_owned()),
                ("resource", record.resource.clone()),
            ];
            let result = self
                .token_request(&record.token_endpoint, form, &client, proof_key.as_ref())
                .await;
            attempt += 1;
            match result {
                Err(e) if e.is_transient() && attempt < retry.max_attempts() => {
                    event!(debug, attempt, "token refresh failed transiently; retrying");
                    tokio::time::sleep(retry.backoff(attempt - 1)).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(grant) => {
                let mut updated = record;
                updated.access_token = grant.access_token;
                updated.token_type = grant.dpop.then(|| dpop::TOKEN_TYPE_DPOP.to_owned());
                let now = self.unix_now();
                updated.expires_at = grant.expires_in.map(|s| now.saturating_add(s));
                updated.obtained_at = Some(now);
                if let Some(new_refresh) = grant.refresh_token {
                    // Rotation: the old refresh token is discarded (SPEC C-24).
                    updated.refresh_token = Some(new_refresh);
                }
                if let Some(scope) = grant.scope {
                    updated.scope = scope;
                }
                store.save_tokens(key, &updated).await?;
                let token = self.to_access(&updated);
                self.set_current(Some(updated));
                event!(info, client_id = %client.client_id, "access token refreshed");
                Ok(Some(token))
            }
            Err(e) if e.is_rejected() => {
                if e.oauth_error() == Some(&ErrorCode::InvalidGrant) {
                    // Another process sharing the store (without sharing its lock) may have
                    // refreshed with the same refresh token and stored the successor: read the
                    // store once more before giving up on the grant.
                    if let Some(adopted) = self.adopt_after_invalid_grant(&refresh_token).await? {
                        return Ok(adopted);
                    }
                }
                event!(
                    info,
                    error = ?e.oauth_error(),
                    "refresh rejected by the authorization server; authorization is needed"
                );
                store.remove_tokens(key).await?;
                if e.oauth_error() == Some(&ErrorCode::InvalidClient)
                    && client.kind == RegistrationKind::Dynamic
                {
                    store.remove_client(&client.issuer).await?;
                }
                self.set_current(None);
                Ok(None)
            }
            Err(e) => {
                event!(warn, error = %e, "token refresh failed; the refresh token is kept");
                Err(e)
            }
        }
    }

    /// After an `invalid_grant` for `sent`: the store read once more. `Some(Some(token))` adopts
    /// a usable token another process stored; `Some(None)` leaves a record another process
    /// replaced in place (its grant is not ours to discard) and asks for an authorization; `None`
    /// means the store still holds the rejected refresh token.
    async fn adopt_after_invalid_grant(
        &self,
        sent: &Secret,
    ) -> Result<Option<Option<AccessToken>>, AuthError> {
        let Some(again) = self.shared.store.load_tokens(&self.state.key).await? else {
            self.set_current(None);
            return Ok(Some(None));
        };
        if again
            .refresh_token
            .as_ref()
            .is_some_and(|r| r.expose() == sent.expose())
        {
            return Ok(None);
        }
        if self.usable(&again) {
            event!(
                info,
                "refresh rejected (invalid_grant) but another process had refreshed; adopted its token"
            );
            let token = self.to_access(&again);
            self.set_current(Some(again));
            return Ok(Some(Some(token)));
        }
        self.set_current(Some(again));
        Ok(Some(None))
    }

    /// The client that obtained `record`, with its secret and method.
    async fn client_for_refresh(&self, record: &StoredTokens) -> Result<StoredClient, AuthError> {
        if let Some(client) = self
            .preregistered(&record.issuer)
            .filter(|c| c.client_id == record.client_id)
        {
            return Ok(client);
        }
        if let Some(client) = self
            .shared
            .store
            .load_client(&record.issuer)
            .await?
            .filter(|c| c.client_id == record.client_id)
        {
            return Ok(client);
        }
        // A Client ID Metadata Document client (public) or a registration that was forgotten.
        Ok(StoredClient::new(
            record.issuer.clone(),
            RegistrationKind::MetadataDocument,
            record.client_id.clone(),
        ))
    }

    /// Pre-registered credentials for `issuer` (specific first, then for any issuer).
    fn preregistered(&self, issuer: &str) -> Option<StoredClient> {
        let creds = &self.shared.config.credentials;
        let found = creds
            .iter()
            .find(|c| c.issuer.as_deref() == Some(issuer))
            .or_else(|| creds.iter().find(|c| c.issuer.is_none()))?;
        let mut client = StoredClient::new(
            issuer,
            RegistrationKind::PreRegistered,
            found.client_id.clone(),
        );
        client.token_endpoint_auth_method = found.auth_method();
        client.client_secret = found.client_secret.clone();
        Some(client)
    }

    /// The discovery made earlier, or a new one. `force` discovers again (re-fetching the PRM at
    /// the same URL, SPEC C-8).
    pub(super) async fn discovery(
        &self,
        challenge_url: Option<&str>,
        force: bool,
    ) -> Result<Arc<Discovery>, AuthError> {
        let mut cached = self.shared.discovery.lock().await;
        if let Some(found) = cached.as_ref() {
            let same_url =
                challenge_url.is_none_or(|u| found.protected_resource_metadata_url() == Some(u));
            if !force && same_url {
                return Ok(Arc::clone(found));
            }
        }
        let previous_url = cached
            .as_ref()
            .and_then(|d| d.protected_resource_metadata_url().map(str::to_owned));
        let url = challenge_url.map(str::to_owned).or(previous_url);
        let config = &self.shared.config;
        let preferred = |issuer: &str| {
            config
                .credentials
                .iter()
                .any(|c| c.issuer.as_deref() == Some(issuer))
        };
        let found = Discoverer {
            http: &self.shared.http,
            policy: config.policy,
            resource: &config.resource,
            preferred: &preferred,
            assume_s256: &config.assume_s256,
        }
        .discover(url.as_deref())
        .await?;
        let found = Arc::new(found);
        *cached = Some(Arc::clone(&found));
        Ok(found)
    }

    fn count_attempt(&self, operation: &str) -> Result<(), AuthError> {
        let mut attempts = self
            .state
            .attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = attempts.entry(operation.to_owned()).or_insert(0);
        if *count >= self.shared.config.max_authorization_attempts {
            event!(
                warn,
                operation,
                "authorization attempt limit reached for this operation"
            );
            return Err(AuthError::new(AuthErrorKind::StepUpLimit));
        }
        *count += 1;
        Ok(())
    }

    /// Under the flight lock: handles a 401.
    pub(super) async fn on_unauthorized_locked(
        &self,
        challenge: Option<&BearerChallenge>,
        sent: Option<&AccessToken>,
        operation: &str,
    ) -> Result<AccessToken, AuthError> {
        let sent = sent.map(AccessToken::expose);
        if let Some(current) = self.current_tokens()
            && self.usable(&current)
            && !same_token(&current, sent)
        {
            return Ok(self.to_access(&current));
        }
        let prm_url = challenge.and_then(BearerChallenge::resource_metadata_url);
        if prm_url.is_some() || sent.is_some() {
            // Follow the challenge, and notice a server that moved to another authorization
            // server. A refusal (metadata naming another resource or issuer, no S256, an
            // insecure URL) is final; other failures are left to the authorization below.
            match self.discovery(prm_url, sent.is_some()).await {
                Ok(found) => self.drop_foreign_tokens(&found).await?,
                Err(e)
                    if matches!(
                        e.kind(),
                        crate::AuthErrorKind::ResourceMismatch
                            | crate::AuthErrorKind::IssuerMismatch
                            | crate::AuthErrorKind::PkceUnsupported
                            | crate::AuthErrorKind::InsecureUrl
                    ) =>
                {
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        if let Some(token) = self.usable_locked(sent).await? {
            return Ok(token);
        }
        self.authorize_locked(challenge, Scopes::Select, Some(operation))
            .await
    }

    /// Drops stored tokens minted by another authorization server or for another `resource`
    /// than the current discovery names (SPEC C-27).
    async fn drop_foreign_tokens(&self, found: &Discovery) -> Result<(), AuthError> {
        let stored = match self.current_tokens() {
            Some(t) => Some((*t).clone()),
            None => self.shared.store.load_tokens(&self.state.key).await?,
        };
        if let Some(tokens) = stored
            && (tokens.issuer != found.issuer() || tokens.resource != found.resource())
        {
            event!(
                info,
                "the MCP server now names another authorization server; its old tokens are dropped"
            );
            self.shared.store.remove_tokens(&self.state.key).await?;
            self.set_current(None);
        }
        Ok(())
    }

    /// A 401 that accepts DPoP-bound tokens only (a `DPoP` challenge and no `Bearer` one) while
    /// no DPoP-bound token was sent: fine when the authorization server issues them (the next
    /// grant will be DPoP-bound), else a clear [`Dpop`](AuthErrorKind::Dpop) error instead of an
    /// authorization whose token the server would refuse.
    pub(super) async fn require_dpop(
        &self,
        challenge: Option<&BearerChallenge>,
    ) -> Result<(), AuthError> {
        let found = self
            .discovery(
                challenge.and_then(BearerChallenge::resource_metadata_url),
                false,
            )
            .await?;
        if self.dpop_offered(&found) {
            return Ok(());
        }
        let detail = if !cfg!(feature = "dpop") {
            "the MCP server accepts DPoP-bound tokens only, and DPoP support is not compiled in (feature dpop)"
        } else if !self.shared.config.dpop {
            "the MCP server accepts DPoP-bound tokens only, and DPoP is turned off"
        } else {
            "the MCP server accepts DPoP-bound tokens only, and its authorization server does not advertise DPoP with ES256 (dpop_signing_alg_values_supported)"
        };
        event!(warn, issuer = %found.issuer(), "{detail}");
        Err(dpop::error(detail))
    }

    /// A resource server's 401 `use_dpop_nonce` (RFC 9449 §9): keeps its `DPoP-Nonce` for the
    /// retry. When the response's headers did not reach us (rmcp's client keeps only
    /// `WWW-Authenticate`), asks the server once with an empty POST carrying `token` and a proof,
    /// and takes the nonce from that answer.
    pub(crate) async fn take_resource_nonce(
        &self,
        url: &str,
        headers: &HeaderMap,
        token: &AccessToken,
    ) -> Result<(), AuthError> {
        let malformed =
            || dpop::error("the MCP server sent a malformed DPoP-Nonce").with_status(401);
        match dpop::nonce_header(headers) {
            NonceHeader::Valid(nonce) => {
                self.shared.nonces.set(url, nonce);
                return Ok(());
            }
            NonceHeader::Malformed => return Err(malformed()),
            NonceHeader::Absent => {}
        }
        let checked_url = checked(self.shared.config.policy, url, "the MCP server")?;
        let proof = token
            .dpop_proof("POST", checked_url.as_str())?
            .ok_or_else(|| dpop::error("a nonce was asked for a token that is not DPoP-bound"))?;
        event!(
            debug,
            "learning the MCP server's DPoP nonce with an empty request"
        );
        let response = self
            .shared
            .http
            .post_probe(&checked_url, token.authorization_header()?, proof)
            .await?;
        match dpop::nonce_header(&response.headers) {
            NonceHeader::Valid(nonce) => {
                self.shared.nonces.set(url, nonce);
                Ok(())
            }
            NonceHeader::Malformed => Err(malformed()),
            NonceHeader::Absent => Err(dpop::error(
                "the MCP server asked for a DPoP nonce without sending one",
            )
            .with_status(401)),
        }
    }

    /// Under the flight lock: handles a 403 `insufficient_scope`.
    pub(super) async fn on_insufficient_scope_locked(
        &self,
        challenge: Option<&BearerChallenge>,
        sent: Option<&AccessToken>,
        operation: &str,
    ) -> Result<AccessToken, AuthError> {
        let challenge = challenge.ok_or_else(|| {
            AuthError::new(AuthErrorKind::Protocol)
                .with_detail("the 403 response has no Bearer challenge")
        })?;
        let required = challenge.scopes();
        let current = self.current_tokens();
        if let (Some(current), Some(required)) = (&current, &required)
            && self.usable(current)
            && !same_token(current, sent.map(AccessToken::expose))
            && current.scope.contains_all(required)
        {
            return Ok(self.to_access(current));
        }
        let mut granted = current.map(|t| t.scope.clone()).unwrap_or_default();
        if let Some(sent) = sent {
            granted = granted.union(sent.scopes());
        }
        self.authorize_locked(Some(challenge), Scopes::StepUp(granted), Some(operation))
            .await
    }

    /// Under the flight lock: a full authorization (SPEC C-11..C-24).
    pub(super) async fn authorize_locked(
        &self,
        challenge: Option<&BearerChallenge>,
        scopes: Scopes,
        operation: Option<&str>,
    ) -> Result<AccessToken, AuthError> {
        let config = &self.shared.config;
        let machine = config.client_credentials_grant
            || config.jwt_bearer_assertion.is_some()
            || config.enterprise.is_some();
        if !config.interactive && !machine {
            return Err(AuthError::new(AuthErrorKind::InteractionRequired));
        }
        if let Some(operation) = operation {
            self.count_attempt(operation)?;
        }
        let found = self
            .discovery(
                challenge.and_then(BearerChallenge::resource_metadata_url),
                false,
            )
            .await?;
        let metadata = found.authorization_server_metadata();
        let selected = || {
            challenge
                .and_then(BearerChallenge::scopes)
                .or_else(|| found.scopes_supported())
                .unwrap_or_default()
        };
        let mut requested = match scopes {
            Scopes::Select => selected(),
            Scopes::Exactly(s) => s,
            Scopes::StepUp(granted) => granted.union(&selected()),
        };
        // SEP-2207 (SPEC-2026 N-14): `offline_access` is the authorization server's scope. It is
        // asked for only when that server lists it — added then (unless turned off), and dropped
        // otherwise even if a challenge or the resource metadata named it.
        let offline = ScopeSet::parse(OFFLINE_ACCESS).unwrap_or_default();
        let as_lists_offline = metadata
            .scopes_supported
            .iter()
            .any(|s| s == OFFLINE_ACCESS);
        if !as_lists_offline {
            requested = requested.difference(&offline);
        } else if config.offline_access {
            requested = requested.union(&offline);
        }

        if machine {
            // A machine client asks for no refresh token: it can always get a new access token.
            let requested = requested.difference(&offline);
            return self.machine_grant_locked(&found, requested).await;
        }

        // The loopback listener first: dynamic registration needs its redirect URI. A client
        // registered earlier gets its registered port back if it is free.
        let stored_client = self.shared.store.load_client(found.issuer()).await?;
        let registered_port = stored_client
            .as_ref()
            .and_then(|c| c.redirect_uris.first())
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.port());
        let listener = match registered_port.filter(|_| config.redirect_port == 0) {
            Some(port) => match LoopbackRedirect::bind(port).await {
                Ok(l) => l,
                Err(_) => LoopbackRedirect::bind(0).await?,
            },
            None => LoopbackRedirect::bind(config.redirect_port).await?,
        };
        let redirect_uri = listener.redirect_uri().to_owned();
        let client = self.ensure_client(&found, &redirect_uri).await?;

        let verifier = CodeVerifier::generate();
        let code_challenge = CodeChallenge::s256(&verifier);
        let state = random_state()?;
        let endpoint = metadata
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default();
        let mut url = checked(config.policy, endpoint, "the authorization endpoint")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", code_challenge.as_str())
                .append_pair("code_challenge_method", S256)
                .append_pair("state", &state)
                .append_pair("resource", found.resource());
            if !requested.is_empty() {
                query.append_pair("scope", &requested.to_string());
            }
        }
        // SPEC C-10: the URL opened is https (or loopback http when allowed) — checked again
        // after building, whatever the endpoint looked like.
        let url = checked(config.policy, url.as_str(), "the authorization URL")?;
        event!(
            info,
            issuer = %found.issuer(),
            client_id = %client.client_id,
            scope = %requested,
            "starting authorization"
        );

        let receive = listener.receive(&state, config.authorization_timeout);
        let open = self.shared.browser.open(url.as_str());
        tokio::pin!(receive);
        tokio::pin!(open);
        let mut opened = false;
        let response = loop {
            tokio::select! {
                biased;
                received = &mut receive => break received?,
                result = &mut open, if !opened => {
                    opened = true;
                    result?;
                }
            }
        };

        // RFC 9207: a present `iss` must be the issuer, byte for byte; an advertised one must be
        // present (SPEC C-21 mix-up defence).
        match response.iss() {
            Some(iss) if iss != found.issuer() => {
                event!(warn, "the authorization response names another issuer");
                return Err(AuthError::new(AuthErrorKind::IssuerMismatch)
                    .with_detail("the authorization response's iss is not the issuer"));
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                return Err(AuthError::new(AuthErrorKind::IssuerMismatch)
                    .with_detail("the authorization response has no iss"));
            }
            _ => {}
        }

        let token_endpoint = metadata.token_endpoint.clone().unwrap_or_default();
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", response.code().expose().to_owned()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose().to_owned()),
            ("resource", found.resource().to_owned()),
        ];
        let key = self.grant_key(&found).await?;
        let grant = self
            .token_request(&token_endpoint, form, &client, key.as_ref())
            .await?;
        let token = self
            .save_grant(
                found.as_ref(),
                token_endpoint,
                &client,
                grant,
                requested,
                key.as_ref(),
            )
            .await?;
        event!(info, client_id = %client.client_id, "authorization complete");
        Ok(token)
    }

    /// Stores the tokens of a new grant (authorization code or client credentials).
    async fn save_grant(
        &self,
        found: &Discovery,
        token_endpoint: String,
        client: &StoredClient,
        grant: Grant,
        requested: ScopeSet,
        key: Option<&ProofKey>,
    ) -> Result<AccessToken, AuthError> {
        let mut record = StoredTokens::new(
            found.issuer(),
            token_endpoint,
            found.resource(),
            client.client_id.clone(),
            grant.access_token,
        );
        let now = self.unix_now();
        record.expires_at = grant.expires_in.map(|s| now.saturating_add(s));
        record.obtained_at = Some(now);
        record.refresh_token = grant.refresh_token;
        record.scope = grant.scope.unwrap_or(requested);
        record.token_type = grant.dpop.then(|| dpop::TOKEN_TYPE_DPOP.to_owned());
        record.dpop_key = key.map(ProofKey::to_stored).transpose()?;
        self.shared
            .store
            .save_tokens(&self.state.key, &record)
            .await?;
        let token = self.to_access(&record);
        self.set_current(Some(record));
        Ok(token)
    }

    /// SEP-990 step 1: the user's ID token exchanged at the enterprise IdP (RFC 8693) for an
    /// identity assertion grant for this authorization server and resource.
    async fn identity_assertion(
        &self,
        enterprise: &super::Enterprise,
        found: &Discovery,
        requested: &ScopeSet,
    ) -> Result<Secret, AuthError> {
        let url = checked(
            self.shared.config.policy,
            &enterprise.idp_token_endpoint,
            "the IdP token endpoint",
        )?;
        let scope = requested.to_string();
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id-jag",
            ),
            ("audience", found.issuer()),
            ("resource", found.resource()),
            ("subject_token", enterprise.id_token.expose()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("client_id", enterprise.idp_client_id.as_str()),
        ];
        if !requested.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        event!(info, issuer = %found.issuer(), "exchanging the ID token for an identity assertion grant");
        let response = self.shared.http.post_form(&url, &form, None, None).await?;
        // RFC 8693 §2.2.1: the issued token is in `access_token`; its `token_type` is `N_A`.
        let code = response.status.as_u16();
        if !response.status.is_success() {
            return Err(
                parse_token_response(&response.status, &response.body, false)
                    .err()
                    .unwrap_or_else(|| AuthError::new(AuthErrorKind::Protocol).with_status(code)),
            );
        }
        serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("access_token")?.as_str().map(Secret::from))
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Protocol)
                    .with_detail("the IdP's token exchange response has no access_token")
                    .with_status(code)
            })
    }

    /// A grant without a user (SPEC-2026 E-1, E-3): the client credentials grant (RFC 6749 §4.4)
    /// with pre-registered credentials that hold a secret or a private key, or the JWT bearer
    /// grant (RFC 7523 §2.1) with the configured workload assertion. `resource` is sent as on
    /// every token request (SPEC C-19). A rejection is returned as is: no other grant is tried.
    async fn machine_grant_locked(
        &self,
        found: &Discovery,
        requested: ScopeSet,
    ) -> Result<AccessToken, AuthError> {
        let config = &self.shared.config;
        let id_jag = match &config.enterprise {
            Some(enterprise) => Some(
                self.identity_assertion(enterprise, found, &requested)
                    .await?,
            ),
            None => None,
        };
        let jwt_bearer = id_jag.as_ref().or(config.jwt_bearer_assertion.as_ref());
        let client = self
            .preregistered(found.issuer())
            .filter(|c| {
                config.jwt_bearer_assertion.is_some()
                    || c.client_secret.is_some()
                    || c.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
            })
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Registration).with_detail(
                    "a grant without a user needs pre-registered credentials (with a secret or a private key for client credentials)",
                )
            })?;
        let token_endpoint = found
            .authorization_server_metadata()
            .token_endpoint
            .clone()
            .unwrap_or_default();
        let mut form = match jwt_bearer {
            Some(assertion) => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", assertion.expose().to_owned()),
            ],
            None => vec![("grant_type", "client_credentials".to_owned())],
        };
        form.push(("resource", found.resource().to_owned()));
        if !requested.is_empty() {
            form.push(("scope", requested.to_string()));
        }
        let key = self.grant_key(found).await?;
        event!(
            info,
            issuer = %found.issuer(),
            client_id = %client.client_id,
            scope = %requested,
            jwt_bearer = jwt_bearer.is_some(),
            dpop = key.is_some(),
            "requesting a token without a user"
        );
        let grant = self
            .token_request(&token_endpoint, form, &client, key.as_ref())
            .await?;
        let token = self
            .save_grant(
                found,
                token_endpoint,
                &client,
                grant,
                requested,
                key.as_ref(),
            )
            .await?;
        event!(info, client_id = %client.client_id, "token obtained without a user");
        Ok(token)
    }

    /// The client to use with the discovered authorization server, in the spec's priority
    /// (SPEC C-13): pre-registered, Client ID Metadata Document, dynamic (stored or new).
    async fn ensure_client(
        &self,
        found: &Discovery,
        redirect_uri: &str,
    ) -> Result<StoredClient, AuthError> {
        let config = &self.shared.config;
        let issuer = found.issuer();
        let metadata = found.authorization_server_metadata();
        if let Some(client) = self.preregistered(issuer) {
            return Ok(client);
        }
        if let Some(cimd) = config
            .cimd_url
            .as_ref()
            .filter(|_| metadata.client_id_metadata_document_supported)
        {
            let mut client =
                StoredClient::new(issuer, RegistrationKind::MetadataDocument, cimd.clone());
            client.redirect_uris.push(redirect_uri.to_owned());
            return Ok(client);
        }
        let _registering = self.shared.registration.lock().await;
        if let Some(client) = self.shared.store.load_client(issuer).await?
            && client.kind == RegistrationKind::Dynamic
            && !client.secret_expired(self.unix_now())
        {
            return Ok(client);
        }
        let endpoint = metadata
            .registration_endpoint
            .as_deref()
            .filter(|_| config.dynamic_registration)
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Registration).with_detail(
                    "no pre-registered credentials, no usable client ID metadata document, no dynamic registration",
                )
            })?;
        let url = checked(config.policy, endpoint, "the registration endpoint")?;
        let body = serde_json::json!({
            "redirect_uris": [redirect_uri],
            "client_name": config.client_name,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": application_type(redirect_uri),
        });
        let response = self.shared.http.post_json(&url, &body).await?;
        let status = response.status.as_u16();
        if status == 429 || response.status.is_server_error() {
            return Err(AuthError::new(AuthErrorKind::Transient).with_status(status));
        }
        if !response.status.is_success() {
            let mut e = AuthError::new(AuthErrorKind::Registration).with_status(status);
            if let Ok(body) = serde_json::from_slice::<ErrorResponse>(&response.body) {
                e = e.with_oauth(body.error);
            }
            return Err(e);
        }
        let info: ClientInformation = serde_json::from_slice(&response.body).map_err(|e| {
            AuthError::new(AuthErrorKind::Registration)
                .with_detail("the registration response is not RFC 7591")
                .with_source(e)
        })?;
        let method = match info.metadata.token_endpoint_auth_method.as_deref() {
            Some(m) => m.parse::<TokenEndpointAuthMethod>().map_err(|e| {
                AuthError::new(AuthErrorKind::Registration)
                    .with_detail(
                        "the registered token endpoint authentication method is not supported",
                    )
                    .with_source(e)
            })?,
            None if info.client_secret.is_some() => {
                // RFC 7591 §2: an omitted method means client_secret_basic, if the server takes it.
                let supported = &metadata.token_endpoint_auth_methods_supported;
                if supported.is_empty() || supported.iter().any(|m| m == "client_secret_basic") {
                    TokenEndpointAuthMethod::ClientSecretBasic
                } else if supported.iter().any(|m| m == "client_secret_post") {
                    TokenEndpointAuthMethod::ClientSecretPost
                } else {
                    TokenEndpointAuthMethod::None
                }
            }
            None => TokenEndpointAuthMethod::None,
        };
        if method == TokenEndpointAuthMethod::PrivateKeyJwt {
            return Err(AuthError::new(AuthErrorKind::Registration)
                .with_detail("the server registered private_key_jwt, but no key was registered"));
        }
        let mut client = StoredClient::new(issuer, RegistrationKind::Dynamic, info.client_id);
        client.client_secret = info.client_secret;
        client.token_endpoint_auth_method = method;
        client.client_secret_expires_at = info.client_secret_expires_at;
        client.redirect_uris = if info.metadata.redirect_uris.is_empty() {
            vec![redirect_uri.to_owned()]
        } else {
            info.metadata.redirect_uris
        };
        self.shared.store.save_client(&client).await?;
        event!(
            info,
            client_id = %client.client_id,
            method = %client.token_endpoint_auth_method,
            "client registered dynamically"
        );
        Ok(client)
    }

    /// A token endpoint request with the client's authentication (exactly one method, SPEC C-18)
    /// and, with `key`, a DPoP proof (RFC 9449 §5). A `use_dpop_nonce` answer (RFC 9449 §8) is
    /// retried once with the server's nonce; a nonce in any answer is kept for the next request.
    /// In the `mcp_auth.client.token` span (`crate::trace`).
    async fn token_request(
        &self,
        endpoint: &str,
        form: Vec<(&'static str, String)>,
        client: &StoredClient,
        key: Option<&ProofKey>,
    ) -> Result<Grant, AuthError> {
        crate::trace::token_request(
            &form,
            &client.client_id,
            self.send_token_request(endpoint, form.clone(), client, key),
        )
        .await
    }

    /// [`token_request`](Self::token_request) outside its span.
    async fn send_token_request(
        &self,
        endpoint: &str,
        form: Vec<(&'static str, String)>,
        client: &StoredClient,
        key: Option<&ProofKey>,
    ) -> Result<Grant, AuthError> {
        let url = checked(self.shared.config.policy, endpoint, "the token endpoint")?;
        let nonces = &self.shared.nonces;
        let mut nonce_retried = false;
        loop {
            let (pairs, basic) = self.client_authentication(form.clone(), client)?;
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let proof = key
                .map(|key| key.proof("POST", url.as_str(), self.unix_now(), None, nonces))
                .transpose()?;
            let response = self
                .shared
                .http
                .post_form(&url, &pairs, basic.as_deref(), proof)
                .await?;
            if key.is_some() && is_use_dpop_nonce(&response.status, &response.body) {
                let nonce = match dpop::nonce_header(&response.headers) {
                    NonceHeader::Valid(nonce) => nonce,
                    NonceHeader::Absent => {
                        return Err(dpop::error(
                            "the authorization server asked for a DPoP nonce without sending one",
                        )
                        .with_status(response.status.as_u16()));
                    }
                    NonceHeader::Malformed => {
                        return Err(dpop::error(
                            "the authorization server sent a malformed DPoP-Nonce",
                        )
                        .with_status(response.status.as_u16()));
                    }
                };
                nonces.set(url.as_str(), nonce);
                if nonce_retried {
                    event!(
                        warn,
                        "the authorization server asked for a DPoP nonce again"
                    );
                    return Err(dpop::error(
                        "the authorization server asked for a new DPoP nonce again after the one retry",
                    )
                    .with_oauth(ErrorCode::UseDpopNonce)
                    .with_status(response.status.as_u16()));
                }
                nonce_retried = true;
                event!(
                    debug,
                    "the authorization server asked for a DPoP nonce; retrying once"
                );
                continue;
            }
            if key.is_some() {
                nonces.observe(url.as_str(), &response.headers);
            }
            return parse_token_response(&response.status, &response.body, key.is_some());
        }
    }

    /// The form with the client's authentication, and the HTTP Basic credentials if any. A
    /// `private_key_jwt` assertion is signed anew each time (a fresh `jti`).
    #[allow(clippy::type_complexity)] // a form and a header, named where used
    fn client_authentication(
        &self,
        mut form: Vec<(&'static str, String)>,
        client: &StoredClient,
    ) -> Result<(Vec<(&'static str, String)>, Option<String>), AuthError> {
        let mut basic = None;
        match (client.token_endpoint_auth_method, &client.client_secret) {
            (TokenEndpointAuthMethod::ClientSecretBasic, Some(secret)) => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                basic = Some(STANDARD.encode(format!(
                    "{}:{}",
                    encode(&client.client_id),
                    encode(secret.expose())
                )));
            }
            (TokenEndpointAuthMethod::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", client.client_id.clone()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            (TokenEndpointAuthMethod::PrivateKeyJwt, _) => {
                let signer = self
                    .shared
                    .config
                    .credentials
                    .iter()
                    .filter(|c| c.client_id == client.client_id)
                    .find(|c| c.issuer.as_deref().is_none_or(|i| i == client.issuer))
                    .and_then(|c| c.signer.clone())
                    .ok_or_else(|| {
                        AuthError::new(AuthErrorKind::Registration)
                            .with_detail("private_key_jwt needs the client's private key")
                    })?;
                let assertion = signer.sign(&client.client_id, &client.issuer, self.unix_now())?;
                form.push(("client_id", client.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
            _ => form.push(("client_id", client.client_id.clone())),
        }
        Ok((form, basic))
    }
}

/// Whether a token endpoint answer is the `use_dpop_nonce` error (RFC 9449 §8: 400).
fn is_use_dpop_nonce(status: &http::StatusCode, body: &[u8]) -> bool {
    status.is_client_error()
        && serde_json::from_slice::<ErrorResponse>(body)
            .is_ok_and(|e| e.error == ErrorCode::UseDpopNonce)
}

/// Reads a token response (OAuth 2.1 §3.2.3, §3.2.4; SPEC C-24). `token_type` is `Bearer`, or
/// `DPoP` when a proof was sent (`dpop_sent`, RFC 9449 §5).
fn parse_token_response(
    status: &http::StatusCode,
    body: &[u8],
    dpop_sent: bool,
) -> Result<Grant, AuthError> {
    let code = status.as_u16();
    if status.is_success() {
        let protocol = |detail| {
            AuthError::new(AuthErrorKind::Protocol)
                .with_detail(detail)
                .with_status(code)
        };
        let value: Value =
            serde_json::from_slice(body).map_err(|_| protocol("the token response is not JSON"))?;
        let access_token = value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol("the token response has no access_token"))?;
        let token_type = value.get("token_type").and_then(Value::as_str);
        let dpop = token_type.is_some_and(|t| t.eq_ignore_ascii_case(dpop::TOKEN_TYPE_DPOP));
        if let Some(token_type) = token_type
            && !token_type.eq_ignore_ascii_case("bearer")
            && !(dpop && dpop_sent)
        {
            return Err(protocol(if dpop {
                "the token type is DPoP, but no DPoP proof was sent"
            } else {
                "the token type is neither Bearer nor DPoP"
            }));
        }
        let expires_in = match value.get("expires_in") {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        return Ok(Grant {
            access_token: Secret::from(access_token),
            dpop,
            expires_in,
            refresh_token: value
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(Secret::from),
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .and_then(|s| ScopeSet::parse(s).ok()),
        });
    }
    if code == 429 || status.is_server_error() {
        return Err(AuthError::new(AuthErrorKind::Transient).with_status(code));
    }
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(error) => {
            let kind = match error.error {
                ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError => {
                    AuthErrorKind::Transient
                }
                _ => AuthErrorKind::Rejected,
            };
            Err(AuthError::new(kind)
                .with_oauth(error.error)
                .with_status(code))
        }
        Err(_) => Err(AuthError::new(AuthErrorKind::Protocol)
            .with_detail("the token endpoint answered an error without an OAuth error body")
            .with_status(code)),
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn application_type_is_native_for_loopback_and_custom_schemes_web_for_https() {
        assert_eq!(application_type("http://127.0.0.1:5173/callback"), "native");
        assert_eq!(application_type("http://localhost:5173/callback"), "native");
        assert_eq!(application_type("com.example.app:/callback"), "native");
        assert_eq!(application_type("https://app.example.com/callback"), "web");
    }

    #[test]
    fn token_responses_are_classified_rejected_vs_transient() {
        let ok = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"bearer","expires_in":"60","x":1}"#,
            false,
        )
        .ok()
        .unwrap();
        assert_eq!(ok.expires_in, Some(60));
        assert!(ok.refresh_token.is_none());

        let rejected = parse_token_response(
            &StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant"}"#,
            false,
        )
        .err()
        .unwrap();
        assert!(rejected.is_rejected());
        assert_eq!(rejected.oauth_error(), Some(&ErrorCode::InvalidGrant));

        for (status, body) in [
            (StatusCode::SERVICE_UNAVAILABLE, &b"oops"[..]),
            (StatusCode::BAD_GATEWAY, br#"{"error":"invalid_grant"}"#),
            (StatusCode::TOO_MANY_REQUESTS, b""),
            (
                StatusCode::BAD_REQUEST,
                br#"{"error":"temporarily_unavailable"}"#,
            ),
        ] {
            let e = parse_token_response(&status, body, false).err().unwrap();
            assert!(e.is_transient(), "{status} {e:?}");
        }
        let odd = parse_token_response(&StatusCode::NOT_FOUND, b"<html>", false)
            .err()
            .unwrap();
        assert_eq!(odd.kind(), AuthErrorKind::Protocol);
        let dpop = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"DPoP"}"#,
            false,
        )
        .err()
        .unwrap();
        assert_eq!(dpop.kind(), AuthErrorKind::Protocol);
        // With a proof sent, a DPoP-bound token is what was asked for; Bearer is fine too (an
        // authorization server may ignore the proof).
        let bound = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"DPoP"}"#,
            true,
        )
        .ok()
        .unwrap();
        assert!(bound.dpop);
        let bearer = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"Bearer"}"#,
            true,
        )
        .ok()
        .unwrap();
        assert!(!bearer.dpop);
        let odd = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"mac"}"#,
            true,
        )
        .err()
        .unwrap();
        assert_eq!(odd.kind(), AuthErrorKind::Protocol);
    }
}
