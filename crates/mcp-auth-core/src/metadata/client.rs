use serde::{Deserialize, Serialize};

use super::Extra;
use crate::Secret;

/// Client metadata (RFC 7591 §2), also the body of a Client ID Metadata Document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// Redirect URIs, compared as exact strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// `none`, `client_secret_basic`, `client_secret_post`, `private_key_jwt`, …
    /// Absent means `client_secret_basic` (RFC 7591 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Grant types the client will use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    /// Response types the client will use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types: Vec<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The client's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Space-delimited scopes the client may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// People responsible for the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// The client's JWK Set URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The client's JWK Set by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// A software identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// The software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// `native` or `web` (OpenID Connect Registration; MCP 2026-07-28 asks clients to send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// Members not known to this crate.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A registration response (RFC 7591 §3.2.1): the client's credentials and its registered metadata.
///
/// `Debug` never prints the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientInformation {
    /// The client identifier.
    pub client_id: String,
    /// The client secret, for confidential clients.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret_opt"
    )]
    pub client_secret: Option<Secret>,
    /// When the identifier was issued (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<u64>,
    /// When the secret expires; 0 for never. REQUIRED when a secret is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// The registered metadata.
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

impl ClientInformation {
    /// Credentials with no secret and the given metadata.
    #[must_use]
    pub fn new(client_id: impl Into<String>, metadata: ClientMetadata) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            client_id_issued_at: None,
            client_secret_expires_at: None,
            metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_response_round_trips_and_hides_the_secret() {
        let json = serde_json::json!({
            "client_id": "c1",
            "client_secret": "hunter2",
            "client_secret_expires_at": 0,
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
            "x": true
        });
        let info: ClientInformation = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            info.client_secret.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        assert!(!format!("{info:?}").contains("hunter2"));
        assert_eq!(serde_json::to_value(&info).unwrap(), json);
    }
}
