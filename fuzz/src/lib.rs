//! What the fuzz targets in `fuzz_targets/` share: a runtime to run the layers and routers on,
//! splitting one input into fields, and the "no secret echoed" check.
//!
//! Run the targets with `cargo xtask fuzz` (see `xtask/src/fuzz.rs`); each has a seed corpus in
//! `corpus/<target>/`.

use std::{cell::RefCell, future::Future};

use base64::Engine as _;

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `future` to completion on this thread's current-thread Tokio runtime (timers on).
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let runtime = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime")
        });
        runtime.block_on(future)
    })
}

/// The byte that separates fields in an input ([`fields`]); never part of valid UTF-8.
pub const SEPARATOR: u8 = 0xFF;

/// Splits `data` at [`SEPARATOR`] into at most `n` fields (the last keeps any further
/// separators); missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == SEPARATOR).collect();
    while out.len() < n {
        out.push(&[]);
    }
    out
}

/// A field as text (invalid UTF-8 replaced).
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

/// Unpadded base64url (the JOSE encoding).
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Panics if `secret` (when long enough to be told apart from ordinary text) appears in any
/// header value or in the body.
pub fn assert_not_echoed(headers: &http::HeaderMap, body: &[u8], secret: &str, what: &str) {
    if secret.len() < 12 {
        return;
    }
    for (name, value) in headers {
        assert!(
            !contains(value.as_bytes(), secret.as_bytes()),
            "{what} echoed in header {name}"
        );
    }
    assert!(
        !contains(body, secret.as_bytes()),
        "{what} echoed in the body"
    );
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
