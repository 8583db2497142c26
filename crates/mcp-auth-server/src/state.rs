//! What every handler shares: the server's state ([`Inner`]), around the checked
//! [`Config`](crate::config::Config).

use std::sync::Arc;

use mcp_auth_core::Clock;

use crate::config::Config;
use crate::flow::Flow;
use crate::keys::KeySet;
use crate::login::Login;
use crate::revocation::Revocations;
use crate::store::Store;

#[cfg(feature = "cimd")]
use crate::cimd::CimdFetcher;

/// Everything the handlers share.
pub(crate) struct Inner {
    /// A random id of this server instance (a replica), the holder of its store leases.
    pub(crate) instance: String,
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: KeySet,
    pub(crate) login: Arc<dyn Login>,
    pub(crate) clock: Arc<dyn Clock>,
    #[cfg(feature = "cimd")]
    pub(crate) cimd: Option<CimdFetcher>,
    /// Pending browser transactions and login sessions.
    pub(crate) flow: Flow,
    /// The metadata document, serialized once.
    pub(crate) metadata_json: bytes::Bytes,
    /// The OIDC discovery variant, serialized once.
    pub(crate) openid_json: bytes::Bytes,
    /// Registrations per minute (AS-46), one global window.
    pub(crate) registrations: crate::limit::Limiter,
    /// Failed sign-ins per username per 15 minutes.
    pub(crate) failed_logins: crate::limit::Limiter,
    /// Password checks running at once (PBKDF2 is deliberately slow).
    pub(crate) password_checks: tokio::sync::Semaphore,
    /// Failed client authentications per client id and per address (`/token`, `/revoke`,
    /// `/introspect`).
    pub(crate) failed_client_auths: crate::limit::Limiter,
    /// Authorization requests waiting for the user, per address per 10 minutes (`/authorize`).
    pub(crate) authorization_pages: crate::limit::Limiter,
    /// What this server revoked, for resource servers in the same process.
    pub(crate) revocations: Revocations,
    /// The upstream token vault, when upstream sign-in keeps tokens.
    pub(crate) vault: Option<crate::vault::Vault>,
    /// The keys of `private_key_jwt` clients.
    #[cfg(feature = "jwt-assertions")]
    pub(crate) client_keys: crate::assertion::ClientKeys,
    /// The issuers the JWT bearer grant trusts (empty: the grant is off).
    #[cfg(feature = "jwt-assertions")]
    pub(crate) jwt_bearer: Vec<crate::jwt_bearer::TrustedIssuer>,
    /// Seen `jti`s of client assertions and JWT bearer assertions.
    #[cfg(feature = "jwt-assertions")]
    pub(crate) replay: crate::replay::ReplayCheck,
}

impl Inner {
    /// Now, in UNIX seconds.
    pub(crate) fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// Revoke a grant in the store and, at once, for resource servers in this process; the
    /// user's upstream tokens go with it. Returns whether it was active.
    pub(crate) async fn revoke_grant(
        &self,
        grant_id: &str,
        now: u64,
    ) -> Result<bool, crate::store::StoreError> {
        let was_active = self.store.revoke_grant(grant_id, now).await?;
        self.grant_revoked(grant_id, now).await?;
        Ok(was_active)
    }

    /// Record a grant the store already revoked (refresh-token reuse): resource servers in
    /// this process refuse its tokens at once, and the user's upstream tokens are deleted.
    pub(crate) async fn grant_revoked(
        &self,
        grant_id: &str,
        now: u64,
    ) -> Result<(), crate::store::StoreError> {
        self.mark_grant_revoked(grant_id, now);
        if let Some(vault) = &self.vault
            && let Some(grant) = self.store.get_grant(grant_id).await?
        {
            vault.delete(&grant.subject).await?;
            // A browser session would approve the next request without going upstream, and
            // the user would have no upstream tokens: sign the browser out too.
            self.flow.end_sessions(&grant.subject).await?;
        }
        Ok(())
    }

    fn mark_grant_revoked(&self, grant_id: &str, now: u64) {
        let until = now.saturating_add(self.config.access_token_ttl.as_secs());
        self.revocations.revoke_grant(grant_id, until);
    }

    /// Revoke every active grant of `subject` (as [`revoke_grant`](Self::revoke_grant) does
    /// one) and delete their upstream tokens: the user must sign in again. Returns how many
    /// grants were revoked.
    pub(crate) async fn revoke_subject(
        &self,
        subject: &str,
    ) -> Result<usize, crate::store::StoreError> {
        let now = self.now();
        let grants = self.store.list_active_grants(subject, now).await?;
        for grant in &grants {
            self.store.revoke_grant(&grant.grant_id, now).await?;
            self.mark_grant_revoked(&grant.grant_id, now);
        }
        if let Some(vault) = &self.vault {
            vault.delete(subject).await?;
        }
        self.flow.end_sessions(subject).await?;
        #[cfg(feature = "tracing")]
        tracing::info!(sub = %subject, grants = grants.len(), "user signed out: grants revoked");
        Ok(grants.len())
    }

    /// Deny-list one access token in the store and in this process.
    pub(crate) async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: u64,
    ) -> Result<(), crate::store::StoreError> {
        self.store
            .revoke_access_token(jti, expires_at, self.now())
            .await?;
        self.revocations.revoke_access_token(jti, expires_at);
        Ok(())
    }
}

impl crate::vault::SignOut for Inner {
    fn revoke_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<usize, crate::store::StoreError>> + Send + 'a>>
    {
        Box::pin(Self::revoke_subject(self, subject))
    }
}
