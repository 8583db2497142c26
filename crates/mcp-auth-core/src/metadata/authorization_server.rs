use serde::{Deserialize, Serialize};

use super::Extra;

/// OAuth 2.0 Authorization Server Metadata (RFC 8414 §2), with the OpenID Connect Discovery 1.0
/// fields, RFC 9207's `authorization_response_iss_parameter_supported`, RFC 9728's
/// `protected_resources` and the Client ID Metadata Document flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier (REQUIRED). Must equal, byte for byte, the issuer the document was
    /// looked up for (RFC 8414 §3.3).
    pub issuer: String,
    /// The authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The JWK Set with the keys that sign tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The RFC 7591 dynamic registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Supported `response_type` values (REQUIRED by RFC 8414; `["code"]` for OAuth 2.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    /// Supported `response_mode` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    /// Supported grant types. When absent RFC 8414 means `authorization_code` and `implicit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint (absent means `client_secret_basic`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// JWS algorithms for `private_key_jwt` / `client_secret_jwt`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Developer documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// UI languages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_locales_supported: Vec<String>,
    /// The policy page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_policy_uri: Option<String>,
    /// The terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_tos_uri: Option<String>,
    /// The RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// PKCE methods; MCP clients refuse an AS that does not list `S256` (SPEC C-10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authorization_response_iss_parameter_supported: bool,
    /// Client ID Metadata Documents are accepted as `client_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9728 §4: resources this server issues tokens for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_resources: Vec<String>,
    /// OIDC: the UserInfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// OIDC: subject identifier types (REQUIRED in an OIDC document).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// OIDC: ID token signing algorithms (REQUIRED in an OIDC document).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// OIDC: claims that can be supplied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// Members not known to this crate.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AuthorizationServerMetadata {
    /// A document with only `issuer` set.
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            registration_endpoint: None,
            scopes_supported: Vec::new(),
            response_types_supported: Vec::new(),
            response_modes_supported: Vec::new(),
            grant_types_supported: Vec::new(),
            token_endpoint_auth_methods_supported: Vec::new(),
            token_endpoint_auth_signing_alg_values_supported: Vec::new(),
            service_documentation: None,
            ui_locales_supported: Vec::new(),
            op_policy_uri: None,
            op_tos_uri: None,
            revocation_endpoint: None,
            revocation_endpoint_auth_methods_supported: Vec::new(),
            introspection_endpoint: None,
            introspection_endpoint_auth_methods_supported: Vec::new(),
            code_challenge_methods_supported: Vec::new(),
            authorization_response_iss_parameter_supported: false,
            client_id_metadata_document_supported: false,
            protected_resources: Vec::new(),
            userinfo_endpoint: None,
            subject_types_supported: Vec::new(),
            id_token_signing_alg_values_supported: Vec::new(),
            claims_supported: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// Whether the document advertises PKCE `S256`.
    #[must_use]
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == crate::pkce::S256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycloak_shaped_document_round_trips() {
        let json = serde_json::json!({
            "issuer": "http://127.0.0.1:8080/realms/mcp",
            "authorization_endpoint": "http://127.0.0.1:8080/realms/mcp/protocol/openid-connect/auth",
            "token_endpoint": "http://127.0.0.1:8080/realms/mcp/protocol/openid-connect/token",
            "jwks_uri": "http://127.0.0.1:8080/realms/mcp/protocol/openid-connect/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "mtls_endpoint_aliases": {"token_endpoint": "x"},
            "frontchannel_logout_supported": true
        });
        let doc: AuthorizationServerMetadata = serde_json::from_value(json.clone()).unwrap();
        assert!(doc.supports_s256());
        assert!(doc.extra.contains_key("mtls_endpoint_aliases"));
        assert_eq!(serde_json::to_value(&doc).unwrap(), json);
    }

    #[test]
    fn issuer_is_required() {
        assert!(serde_json::from_str::<AuthorizationServerMetadata>("{}").is_err());
    }
}
