//! [`AuthorizationServer`]: the router, the handles an application keeps (store, keys,
//! vault, revocations) and upkeep; its builder is in `builder.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mcp_auth_core::metadata::AuthorizationServerMetadata;

use crate::clients::MachineClient;
use crate::error::ConfigError;
use crate::keys::KeySet;
use crate::revocation::Revocations;
use crate::state::Inner;
use crate::store::Store;
use crate::vault::Vault;

mod builder;

pub use self::builder::{
    AuthorizationServerBuilder, DEFAULT_MAX_BODY_SIZE, DEFAULT_REQUEST_TIMEOUT,
};

/// An embeddable OAuth 2.1 authorization server for MCP.
///
/// Build it with [`AuthorizationServer::builder`], then mount [`router`](Self::router) into your
/// application. Cheap to clone.
///
/// See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct AuthorizationServer {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.config.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Start configuring a server for `issuer` (an `https` URL, or `http` on loopback for
    /// development; with or without a path).
    pub fn builder(issuer: impl Into<String>) -> AuthorizationServerBuilder {
        AuthorizationServerBuilder::new(issuer.into())
    }

    /// The axum router with every endpoint, at the paths the metadata advertises. It carries
    /// its own state, so it merges into any `Router<S>`.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        crate::handlers::router(self.inner.clone())
    }

    /// The RFC 8414 metadata this server publishes.
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        #[cfg(feature = "cimd")]
        let cimd_on = self.inner.cimd.is_some();
        #[cfg(not(feature = "cimd"))]
        let cimd_on = false;
        #[cfg(feature = "jwt-assertions")]
        let jwt_bearer = !self.inner.jwt_bearer.is_empty();
        #[cfg(not(feature = "jwt-assertions"))]
        let jwt_bearer = false;
        crate::metadata::build(&self.inner.config, false, cimd_on, jwt_bearer)
    }

    /// What this server revoked, for a resource server in the same process: wrap its verifier
    /// in `mcp_auth_resource::Revocable` with this list, and a revoked
    /// access token (or one whose grant was revoked) is refused at once instead of at its `exp`.
    /// See [`Revocations`].
    pub fn revocations(&self) -> Revocations {
        self.inner.revocations.clone()
    }

    /// Register (or replace) a machine client the operator arranges, at run time: it may then
    /// obtain tokens with `client_credentials` for exactly its scopes. The same checks as
    /// [`AuthorizationServerBuilder::machine_client`]; the store keeps only the secret's hash.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the grant is off or the client is not acceptable (short
    /// secret, no scopes), [`ConfigError::InvalidScope`] / [`ConfigError::InvalidResource`] for
    /// a scope or resource the server does not serve, [`ConfigError::Store`] when the store fails.
    pub async fn register_machine_client(&self, client: MachineClient) -> Result<(), ConfigError> {
        let record = client.into_record(&self.inner.config, self.inner.now())?;
        #[cfg(feature = "tracing")]
        tracing::info!(client_id = %record.client_id, scope = ?record.machine_scope, "machine client registered by the operator");
        self.inner.store.put_client(record).await?;
        Ok(())
    }

    /// The callback URL a redirect login ([`OidcLogin`](crate::login::OidcLogin),
    /// [`OAuth2Login`](crate::login::OAuth2Login)) comes back to, `{issuer}/login/callback`:
    /// register it at the upstream provider as the redirect URI. `None` when the login is not a
    /// redirect login (nothing is mounted there then).
    pub fn upstream_redirect_uri(&self) -> Option<String> {
        self.inner.login.redirect().map(|_| {
            self.inner
                .config
                .url(crate::handlers::authorize::CALLBACK_PATH)
        })
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The signing keys (for rotation: [`KeySet::rotate`]).
    pub fn keys(&self) -> &KeySet {
        &self.inner.keys
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The upstream token vault, when [`AuthorizationServerBuilder::vault`] configured one:
    /// the logins keep the users' upstream tokens there, tools read them (see
    /// [`crate::vault`]).
    pub fn vault(&self) -> Option<&Vault> {
        self.inner.vault.as_ref()
    }

    /// Sign a user out everywhere: revoke every active grant of `subject` (resource servers in
    /// this process refuse its access tokens at once, its refresh tokens stop working) and
    /// delete the user's upstream tokens. Returns how many grants were revoked.
    ///
    /// # Errors
    /// [`StoreError`](crate::store::StoreError) when the store fails.
    pub async fn sign_out(&self, subject: &str) -> Result<usize, crate::store::StoreError> {
        self.inner.revoke_subject(subject).await
    }

    /// Housekeeping: apply the key policy, purge expired records and remove unused public
    /// clients ([`unused_public_client_ttl`](AuthorizationServerBuilder::unused_public_client_ttl)).
    /// Call it periodically (the
    /// demo server runs it every minute); safe to call concurrently.
    pub async fn maintain(&self) -> Result<(), crate::store::StoreError> {
        let now = self.inner.now();
        self.inner.revocations.purge(now);
        if let Err(_error) = self
            .inner
            .keys
            .maintain(self.inner.store.as_ref(), now)
            .await
        {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_error, "key maintenance failed");
        }
        // Purging is work for one replica at a time: the others skip it while one holds the
        // lease (a replica that dies holding it only delays the next purge by a minute).
        let holder = &self.inner.instance;
        let store = &self.inner.store;
        if !store
            .try_lease(UPKEEP_LEASE, holder, now.saturating_add(60), now)
            .await?
        {
            return Ok(());
        }
        let purged = self.purge(now).await;
        store.release_lease(UPKEEP_LEASE, holder).await?;
        purged
    }

    async fn purge(&self, now: u64) -> Result<(), crate::store::StoreError> {
        self.inner.store.purge_expired(now).await?;
        let ttl = self.inner.config.unused_public_client_ttl.as_secs();
        if ttl > 0 {
            let _removed = self
                .inner
                .store
                .purge_unused_public_clients(now.saturating_sub(ttl), now)
                .await?;
            #[cfg(feature = "tracing")]
            if _removed > 0 {
                tracing::info!(removed = _removed, "unused public clients removed");
            }
        }
        Ok(())
    }
}

/// The store lease under which one replica at a time purges expired records.
const UPKEEP_LEASE: &str = "upkeep";

/// Follow the store's revocations (made by any replica) into this process's list every
/// `interval`, until the server is dropped.
fn follow_revocations(server: std::sync::Weak<Inner>, interval: Duration, mut since: u64) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(inner) = server.upgrade() else {
                return;
            };
            let now = inner.now();
            // Store times are whole seconds: look one second back, so nothing revoked in the
            // second of the last poll is missed (loading twice is harmless).
            match inner.store.list_revocations(now, since).await {
                Ok(revoked) => {
                    inner
                        .revocations
                        .load(revoked, inner.config.access_token_ttl.as_secs());
                    since = now.saturating_sub(1);
                }
                Err(_error) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %_error, "reading the store's revocations failed; retrying");
                }
            }
        }
    });
}
