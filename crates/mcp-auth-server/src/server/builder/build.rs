//! [`AuthorizationServerBuilder::build`]: every setting checked, the signing keys loaded or
//! created, and the server's state assembled.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{Clock, ResourceId, Scope, ScopeSet};

use crate::config::{Config, is_loopback_url};
use crate::error::ConfigError;
use crate::flow::Flow;
use crate::keys::KeySet;
use crate::limit::Limiter;
use crate::login::LocalLogin;
use crate::revocation::Revocations;
use crate::server::{AuthorizationServer, follow_revocations};
use crate::state::Inner;
use crate::store::MemoryStore;
use crate::vault::VaultBuilder;

#[cfg(feature = "cimd")]
use crate::cimd::{CimdConfig, CimdFetcher};

use super::AuthorizationServerBuilder;

impl AuthorizationServerBuilder {
    /// Check the configuration, load (or create) the signing keys, and build the server.
    pub async fn build(self) -> Result<AuthorizationServer, ConfigError> {
        let issuer = check_issuer(&self.issuer)?;
        let issuer_path = url::Url::parse(&issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .map_err(|_| ConfigError::InvalidIssuer(self.issuer.clone()))?;
        let issuer_loopback = is_loopback_url(&issuer);

        if self.resources.is_empty() {
            return Err(ConfigError::NoResource);
        }
        let mut resources = Vec::new();
        for raw in &self.resources {
            let id =
                ResourceId::parse(raw).map_err(|_| ConfigError::InvalidResource(raw.clone()))?;
            resources.push(id);
        }
        let default_resource = match &self.default_resource {
            None => resources.first().cloned(),
            Some(raw) if raw.is_empty() => None,
            Some(raw) => Some(
                resources
                    .iter()
                    .find(|r| r.matches(raw))
                    .cloned()
                    .ok_or_else(|| ConfigError::InvalidResource(raw.clone()))?,
            ),
        };

        let mut scopes_advertised = parse_scopes(&self.scopes)?;
        let default_scopes = parse_scopes(&self.default_scopes)?;
        let mut all_scopes = scopes_advertised
            .union(&parse_scopes(&self.unadvertised_scopes)?)
            .union(&default_scopes);
        let offline = mcp_auth_core::OFFLINE_ACCESS;
        // MCP 2026-07-28 (SEP-2207): clients may ask for `offline_access` only when the metadata
        // lists it, so it is advertised exactly when it is accepted.
        if self.offline_access {
            if !self.issue_refresh_tokens {
                return Err(ConfigError::Invalid(
                    "offline_access(true) advertises refresh tokens, but refresh_tokens(false) turns them off".into(),
                ));
            }
            let scope =
                Scope::new(offline).map_err(|_| ConfigError::InvalidScope(offline.into()))?;
            all_scopes.insert(scope.clone());
            scopes_advertised.insert(scope);
        } else if scopes_advertised.contains(offline) {
            return Err(ConfigError::Invalid(
                "offline_access is advertised only with offline_access(true); list it in unadvertised_scopes to accept it without advertising it".into(),
            ));
        }

        let check = |ttl: Duration, max: Duration, name: &'static str| {
            if ttl.is_zero() || ttl > max {
                Err(ConfigError::InvalidLifetime(name))
            } else {
                Ok(ttl)
            }
        };
        let day = Duration::from_secs(24 * 3600);
        let access_token_ttl = check(self.access_token_ttl, day, "access tokens")?;
        let code_ttl = check(
            self.code_ttl,
            Duration::from_secs(600),
            "authorization codes",
        )?;
        let grant_ttl = check(self.grant_ttl, 3650 * day, "grants")?;
        let refresh_token_ttl = check(self.refresh_token_ttl, grant_ttl, "refresh tokens")?;
        let public_refresh_token_ttl = check(
            self.public_refresh_token_ttl,
            grant_ttl,
            "public refresh tokens",
        )?;

        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_size) {
            return Err(ConfigError::Invalid(
                "max_body_size must be between 1 KiB and 16 MiB".into(),
            ));
        }
        let request_timeout = check(
            self.request_timeout,
            Duration::from_secs(600),
            "the request timeout",
        )?;
        if request_timeout < Duration::from_secs(1) {
            return Err(ConfigError::InvalidLifetime("the request timeout"));
        }

        if self.refresh_grace > Duration::from_secs(600) {
            return Err(ConfigError::InvalidLifetime("the refresh grace window"));
        }

        let vault = self.vault.map(VaultBuilder::check).transpose()?;

        let login = self.login.unwrap_or_else(|| Arc::new(LocalLogin::new()));
        if login.requires_loopback() && !issuer_loopback {
            return Err(ConfigError::HeadlessNotLoopback(issuer));
        }

        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let now = self.clock.unix_seconds();
        let mut key_policy = self.key_policy;
        key_policy.keep_after_retire = key_policy.keep_after_retire.max(access_token_ttl);
        let keys = KeySet::load_or_create(store.as_ref(), key_policy, now)
            .await
            .map_err(ConfigError::Keys)?;

        #[cfg(feature = "cimd")]
        let cimd = match self.cimd {
            Some(config) => Some(
                CimdFetcher::new(config).map_err(|e| ConfigError::Invalid(e.to_string().into()))?,
            ),
            None => None,
        };

        let config = Config {
            secure_cookies: issuer.starts_with("https://"),
            loopback: issuer_loopback,
            issuer,
            issuer_path,
            resources,
            default_resource,
            scopes: all_scopes,
            scopes_advertised,
            default_scopes,
            access_token_ttl,
            refresh_token_ttl,
            public_refresh_token_ttl,
            refresh_grace: self.refresh_grace.as_secs(),
            grant_ttl,
            code_ttl,
            dynamic_registration: self.dynamic_registration,
            reuse_public_registrations: self.reuse_public_registrations,
            unused_public_client_ttl: self.unused_public_client_ttl,
            client_credentials: self.client_credentials,
            issue_refresh_tokens: self.issue_refresh_tokens,
            introspection_clients: self.introspection_clients,
            max_body_bytes: self.max_body_size,
            request_timeout,
            #[cfg(feature = "dpop")]
            dpop: if self.dpop {
                use mcp_auth_jwt::dpop::{DEFAULT_NONCE_LIFETIME, DpopNonces};
                let nonces = match (&self.dpop_nonce_secret, self.dpop_nonces) {
                    (Some(secret), _) if secret.expose().len() < 32 => {
                        return Err(ConfigError::Invalid(
                            "the DPoP nonce secret needs at least 32 bytes".into(),
                        ));
                    }
                    (Some(secret), _) => Some(DpopNonces::with_secret(
                        secret.expose().as_bytes(),
                        DEFAULT_NONCE_LIFETIME,
                        Arc::clone(&self.clock),
                    )),
                    (None, true) => Some(
                        DpopNonces::new(Arc::clone(&self.clock))
                            .map_err(|e| ConfigError::Invalid(e.to_string().into()))?,
                    ),
                    (None, false) => None,
                };
                Some(crate::config::DpopSettings {
                    verifier: mcp_auth_jwt::dpop::DpopVerifier::new(Arc::clone(&self.clock)),
                    nonces,
                })
            } else {
                None
            },
        };
        #[cfg(feature = "cimd")]
        let cimd_on = cimd.is_some();
        #[cfg(not(feature = "cimd"))]
        let cimd_on = false;
        #[cfg(feature = "jwt-assertions")]
        let jwt_bearer = {
            let mut trusted: Vec<crate::jwt_bearer::TrustedIssuer> = Vec::new();
            for issuer in self.jwt_bearer {
                let issuer = issuer.check(&config, self.clock.clone())?;
                if trusted.iter().any(|t| t.issuer == issuer.issuer) {
                    return Err(ConfigError::Invalid(
                        format!("JWT bearer issuer {:?} is configured twice", issuer.issuer).into(),
                    ));
                }
                trusted.push(issuer);
            }
            trusted
        };
        #[cfg(feature = "jwt-assertions")]
        let jwt_bearer_on = !jwt_bearer.is_empty();
        #[cfg(not(feature = "jwt-assertions"))]
        let jwt_bearer_on = false;
        let metadata = crate::metadata::build(&config, false, cimd_on, jwt_bearer_on);
        let openid = crate::metadata::build(&config, true, cimd_on, jwt_bearer_on);
        let metadata_json = serde_json::to_vec(&metadata)
            .map_err(|e| ConfigError::Invalid(e.to_string().into()))?;
        let openid_json =
            serde_json::to_vec(&openid).map_err(|e| ConfigError::Invalid(e.to_string().into()))?;

        let mut machine_clients = Vec::new();
        for client in self.machine_clients {
            machine_clients.push(client.into_record(&config, now)?);
        }
        for record in machine_clients {
            store.put_client(record).await?;
        }
        // The clients a workload issuer names, when the store does not hold them: public,
        // operator-registered, for the JWT bearer grant only.
        #[cfg(feature = "jwt-assertions")]
        for issuer in &jwt_bearer {
            for client_id in &issuer.clients {
                if store.get_client(client_id).await?.is_none() {
                    let mut metadata = mcp_auth_core::metadata::ClientMetadata::default();
                    metadata.grant_types = vec![crate::jwt_bearer::JWT_BEARER_GRANT_TYPE.into()];
                    metadata.token_endpoint_auth_method = Some("none".into());
                    store
                        .put_client(
                            crate::store::ClientRecord::public(client_id.clone(), metadata, now)
                                .with_source(crate::store::ClientSource::Static),
                        )
                        .await?;
                }
            }
        }
        // Keys of clients that registered themselves are fetched with the metadata-document
        // fetcher's SSRF guards (and its loopback setting).
        #[cfg(feature = "jwt-assertions")]
        let client_keys = {
            let guard = match &cimd {
                Some(fetcher) => fetcher.clone(),
                None => CimdFetcher::new(CimdConfig::default())
                    .map_err(|e| ConfigError::Invalid(e.to_string().into()))?,
            };
            crate::assertion::ClientKeys::new(self.clock.clone(), guard)
        };
        // What was revoked before a restart stays revoked for the tokens still alive.
        let revocations = Revocations::new(&config.issuer);
        let lifetime = access_token_ttl.as_secs();
        revocations.load(
            store
                .list_revocations(now, now.saturating_sub(lifetime))
                .await?,
            lifetime,
        );

        let vault_store = store.clone();
        let limit_store = store.clone();
        #[cfg(feature = "jwt-assertions")]
        let replay_store = store.clone();
        let vault_clock = self.clock.clone();
        let instance = crate::random::random_id().map_err(|_| {
            ConfigError::Invalid("the system random number generator failed".into())
        })?;
        let revocation_poll = self.revocation_poll;
        let server = AuthorizationServer {
            // The vault revokes grants through the server that owns it: a weak link back.
            inner: Arc::new_cyclic(|server: &std::sync::Weak<Inner>| Inner {
                instance,
                config,
                store,
                keys,
                login,
                clock: self.clock,
                #[cfg(feature = "cimd")]
                cimd,
                flow: Flow::new(limit_store.clone()),
                metadata_json: metadata_json.into(),
                openid_json: openid_json.into(),
                registrations: Limiter::new(
                    "registrations",
                    self.registrations_per_minute,
                    60,
                    limit_store.clone(),
                ),
                failed_logins: Limiter::new(
                    "failed-logins",
                    self.failed_logins_per_user,
                    15 * 60,
                    limit_store.clone(),
                ),
                password_checks: tokio::sync::Semaphore::new(4),
                failed_client_auths: Limiter::new(
                    "failed-client-auths",
                    self.failed_client_auths,
                    5 * 60,
                    limit_store.clone(),
                ),
                authorization_pages: Limiter::new(
                    "authorization-pages",
                    self.authorization_pages_per_address,
                    crate::flow::TRANSACTION_TTL,
                    limit_store,
                ),
                revocations,
                vault: vault.map(|v| v.bind(vault_store, vault_clock, server.clone())),
                #[cfg(feature = "jwt-assertions")]
                client_keys,
                #[cfg(feature = "jwt-assertions")]
                jwt_bearer,
                #[cfg(feature = "jwt-assertions")]
                replay: crate::replay::ReplayCheck::new(replay_store),
            }),
        };
        if !revocation_poll.is_zero() {
            follow_revocations(Arc::downgrade(&server.inner), revocation_poll, now);
        }
        Ok(server)
    }
}

fn parse_scopes(list: &[String]) -> Result<ScopeSet, ConfigError> {
    let mut set = ScopeSet::new();
    for raw in list {
        let scope = Scope::new(raw).map_err(|_| ConfigError::InvalidScope(raw.clone()))?;
        set.insert(scope);
    }
    Ok(set)
}

/// RFC 8414 §2: https, no query, no fragment; http allowed on loopback for development.
fn check_issuer(raw: &str) -> Result<String, ConfigError> {
    let invalid = || ConfigError::InvalidIssuer(raw.to_owned());
    let url = url::Url::parse(raw).map_err(|_| invalid())?;
    if url.query().is_some() || url.fragment().is_some() || raw.contains('#') || raw.contains('?') {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_url(raw) => {}
        _ => return Err(invalid()),
    }
    // The advertised issuer is the configured string without a terminating slash.
    Ok(raw.trim_end_matches('/').to_owned())
}
