//! The key error.

use crate::store::StoreError;

/// A key failure (generation, parsing, signing, storage). Opaque: a storage error is reachable
/// through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    message: &'static str,
    #[source]
    source: Option<StoreError>,
}

impl KeyError {
    pub(super) const fn new(message: &'static str) -> Self {
        Self {
            message,
            source: None,
        }
    }

    pub(super) fn store(message: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |source| Self {
            message,
            source: Some(source),
        }
    }
}
