//! Client authentication at the token and revocation endpoints (AS-23), and resource-server
//! authentication at the introspection endpoint (AS-55).
//!
//! Rules:
//! 1. At most one method per request: `Authorization: Basic` together with a `client_secret`
//!    in the body is refused (`invalid_request`).
//! 2. Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1) and decoded so.
//! 3. A confidential client must use the method it registered; a public client sends only its
//!    `client_id` and must not send a secret.
//! 4. Failures are `invalid_client`, 401, with `WWW-Authenticate: Basic` when the client used
//!    the `Authorization` header.
//! 5. Secrets are compared through their SHA-256 in constant time.
//! 6. Failures are counted per `client_id` and per address (when the router is served with
//!    connect info). Over the limit, the id or address gets 429 `temporarily_unavailable` with
//!    `Retry-After` before its credentials are even looked at, until the window ends. A public
//!    client (no secret presented) has nothing to guess and is not held up by the check (its
//!    failures still count), which keeps the counters, shared by every replica through the
//!    store, off the path of the ordinary grant.
//! 7. `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9; feature `jwt-assertions`):
//!    `client_assertion_type` is `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
//!    `client_assertion` a JWT signed with an asymmetric algorithm (never `none` or HMAC) by a
//!    key of the client's `jwks` or `jwks_uri` ([`crate::assertion::ClientKeys`]); `iss` = `sub`
//!    = the `client_id` (the body's `client_id`, when sent, must be it too); `aud` this server's
//!    issuer or token endpoint; `exp` present and at most 10 minutes ahead; `jti` present and
//!    used once ([`crate::replay`]: a replay is `invalid_client`, 401). A client that
//!    registered `private_key_jwt` must use it, and only such a client may.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use mcp_auth_core::Secret;
use subtle::ConstantTimeEq;

use crate::error::OAuthError;
use crate::form::Params;
use crate::state::Inner;
use crate::store::{ClientAuthMethod, ClientRecord, TokenHash};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credentials a request presented.
#[derive(Debug)]
pub(crate) struct Presented {
    pub(crate) client_id: String,
    /// The secret, or for `private_key_jwt` the client assertion.
    pub(crate) secret: Option<Secret>,
    pub(crate) method: ClientAuthMethod,
}

impl Presented {
    /// The error to answer when these credentials are wrong.
    pub(crate) fn fail(&self, description: &'static str) -> OAuthError {
        let e = OAuthError::invalid_client(description);
        if self.method == ClientAuthMethod::ClientSecretBasic {
            e.with_basic_challenge()
        } else {
            e
        }
    }
}

/// Read the credentials from the `Authorization` header or the body (rule 1, 2).
pub(crate) fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let mut auth = headers.get_all(http::header::AUTHORIZATION).iter();
    let header = auth.next();
    if auth.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    if let Some(value) = header {
        let basic_error =
            || OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge();
        let value = value.to_str().map_err(|_| basic_error())?;
        let (scheme, rest) = value.split_once(' ').ok_or_else(basic_error)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(
                OAuthError::invalid_client("unsupported client authentication scheme")
                    .with_basic_challenge(),
            );
        }
        if params.get("client_secret").is_some() || params.get("client_assertion").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let decoded = STANDARD.decode(rest.trim()).map_err(|_| basic_error())?;
        let decoded = String::from_utf8(decoded).map_err(|_| basic_error())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(basic_error)?;
        let id = form_decode(id);
        let secret = form_decode(secret);
        if id.is_empty() {
            return Err(basic_error());
        }
        if let Some(body_id) = params.get("client_id")
            && body_id != id
        {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(Secret::new(secret)),
            method: ClientAuthMethod::ClientSecretBasic,
        });
    }
    match (
        params.get("client_assertion"),
        params.get("client_assertion_type"),
    ) {
        (None, None) => {}
        (Some(assertion), Some(JWT_ASSERTION_TYPE)) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            // The client is the assertion's subject (RFC 7521 §4.2: client_id is optional);
            // read unverified only to find its keys, checked after the signature.
            let client_id = match params.get("client_id") {
                Some(id) => id.to_owned(),
                None => assertion_subject(assertion).ok_or_else(|| {
                    OAuthError::invalid_client("the client assertion names no client")
                })?,
            };
            return Ok(Presented {
                client_id,
                secret: Some(Secret::new(assertion)),
                method: ClientAuthMethod::PrivateKeyJwt,
            });
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_client(
                "unsupported client_assertion_type: use urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        }
    }
    let client_id = params.get("client_id").ok_or_else(|| {
        OAuthError::invalid_client("client authentication is required (client_id missing)")
    })?;
    match params.get("client_secret") {
        Some(secret) => Ok(Presented {
            client_id: client_id.to_owned(),
            secret: Some(Secret::new(secret)),
            method: ClientAuthMethod::ClientSecretPost,
        }),
        None => Ok(Presented {
            client_id: client_id.to_owned(),
            secret: None,
            method: ClientAuthMethod::None,
        }),
    }
}

/// The `sub` of a client assertion, unverified.
fn assertion_subject(assertion: &str) -> Option<String> {
    #[cfg(feature = "jwt-assertions")]
    {
        crate::assertion::unverified_claims(assertion)
            .and_then(|claims| crate::assertion::string(&claims, "sub").map(str::to_owned))
            .filter(|sub| !sub.is_empty())
    }
    #[cfg(not(feature = "jwt-assertions"))]
    {
        let _ = assertion;
        None
    }
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Rule 6: the throttle keys of one request.
struct Throttle {
    id: String,
    address: Option<String>,
    now: u64,
}

impl Throttle {
    fn new(inner: &Inner, parts: &Parts, client_id: &str) -> Self {
        let mut id = String::from("id:");
        // Bounded keys: a client id is at most a URL; 256 bytes identify it.
        for c in client_id.chars() {
            if id.len() + c.len_utf8() > 260 {
                break;
            }
            id.push(c);
        }
        let address = crate::limit::address_key(&parts.extensions);
        Self {
            id,
            address,
            now: inner.now(),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.address.as_deref())
    }

    /// Refuse when the id or the address is over the limit.
    async fn check(&self, inner: &Inner) -> Result<(), OAuthError> {
        let limiter = &inner.failed_client_auths;
        for key in self.keys() {
            if limiter.allows(key, self.now).await? {
                continue;
            }
            #[cfg(feature = "tracing")]
            tracing::warn!(key = %key, "client authentication throttled after repeated failures");
            let mut error = OAuthError::new(
                mcp_auth_core::error::ErrorCode::TemporarilyUnavailable,
                "too many failed client authentications; try again later",
            )
            .with_status(StatusCode::TOO_MANY_REQUESTS);
            error.retry_after = Some(limiter.retry_after(key, self.now).await);
            return Err(error);
        }
        Ok(())
    }

    /// Count a failure against the id and the address; `false` when either is now over the
    /// limit.
    async fn fail(&self, inner: &Inner) -> Result<bool, OAuthError> {
        let mut within = true;
        for key in self.keys() {
            within &= inner
                .failed_client_auths
                .hit(key, self.now)
                .await?
                .is_within();
        }
        Ok(within)
    }
}

/// Authenticate a client for the token or revocation endpoint (rules 3–6).
pub(crate) async fn authenticate(
    inner: &Inner,
    parts: &Parts,
    params: &Params,
) -> Result<ClientRecord, OAuthError> {
    let presented = presented(&parts.headers, params)?;
    crate::trace::Trace::current().record("client_id", &presented.client_id);
    let throttle = Throttle::new(inner, parts, &presented.client_id);
    if presented.secret.is_some() {
        throttle.check(inner).await?;
    }
    let result = check_client(inner, &presented).await;
    let failed = result
        .as_ref()
        .is_err_and(|e| e.status != StatusCode::SERVICE_UNAVAILABLE);
    if failed && !throttle.fail(inner).await? {
        // No secret was presented, so the check was skipped: an id or address already over
        // the limit learns it now.
        throttle.check(inner).await?;
    }
    result
}

async fn check_client(inner: &Inner, presented: &Presented) -> Result<ClientRecord, OAuthError> {
    let client = match crate::clients::resolve(inner, &presented.client_id).await {
        Ok(client) => client,
        Err(e) if e.1 => return Err(OAuthError::temporarily_unavailable()),
        Err(_) => return Err(presented.fail("unknown client")),
    };
    let now = inner.now();
    match (client.auth_method, presented.method) {
        (ClientAuthMethod::None, ClientAuthMethod::None) => Ok(client),
        (ClientAuthMethod::None, _) => {
            Err(presented.fail("this is a public client: send client_id without a secret"))
        }
        (_, ClientAuthMethod::None) => Err(presented.fail("this client must authenticate")),
        (registered, used) if registered != used => Err(presented.fail(match registered {
            ClientAuthMethod::ClientSecretBasic => {
                "this client registered client_secret_basic: use HTTP Basic"
            }
            ClientAuthMethod::PrivateKeyJwt => {
                "this client registered private_key_jwt: send a client assertion"
            }
            _ => "this client registered client_secret_post: send client_secret in the body",
        })),
        (ClientAuthMethod::PrivateKeyJwt, _) => {
            check_assertion(inner, presented, &client).await?;
            Ok(client)
        }
        _ => {
            let ok = match (&client.secret_hash, &presented.secret) {
                (Some(hash), Some(secret)) => hash.verify(secret.expose()),
                _ => false,
            };
            if !ok {
                #[cfg(feature = "tracing")]
                tracing::info!(client_id = %client.client_id, "client authentication failed");
                return Err(presented.fail("client authentication failed"));
            }
            if client.secret_expires_at != 0 && now >= client.secret_expires_at {
                return Err(presented.fail("the client secret has expired"));
            }
            Ok(client)
        }
    }
}

/// Rule 7: the client assertion of a `private_key_jwt` client.
#[cfg(feature = "jwt-assertions")]
async fn check_assertion(
    inner: &Inner,
    presented: &Presented,
    client: &ClientRecord,
) -> Result<(), OAuthError> {
    use crate::assertion::{self, Rules};
    use crate::replay::Use;

    let Some(token) = &presented.secret else {
        return Err(presented.fail("the client assertion is missing"));
    };
    let verifier = inner
        .client_keys
        .verifier(client)
        .map_err(|why| presented.fail(why))?;
    let claims = match verifier.verify(token.expose()).await {
        Ok(claims) => claims,
        Err(e) if e.is_unavailable() => {
            #[cfg(feature = "tracing")]
            tracing::warn!(client_id = %client.client_id, "the client's key set is unavailable");
            return Err(OAuthError::temporarily_unavailable());
        }
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::info!(client_id = %client.client_id, reason = ?_e.kind(), "client assertion refused");
            return Err(presented
                .fail("the client assertion is not valid (signature, algorithm, key or type)"));
        }
    };
    let now = inner.now();
    let checked = assertion::check_claims(
        &inner.config,
        &claims,
        &Rules {
            issuer: &client.client_id,
            max_lifetime: assertion::CLIENT_ASSERTION_MAX_LIFETIME,
            require_jti: true,
            now,
        },
    )
    .map_err(|why| presented.fail(why))?;
    if assertion::string(&claims, "sub") != Some(client.client_id.as_str()) {
        return Err(presented.fail("the client assertion's subject is not the client"));
    }
    let jti = checked.jti.as_deref().unwrap_or_default();
    match inner
        .replay
        .first_use("client", &client.client_id, jti, checked.exp, now)
        .await
    {
        Use::First => Ok(()),
        Use::Replayed => {
            #[cfg(feature = "tracing")]
            tracing::warn!(client_id = %client.client_id, "client assertion replayed");
            Err(presented.fail("the client assertion was already used"))
        }
        Use::Full => Err(OAuthError::temporarily_unavailable()),
    }
}

#[cfg(not(feature = "jwt-assertions"))]
async fn check_assertion(
    _inner: &Inner,
    presented: &Presented,
    _client: &ClientRecord,
) -> Result<(), OAuthError> {
    Err(presented.fail("private_key_jwt is not supported by this server"))
}

/// Authenticate a resource server at the introspection endpoint against the configured
/// credentials (rules 1, 2, 5, 6). Returns the caller's id.
pub(crate) async fn authenticate_introspector(
    inner: &Inner,
    parts: &Parts,
    params: &Params,
) -> Result<String, OAuthError> {
    let presented = presented(&parts.headers, params)?;
    let throttle = Throttle::new(inner, parts, &presented.client_id);
    throttle.check(inner).await?;
    let Some(secret) = &presented.secret else {
        let _within = throttle.fail(inner).await?;
        return Err(presented.fail("introspection requires client credentials"));
    };
    let candidate = TokenHash::of(secret.expose());
    let mut found = false;
    for (id, hash) in &inner.config.introspection_clients {
        let same_id: bool = id.as_bytes().ct_eq(presented.client_id.as_bytes()).into();
        let same_secret: bool = hash.as_bytes().ct_eq(candidate.as_bytes()).into();
        found |= same_id & same_secret;
    }
    if found {
        Ok(presented.client_id)
    } else {
        let _within = throttle.fail(inner).await?;
        #[cfg(feature = "tracing")]
        tracing::info!(client_id = %presented.client_id, "introspection authentication failed");
        Err(presented.fail("introspection credentials are not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let p = presented(&basic("my%20client", "s%3Acret"), &Params::default()).unwrap();
        assert_eq!(p.client_id, "my client");
        assert_eq!(p.secret.unwrap().expose(), "s:cret");
        assert_eq!(p.method, ClientAuthMethod::ClientSecretBasic);
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let params = Params::parse(b"client_id=a&client_secret=b");
        let e = presented(&basic("a", "b"), &params).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
    }

    #[test]
    fn public_client_presents_only_its_id() {
        let p = presented(&HeaderMap::new(), &Params::parse(b"client_id=abc")).unwrap();
        assert_eq!(p.method, ClientAuthMethod::None);
        assert!(p.secret.is_none());
    }

    #[test]
    fn failed_basic_gets_a_basic_challenge() {
        let p = presented(&basic("a", "b"), &Params::default()).unwrap();
        let e = p.fail("nope");
        assert_eq!(e.status, http::StatusCode::UNAUTHORIZED);
        assert!(e.www_authenticate.is_some());
    }

    #[test]
    fn missing_client_id_is_invalid_client() {
        let e = presented(&HeaderMap::new(), &Params::default()).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_client");
    }
}
