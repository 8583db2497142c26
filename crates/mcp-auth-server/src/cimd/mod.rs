//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00): an https
//! `client_id` is the URL of the client's metadata, fetched with SSRF guards and cached.
//!
//! [`CimdFetcher::resolve`] turns such a `client_id` into a public [`ClientRecord`](crate::store::ClientRecord)
//! (`source` = [`ClientSource::MetadataDocument`](crate::store::ClientSource::MetadataDocument)). The authorization endpoint calls it for
//! every URL-shaped `client_id`; the result is never written to the store.
//!
//! # The URL (CIMD-00 §3)
//!
//! The `client_id` must be an `https` URL written in canonical form (what `url` would
//! serialize it as: lowercase host, no default port), with a path other than `/`, no `.` or
//! `..` segments, no fragment and no userinfo. A query is allowed. The URL fetched is therefore
//! exactly the string the client sent.
//!
//! # The fetch (AS-40, CIMD-00 §6.5, §6.6)
//!
//! 1. The host name is resolved here, and every address that is not public unicast is
//!    dropped: private, loopback, link-local (so cloud metadata at `169.254.169.254`),
//!    unique-local (so `fd00:ec2::254`), CGNAT, multicast, unspecified, broadcast,
//!    documentation, benchmarking and reserved ranges, and the IPv4-mapped, NAT64 and 6to4
//!    forms of them. The connection goes to the addresses that were checked (no second
//!    lookup), so DNS rebinding between check and connect is not possible. IP-literal hosts
//!    are checked the same way.
//! 2. Redirects are not followed: a `3xx` is an error.
//! 3. The whole fetch (resolution, connection, body) must finish within
//!    [`CimdConfig::timeout`].
//! 4. The body may not exceed [`CimdConfig::max_bytes`] (5 KiB): a larger `Content-Length` is
//!    refused before reading, and a chunked body is cut off as soon as it passes the limit.
//! 5. The status must be `200` and the content type JSON (`application/json` or
//!    `application/*+json`). No proxy is used.
//!
//! # The document (AS-35, AS-37)
//!
//! A JSON object whose `client_id` is exactly the URL (string comparison), with a
//! `client_name` and a non-empty `redirect_uris` whose every entry passes the redirect URI
//! rules (https, or http on loopback; no fragment). It must not carry `client_secret` or
//! `client_secret_expires_at`, and `token_endpoint_auth_method` is absent, `none` or
//! `private_key_jwt` (the shared-secret methods are forbidden by the draft). A `private_key_jwt`
//! document names its keys with exactly one of `jwks_uri` and `jwks`, and makes a confidential
//! client that must authenticate with a client assertion (CIMD-00 §6.2; feature
//! `jwt-assertions`). Other members are kept as sent.
//!
//! # Caching (AS-39)
//!
//! Good documents are cached per `Cache-Control`: `max-age` (or `s-maxage`, less `Age`)
//! clamped to [`CimdConfig::min_cache`]..=[`CimdConfig::max_cache`]; no header means
//! `min_cache`; `no-store` and `no-cache` mean not cached at all. Errors, non-200 answers and
//! invalid documents are never cached. The cache holds at most [`CimdConfig::max_entries`]
//! documents. Concurrent resolves of one URL share a single fetch.
//!
//! # Example
//!
//! A document served on loopback (only possible with the test-only
//! [`allow_loopback`](CimdConfig::allow_loopback)):
//!
//! ```
//! use mcp_auth_server::cimd::{CimdConfig, CimdErrorKind, CimdFetcher};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let client_id = format!("http://{}/client.json", listener.local_addr()?);
//! let document = serde_json::json!({
//!     "client_id": client_id,
//!     "client_name": "Example MCP client",
//!     "redirect_uris": ["http://127.0.0.1/callback"],
//!     "token_endpoint_auth_method": "none",
//! });
//! let app = axum::Router::new().route("/client.json", axum::routing::get(move || async move { axum::Json(document) }));
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let mut config = CimdConfig::default();
//! config.allow_loopback = true; // tests only
//! let fetcher = CimdFetcher::new(config)?;
//! let client = fetcher.resolve(&client_id, 1_700_000_000).await?;
//! assert_eq!(client.metadata.client_name.as_deref(), Some("Example MCP client"));
//! assert!(client.is_public());
//!
//! // The default configuration refuses loopback (and any other non-public) address.
//! let strict = CimdFetcher::new(CimdConfig::default())?;
//! let error = strict.resolve("https://127.0.0.1/client.json", 1_700_000_000).await.unwrap_err();
//! assert_eq!(error.kind(), CimdErrorKind::Blocked);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

mod fetch;
mod ssrf;
mod url_rules;
mod validate;

pub use self::fetch::CimdFetcher;
#[cfg(feature = "fuzzing")]
pub(crate) use self::validate::validate_document;

/// Limits and policy for fetching Client ID Metadata Documents.
///
/// Start from [`Default`] and change fields: `let mut c = CimdConfig::default(); c.timeout = ..;`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CimdConfig {
    /// Largest accepted document (default 5 KiB).
    pub max_bytes: usize,
    /// Connect + read timeout for one fetch (default 3 s).
    pub timeout: Duration,
    /// Shortest time a good document is cached, whatever its headers say (default 60 s), except
    /// that `Cache-Control: no-store` / `no-cache` documents are not cached at all.
    pub min_cache: Duration,
    /// Longest time a good document is cached (default 24 h).
    pub max_cache: Duration,
    /// Most documents kept in the cache (default 1,000).
    pub max_entries: usize,
    /// Test-only: allow fetching from loopback addresses (and plain `http` on loopback).
    /// Off by default; never enable it in production.
    pub allow_loopback: bool,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024,
            timeout: Duration::from_secs(3),
            min_cache: Duration::from_secs(60),
            max_cache: Duration::from_secs(24 * 3600),
            max_entries: 1_000,
            allow_loopback: false,
        }
    }
}

/// What went wrong with a metadata document (see [`CimdError::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CimdErrorKind {
    /// The [`CimdConfig`] is invalid (from [`CimdFetcher::new`]).
    Config,
    /// The `client_id` is not an acceptable metadata document URL (CIMD-00 §3).
    InvalidUrl,
    /// The host is, or resolves only to, addresses the fetcher may not connect to.
    Blocked,
    /// The host name could not be resolved, or the connection or transfer failed.
    Unreachable,
    /// The fetch took longer than [`CimdConfig::timeout`].
    Timeout,
    /// The server answered with a redirect, which is not followed.
    Redirect,
    /// The server answered with a status other than 200.
    Status,
    /// The response is not JSON (`Content-Type`).
    ContentType,
    /// The document is larger than [`CimdConfig::max_bytes`].
    TooLarge,
    /// The document is not valid JSON, or misses or misstates a required member.
    InvalidDocument,
    /// The document asks for a client authentication method that is forbidden or unsupported.
    AuthMethod,
}

/// Why a metadata document could not be used.
///
/// The message is safe to show to the user: it never names the addresses a host resolved to.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct CimdError {
    kind: CimdErrorKind,
    message: String,
}

impl CimdError {
    fn new(kind: CimdErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    fn invalid_document(reason: impl fmt::Display) -> Self {
        Self::new(
            CimdErrorKind::InvalidDocument,
            format!("the client metadata document is invalid: {reason}"),
        )
    }

    /// The message (safe to show to the user on the error page).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What went wrong.
    pub fn kind(&self) -> CimdErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests;
