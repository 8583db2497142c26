//! Building the rejection response: [`ResponseForBearerError`].

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use super::BearerError;

/// Builds the response [`BearerAuth`](super::BearerAuth) returns when it rejects a request.
///
/// Implemented for any `FnMut(&BearerError) -> Response<B> + Clone`, so a closure can be passed to
/// [`BearerAuthLayer::with_rejection_response`](super::BearerAuthLayer::with_rejection_response). Start from
/// [`BearerError::to_response`] to keep the status, `WWW-Authenticate` and `Retry-After` right and
/// only choose the body. Whatever builds the response, the layer attaches the [`BearerError`] to
/// its extensions afterwards.
pub trait ResponseForBearerError<B>: Clone {
    /// Builds the response for `error`.
    fn response_for_bearer_error(&mut self, error: &BearerError) -> Response<B>;
}

impl<F, B> ResponseForBearerError<B> for F
where
    F: FnMut(&BearerError) -> Response<B> + Clone,
{
    fn response_for_bearer_error(&mut self, error: &BearerError) -> Response<B> {
        self(error)
    }
}

/// The default rejection: the status and headers of the [module docs](super) table and an empty
/// body (`B::default()`), so the layer works with any response body type.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRejection;

impl<B: Default> ResponseForBearerError<B> for DefaultRejection {
    fn response_for_bearer_error(&mut self, error: &BearerError) -> Response<B> {
        error.to_response(B::default())
    }
}

/// A rejection with the same status and headers as [`DefaultRejection`] and an RFC 6749 §5.2
/// JSON body (`{"error":"invalid_token","error_description":"…"}`, `Content-Type:
/// application/json`), like the extractors' rejections. A request without credentials still gets
/// an empty body: RFC 6750 §3.1 asks for no error information then.
///
/// Needs a body type that converts from [`Bytes`] (axum's `Body`, `http_body_util::Full<Bytes>`).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonRejection;

impl<B: From<Bytes> + Default> ResponseForBearerError<B> for JsonRejection {
    fn response_for_bearer_error(&mut self, error: &BearerError) -> Response<B> {
        match error.error_response() {
            Some(body) => {
                let mut response = error.to_response(B::from(Bytes::from(body.to_json())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            None => error.to_response(B::default()),
        }
    }
}
