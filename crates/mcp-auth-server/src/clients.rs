//! Finding a client (the store, or a Client ID Metadata Document) and registering the clients an
//! operator arranges: [`MachineClient`].

use std::fmt;

use mcp_auth_core::metadata::ClientMetadata;
use mcp_auth_core::{OFFLINE_ACCESS, ResourceId, Scope, Secret};

use crate::error::ConfigError;
use crate::state::Inner;
use crate::store::{ClientAuthMethod, ClientRecord, ClientSource, TokenHash};

/// Shortest secret an operator may give a machine client (characters).
pub(crate) const MIN_SECRET_CHARS: usize = 32;

/// Why a client could not be resolved (safe to show), and whether it was the store failing
/// (then the answer is 503, try again) rather than the client.
#[derive(Debug)]
pub(crate) struct UnknownClient(pub(crate) String, pub(crate) bool);

/// Find a client: a Client ID Metadata Document for URL-shaped ids (when enabled), else the store.
pub(crate) async fn resolve(inner: &Inner, client_id: &str) -> Result<ClientRecord, UnknownClient> {
    #[cfg(feature = "cimd")]
    if let Some(cimd) = &inner.cimd
        && cimd.is_document_url(client_id)
    {
        return cimd.resolve(client_id, inner.now()).await.map_err(|e| {
            UnknownClient(
                format!(
                    "The client's metadata document could not be used: {}",
                    e.message()
                ),
                false,
            )
        });
    }
    match inner.store.get_client(client_id).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(UnknownClient(
            "This application is not registered with this server.".into(),
            false,
        )),
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %_e, "store failure while resolving a client");
            Err(UnknownClient(
                "The server could not look the application up. Try again shortly.".into(),
                true,
            ))
        }
    }
}

/// A machine client the operator arranges: a confidential client that obtains tokens with the
/// `client_credentials` grant for exactly the scopes (and resources) listed here, with no user.
///
/// Register one with
/// [`AuthorizationServerBuilder::machine_client`](crate::AuthorizationServerBuilder::machine_client)
/// (configuration) or
/// [`AuthorizationServer::register_machine_client`](crate::AuthorizationServer::register_machine_client)
/// (at run time, e.g. from an admin tool). Both need
/// [`client_credentials(true)`](crate::AuthorizationServerBuilder::client_credentials). This is
/// the only way to a machine grant: open registration refuses `client_credentials`.
///
/// `Debug` never shows the secret.
///
/// # Example
///
/// ```
/// use mcp_auth_core::Secret;
/// use mcp_auth_server::{AuthorizationServer, MachineClient, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The secret comes from your secret manager; at least 32 characters.
/// let secret = Secret::new("b3JkZXItc3luYy1qb2ItZXhhbXBsZS1zZWNyZXQtMDE");
/// let server = AuthorizationServer::builder("https://mcp.example.com")
///     .resource("https://mcp.example.com/mcp")
///     .scopes(["mcp:tools", "notes:read"])
///     .unadvertised_scopes(["notes:admin"])
///     .client_credentials(true)
///     .machine_client(MachineClient::new("order-sync", secret).scopes(["notes:read"]))
///     .store(MemoryStore::new())
///     .build()
///     .await?;
/// let client = server.store().get_client("order-sync").await?.unwrap();
/// assert_eq!(client.machine_scope.as_deref(), Some("notes:read"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct MachineClient {
    client_id: String,
    /// `None` for a client authenticating with `private_key_jwt`.
    secret: Option<Secret>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    auth_method: ClientAuthMethod,
    scopes: Vec<String>,
    resources: Vec<String>,
    name: Option<String>,
}

impl fmt::Debug for MachineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineClient")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("jwks_uri", &self.jwks_uri)
            .field("auth_method", &self.auth_method)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .finish()
    }
}

impl MachineClient {
    /// A client `client_id` authenticating with `secret` (HTTP Basic by default). Until
    /// [`scopes`](Self::scopes) names some, registering it fails: no allow list, no machine token.
    pub fn new(client_id: impl Into<String>, secret: Secret) -> Self {
        Self {
            client_id: client_id.into(),
            secret: Some(secret),
            jwks: None,
            jwks_uri: None,
            auth_method: ClientAuthMethod::ClientSecretBasic,
            scopes: Vec::new(),
            resources: Vec::new(),
            name: None,
        }
    }

    /// A client `client_id` authenticating with `private_key_jwt` (RFC 7523 client assertions)
    /// signed by a key of `jwks` (a JWK Set of public keys, `{"keys": [...]}`). Feature
    /// `jwt-assertions`.
    #[cfg(feature = "jwt-assertions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt-assertions")))]
    pub fn with_jwks(client_id: impl Into<String>, jwks: serde_json::Value) -> Self {
        let mut client = Self::new(client_id, Secret::new(""));
        client.secret = None;
        client.jwks = Some(jwks);
        client.auth_method = ClientAuthMethod::PrivateKeyJwt;
        client
    }

    /// A client `client_id` authenticating with `private_key_jwt`, its public keys at
    /// `jwks_uri` (fetched and cached like every JWK Set; https, or http on loopback). Feature
    /// `jwt-assertions`.
    #[cfg(feature = "jwt-assertions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt-assertions")))]
    pub fn with_jwks_uri(client_id: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        let mut client = Self::new(client_id, Secret::new(""));
        client.secret = None;
        client.jwks_uri = Some(jwks_uri.into());
        client.auth_method = ClientAuthMethod::PrivateKeyJwt;
        client
    }

    /// The scopes it may obtain (its allow list); each must be one the server knows, and not
    /// `offline_access` (a machine grant gets no refresh token).
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// A resource it may obtain tokens for (repeatable); default: every resource of the server.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// How a client with a secret authenticates: [`ClientAuthMethod::ClientSecretBasic`] (the
    /// default) or [`ClientAuthMethod::ClientSecretPost`]. (A client made with `with_jwks` or
    /// `with_jwks_uri` uses `private_key_jwt`.)
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// A display name (logs, `client_name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Check it against the server's configuration and make the record to store.
    pub(crate) fn into_record(
        self,
        config: &crate::config::Config,
        now: u64,
    ) -> Result<ClientRecord, ConfigError> {
        let invalid = |why: String| Err(ConfigError::Invalid(why.into()));
        if !config.client_credentials {
            return invalid(format!(
                "machine client {:?}: the client_credentials grant is off; turn it on with .client_credentials(true)",
                self.client_id
            ));
        }
        let id = self.client_id.as_str();
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) || id.contains("://")
        {
            return invalid(format!(
                "machine client id {id:?}: 1 to 255 characters, no control characters, not a URL"
            ));
        }
        match (&self.secret, self.auth_method) {
            (_, ClientAuthMethod::None) => {
                return invalid(format!(
                    "machine client {id:?}: a machine client authenticates (client_secret_basic, client_secret_post or private_key_jwt)"
                ));
            }
            (Some(_), ClientAuthMethod::PrivateKeyJwt) => {
                return invalid(format!(
                    "machine client {id:?}: private_key_jwt clients are made with with_jwks or with_jwks_uri"
                ));
            }
            (Some(secret), _) if secret.expose().chars().count() < MIN_SECRET_CHARS => {
                return invalid(format!(
                    "machine client {id:?}: the secret must have at least {MIN_SECRET_CHARS} characters"
                ));
            }
            _ => {}
        }
        #[cfg(feature = "jwt-assertions")]
        if let Some(jwks) = &self.jwks {
            let usable = jwks
                .as_object()
                .and_then(|doc| mcp_auth_jwt::KeySet::from_document(doc).ok())
                .is_some_and(|(set, _)| !set.is_empty());
            if !usable {
                return invalid(format!(
                    "machine client {id:?}: the JWK Set has no usable public key"
                ));
            }
        }
        if let Some(uri) = &self.jwks_uri
            && !uri.starts_with("https://")
            && !crate::config::is_loopback_url(uri)
        {
            return invalid(format!(
                "machine client {id:?}: the jwks_uri must be https (http only on loopback)"
            ));
        }
        if self.scopes.is_empty() {
            return invalid(format!(
                "machine client {id:?}: name the scopes it may obtain with .scopes(..)"
            ));
        }
        for raw in &self.scopes {
            let scope = Scope::new(raw).map_err(|_| ConfigError::InvalidScope(raw.clone()))?;
            // `offline_access` asks for a refresh token, which a machine grant never gets.
            if !config.scopes.contains(scope.as_str()) || scope.as_str() == OFFLINE_ACCESS {
                return Err(ConfigError::InvalidScope(raw.clone()));
            }
        }
        let mut resources = Vec::new();
        for raw in &self.resources {
            let known = ResourceId::parse(raw)
                .ok()
                .and_then(|id| config.resources.iter().find(|r| **r == id))
                .ok_or_else(|| ConfigError::InvalidResource(raw.clone()))?;
            resources.push(known.as_str().to_owned());
        }
        let scope = self.scopes.join(" ");
        let mut metadata = ClientMetadata::default();
        metadata.grant_types = vec!["client_credentials".to_owned()];
        metadata.token_endpoint_auth_method = Some(self.auth_method.as_str().to_owned());
        metadata.scope = Some(scope.clone());
        metadata.client_name = self.name;
        metadata.jwks = self.jwks;
        metadata.jwks_uri = self.jwks_uri;
        let record = match &self.secret {
            Some(secret) => ClientRecord::confidential(
                self.client_id,
                self.auth_method,
                TokenHash::of(secret.expose()),
                metadata,
                now,
            ),
            None => {
                let mut record = ClientRecord::public(self.client_id, metadata, now);
                record.auth_method = self.auth_method;
                record
            }
        };
        Ok(record
            .with_source(ClientSource::Static)
            .with_machine_scope(scope)
            .with_resources(resources))
    }
}
