//! Shared helpers for this crate's integration tests.

pub(crate) mod chromium;
