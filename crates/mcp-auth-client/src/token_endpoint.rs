//! The token endpoint client: every request this crate makes to a token endpoint, with the
//! client's authentication and a DPoP proof, and the reading of its answer.
//!
//! One request goes like this:
//!
//! 1. The endpoint URL is checked like every other URL (https, or loopback http when allowed).
//! 2. The form gets the client's authentication, exactly one method (SPEC C-18): HTTP Basic with
//!    the form-urlencoded id and secret (`client_secret_basic`), the secret in the body
//!    (`client_secret_post`), a fresh signed assertion (`private_key_jwt`, RFC 7523 §2.2), or the
//!    bare `client_id` of a public client.
//! 3. With a DPoP key, a proof (RFC 9449 §5) for `POST` and the endpoint, carrying the nonce the
//!    server last gave. A `use_dpop_nonce` answer (RFC 9449 §8) is retried once with the new
//!    nonce; a second one, or a missing or malformed `DPoP-Nonce`, is a
//!    [`Dpop`](crate::AuthErrorKind::Dpop) error.
//! 4. The answer is read (OAuth 2.1 §3.2.3, §3.2.4): tokens become a [`Grant`]; `token_type` must
//!    be `Bearer`, or `DPoP` when a proof was sent. A 429, a 5xx, `temporarily_unavailable` or
//!    `server_error` is [`Transient`](crate::AuthErrorKind::Transient) (retried by the caller
//!    when it refreshes); any other OAuth error is
//!    [`Rejected`](crate::AuthErrorKind::Rejected), the grant is gone; an error without an OAuth
//!    body is [`Protocol`](crate::AuthErrorKind::Protocol).
//!
//! Each request runs in the `mcp_auth.client.token` span ([`crate::trace`]). The same reading of
//! errors serves the RFC 8693 token exchange at an enterprise IdP
//! ([`token_exchange`](TokenEndpoint::token_exchange), SEP-990).
//!
//! Which grant is asked for, and what becomes of the tokens, is the caller's business: the
//! [`manager`](crate::manager) refreshes, the [`authorize`](crate::authorize) run exchanges a
//! code or asks for a grant without a user.

use base64::{Engine, engine::general_purpose::STANDARD};
use mcp_auth_core::{
    Clock, ScopeSet, Secret,
    error::{ErrorCode, ErrorResponse},
};
use serde_json::Value;

use crate::{
    discovery::checked,
    dpop::{self, NonceHeader, Nonces, ProofKey},
    error::{AuthError, AuthErrorKind},
    fetch::{Http, UrlPolicy},
    registration::{ClientCredentials, TokenEndpointAuthMethod},
    store::StoredClient,
};

/// A successful token response.
pub(crate) struct Grant {
    pub(crate) access_token: Secret,
    /// `token_type` `DPoP`: the access token is bound to the proof key.
    pub(crate) dpop: bool,
    pub(crate) expires_in: Option<u64>,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) scope: Option<ScopeSet>,
}

/// The token endpoint client: what a request needs from the manager's configuration.
pub(crate) struct TokenEndpoint<'a> {
    pub(crate) http: &'a Http,
    pub(crate) policy: UrlPolicy,
    pub(crate) clock: &'a dyn Clock,
    /// The nonces servers gave, per origin.
    pub(crate) nonces: &'a Nonces,
    /// The pre-registered credentials: where a `private_key_jwt` client's key is.
    pub(crate) credentials: &'a [ClientCredentials],
}

impl TokenEndpoint<'_> {
    /// A token endpoint request with the client's authentication (exactly one method, SPEC C-18)
    /// and, with `key`, a DPoP proof (RFC 9449 §5). A `use_dpop_nonce` answer (RFC 9449 §8) is
    /// retried once with the server's nonce; a nonce in any answer is kept for the next request.
    /// In the `mcp_auth.client.token` span (`crate::trace`).
    pub(crate) async fn request(
        &self,
        endpoint: &str,
        form: Vec<(&'static str, String)>,
        client: &StoredClient,
        key: Option<&ProofKey>,
    ) -> Result<Grant, AuthError> {
        crate::trace::token_request(
            &form,
            &client.client_id,
            self.send(endpoint, form.clone(), client, key),
        )
        .await
    }

    /// [`request`](Self::request) outside its span.
    async fn send(
        &self,
        endpoint: &str,
        form: Vec<(&'static str, String)>,
        client: &StoredClient,
        key: Option<&ProofKey>,
    ) -> Result<Grant, AuthError> {
        let url = checked(self.policy, endpoint, "the token endpoint")?;
        let nonces = self.nonces;
        let mut nonce_retried = false;
        loop {
            let (pairs, basic) = self.client_authentication(form.clone(), client)?;
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let proof = key
                .map(|key| {
                    key.proof(
                        "POST",
                        url.as_str(),
                        self.clock.unix_seconds(),
                        None,
                        nonces,
                    )
                })
                .transpose()?;
            let response = self
                .http
                .post_form(&url, &pairs, basic.as_deref(), proof)
                .await?;
            if key.is_some() && is_use_dpop_nonce(&response.status, &response.body) {
                let nonce = match dpop::nonce_header(&response.headers) {
                    NonceHeader::Valid(nonce) => nonce,
                    NonceHeader::Absent => {
                        return Err(dpop::error(
                            "the authorization server asked for a DPoP nonce without sending one",
                        )
                        .with_status(response.status.as_u16()));
                    }
                    NonceHeader::Malformed => {
                        return Err(dpop::error(
                            "the authorization server sent a malformed DPoP-Nonce",
                        )
                        .with_status(response.status.as_u16()));
                    }
                };
                nonces.set(url.as_str(), nonce);
                if nonce_retried {
                    event!(
                        warn,
                        "the authorization server asked for a DPoP nonce again"
                    );
                    return Err(dpop::error(
                        "the authorization server asked for a new DPoP nonce again after the one retry",
                    )
                    .with_oauth(ErrorCode::UseDpopNonce)
                    .with_status(response.status.as_u16()));
                }
                nonce_retried = true;
                event!(
                    debug,
                    "the authorization server asked for a DPoP nonce; retrying once"
                );
                continue;
            }
            if key.is_some() {
                nonces.observe(url.as_str(), &response.headers);
            }
            return parse_token_response(&response.status, &response.body, key.is_some());
        }
    }

    /// The form with the client's authentication, and the HTTP Basic credentials if any. A
    /// `private_key_jwt` assertion is signed anew each time (a fresh `jti`).
    #[allow(clippy::type_complexity)] // a form and a header, named where used
    fn client_authentication(
        &self,
        mut form: Vec<(&'static str, String)>,
        client: &StoredClient,
    ) -> Result<(Vec<(&'static str, String)>, Option<String>), AuthError> {
        let mut basic = None;
        match (client.token_endpoint_auth_method, &client.client_secret) {
            (TokenEndpointAuthMethod::ClientSecretBasic, Some(secret)) => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                basic = Some(STANDARD.encode(format!(
                    "{}:{}",
                    encode(&client.client_id),
                    encode(secret.expose())
                )));
            }
            (TokenEndpointAuthMethod::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", client.client_id.clone()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            (TokenEndpointAuthMethod::PrivateKeyJwt, _) => {
                let signer = self
                    .credentials
                    .iter()
                    .filter(|c| c.client_id == client.client_id)
                    .find(|c| c.issuer.as_deref().is_none_or(|i| i == client.issuer))
                    .and_then(|c| c.signer.clone())
                    .ok_or_else(|| {
                        AuthError::new(AuthErrorKind::Registration)
                            .with_detail("private_key_jwt needs the client's private key")
                    })?;
                let assertion =
                    signer.sign(&client.client_id, &client.issuer, self.clock.unix_seconds())?;
                form.push(("client_id", client.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
            _ => form.push(("client_id", client.client_id.clone())),
        }
        Ok((form, basic))
    }

    /// SEP-990 step 1, an RFC 8693 token exchange at an enterprise IdP's token `endpoint`: the
    /// user's ID token (`id_token`, sent as this client `idp_client_id`) for an identity
    /// assertion grant naming the authorization server (`audience`) and the MCP server
    /// (`resource`), for `requested` scopes.
    pub(crate) async fn token_exchange(
        &self,
        endpoint: &str,
        idp_client_id: &str,
        id_token: &Secret,
        audience: &str,
        resource: &str,
        requested: &ScopeSet,
    ) -> Result<Secret, AuthError> {
        let url = checked(self.policy, endpoint, "the IdP token endpoint")?;
        let scope = requested.to_string();
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id-jag",
            ),
            ("audience", audience),
            ("resource", resource),
            ("subject_token", id_token.expose()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("client_id", idp_client_id),
        ];
        if !requested.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        event!(info, issuer = %audience, "exchanging the ID token for an identity assertion grant");
        let response = self.http.post_form(&url, &form, None, None).await?;
        // RFC 8693 §2.2.1: the issued token is in `access_token`; its `token_type` is `N_A`.
        let code = response.status.as_u16();
        if !response.status.is_success() {
            return Err(
                parse_token_response(&response.status, &response.body, false)
                    .err()
                    .unwrap_or_else(|| AuthError::new(AuthErrorKind::Protocol).with_status(code)),
            );
        }
        serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("access_token")?.as_str().map(Secret::from))
            .ok_or_else(|| {
                AuthError::new(AuthErrorKind::Protocol)
                    .with_detail("the IdP's token exchange response has no access_token")
                    .with_status(code)
            })
    }
}

/// Whether a token endpoint answer is the `use_dpop_nonce` error (RFC 9449 §8: 400).
fn is_use_dpop_nonce(status: &http::StatusCode, body: &[u8]) -> bool {
    status.is_client_error()
        && serde_json::from_slice::<ErrorResponse>(body)
            .is_ok_and(|e| e.error == ErrorCode::UseDpopNonce)
}

/// Reads a token response (OAuth 2.1 §3.2.3, §3.2.4; SPEC C-24). `token_type` is `Bearer`, or
/// `DPoP` when a proof was sent (`dpop_sent`, RFC 9449 §5).
fn parse_token_response(
    status: &http::StatusCode,
    body: &[u8],
    dpop_sent: bool,
) -> Result<Grant, AuthError> {
    let code = status.as_u16();
    if status.is_success() {
        let protocol = |detail| {
            AuthError::new(AuthErrorKind::Protocol)
                .with_detail(detail)
                .with_status(code)
        };
        let value: Value =
            serde_json::from_slice(body).map_err(|_| protocol("the token response is not JSON"))?;
        let access_token = value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol("the token response has no access_token"))?;
        let token_type = value.get("token_type").and_then(Value::as_str);
        let dpop = token_type.is_some_and(|t| t.eq_ignore_ascii_case(dpop::TOKEN_TYPE_DPOP));
        if let Some(token_type) = token_type
            && !token_type.eq_ignore_ascii_case("bearer")
            && !(dpop && dpop_sent)
        {
            return Err(protocol(if dpop {
                "the token type is DPoP, but no DPoP proof was sent"
            } else {
                "the token type is neither Bearer nor DPoP"
            }));
        }
        let expires_in = match value.get("expires_in") {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        return Ok(Grant {
            access_token: Secret::from(access_token),
            dpop,
            expires_in,
            refresh_token: value
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(Secret::from),
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .and_then(|s| ScopeSet::parse(s).ok()),
        });
    }
    if code == 429 || status.is_server_error() {
        return Err(AuthError::new(AuthErrorKind::Transient).with_status(code));
    }
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(error) => {
            let kind = match error.error {
                ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError => {
                    AuthErrorKind::Transient
                }
                _ => AuthErrorKind::Rejected,
            };
            Err(AuthError::new(kind)
                .with_oauth(error.error)
                .with_status(code))
        }
        Err(_) => Err(AuthError::new(AuthErrorKind::Protocol)
            .with_detail("the token endpoint answered an error without an OAuth error body")
            .with_status(code)),
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn token_responses_are_classified_rejected_vs_transient() {
        let ok = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"bearer","expires_in":"60","x":1}"#,
            false,
        )
        .ok()
        .unwrap();
        assert_eq!(ok.expires_in, Some(60));
        assert!(ok.refresh_token.is_none());

        let rejected = parse_token_response(
            &StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant"}"#,
            false,
        )
        .err()
        .unwrap();
        assert!(rejected.is_rejected());
        assert_eq!(rejected.oauth_error(), Some(&ErrorCode::InvalidGrant));

        for (status, body) in [
            (StatusCode::SERVICE_UNAVAILABLE, &b"oops"[..]),
            (StatusCode::BAD_GATEWAY, br#"{"error":"invalid_grant"}"#),
            (StatusCode::TOO_MANY_REQUESTS, b""),
            (
                StatusCode::BAD_REQUEST,
                br#"{"error":"temporarily_unavailable"}"#,
            ),
        ] {
            let e = parse_token_response(&status, body, false).err().unwrap();
            assert!(e.is_transient(), "{status} {e:?}");
        }
        let odd = parse_token_response(&StatusCode::NOT_FOUND, b"<html>", false)
            .err()
            .unwrap();
        assert_eq!(odd.kind(), AuthErrorKind::Protocol);
        let dpop = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"DPoP"}"#,
            false,
        )
        .err()
        .unwrap();
        assert_eq!(dpop.kind(), AuthErrorKind::Protocol);
        // With a proof sent, a DPoP-bound token is what was asked for; Bearer is fine too (an
        // authorization server may ignore the proof).
        let bound = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"DPoP"}"#,
            true,
        )
        .ok()
        .unwrap();
        assert!(bound.dpop);
        let bearer = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"Bearer"}"#,
            true,
        )
        .ok()
        .unwrap();
        assert!(!bearer.dpop);
        let odd = parse_token_response(
            &StatusCode::OK,
            br#"{"access_token":"a","token_type":"mac"}"#,
            true,
        )
        .err()
        .unwrap();
        assert_eq!(odd.kind(), AuthErrorKind::Protocol);
    }
}
