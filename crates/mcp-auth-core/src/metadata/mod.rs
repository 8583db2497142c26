//! Metadata documents: RFC 9728 (protected resource), RFC 8414 (authorization server, with the
//! OpenID Connect discovery fields) and RFC 7591 (client).
//!
//! Every document keeps the members it does not know in an `extra` map, so a document read and
//! written back loses nothing; the RFCs ask recipients to ignore such members, and typed code does.
//! Members with no value are left out when serialising (RFC 9728 §3.2).
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::metadata::ProtectedResourceMetadata;
//!
//! let mut prm = ProtectedResourceMetadata::new("https://mcp.example.com/mcp");
//! prm.authorization_servers.push("https://auth.example.com".into());
//! prm.scopes_supported.push("mcp:tools".into());
//! let json = serde_json::to_string(&prm)?;
//! assert_eq!(
//!     json,
//!     r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:tools"]}"#,
//! );
//!
//! let back: ProtectedResourceMetadata =
//!     serde_json::from_str(r#"{"resource":"https://a.example","x-vendor":1}"#)?;
//! assert_eq!(back.extra["x-vendor"], 1);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod authorization_server;
mod client;
mod protected_resource;

pub use self::{
    authorization_server::AuthorizationServerMetadata,
    client::{ClientInformation, ClientMetadata},
    protected_resource::ProtectedResourceMetadata,
};

/// Members a document carries that this crate has no field for.
pub type Extra = serde_json::Map<String, serde_json::Value>;
