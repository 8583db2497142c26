//! What the manager does with a server's answer: a 401 (adopt, refresh or authorize, following
//! the challenge's `resource_metadata`), a 403 `insufficient_scope` (step up), a `DPoP`-only
//! challenge or a `use_dpop_nonce`; the discovery they share, and the attempt limit per
//! operation.

use std::sync::{Arc, PoisonError};

use http::{HeaderMap, header::WWW_AUTHENTICATE};
use mcp_auth_core::challenge::{BearerChallenge, parse};

use super::{TokenManager, tokens::same_token};
use crate::{
    authorize::Scopes,
    discovery::{Discoverer, Discovery, checked},
    dpop::{self, NonceHeader},
    error::{AuthError, AuthErrorKind},
    token::AccessToken,
};

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

impl TokenManager {
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

    pub(super) fn count_attempt(&self, operation: &str) -> Result<(), AuthError> {
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
                        AuthErrorKind::ResourceMismatch
                            | AuthErrorKind::IssuerMismatch
                            | AuthErrorKind::PkceUnsupported
                            | AuthErrorKind::InsecureUrl
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
}
