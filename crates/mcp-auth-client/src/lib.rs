//! The token manager an MCP client, agent or CLI uses to reach protected MCP servers (MCP
//! authorization, spec revisions 2026-07-28 and 2025-11-25).
//!
//! Give it the MCP server's URL; it discovers the authorization server, registers, runs the
//! browser flow, stores and refreshes tokens and steps up scopes — and, as a tower layer, does all
//! of it around your outbound requests.
//!
//! | piece | what |
//! |---|---|
//! | [`TokenManager`] | one MCP server, one [`Principal`]: [`access_token`](TokenManager::access_token), [`cached_token`](TokenManager::cached_token), [`on_unauthorized`](TokenManager::on_unauthorized) (401), [`on_insufficient_scope`](TokenManager::on_insufficient_scope) (403 step-up), [`for_principal`](TokenManager::for_principal). Refreshes ahead of expiry, one refresh in flight however many tasks ask, rejected (`invalid_grant`) vs transient (network, 5xx) failures kept apart. See [`TokenManager`]. |
//! | [`discovery`] | `resource_metadata` from the 401 challenge, else the path-aware then the root PRM URL; PRM `resource` checked; AS metadata in the spec's order (RFC 8414 / OIDC, with and without a path); `issuer` compared exactly; S256 required; 2025-03-26 back-compat. |
//! | [`registration`] | pre-registered [`ClientCredentials`] → Client ID Metadata Document → dynamic registration; the returned secret and auth method stored and used on refresh. |
//! | [`authorize`] | the authorization run: with a user, PKCE S256, `state`, `resource` on every request, RFC 9207 `iss` check; without one, client credentials, JWT bearer or enterprise-managed (SEP-990) grants; [`LoopbackRedirect`](authorize::LoopbackRedirect) on `127.0.0.1`; [`BrowserOpener`] with [`SystemBrowser`] and [`HeadlessBrowser`]. |
//! | [`store`] | [`TokenStore`](store::TokenStore): [`MemoryTokenStore`](store::MemoryTokenStore), [`FileTokenStore`](store::FileTokenStore) (owner-only, atomic writes, cross-process refresh lock). |
//! | [`Credentials`] | OAuth, a static bearer token, or an API-key header. |
//! | [`layer`] | [`OAuthLayer`]: attaches the token to every outbound `http::Request`, refreshes and retries once on 401, steps up on 403. |
//! | `rmcp` (feature) | [`rmcp::McpAuthClient`]: the same under rmcp's Streamable HTTP client transport. |
//!
//! Errors are an opaque [`AuthError`] with [`kind()`](AuthError::kind) ([`AuthErrorKind`]) and a
//! [`ConfigError`] from [`build`](TokenManagerBuilder::build). Tokens, codes, verifiers and secrets
//! never reach a log or a `Debug` string.
//!
//! # Public paths
//!
//! Every public type has exactly one path. What a client is assembled from lives at the crate
//! root; a module is public for its docs (the algorithm it implements) and for the items that
//! are not re-exported here, and re-exports nothing that is also at the root.
//!
//! | path | public types |
//! |---|---|
//! | crate root | [`TokenManager`], [`TokenManagerBuilder`], [`RetryPolicy`], [`DEFAULT_REFRESH_BUFFER`], [`DEFAULT_AUTHORIZATION_TIMEOUT`], [`DEFAULT_MAX_AUTHORIZATION_ATTEMPTS`]; [`AccessToken`], [`Principal`], [`Credentials`]; [`OAuthLayer`], [`OAuth`], [`Operation`], [`is_insufficient_scope`]; [`BrowserOpener`], [`SystemBrowser`], [`HeadlessBrowser`]; [`ClientCredentials`], [`TokenEndpointAuthMethod`]; [`AuthError`], [`AuthErrorKind`], [`ConfigError`], [`StoreError`] |
//! | [`authorize`] | [`LoopbackRedirect`](authorize::LoopbackRedirect), [`AuthorizationResponse`](authorize::AuthorizationResponse), [`OpenFuture`](authorize::OpenFuture) |
//! | [`discovery`] | [`Discovery`](discovery::Discovery) |
//! | [`registration`] | [`UnsupportedAuthMethod`](registration::UnsupportedAuthMethod) |
//! | [`layer`] | [`ResponseFuture`](layer::ResponseFuture) |
//! | [`store`] | [`TokenStore`](store::TokenStore), [`MemoryTokenStore`](store::MemoryTokenStore), [`FileTokenStore`](store::FileTokenStore), [`StoreFuture`](store::StoreFuture), [`StoreLock`](store::StoreLock), [`TokenKey`](store::TokenKey), [`StoredTokens`](store::StoredTokens), [`StoredClient`](store::StoredClient), [`RegistrationKind`](store::RegistrationKind) |
//! | `rmcp` (feature `rmcp`) | `McpAuthClient` |
//!
//! # Example: an rmcp client
//!
//! With the `rmcp` feature, one value puts the manager under rmcp's client: every request carries
//! the token; a 401 runs discovery, registration and the browser flow; refresh and step-up happen
//! on the way. rmcp speaks MCP 2026-07-28 to servers that do and 2025-11-25 to those that don't.
//!
//! ```no_run
//! # #[cfg(feature = "rmcp")]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_auth_client::{TokenManager, rmcp::McpAuthClient, store::FileTokenStore};
//! use rmcp::{ServiceExt, transport::StreamableHttpClientTransport};
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//!
//! let url = "https://mcp.example.com/mcp";
//! let manager = TokenManager::builder(url)
//!     .client_name("my-agent")
//!     .store(FileTokenStore::new("/home/me/.config/my-agent/tokens.json"))
//!     .build()?;
//! let transport = StreamableHttpClientTransport::with_client(
//!     McpAuthClient::new(manager)?,
//!     StreamableHttpClientTransportConfig::with_uri(url),
//! );
//! let client = ().serve(transport).await?;
//! println!("{:?}", client.list_all_tools().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Example: a tower client
//!
//! A CLI that calls an MCP server through the layer. The first request goes out without a token;
//! the server's 401 starts discovery, registration and the browser flow; later requests carry the
//! stored token, refreshed before it expires.
//!
//! ```no_run
//! use http::{Request, Response};
//! use mcp_auth_client::{OAuthLayer, TokenManager, store::FileTokenStore};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let http_client = tower::service_fn(|_req: Request<String>| async {
//! #     Ok::<_, std::convert::Infallible>(Response::new(String::new()))
//! # });
//! let manager = TokenManager::builder("https://mcp.example.com/mcp")
//!     .client_name("my-cli")
//!     .store(FileTokenStore::new("/home/me/.config/my-cli/tokens.json"))
//!     .build()?;
//!
//! let client = ServiceBuilder::new()
//!     .layer(OAuthLayer::new(manager.clone()))
//!     .service(http_client); // any tower service sending http::Request<String>
//!
//! let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_owned();
//! let response = client.oneshot(Request::post("https://mcp.example.com/mcp").body(body)?).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Without the layer, the same steps by hand:
//!
//! ```
//! use http::{HeaderMap, HeaderValue, StatusCode};
//! use mcp_auth_client::{AuthErrorKind, TokenManager, is_insufficient_scope};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TokenManager::builder("https://mcp.example.com/mcp")
//!     .interactive(false)
//!     .build()?;
//! // Before anything is stored there is no token: send the request without one…
//! assert!(manager.cached_token().await?.is_none());
//! // …and hand the 401's headers to the manager, which would discover and authorize.
//! let mut headers = HeaderMap::new();
//! headers.insert("www-authenticate", HeaderValue::from_static(
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#));
//! let err = manager.on_unauthorized(&headers, None, "tools/list").await.unwrap_err();
//! assert_eq!(err.kind(), AuthErrorKind::InteractionRequired); // non-interactive here
//! assert!(!is_insufficient_scope(StatusCode::UNAUTHORIZED, &headers));
//! # Ok(())
//! # }
//! ```
//!
//! # DPoP
//!
//! With the `dpop` feature (default), tokens are DPoP-bound (RFC 9449) whenever the authorization
//! server advertises `ES256` in `dpop_signing_alg_values_supported`: every token request carries
//! a proof signed by the principal's key (generated once, kept in the [`store`] with the tokens),
//! and every request to the MCP server carries `Authorization: DPoP <token>` and a fresh proof
//! ([`AccessToken::dpop_proof`]). A `use_dpop_nonce` answer from either server is retried once
//! with its `DPoP-Nonce`; a second one, a malformed nonce, or an MCP server that demands DPoP
//! the authorization server does not issue is an [`AuthErrorKind::Dpop`] error. Without DPoP
//! advertised (or with [`dpop(false)`](TokenManagerBuilder::dpop)), tokens are bearer tokens.
//!
//! A DPoP-bound token stored earlier, presented by hand (the layer does the same):
//!
//! ```
//! # #[cfg(feature = "dpop")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use base64::Engine as _;
//! use mcp_auth_client::{TokenManager, store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore}};
//! use mcp_auth_core::SystemClock;
//! use mcp_auth_jwt::dpop::{DpopKey, DpopVerifier, ProofCheck};
//!
//! let store = MemoryTokenStore::new();
//! let manager = TokenManager::builder("https://mcp.example.com/mcp")
//!     .store(store.clone())
//!     .interactive(false)
//!     .build()?;
//! // What an earlier DPoP grant left in the store: the token, its type and the key.
//! let key = DpopKey::generate()?;
//! let mut record = StoredTokens::new(
//!     "https://auth.example.com", "https://auth.example.com/token",
//!     "https://mcp.example.com/mcp", "client-1", "tok-1",
//! );
//! record.token_type = Some("DPoP".to_owned());
//! record.dpop_key = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_pkcs8_der()?).into());
//! store.save_tokens(&TokenKey::new(manager.principal().clone(), manager.resource().clone()), &record).await?;
//!
//! let token = manager.access_token().await?;
//! assert!(token.is_dpop());
//! assert_eq!(token.authorization_header()?, "DPoP tok-1");
//! let proof = token.dpop_proof("POST", "https://mcp.example.com/mcp?session=1")?.expect("a proof");
//!
//! // What the MCP server checks (mcp-auth-resource does exactly this).
//! let verifier = DpopVerifier::new(Arc::new(SystemClock::default()));
//! let check = ProofCheck::new("POST", "https://mcp.example.com/mcp")
//!     .access_token("tok-1")
//!     .expected_jkt(key.thumbprint());
//! assert_eq!(verifier.verify(proof.to_str()?, &check)?.jkt(), key.thumbprint());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "dpop"))]
//! # fn main() {}
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `tracing` | yes | events on discovery, registration, authorization, refresh (ids and issuers only, never a secret) |
//! | `rmcp` | no | [`rmcp::McpAuthClient`], rmcp's Streamable HTTP client transport under the token manager |
//! | `dpop` | yes | DPoP-bound tokens (RFC 9449) with authorization servers that advertise them; proofs by `mcp-auth-jwt` on aws-lc-rs (already linked by reqwest's rustls) |
//! | `private-key-jwt` | no | `ClientCredentials::private_key_jwt`: client authentication with a signed JWT assertion (RFC 7523), e.g. for machine clients |
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Emits a tracing event when the `tracing` feature is on; nothing otherwise.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "mcp_auth_client", $($arg)+);
    }};
}

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose inner service is the field
/// `inner` (tower-http's `define_inner_service_accessors!`).
macro_rules! define_inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub mod authorize;
mod credentials;
pub mod discovery;
mod dpop;
mod error;
mod fetch;
pub mod layer;
mod manager;
pub mod registration;
mod retry;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub mod rmcp;
pub mod store;
mod token;
mod token_endpoint;
mod trace;

pub use self::{
    authorize::browser::{BrowserOpener, HeadlessBrowser, SystemBrowser},
    credentials::Credentials,
    error::{AuthError, AuthErrorKind, ConfigError, StoreError},
    layer::{
        oauth_layer::{OAuthLayer, Operation, is_insufficient_scope},
        service::OAuth,
    },
    manager::{
        DEFAULT_AUTHORIZATION_TIMEOUT, DEFAULT_MAX_AUTHORIZATION_ATTEMPTS, DEFAULT_REFRESH_BUFFER,
        RetryPolicy, TokenManager, TokenManagerBuilder,
    },
    registration::credentials::{ClientCredentials, TokenEndpointAuthMethod},
    token::{AccessToken, Principal},
};
