//! Protect any tower service as an OAuth 2.1 resource server for MCP (spec revision 2025-11-25).
//!
//! MODULE-DOCS-PLACEHOLDER
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth_info;
pub mod bearer;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp;
#[cfg(feature = "axum")]
mod metadata_router;
pub mod origin;
mod protected_resource;
pub mod verify;

pub use self::{
    auth_info::{AuthInfo, AuthInfoBuilder},
    bearer::{BearerAuth, BearerAuthLayer},
    error::ConfigError,
    protected_resource::{ProtectedResource, ProtectedResourceBuilder, ROOT_METADATA_PATH},
    verify::{TokenVerifier, VerifyError, VerifyErrorKind},
};
