//! Revocation shared between an authorization server and the resource servers that trust it.
//!
//! JWT access tokens are checked locally, so a resource server keeps accepting a revoked token
//! until its `exp` unless something tells it otherwise. [`RevocationList`] is that something: the
//! authorization server implements it (`mcp_auth_server::Revocations`, which knows every access
//! token and grant it revoked), and the resource server consults it on every request, cache hits
//! included (`mcp_auth_resource::Revocable`). In one process the two share
//! revocation at once, without a network round trip.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::revocation::RevocationList;
//! use serde_json::{Map, Value, json};
//!
//! /// Tokens whose `jti` is on a fixed list are revoked.
//! #[derive(Debug)]
//! struct Denied(Vec<&'static str>);
//!
//! impl RevocationList for Denied {
//!     fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
//!         claims.get("jti").and_then(Value::as_str).is_some_and(|jti| self.0.contains(&jti))
//!     }
//! }
//!
//! let list = Denied(vec!["abc"]);
//! let claims = |v: Value| v.as_object().cloned().unwrap();
//! assert!(list.is_revoked(&claims(json!({"jti": "abc"}))));
//! assert!(!list.is_revoked(&claims(json!({"jti": "xyz"}))));
//! ```

use std::sync::Arc;

use serde_json::{Map, Value};

/// Says whether an access token, already verified, has been revoked since it was issued.
///
/// Called on every authenticated request, so implementations answer from memory, without I/O
/// or blocking, in well under a microsecond. `claims` are the token's claims (a JWT's payload,
/// or an introspection response); implementations read the identifiers they issued (`jti`, a
/// grant id such as `sid`, `iss`). An implementation that does not recognise a token says
/// `false`: it is not its to revoke.
pub trait RevocationList: Send + Sync + 'static {
    /// Whether the token with these claims is revoked.
    fn is_revoked(&self, claims: &Map<String, Value>) -> bool;
}

impl<T: RevocationList + ?Sized> RevocationList for Arc<T> {
    fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
        (**self).is_revoked(claims)
    }
}
