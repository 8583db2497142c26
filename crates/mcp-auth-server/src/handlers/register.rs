//! `POST /register`: dynamic client registration (RFC 7591), kept for MCP clients that predate
//! Client ID Metadata Documents (AS-44..AS-46).
//!
//! The body is a JSON object of client metadata (`Content-Type: application/json`, at most
//! 16 KiB). What is checked, and what the server decides:
//! 1. `token_endpoint_auth_method`: `none` registers a public client; `client_secret_basic`
//!    (the RFC 7591 default when omitted) and `client_secret_post` a confidential one, which
//!    gets a fresh 256-bit secret. The store keeps only the secret's SHA-256. `private_key_jwt`
//!    (feature `jwt-assertions`) a confidential client without a secret, which names its public
//!    keys with exactly one of `jwks_uri` and `jwks` (RFC 7591 §2); a `jwks` must hold at least
//!    one usable asymmetric key.
//! 2. `grant_types` ⊆ {`authorization_code`, `refresh_token`}; default
//!    `["authorization_code", "refresh_token"]`. `client_credentials` is refused with
//!    `invalid_client_metadata` whatever the server's settings: a machine grant is arranged by the
//!    operator ([`MachineClient`](crate::MachineClient)), never self-served by an anonymous
//!    registrant (OAuth 2.1 §4.2). `response_types` ⊆ {`code`}, default `["code"]`
//!    when `authorization_code` is registered; `code` and `authorization_code` go together.
//! 3. `redirect_uris`: required with `authorization_code`, at most 10, each https or http on a
//!    loopback host, absolute, without fragment or userinfo, at most 2 KiB
//!    (`invalid_redirect_uri`). Private-use schemes (`myapp://`) are refused whatever the
//!    `application_type`: MCP requires every redirect URI to be `localhost` or https.
//! 4. `application_type` (OpenID Connect Dynamic Client Registration 1.0 §2; MCP 2026-07-28
//!    asks clients to send it, SEP-837): `native` or `web`, anything else is
//!    `invalid_client_metadata`.
//!    - `native`: http on a loopback host (`127.0.0.1`, `[::1]`, `localhost`, any port) is never
//!      refused; https is accepted too (RFC 8252 §7.2 claimed https redirects).
//!    - `web`: http on a loopback host is refused with `invalid_redirect_uri` (OIDC lets a
//!      server refuse http redirects other than a native client's loopback ones). https is
//!      accepted, `https://localhost` included.
//!    - Omitted: OIDC's default would be `web`, but MCP clients of the 2025-11-25 era (and
//!      many current ones) register loopback http redirects without `application_type`, so
//!      an omitted type applies no extra rule. The server records the kind it infers: `native`
//!      when a redirect is http on loopback, else `web`.
//!
//!    The type is stored and echoed (RFC 7591 §3.2.1), so a native client is registered as
//!    such (OAuth 2.1 §8.1).
//! 5. Display metadata is bounded (`client_name` ≤ 200 characters, URIs ≤ 2 KiB and http(s),
//!    at most 10 `contacts`, `scope` made of valid scope tokens) or refused with
//!    `invalid_client_metadata`.
//! 6. Members this server does not use (`jwks` of a client not using `private_key_jwt`, and any
//!    unknown member) are ignored and not echoed (RFC 7591 §2, §3.2.1).
//!
//! The `client_id` is random (never an https URL, so it cannot collide with a metadata document
//! URL). The answer is `201` with the client information (RFC 7591 §3.2.1) and
//! `Cache-Control: no-store`; errors are RFC 7591 §3.2.2 JSON with status 400.
//!
//! **Identical public registrations** (on by default,
//! [`reuse_public_registrations`](crate::AuthorizationServerBuilder::reuse_public_registrations)):
//! clients that register on every connect would otherwise leave a pile of identical public
//! clients behind. A public registration whose metadata, as checked and completed above, has the
//! same canonical JSON as a public client registered before gets that client back: the same `201`
//! answer, its `client_id` and original `client_id_issued_at`. The store finds it by the SHA-256 of
//! that JSON ([`Store::put_public_client`](crate::store::Store::put_public_client), atomic, so
//! concurrent identical registrations create one client). Such a repeat creates nothing and does
//! not count against the registration rate limit; a registration that creates a client does.
//! Nothing is lost by sharing: a public client has no secret, and its redirect URIs are the same.
//! A confidential registration always creates a new client (its secret is shown once).

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mcp_auth_core::error::ErrorCode;
use mcp_auth_core::metadata::{ClientInformation, ClientMetadata};
use mcp_auth_core::{Secret, is_scope_token};

use super::State;
use crate::error::OAuthError;
use crate::form::read_body;
use crate::http::{is_json, no_store_json};
use crate::limit::Hit;
use crate::random::{random_id, random_secret};
use crate::redirect;
use crate::state::Inner;
use crate::store::{ClientAuthMethod, ClientRecord, TokenHash};
use crate::trace::request_span;

/// Largest registration request body (bytes): the route's own `RequestBodyLimitLayer`, inside
/// the router's.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most redirect URIs one client may register.
pub(crate) const MAX_REDIRECT_URIS: usize = 10;
/// Longest `client_name`, in characters.
pub(crate) const MAX_CLIENT_NAME_CHARS: usize = 200;
/// Most `contacts`.
const MAX_CONTACTS: usize = 10;
/// Longest short text member (`software_id`, `software_version`, one contact).
const MAX_SHORT_TEXT: usize = 256;
/// Longest `scope`.
const MAX_SCOPE_BYTES: usize = 1024;
/// Most entries in `grant_types` or `response_types`.
const MAX_TYPES: usize = 10;

/// `POST /register`, in span `mcp_auth.register`.
pub(crate) async fn handle(axum::extract::State(inner): State, request: Request) -> Response {
    let trace = request_span!("mcp_auth.register", client_id, decision);
    let result = trace.instrument(register(&inner, request)).await;
    super::token::decided(&trace, result)
}

async fn register(inner: &Inner, request: Request) -> Result<Response, OAuthError> {
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/json",
        ));
    }
    let bytes = read_body(body).await?;
    let requested = parse(&bytes)?;
    let (metadata, method) = check_metadata(requested)?;
    let now = inner.now();
    let registration_key =
        if method == ClientAuthMethod::None && inner.config.reuse_public_registrations {
            let key = registration_key(&metadata)?;
            if let Some(existing) = inner.store.find_public_client(&key).await? {
                // A repeat creates nothing, so it does not count against the rate limit.
                return Ok(registered(&existing, false));
            }
            Some(key)
        } else {
            None
        };
    if let Hit::Over { retry_after } = inner.registrations.hit("", now).await? {
        #[cfg(feature = "tracing")]
        tracing::warn!("dynamic registration rate limit reached");
        let mut error =
            OAuthError::temporarily_unavailable().with_status(StatusCode::TOO_MANY_REQUESTS);
        error.description = "too many registrations; try again shortly".into();
        error.retry_after = Some(retry_after);
        return Err(error);
    }

    let client_id = random_id()?;
    crate::trace::Trace::current().record("client_id", &client_id);
    let mut information = ClientInformation::new(client_id.clone(), metadata.clone());
    information.client_id_issued_at = Some(now);
    if let Some(key) = registration_key {
        let record = ClientRecord::public(client_id, metadata, now);
        let (stored, created) = inner.store.put_public_client(record, key).await?;
        return Ok(registered(&stored, created));
    }
    let record = if method == ClientAuthMethod::None {
        ClientRecord::public(client_id.clone(), metadata, now)
    } else if method == ClientAuthMethod::PrivateKeyJwt {
        // Confidential, without a secret: it authenticates with its keys.
        let mut record = ClientRecord::public(client_id.clone(), metadata, now);
        record.auth_method = method;
        record
    } else {
        let secret = random_secret()?;
        let record = ClientRecord::confidential(
            client_id.clone(),
            method,
            TokenHash::of(&secret),
            metadata,
            now,
        );
        information.client_secret = Some(Secret::from(secret));
        information.client_secret_expires_at = Some(0);
        record
    };
    inner.store.put_client(record).await?;

    #[cfg(feature = "tracing")]
    tracing::info!(
        %client_id,
        auth_method = method.as_str(),
        client_name = ?information.metadata.client_name,
        redirect_uris = information.metadata.redirect_uris.len(),
        "client registered"
    );

    let body = serde_json::to_vec(&information).map_err(|_| OAuthError::server_error())?;
    Ok(no_store_json(StatusCode::CREATED, body))
}

/// The key identical public registrations share: SHA-256 of the canonical JSON of the metadata
/// as registered (a struct serialized in field order, without ignored members).
fn registration_key(metadata: &ClientMetadata) -> Result<TokenHash, OAuthError> {
    let canonical = serde_json::to_string(metadata).map_err(|_| OAuthError::server_error())?;
    Ok(TokenHash::of(&canonical))
}

/// The `201` answer for a public client: the one just `created`, or the one an identical
/// registration created before (its own `client_id` and `client_id_issued_at`).
fn registered(client: &ClientRecord, created: bool) -> Response {
    crate::trace::Trace::current().record("client_id", &client.client_id);
    let mut information = ClientInformation::new(client.client_id.clone(), client.metadata.clone());
    information.client_id_issued_at = Some(client.issued_at);
    #[cfg(feature = "tracing")]
    if created {
        tracing::info!(
            client_id = %client.client_id,
            auth_method = client.auth_method.as_str(),
            client_name = ?client.metadata.client_name,
            redirect_uris = client.metadata.redirect_uris.len(),
            "client registered"
        );
    } else {
        tracing::debug!(
            client_id = %client.client_id,
            "identical public registration: the client registered before is returned"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = created;
    match serde_json::to_vec(&information) {
        Ok(body) => no_store_json(StatusCode::CREATED, body),
        Err(_) => OAuthError::server_error().into_response(),
    }
}

/// `application_type` (OpenID Connect Dynamic Client Registration 1.0 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApplicationType {
    /// Runs on the user's device: loopback http redirects (RFC 8252).
    Native,
    /// Served from a remote host: https redirects only.
    Web,
}

impl ApplicationType {
    /// The registered value, exactly `native` or `web`.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "native" => Some(Self::Native),
            "web" => Some(Self::Web),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Web => "web",
        }
    }
}

/// An `invalid_client_metadata` error (400).
fn bad_metadata(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// An `invalid_redirect_uri` error (400).
fn bad_redirect(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
}

/// The body as client metadata: a JSON object whose known members have the right types.
pub(crate) fn parse(bytes: &[u8]) -> Result<ClientMetadata, OAuthError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| bad_metadata("the body is not valid JSON"))?;
    if !value.is_object() {
        return Err(bad_metadata(
            "the body must be a JSON object of client metadata",
        ));
    }
    serde_json::from_value(value)
        .map_err(|_| bad_metadata("a client metadata member has the wrong type"))
}

/// Check requested metadata and decide the registration: the metadata to store and echo, and
/// how the client authenticates.
pub(crate) fn check_metadata(
    requested: ClientMetadata,
) -> Result<(ClientMetadata, ClientAuthMethod), OAuthError> {
    let mut metadata = requested;

    // 1. Authentication method (RFC 7591 §2: omitted means client_secret_basic).
    let method_name = metadata
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic");
    let method = ClientAuthMethod::from_name(method_name)
        .filter(|m| cfg!(feature = "jwt-assertions") || *m != ClientAuthMethod::PrivateKeyJwt)
        .ok_or_else(|| {
            bad_metadata(if cfg!(feature = "jwt-assertions") {
                "unsupported token_endpoint_auth_method: use none, client_secret_basic, client_secret_post or private_key_jwt"
            } else {
                "unsupported token_endpoint_auth_method: use none, client_secret_basic or client_secret_post"
            })
        })?;
    if method == ClientAuthMethod::PrivateKeyJwt {
        match (&metadata.jwks_uri, &metadata.jwks) {
            (Some(_), None) => {}
            (None, Some(jwks)) => {
                #[cfg(feature = "jwt-assertions")]
                {
                    let usable = jwks
                        .as_object()
                        .and_then(|doc| mcp_auth_jwt::KeySet::from_document(doc).ok())
                        .is_some_and(|(set, _)| !set.is_empty());
                    if !usable {
                        return Err(bad_metadata(
                            "jwks must be a JWK Set with at least one usable public key",
                        ));
                    }
                }
                #[cfg(not(feature = "jwt-assertions"))]
                let _ = jwks;
            }
            _ => {
                return Err(bad_metadata(
                    "private_key_jwt needs exactly one of jwks_uri and jwks",
                ));
            }
        }
    }
    metadata.token_endpoint_auth_method = Some(method.as_str().to_owned());

    // 2. Grant and response types.
    if metadata.grant_types.len() > MAX_TYPES || metadata.response_types.len() > MAX_TYPES {
        return Err(bad_metadata("too many grant_types or response_types"));
    }
    let mut grants: Vec<String> = Vec::new();
    for grant in &metadata.grant_types {
        match grant.as_str() {
            "authorization_code" | "refresh_token" => {}
            "client_credentials" => {
                return Err(bad_metadata(
                    "client_credentials cannot be registered here: machine clients are registered by the server's operator",
                ));
            }
            "implicit" | "password" => {
                return Err(bad_metadata(
                    "OAuth 2.1 removed the implicit and password grants",
                ));
            }
            _ => {
                return Err(bad_metadata(
                    "unsupported grant type: use authorization_code and refresh_token",
                ));
            }
        }
        if !grants.contains(grant) {
            grants.push(grant.clone());
        }
    }
    if grants.is_empty() {
        grants = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
    }
    let code_flow = grants.iter().any(|g| g == "authorization_code");
    if !code_flow {
        return Err(bad_metadata("grant_types must include authorization_code"));
    }
    let mut responses: Vec<String> = Vec::new();
    for response_type in &metadata.response_types {
        if response_type != "code" {
            return Err(bad_metadata(
                "unsupported response type: only code is supported",
            ));
        }
        if !responses.contains(response_type) {
            responses.push(response_type.clone());
        }
    }
    if responses.is_empty() {
        responses.push("code".to_owned());
    }
    metadata.grant_types = grants;
    metadata.response_types = responses;

    // 3. Redirect URIs, and 4. the application type that decides which of them are allowed.
    let declared = match metadata.application_type.as_deref() {
        None => None,
        Some(name) => Some(
            ApplicationType::from_name(name)
                .ok_or_else(|| bad_metadata("application_type must be native or web"))?,
        ),
    };
    if metadata.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(bad_redirect("at most 10 redirect URIs may be registered"));
    }
    if code_flow && metadata.redirect_uris.is_empty() {
        return Err(bad_redirect(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in &metadata.redirect_uris {
        redirect::check_registrable(uri).map_err(bad_redirect)?;
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    let loopback_http = uris.iter().any(|uri| redirect::is_loopback_http(uri));
    let application_type = match declared {
        Some(ApplicationType::Web) if loopback_http => {
            return Err(bad_redirect(
                "a web client's redirect URIs must be https: http on a loopback host is for native clients (application_type native)",
            ));
        }
        Some(declared) => declared,
        // No extra rule for clients that do not say (MCP 2025-11-25 clients); record the kind
        // their redirects show.
        None if loopback_http => ApplicationType::Native,
        None => ApplicationType::Web,
    };
    metadata.application_type = Some(application_type.as_str().to_owned());
    metadata.redirect_uris = uris;

    // 5. Display and informational metadata.
    metadata.client_name = match metadata.client_name.take() {
        Some(name) if name.trim().is_empty() => None,
        Some(name) if name.chars().count() > MAX_CLIENT_NAME_CHARS => {
            return Err(bad_metadata("client_name is longer than 200 characters"));
        }
        Some(name) if name.chars().any(char::is_control) => {
            return Err(bad_metadata("client_name contains control characters"));
        }
        other => other,
    };
    for (name, value) in [
        ("client_uri", &metadata.client_uri),
        ("logo_uri", &metadata.logo_uri),
        ("tos_uri", &metadata.tos_uri),
        ("policy_uri", &metadata.policy_uri),
        ("jwks_uri", &metadata.jwks_uri),
    ] {
        if let Some(uri) = value
            && !is_web_url(uri)
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("{name} must be an absolute http or https URL of at most 2048 bytes"),
            ));
        }
    }
    if metadata.contacts.len() > MAX_CONTACTS {
        return Err(bad_metadata("at most 10 contacts may be registered"));
    }
    let short_texts = metadata
        .contacts
        .iter()
        .chain(metadata.software_id.iter())
        .chain(metadata.software_version.iter());
    for text in short_texts {
        if text.chars().count() > MAX_SHORT_TEXT || text.chars().any(char::is_control) {
            return Err(bad_metadata(
                "contacts, software_id and software_version are at most 256 characters, without control characters",
            ));
        }
    }
    if let Some(scope) = &metadata.scope {
        if scope.len() > MAX_SCOPE_BYTES
            || !scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(is_scope_token)
        {
            return Err(bad_metadata(
                "scope must be space-separated scope tokens, at most 1024 bytes",
            ));
        }
        if scope.trim().is_empty() {
            metadata.scope = None;
        }
    }

    // 6. Ignored: what this server does not use is not stored or echoed.
    if method != ClientAuthMethod::PrivateKeyJwt {
        metadata.jwks = None;
    }
    metadata.extra.clear();

    Ok((metadata, method))
}

/// An absolute `http`/`https` URL with a host, at most 2 KiB, no whitespace or controls.
fn is_web_url(uri: &str) -> bool {
    uri.len() <= redirect::MAX_LEN
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(uri).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(value: serde_json::Value) -> ClientMetadata {
        parse(&serde_json::to_vec(&value).unwrap()).unwrap()
    }

    fn check(value: serde_json::Value) -> Result<(ClientMetadata, ClientAuthMethod), OAuthError> {
        check_metadata(metadata(value))
    }

    fn error_of(value: serde_json::Value) -> (String, std::borrow::Cow<'static, str>) {
        let error = check(value.clone())
            .map(|_| ())
            .expect_err(&value.to_string());
        (error.code.as_str().to_owned(), error.description)
    }

    #[test]
    fn a_public_client_gets_defaults_filled_in() {
        let (m, method) = check(json!({
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
            "token_endpoint_auth_method": "none",
            "client_name": "Inspector",
        }))
        .unwrap();
        assert_eq!(method, ClientAuthMethod::None);
        assert_eq!(m.token_endpoint_auth_method.as_deref(), Some("none"));
        assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.redirect_uris, ["http://127.0.0.1:3000/callback"]);
        assert_eq!(m.client_name.as_deref(), Some("Inspector"));
    }

    #[test]
    fn an_omitted_auth_method_means_client_secret_basic() {
        let (m, method) = check(json!({"redirect_uris": ["https://app.example.com/cb"]})).unwrap();
        assert_eq!(method, ClientAuthMethod::ClientSecretBasic);
        assert_eq!(
            m.token_endpoint_auth_method.as_deref(),
            Some("client_secret_basic")
        );
        let (_, method) = check(json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .unwrap();
        assert_eq!(method, ClientAuthMethod::ClientSecretPost);
    }

    #[test]
    fn open_registration_never_registers_a_machine_grant() {
        for body in [
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post"}),
            json!({"grant_types": ["client_credentials"]}),
            json!({"redirect_uris": ["https://app.example.com/cb"], "grant_types": ["authorization_code", "client_credentials"]}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        ] {
            let (code, description) = error_of(body.clone());
            assert_eq!(code, "invalid_client_metadata", "{body}");
            assert!(description.contains("operator"), "{body}: {description}");
        }
    }

    #[test]
    fn unknown_members_are_ignored_not_echoed() {
        let (m, _) = check(json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "none",
            "x-vendor": {"deep": [1, 2, 3]},
            "jwks": {"keys": []},
            "client_id": "chosen-by-client",
            "client_secret": "chosen-by-client",
        }))
        .unwrap();
        assert!(m.extra.is_empty());
        assert!(m.jwks.is_none());
    }

    #[test]
    fn duplicates_are_collapsed_and_order_kept() {
        let (m, _) = check(json!({
            "redirect_uris": ["https://b.example.com/cb", "https://a.example.com/cb", "https://b.example.com/cb"],
            "grant_types": ["refresh_token", "authorization_code", "refresh_token"],
            "response_types": ["code", "code"],
            "token_endpoint_auth_method": "none",
        }))
        .unwrap();
        assert_eq!(
            m.redirect_uris,
            ["https://b.example.com/cb", "https://a.example.com/cb"]
        );
        assert_eq!(m.grant_types, ["refresh_token", "authorization_code"]);
        assert_eq!(m.response_types, ["code"]);
    }

    #[test]
    fn bad_redirect_uris_are_invalid_redirect_uri() {
        for uris in [
            json!(["http://app.example.com/cb"]),
            json!(["https://app.example.com/cb#frag"]),
            json!(["/cb"]),
            json!(["myapp://cb"]),
            json!(["http://localhost.evil.com/cb"]),
            json!(["http://127.0.0.1@evil.com/cb"]),
            json!([]),
            json!(
                (0..11)
                    .map(|i| format!("https://app.example.com/cb{i}"))
                    .collect::<Vec<_>>()
            ),
            json!([format!("https://app.example.com/{}", "a".repeat(2048))]),
        ] {
            let (code, _) =
                error_of(json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"}));
            assert_eq!(code, "invalid_redirect_uri", "{uris}");
        }
        let (code, _) = error_of(json!({"token_endpoint_auth_method": "none"}));
        assert_eq!(code, "invalid_redirect_uri");
    }

    #[test]
    fn bad_metadata_is_invalid_client_metadata() {
        let uris = json!(["https://app.example.com/cb"]);
        for body in [
            json!({"redirect_uris": uris, "grant_types": ["implicit"]}),
            json!({"redirect_uris": uris, "grant_types": ["password"]}),
            json!({"redirect_uris": uris, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
            json!({"redirect_uris": uris, "grant_types": ["refresh_token"]}),
            json!({"redirect_uris": uris, "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            json!({"redirect_uris": uris, "grant_types": ["client_credentials"], "response_types": ["code"]}),
            json!({"redirect_uris": uris, "response_types": ["token"]}),
            json!({"redirect_uris": uris, "response_types": ["code id_token"]}),
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}, "jwks_uri": "https://c.example.com/jwks"}),
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_jwt"}),
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "NONE"}),
            json!({"redirect_uris": uris, "client_name": "x".repeat(201)}),
            json!({"redirect_uris": uris, "client_name": "evil\u{0007}"}),
            json!({"redirect_uris": uris, "logo_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": uris, "client_uri": "/relative"}),
            json!({"redirect_uris": uris, "policy_uri": "data:text/html,x"}),
            json!({"redirect_uris": uris, "contacts": (0..11).map(|i| format!("a{i}@example.com")).collect::<Vec<_>>()}),
            json!({"redirect_uris": uris, "software_id": "x".repeat(257)}),
            json!({"redirect_uris": uris, "scope": "a \"b\""}),
            json!({"redirect_uris": uris, "application_type": "desktop"}),
            json!({"redirect_uris": uris, "grant_types": vec!["authorization_code"; 11]}),
        ] {
            let (code, _) = error_of(body.clone());
            assert_eq!(code, "invalid_client_metadata", "{body}");
        }
        // A 200-character name (counting characters, not bytes) is fine.
        assert!(check(json!({"redirect_uris": uris, "client_name": "é".repeat(200)})).is_ok());
    }

    const LOOPBACK_HTTP: [&str; 6] = [
        "http://127.0.0.1:53682/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/callback",
        "http://[::1]/callback",
        "http://localhost:6274/oauth/callback",
        "http://localhost/callback",
    ];

    #[test]
    fn a_native_client_is_never_refused_a_loopback_http_redirect() {
        for uri in LOOPBACK_HTTP {
            let (m, _) = check(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }))
            .unwrap();
            assert_eq!(m.application_type.as_deref(), Some("native"), "{uri}");
            assert_eq!(m.redirect_uris, [uri]);
        }
        // https (RFC 8252 §7.2 claimed redirects) and https on loopback are fine too.
        let (m, _) = check(json!({
            "redirect_uris": ["http://127.0.0.1/cb", "https://app.example.com/cb", "https://localhost/cb"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .unwrap();
        assert_eq!(m.application_type.as_deref(), Some("native"));
        assert_eq!(m.redirect_uris.len(), 3);
    }

    #[test]
    fn a_web_client_is_refused_a_loopback_http_redirect() {
        for uri in LOOPBACK_HTTP {
            let (code, description) = error_of(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
                "application_type": "web",
            }));
            assert_eq!(code, "invalid_redirect_uri", "{uri}");
            assert!(description.contains("native"), "{description}");
        }
        // One loopback http redirect among https ones is enough.
        let (code, _) = error_of(json!({
            "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1:3000/cb"],
            "application_type": "web",
        }));
        assert_eq!(code, "invalid_redirect_uri");
        // https, on a remote host or on loopback, is what a web client registers.
        let (m, _) = check(json!({
            "redirect_uris": ["https://app.example.com/cb", "https://localhost:8443/cb"],
            "application_type": "web",
        }))
        .unwrap();
        assert_eq!(m.application_type.as_deref(), Some("web"));
    }

    #[test]
    fn an_omitted_application_type_adds_no_rule_and_records_the_inferred_kind() {
        // What MCP clients of the 2025-11-25 era send: loopback http, no application_type.
        for uri in LOOPBACK_HTTP {
            let (m, _) = check(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
            }))
            .unwrap();
            assert_eq!(m.application_type.as_deref(), Some("native"), "{uri}");
        }
        let (m, _) = check(json!({
            "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1/cb"],
        }))
        .unwrap();
        assert_eq!(m.application_type.as_deref(), Some("native"));
        let (m, _) = check(json!({"redirect_uris": ["https://app.example.com/cb"]})).unwrap();
        assert_eq!(
            m.application_type.as_deref(),
            Some("web"),
            "the OIDC default"
        );
        let (m, _) = check(json!({"redirect_uris": ["https://localhost/cb"]})).unwrap();
        assert_eq!(m.application_type.as_deref(), Some("web"));
    }

    #[test]
    fn private_use_schemes_stay_refused_for_native_clients() {
        for uri in [
            "myapp://callback",
            "com.example.app:/callback",
            "http://app.example.com/cb",
        ] {
            let (code, _) = error_of(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }));
            assert_eq!(code, "invalid_redirect_uri", "{uri}");
        }
    }

    #[test]
    fn application_type_values_are_exact() {
        for kind in [
            json!("Native"),
            json!("WEB"),
            json!(""),
            json!("browser"),
            json!(" native"),
        ] {
            let (code, _) = error_of(json!({
                "redirect_uris": ["http://127.0.0.1/cb"],
                "application_type": kind,
            }));
            assert_eq!(code, "invalid_client_metadata", "{kind}");
        }
        let body =
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": ["native"]});
        let error = parse(&serde_json::to_vec(&body).unwrap()).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn malformed_bodies_are_invalid_client_metadata() {
        for body in [
            &b"nope"[..],
            b"[]",
            b"\"x\"",
            b"{",
            b"{\"redirect_uris\": \"https://a.example.com/cb\"}",
            b"{\"client_name\": 5}",
        ] {
            let error = parse(body).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidClientMetadata);
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn json_content_type_is_required() {
        use http::{HeaderMap, header};
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&headers));
    }
}
