//! Client registration: pre-registered credentials, Client ID Metadata Documents, dynamic
//! registration (RFC 7591), in the spec's priority (SPEC C-13).
//!
//! For each authorization server the [`TokenManager`](crate::TokenManager) picks, in order:
//!
//! 1. **Pre-registered** [`ClientCredentials`] given to the builder for that issuer (or for any
//!    issuer). With a secret they authenticate with `client_secret_basic` unless told otherwise
//!    (SPEC C-14).
//! 2. A **Client ID Metadata Document**: when the application configured its document URL
//!    ([`client_id_metadata_document`](crate::TokenManagerBuilder::client_id_metadata_document))
//!    and the server advertises `client_id_metadata_document_supported`, that URL is the
//!    `client_id`, with no secret (SPEC C-15).
//! 3. A client registered **dynamically** earlier and kept in the [`TokenStore`](crate::store::TokenStore)
//!    (unless its secret has expired), else a new **dynamic registration** at the
//!    `registration_endpoint`: `redirect_uris` (the loopback redirect), `client_name`,
//!    `grant_types` `authorization_code` + `refresh_token`, `response_types` `code`,
//!    `application_type` (`native` for a loopback or custom-scheme redirect, `web` for an https
//!    one; SEP-837), and `token_endpoint_auth_method` `"none"` sent explicitly (SPEC C-16). Only
//!    one registration runs at a time. The `client_id`, `client_secret` and
//!    `token_endpoint_auth_method` the server *returns* are stored and used on every token and
//!    refresh request (SPEC C-18); an omitted method with a secret means `client_secret_basic`
//!    if the server takes it, else `client_secret_post` (RFC 7591 §2). A 429 or 5xx is
//!    [`Transient`](crate::AuthErrorKind::Transient); any other refusal, a response that is not
//!    RFC 7591, or a method this crate cannot use is a
//!    [`Registration`](crate::AuthErrorKind::Registration) error.
//!
//! A refresh uses the client that obtained the tokens: the pre-registered credentials with that
//! `client_id`, else the stored registration, else the bare `client_id` (a Client ID Metadata
//! Document client is public). When a refresh is refused with `invalid_client`, a dynamic
//! registration is forgotten, so the next authorization registers anew.
//!
//! A machine client (client credentials, JWT bearer or enterprise-managed grant; see the
//! [`authorize`](crate::authorize) module) uses pre-registered credentials only.
//!
//! # Example
//!
//! ```
//! use mcp_auth_client::{ClientCredentials, TokenEndpointAuthMethod};
//!
//! // From MCP_CONFORMANCE_CONTEXT or an app's configuration:
//! let creds = ClientCredentials::new("my-client").secret("s3cr3t");
//! assert_eq!(creds.auth_method(), TokenEndpointAuthMethod::ClientSecretBasic);
//! assert!(!format!("{creds:?}").contains("s3cr3t"));
//!
//! let posted = ClientCredentials::new("my-client")
//!     .secret("s3cr3t")
//!     .token_endpoint_auth_method(TokenEndpointAuthMethod::ClientSecretPost)
//!     .for_issuer("https://auth.example.com");
//! assert_eq!(posted.issuer(), Some("https://auth.example.com"));
//! ```
//!
//! # Example: a dynamic registration, end to end
//!
//! An authorization server (a few lines of axum on loopback, hidden here) that offers dynamic
//! registration but no metadata documents, and no pre-registered credentials: the first
//! authorization registers, and the registration is kept for the next ones.
//!
//! ```
//! # use axum::{Json, Router, extract::Query, response::Redirect, routing::{get, post}};
//! # use serde_json::{Value, json};
//! # use std::collections::HashMap;
//! use mcp_auth_client::{HeadlessBrowser, TokenManager, store::{MemoryTokenStore, RegistrationKind, TokenStore}};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let base = format!("http://{}", listener.local_addr()?);
//! # let (prm, meta) = (
//! #     json!({ "resource": format!("{base}/mcp"), "authorization_servers": [base] }),
//! #     json!({
//! #         "issuer": base,
//! #         "authorization_endpoint": format!("{base}/authorize"),
//! #         "token_endpoint": format!("{base}/token"),
//! #         "registration_endpoint": format!("{base}/register"),
//! #         "response_types_supported": ["code"],
//! #         "code_challenge_methods_supported": ["S256"],
//! #     }),
//! # );
//! # let server = Router::new()
//! #     .route("/.well-known/oauth-protected-resource/mcp", get(move || async move { Json(prm) }))
//! #     .route("/.well-known/oauth-authorization-server", get(move || async move { Json(meta) }))
//! #     .route("/register", post(|Json(mut body): Json<Value>| async move {
//! #         body["client_id"] = json!("dyn-1");
//! #         (axum::http::StatusCode::CREATED, Json(body))
//! #     }))
//! #     .route("/authorize", get(|Query(q): Query<HashMap<String, String>>| async move {
//! #         Redirect::to(&format!("{}?code=c-1&state={}", q["redirect_uri"], q["state"]))
//! #     }))
//! #     .route("/token", post(|| async {
//! #         Json(json!({ "access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600 }))
//! #     }));
//! # tokio::spawn(async move { axum::serve(listener, server).await });
//! let store = MemoryTokenStore::new();
//! let manager = TokenManager::builder(&format!("{base}/mcp"))
//!     .allow_insecure_loopback(true) // the server above runs on http://127.0.0.1
//!     .browser(HeadlessBrowser::new()) // follows the redirects instead of a user
//!     .client_name("my-cli")
//!     .store(store.clone())
//!     .build()?;
//! assert_eq!(manager.authorize(None).await?.expose(), "tok-1");
//!
//! let client = store.load_client(&base).await?.expect("registered and kept");
//! assert_eq!(client.kind, RegistrationKind::Dynamic);
//! assert_eq!(client.client_id, "dyn-1");
//! # Ok(())
//! # }
//! ```

pub(crate) mod credentials;
mod registrar;

pub use self::credentials::UnsupportedAuthMethod;
pub(crate) use self::credentials::{ClientCredentials, TokenEndpointAuthMethod};
pub(crate) use self::registrar::Registrar;
