//! `GET /jwks.json`: the public signing keys.

use axum::response::Response;

use super::State;
use crate::http::public_json;

pub(crate) async fn handle(axum::extract::State(inner): State) -> Response {
    // Short enough that a rotation's new key is seen well before it signs (publish_ahead).
    public_json(inner.keys.jwks_json(), "public, max-age=300")
}
