//! RFC 8414 metadata and the OIDC discovery alias.

use axum::response::Response;

use super::State;
use crate::http::public_json;

fn respond(body: bytes::Bytes) -> Response {
    public_json(body, "public, max-age=3600")
}

pub(crate) async fn oauth(axum::extract::State(inner): State) -> Response {
    respond(inner.metadata_json.clone())
}

pub(crate) async fn openid(axum::extract::State(inner): State) -> Response {
    respond(inner.openid_json.clone())
}
