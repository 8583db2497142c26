//! What a client is known by: [`ClientCredentials`] given to the builder, and the
//! [`TokenEndpointAuthMethod`] it authenticates with. See the [module docs](crate::registration).

use std::{fmt, str::FromStr};

use mcp_auth_core::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a client authenticates at the token endpoint (RFC 7591 §2, OAuth 2.1 §2.4). Exactly one is
/// used per request (SPEC C-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenEndpointAuthMethod {
    /// A public client: `client_id` in the body, no secret.
    None,
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the body.
    ClientSecretPost,
    /// A JWT assertion signed with the client's private key (RFC 7523 §2.2): pre-registered
    /// credentials with [`ClientCredentials::private_key_jwt`] (feature `private-key-jwt`).
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// The registered name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method this crate cannot use (e.g. `tls_client_auth`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported token endpoint authentication method")]
pub struct UnsupportedAuthMethod(());

impl FromStr for TokenEndpointAuthMethod {
    type Err = UnsupportedAuthMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            _ => Err(UnsupportedAuthMethod(())),
        }
    }
}

impl Serialize for TokenEndpointAuthMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TokenEndpointAuthMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Pre-registered client credentials (SPEC C-14): for one issuer, or for whichever authorization
/// server the MCP server names. See the [module docs](crate::registration).
#[derive(Clone)]
pub struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) auth_method: Option<TokenEndpointAuthMethod>,
    pub(crate) issuer: Option<String>,
    pub(crate) signer: Option<std::sync::Arc<dyn SignAssertion>>,
}

/// Signs the client assertion of `private_key_jwt` (RFC 7523 §3): `iss` = `sub` = the client id,
/// `aud` = the authorization server's issuer.
pub(crate) trait SignAssertion: Send + Sync {
    fn sign(
        &self,
        client_id: &str,
        audience: &str,
        now_unix: u64,
    ) -> Result<String, crate::AuthError>;
}

#[cfg(feature = "private-key-jwt")]
struct PrivateKey {
    key: jsonwebtoken::EncodingKey,
    algorithm: jsonwebtoken::Algorithm,
}

#[cfg(feature = "private-key-jwt")]
impl SignAssertion for PrivateKey {
    fn sign(
        &self,
        client_id: &str,
        audience: &str,
        now_unix: u64,
    ) -> Result<String, crate::AuthError> {
        use base64::Engine as _;
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| {
            crate::AuthError::new(crate::AuthErrorKind::Protocol)
                .with_detail("the random source failed")
        })?;
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now_unix,
            "exp": now_unix.saturating_add(60),
            "jti": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jti),
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(self.algorithm),
            &claims,
            &self.key,
        )
        .map_err(|e| {
            crate::AuthError::new(crate::AuthErrorKind::Protocol)
                .with_detail("the client assertion could not be signed")
                .with_source(e)
        })
    }
}

impl ClientCredentials {
    /// A public client id (no secret: `none`).
    #[must_use]
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            auth_method: None,
            issuer: None,
            signer: None,
        }
    }

    /// Authenticate with `private_key_jwt` (RFC 7523): a short-lived JWT assertion signed with
    /// `private_key_pem` (PKCS#8 PEM; EC for `ES256`/`ES384`, RSA for `RS256`/`PS256`, …) instead
    /// of a secret. Feature `private-key-jwt`.
    ///
    /// # Errors
    /// [`ConfigError::PrivateKey`](crate::ConfigError::PrivateKey) for an unknown or unsuitable
    /// algorithm or a key that does not parse.
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn private_key_jwt(
        mut self,
        private_key_pem: &str,
        algorithm: &str,
    ) -> Result<Self, crate::ConfigError> {
        use jsonwebtoken::{Algorithm, EncodingKey};
        let algorithm: Algorithm = algorithm
            .parse()
            .map_err(|_| crate::ConfigError::PrivateKey)?;
        let pem = private_key_pem.as_bytes();
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
            _ => return Err(crate::ConfigError::PrivateKey),
        }
        .map_err(|_| crate::ConfigError::PrivateKey)?;
        self.signer = Some(std::sync::Arc::new(PrivateKey { key, algorithm }));
        self.client_secret = None;
        self.auth_method = Some(TokenEndpointAuthMethod::PrivateKeyJwt);
        Ok(self)
    }

    /// The client secret (then `client_secret_basic` unless
    /// [`token_endpoint_auth_method`](Self::token_endpoint_auth_method) says otherwise).
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The token endpoint authentication method.
    #[must_use]
    pub fn token_endpoint_auth_method(mut self, method: TokenEndpointAuthMethod) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// Use these credentials only with the authorization server whose issuer is exactly `issuer`.
    #[must_use]
    pub fn for_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The issuer these credentials are for; `None` for any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The method used at the token endpoint.
    #[must_use]
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        if self.signer.is_some() {
            return TokenEndpointAuthMethod::PrivateKeyJwt;
        }
        self.auth_method.unwrap_or(if self.client_secret.is_some() {
            TokenEndpointAuthMethod::ClientSecretBasic
        } else {
            TokenEndpointAuthMethod::None
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("auth_method", &self.auth_method())
            .field("issuer", &self.issuer)
            .field("private_key", &self.signer.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}
