//! RFC 8414 metadata and the OIDC discovery alias.

use axum::response::Response;

use super::State;
use crate::http::public_json;
use crate::trace::request_span;

fn respond(body: bytes::Bytes) -> Response {
    let _trace = request_span!("mcp_auth.metadata");
    public_json(body, "public, max-age=3600")
}

/// RFC 8414 metadata, in span `mcp_auth.metadata`.
pub(crate) async fn oauth(axum::extract::State(inner): State) -> Response {
    respond(inner.metadata_json.clone())
}

/// The OIDC discovery alias, in span `mcp_auth.metadata`.
pub(crate) async fn openid(axum::extract::State(inner): State) -> Response {
    respond(inner.openid_json.clone())
}
