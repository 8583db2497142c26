//! New grants: when the manager may authorize, which scopes it asks for, with which DPoP key,
//! and how the tokens that come back are kept. The run itself is the
//! [`authorize`](crate::authorize) module's; the client it runs as comes from
//! [`registration`](crate::registration), the token requests go through the
//! [`token_endpoint`](crate::token_endpoint) client.

use mcp_auth_core::challenge::BearerChallenge;
use serde_json::Value;

use super::TokenManager;
use crate::{
    authorize::{Obtained, Run, Scopes},
    discovery::Discovery,
    dpop::{self, ProofKey},
    error::{AuthError, AuthErrorKind},
    registration::Registrar,
    store::StoredTokens,
    token::AccessToken,
    token_endpoint::TokenEndpoint,
};

impl TokenManager {
    /// Under the flight lock: a full authorization (SPEC C-11..C-24), with a user or, for a
    /// machine client, without one.
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
        let requested = scopes.requested(challenge, &found, config.offline_access);
        let run = Run {
            policy: config.policy,
            browser: &*self.shared.browser,
            redirect_port: config.redirect_port,
            authorization_timeout: config.authorization_timeout,
            registrar: self.registrar(),
            token_endpoint: self.token_endpoint(),
        };
        if machine {
            let obtained = run
                .without_user(
                    &found,
                    &requested,
                    self.grant_key(&found),
                    config.jwt_bearer_assertion.as_ref(),
                    config.enterprise.as_ref(),
                )
                .await?;
            let token = self.save_grant(&found, &obtained).await?;
            event!(info, client_id = %obtained.client.client_id, "token obtained without a user");
            return Ok(token);
        }
        let obtained = run
            .code_flow(&found, &requested, self.grant_key(&found))
            .await?;
        let token = self.save_grant(&found, &obtained).await?;
        event!(info, client_id = %obtained.client.client_id, "authorization complete");
        Ok(token)
    }

    /// Stores the tokens of a new grant (authorization code or a grant without a user).
    async fn save_grant(
        &self,
        found: &Discovery,
        obtained: &Obtained,
    ) -> Result<AccessToken, AuthError> {
        let Obtained {
            grant,
            requested,
            key,
            token_endpoint,
            client,
        } = obtained;
        let mut record = StoredTokens::new(
            found.issuer(),
            token_endpoint.clone(),
            found.resource(),
            client.client_id.clone(),
            grant.access_token.clone(),
        );
        let now = self.unix_now();
        record.expires_at = grant.expires_in.map(|s| now.saturating_add(s));
        record.obtained_at = Some(now);
        record.refresh_token.clone_from(&grant.refresh_token);
        record.scope = grant.scope.clone().unwrap_or_else(|| requested.clone());
        record.token_type = grant.dpop.then(|| dpop::TOKEN_TYPE_DPOP.to_owned());
        record.dpop_key = key.as_ref().map(ProofKey::to_stored).transpose()?;
        self.shared
            .store
            .save_tokens(&self.state.key, &record)
            .await?;
        let token = self.to_access(&record);
        self.set_current(Some(record));
        Ok(token)
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

    /// The registration algorithm with this manager's configuration.
    pub(super) fn registrar(&self) -> Registrar<'_> {
        let config = &self.shared.config;
        Registrar {
            http: &self.shared.http,
            policy: config.policy,
            clock: &*self.shared.clock,
            store: &*self.shared.store,
            credentials: &config.credentials,
            cimd_url: config.cimd_url.as_deref(),
            dynamic_registration: config.dynamic_registration,
            client_name: &config.client_name,
            registering: &self.shared.registration,
        }
    }

    /// The token endpoint client with this manager's configuration.
    pub(super) fn token_endpoint(&self) -> TokenEndpoint<'_> {
        TokenEndpoint {
            http: &self.shared.http,
            policy: self.shared.config.policy,
            clock: &*self.shared.clock,
            nonces: &self.shared.nonces,
            credentials: &self.shared.config.credentials,
        }
    }
}
