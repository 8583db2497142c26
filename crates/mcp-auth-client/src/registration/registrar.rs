//! Which client an authorization server knows this application as: the algorithm of the
//! [module docs](crate::registration), run for the [`TokenManager`](crate::TokenManager).

use mcp_auth_core::{Clock, error::ErrorResponse, is_loopback_host, metadata::ClientInformation};

use super::credentials::{ClientCredentials, TokenEndpointAuthMethod};
use crate::{
    discovery::{Discovery, checked},
    error::{AuthError, AuthErrorKind},
    fetch::{Http, UrlPolicy},
    store::{RegistrationKind, StoredClient, StoredTokens, TokenStore},
};

/// Chooses, registers and remembers clients: what it needs from the manager's configuration.
pub(crate) struct Registrar<'a> {
    pub(crate) http: &'a Http,
    pub(crate) policy: UrlPolicy,
    pub(crate) clock: &'a dyn Clock,
    /// Where dynamic registrations are kept.
    pub(crate) store: &'a dyn TokenStore,
    /// The pre-registered credentials, in the order given.
    pub(crate) credentials: &'a [ClientCredentials],
    /// This application's Client ID Metadata Document URL.
    pub(crate) cimd_url: Option<&'a str>,
    /// Whether dynamic registration may be used.
    pub(crate) dynamic_registration: bool,
    /// The `client_name` sent at dynamic registration.
    pub(crate) client_name: &'a str,
    /// Held while registering, so that concurrent authorizations register once.
    pub(crate) registering: &'a tokio::sync::Mutex<()>,
}

impl Registrar<'_> {
    /// The client to use with the discovered authorization server, in the spec's priority
    /// (SPEC C-13): pre-registered, Client ID Metadata Document, dynamic (stored or new).
    pub(crate) async fn client(
        &self,
        found: &Discovery,
        redirect_uri: &str,
    ) -> Result<StoredClient, AuthError> {
        let issuer = found.issuer();
        let metadata = found.authorization_server_metadata();
        if let Some(client) = self.preregistered(issuer) {
            return Ok(client);
        }
        if let Some(cimd) = self
            .cimd_url
            .filter(|_| metadata.client_id_metadata_document_supported)
        {
            let mut client = StoredClient::new(issuer, RegistrationKind::MetadataDocument, cimd);
            client.redirect_uris.push(redirect_uri.to_owned());
            return Ok(client);
        }
        let _registering = self.registering.lock().await;
        if let Some(client) = self.store.load_client(issuer).await?
            && client.kind == RegistrationKind::Dynamic
            && !client.secret_expired(self.clock.unix_seconds())
        {
            return Ok(client);
        }
        let endpoint = metadata
            .registration_endpoint
            .as_deref()
            .filter(|_| self.dynamic_registration)
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Registration).with_detail(
                    "no pre-registered credentials, no usable client ID metadata document, no dynamic registration",
                )
            })?;
        let url = checked(self.policy, endpoint, "the registration endpoint")?;
        let body = serde_json::json!({
            "redirect_uris": [redirect_uri],
            "client_name": self.client_name,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": application_type(redirect_uri),
        });
        let response = self.http.post_json(&url, &body).await?;
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
        self.store.save_client(&client).await?;
        event!(
            info,
            client_id = %client.client_id,
            method = %client.token_endpoint_auth_method,
            "client registered dynamically"
        );
        Ok(client)
    }

    /// Pre-registered credentials for `issuer` (specific first, then for any issuer).
    pub(crate) fn preregistered(&self, issuer: &str) -> Option<StoredClient> {
        let creds = self.credentials;
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

    /// The client that obtained `record`, with its secret and method.
    pub(crate) async fn for_tokens(
        &self,
        record: &StoredTokens,
    ) -> Result<StoredClient, AuthError> {
        if let Some(client) = self
            .preregistered(&record.issuer)
            .filter(|c| c.client_id == record.client_id)
        {
            return Ok(client);
        }
        if let Some(client) = self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_type_is_native_for_loopback_and_custom_schemes_web_for_https() {
        assert_eq!(application_type("http://127.0.0.1:5173/callback"), "native");
        assert_eq!(application_type("http://localhost:5173/callback"), "native");
        assert_eq!(application_type("com.example.app:/callback"), "native");
        assert_eq!(application_type("https://app.example.com/callback"), "web");
    }
}
