//! What the backends share besides the records themselves: merging consented scopes, and
//! the error for a refresh token presented under another grant. Every backend stands on
//! [`store`](super) and this module alone.

use std::collections::HashSet;

use super::StoreError;

/// The union of two space-separated scope lists: `existing` first, then what `added` brings
/// that is new, in order, without duplicates.
pub(super) fn merge_scopes(existing: &str, added: &str) -> String {
    let mut seen = HashSet::new();
    existing
        .split_whitespace()
        .chain(added.split_whitespace())
        .filter(|scope| seen.insert(*scope))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A refresh token presented under a grant it does not belong to.
pub(super) fn foreign_refresh() -> StoreError {
    StoreError::new("refresh token belongs to another grant")
}
