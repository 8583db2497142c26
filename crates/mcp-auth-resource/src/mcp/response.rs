//! [`RejectionBody`]: the response bodies [`ToolScopes`](super::ToolScopes) can answer with.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{
    BodyExt as _, Full,
    combinators::{BoxBody, UnsyncBoxBody},
};

/// A response body type that [`ToolScopes`](super::ToolScopes) can build its own answers in.
///
/// Most rejections have an empty body ([`Default`]); a header mismatch (HTTP 400, MCP
/// 2026-07-28) must carry a JSON-RPC error, built with [`from_json`](Self::from_json).
///
/// Implemented for the bodies MCP servers and frameworks answer with:
/// [`Full<Bytes>`](http_body_util::Full), [`BoxBody<Bytes, E>`](http_body_util::combinators::BoxBody)
/// (rmcp's `StreamableHttpService`), [`UnsyncBoxBody<Bytes, E>`](http_body_util::combinators::UnsyncBoxBody),
/// `axum::body::Body` (feature `axum`), [`String`], `Vec<u8>` and [`Bytes`]. For a body type of
/// your own, implement it:
///
/// ```
/// use bytes::Bytes;
/// use mcp_auth_resource::mcp::RejectionBody;
///
/// #[derive(Default)]
/// struct MyBody(Vec<u8>);
///
/// impl RejectionBody for MyBody {
///     fn from_json(json: Bytes) -> Self {
///         Self(json.to_vec())
///     }
/// }
/// # let _ = MyBody::from_json(Bytes::from_static(b"{}"));
/// ```
pub trait RejectionBody: Default {
    /// A body holding `json`, a complete JSON document (the service sets
    /// `Content-Type: application/json`).
    fn from_json(json: Bytes) -> Self;
}

impl RejectionBody for Full<Bytes> {
    fn from_json(json: Bytes) -> Self {
        Self::new(json)
    }
}

impl<E> RejectionBody for BoxBody<Bytes, E> {
    fn from_json(json: Bytes) -> Self {
        Self::new(Full::new(json).map_err(|never: Infallible| match never {}))
    }
}

impl<E> RejectionBody for UnsyncBoxBody<Bytes, E> {
    fn from_json(json: Bytes) -> Self {
        Self::new(Full::new(json).map_err(|never: Infallible| match never {}))
    }
}

#[cfg(feature = "axum")]
impl RejectionBody for axum::body::Body {
    fn from_json(json: Bytes) -> Self {
        Self::from(json)
    }
}

impl RejectionBody for String {
    fn from_json(json: Bytes) -> Self {
        Self::from_utf8_lossy(&json).into_owned()
    }
}

impl RejectionBody for Vec<u8> {
    fn from_json(json: Bytes) -> Self {
        json.to_vec()
    }
}

impl RejectionBody for Bytes {
    fn from_json(json: Bytes) -> Self {
        json
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn every_body_carries_the_json() {
        let json = Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(
            Full::from_json(json.clone())
                .collect()
                .await
                .unwrap()
                .to_bytes(),
            json
        );
        let boxed = BoxBody::<Bytes, std::io::Error>::from_json(json.clone());
        assert_eq!(boxed.collect().await.unwrap().to_bytes(), json);
        let unsync = UnsyncBoxBody::<Bytes, Infallible>::from_json(json.clone());
        assert_eq!(unsync.collect().await.unwrap().to_bytes(), json);
        assert_eq!(String::from_json(json.clone()), r#"{"a":1}"#);
        assert_eq!(Vec::<u8>::from_json(json.clone()), json.to_vec());
        assert_eq!(Bytes::from_json(json.clone()), json);
    }
}
