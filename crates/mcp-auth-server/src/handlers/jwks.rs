//! `GET /jwks.json`: the public signing keys.

use axum::response::Response;

use super::State;
use crate::http::public_json;
use crate::trace::request_span;

/// `GET /jwks.json`, in span `mcp_auth.jwks`.
pub(crate) async fn handle(axum::extract::State(inner): State) -> Response {
    let _trace = request_span!("mcp_auth.jwks");
    // Short enough that a rotation's new key is seen well before it signs (publish_ahead).
    public_json(inner.keys.jwks_json(), "public, max-age=300")
}
