//! The shared vocabulary of MCP authorization (MCP spec revisions 2026-07-28 and 2025-11-25).
//!
//! This crate has no I/O and no async runtime. It holds the types and rules that the resource server
//! ([`mcp-auth-resource`]), the authorization server and the client share:
//!
//! - [`metadata`]: RFC 9728 protected resource metadata, RFC 8414 authorization server metadata (with
//!   the OpenID Connect discovery fields) and RFC 7591 client metadata, with serde round trips.
//! - [`well_known`]: well-known URL construction exactly as RFC 9728 §3.1 / RFC 8414 §3.1 (path-aware
//!   insertion) and OpenID Connect Discovery §4 (appended form).
//! - [`ResourceId`]: a canonical resource identifier (RFC 8707) that never grows the trailing slash the
//!   `url` crate adds to origin-only URLs.
//! - [`challenge`]: one `WWW-Authenticate` builder and parser (RFC 9110 §11.6.1, RFC 6750 §3).
//! - [`ScopeSet`]: RFC 6749 §3.3 scopes, order-preserving, with union and difference; [`OFFLINE_ACCESS`]
//!   names the refresh-token scope an MCP server never publishes or challenges (SEP-2207).
//! - [`pkce`]: PKCE S256 (RFC 7636) verifiers and challenges.
//! - [`error`]: OAuth error codes and the RFC 6749 §5.2 error body.
//! - [`Secret`]: a string that never prints; [`secret_opt`] (de)serializes an `Option<Secret>`
//!   field.
//! - [`Clock`]: where time comes from, so expiry can be tested.
//! - `limit` (feature `limit`): in-memory rate limits per key on `governor`'s GCRA (addresses,
//!   client ids).
//! - [`host`]: one strict `host[:port]` parser and the loopback rule, for Host guards.
//! - [`revocation`]: [`RevocationList`](revocation::RevocationList), how an authorization server
//!   tells resource servers in the same process that a token was revoked.
//! - [`Subject`]: the `sub` of a verified access token, left in the request extensions by the
//!   resource server for code that does not depend on it.
//!
//! # Public paths
//!
//! Every public type has exactly one path. The small, everywhere-used values live at the crate
//! root; each public module holds one subject (a protocol document, a header grammar, a rule)
//! and re-exports nothing that is also at the root.
//!
//! | path | public types |
//! |---|---|
//! | crate root | [`ResourceId`], [`InvalidResourceId`], [`is_loopback_host`]; [`Scope`], [`ScopeSet`], [`InvalidScope`], [`OFFLINE_ACCESS`], [`is_scope_token`]; [`Secret`], [`secret_opt`]; [`Subject`], [`SubjectHash`]; [`Clock`], [`SystemClock`], [`ManualClock`] |
//! | [`challenge`] | [`Challenge`](challenge::Challenge), [`BearerChallenge`](challenge::BearerChallenge), [`DpopChallenge`](challenge::DpopChallenge), [`ParseError`](challenge::ParseError), [`parse`](challenge::parse()), [`to_header_string`](challenge::to_header_string) |
//! | [`error`] | [`ErrorCode`](error::ErrorCode), [`ErrorResponse`](error::ErrorResponse), [`sanitize_description`](error::sanitize_description) |
//! | [`host`] | [`Host`](host::Host), [`Authority`](host::Authority) |
//! | `limit` (feature `limit`) | `Limiter`, `MAX_KEYS` |
//! | [`metadata`] | [`ProtectedResourceMetadata`](metadata::ProtectedResourceMetadata), [`AuthorizationServerMetadata`](metadata::AuthorizationServerMetadata), [`ClientMetadata`](metadata::ClientMetadata), [`ClientInformation`](metadata::ClientInformation), [`Extra`](metadata::Extra) |
//! | [`pkce`] | [`CodeVerifier`](pkce::CodeVerifier), [`CodeChallenge`](pkce::CodeChallenge), [`InvalidPkce`](pkce::InvalidPkce), [`S256`](pkce::S256) |
//! | [`revocation`] | [`RevocationList`](revocation::RevocationList) |
//! | [`well_known`] | the URL builders and the three suffix constants |
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::{ResourceId, ScopeSet, challenge::BearerChallenge, well_known};
//!
//! let resource = ResourceId::parse("https://MCP.example.com/mcp")?;
//! assert_eq!(resource.as_str(), "https://mcp.example.com/mcp");
//!
//! let prm = well_known::protected_resource_metadata_url(&resource);
//! assert_eq!(prm, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
//!
//! let challenge = BearerChallenge::new()
//!     .resource_metadata(&prm)
//!     .scope(&"mcp:tools".parse::<ScopeSet>()?);
//! assert_eq!(
//!     challenge.to_string(),
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#,
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`mcp-auth-resource`]: https://docs.rs/mcp-auth-resource
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod challenge;
pub mod error;
pub mod host;
#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub mod limit;
pub mod metadata;
pub mod pkce;
mod resource_id;
pub mod revocation;
mod scope;
mod secret;
mod subject;
mod time;
pub mod well_known;

pub use self::{
    resource_id::{InvalidResourceId, ResourceId, is_loopback_host},
    scope::{InvalidScope, OFFLINE_ACCESS, Scope, ScopeSet, is_scope_token},
    secret::{Secret, secret_opt},
    subject::{Subject, SubjectHash},
    time::{Clock, ManualClock, SystemClock},
};
