//! The principal's tokens in memory and in the store: which one is usable now, and what it is
//! presented with (its DPoP binding). A token that is not usable is refreshed
//! ([`refresh`](super::refresh)) or replaced by a new grant ([`grant`](super::grant)).

use std::{
    sync::{Arc, PoisonError},
    time::{Duration, SystemTime},
};

use mcp_auth_core::{Clock as _, Secret};

use super::TokenManager;
use crate::{
    dpop::{Binding, ProofKey},
    error::AuthError,
    store::StoredTokens,
    token::AccessToken,
};

/// Whether `tokens` holds the access token `value` (one a server refused).
pub(super) fn same_token(tokens: &StoredTokens, value: Option<&str>) -> bool {
    value.is_some_and(|v| tokens.access_token.expose() == v)
}

impl TokenManager {
    /// The time now, in seconds since the Unix epoch.
    pub(super) fn unix_now(&self) -> u64 {
        self.shared.clock.unix_seconds()
    }

    /// The token ready to send, with its DPoP key when it is DPoP-bound.
    pub(super) fn to_access(&self, tokens: &StoredTokens) -> AccessToken {
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
    pub(super) fn proof_key(&self, stored: &Secret) -> Result<ProofKey, AuthError> {
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
    pub(super) fn binding_of(&self, tokens: &StoredTokens) -> Option<Binding> {
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

    /// Whether a token is valid now with the refresh buffer to spare. The buffer is at most half
    /// the token's lifetime, so a token shorter-lived than the buffer is not refreshed each call.
    /// A DPoP-bound token whose key is gone is not usable.
    pub(super) fn usable(&self, tokens: &StoredTokens) -> bool {
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

    pub(super) fn current_tokens(&self) -> Option<Arc<StoredTokens>> {
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
}
