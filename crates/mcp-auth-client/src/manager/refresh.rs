//! Refresh: one at a time per principal (the flight lock), one at a time across processes (the
//! store lock), transient failures retried with the [`RetryPolicy`](super::RetryPolicy), and a
//! token another manager or process stored meanwhile adopted instead of refreshing again. See
//! the [module docs](crate::TokenManager#refresh).

use mcp_auth_core::{Secret, error::ErrorCode};

use super::{TokenManager, tokens::same_token};
use crate::{dpop, error::AuthError, store::RegistrationKind, token::AccessToken};

impl TokenManager {
    /// Refreshes under the store lock, adopting a token another process stored meanwhile.
    pub(super) async fn refresh_locked(
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
        let client = self.registrar().for_tokens(&record).await?;
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
                .token_endpoint()
                .request(&record.token_endpoint, form, &client, proof_key.as_ref())
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
}
