//! The RFC 8414 metadata document (and its OIDC discovery variant), built once from the
//! configuration.

use mcp_auth_core::metadata::AuthorizationServerMetadata;

use crate::config::Config;

/// Build the document from the same configuration that decides which routes are mounted, so
/// only mounted endpoints are advertised.
pub(crate) fn build(
    config: &Config,
    openid: bool,
    cimd: bool,
    jwt_bearer: bool,
) -> AuthorizationServerMetadata {
    let mut m = AuthorizationServerMetadata::new(config.issuer.clone());
    m.authorization_endpoint = Some(config.url("/authorize"));
    m.token_endpoint = Some(config.url("/token"));
    #[cfg(feature = "dpop")]
    if let Some(dpop) = &config.dpop {
        let algs: Vec<serde_json::Value> = dpop
            .verifier
            .algorithms()
            .iter()
            .map(|a| serde_json::Value::from(a.as_str()))
            .collect();
        m.extra.insert(
            "dpop_signing_alg_values_supported".to_owned(),
            serde_json::Value::Array(algs),
        );
    }
    m.jwks_uri = Some(config.url("/jwks.json"));
    if config.dynamic_registration {
        m.registration_endpoint = Some(config.url("/register"));
    }
    m.scopes_supported = config
        .scopes_advertised
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    m.response_types_supported = vec!["code".into()];
    m.response_modes_supported = vec!["query".into()];
    m.grant_types_supported = vec!["authorization_code".into()];
    if config.issue_refresh_tokens {
        m.grant_types_supported.push("refresh_token".into());
    }
    if config.client_credentials {
        m.grant_types_supported.push("client_credentials".into());
    }
    if jwt_bearer {
        m.grant_types_supported
            .push("urn:ietf:params:oauth:grant-type:jwt-bearer".into());
    }
    #[cfg_attr(not(feature = "jwt-assertions"), allow(unused_mut))]
    let mut auth_methods: Vec<String> = ["none", "client_secret_basic", "client_secret_post"]
        .map(String::from)
        .to_vec();
    #[cfg(feature = "jwt-assertions")]
    {
        auth_methods.push("private_key_jwt".into());
        m.token_endpoint_auth_signing_alg_values_supported = crate::assertion::algorithm_names();
        // RFC 8414 §2: the revocation endpoint takes the same client assertions.
        m.extra.insert(
            "revocation_endpoint_auth_signing_alg_values_supported".into(),
            crate::assertion::algorithm_names().into(),
        );
    }
    m.token_endpoint_auth_methods_supported = auth_methods.clone();
    m.revocation_endpoint = Some(config.url("/revoke"));
    m.revocation_endpoint_auth_methods_supported = auth_methods;
    if !config.introspection_clients.is_empty() {
        m.introspection_endpoint = Some(config.url("/introspect"));
        m.introspection_endpoint_auth_methods_supported =
            vec!["client_secret_basic".into(), "client_secret_post".into()];
    }
    m.code_challenge_methods_supported = vec!["S256".into()];
    m.authorization_response_iss_parameter_supported = true;
    m.client_id_metadata_document_supported = cimd;
    m.protected_resources = config
        .resources
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    if openid {
        // OIDC Discovery §3 REQUIRED members (AS-6); this server issues no ID tokens, but the
        // document must still be well formed.
        m.subject_types_supported = vec!["public".into()];
        m.id_token_signing_alg_values_supported = vec!["ES256".into()];
    }
    m
}
