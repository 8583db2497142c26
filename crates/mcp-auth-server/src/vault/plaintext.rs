//! The plaintext of a vault record: the upstream tokens in a small binary layout, zeroed on
//! drop (encrypted by the vault before it reaches the store).

use mcp_auth_core::Secret;
use zeroize::Zeroizing;

use crate::upstream::UpstreamTokens;

/// The plaintext of a record: the tokens in a small binary layout (no JSON to scan on the hot
/// path), zeroed on drop. Version byte `1`, then the expiry and three strings, each an option:
/// a presence byte, then the `u64` (big endian) or the `u32` length (big endian) and the bytes.
pub(super) struct Plaintext(pub(super) Zeroizing<Vec<u8>>);

/// The fields of a [`Plaintext`], borrowed from it.
pub(super) struct Fields<'a> {
    pub(super) access: &'a str,
    pub(super) refresh: Option<&'a str>,
    pub(super) expires_at: Option<u64>,
    pub(super) scope: Option<&'a str>,
}

impl Plaintext {
    const VERSION: u8 = 1;

    pub(super) fn encode(fields: &Fields<'_>) -> Self {
        let len = |s: Option<&str>| s.map_or(0, str::len) + 5;
        let mut out = Vec::with_capacity(
            10 + len(Some(fields.access)) + len(fields.refresh) + len(fields.scope) + 16,
        );
        out.push(Self::VERSION);
        match fields.expires_at {
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.to_be_bytes());
            }
            None => out.push(0),
        }
        for text in [Some(fields.access), fields.refresh, fields.scope] {
            match text {
                Some(text) => {
                    out.push(1);
                    let n = u32::try_from(text.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&n.to_be_bytes());
                    out.extend_from_slice(&text.as_bytes()[..n as usize]);
                }
                None => out.push(0),
            }
        }
        Self(Zeroizing::new(out))
    }

    /// The fields; `None` when the bytes are not this layout.
    pub(super) fn fields(&self) -> Option<Fields<'_>> {
        let mut rest: &[u8] = &self.0;
        let mut take = |n: usize| -> Option<&[u8]> {
            if rest.len() < n {
                return None;
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Some(head)
        };
        if take(1)? != [Self::VERSION] {
            return None;
        }
        let expires_at = match take(1)?[0] {
            0 => None,
            _ => Some(u64::from_be_bytes(take(8)?.try_into().ok()?)),
        };
        let mut text = || -> Option<Option<&str>> {
            match take(1)?[0] {
                0 => Some(None),
                _ => {
                    let n = u32::from_be_bytes(take(4)?.try_into().ok()?);
                    let bytes = take(usize::try_from(n).ok()?)?;
                    Some(Some(std::str::from_utf8(bytes).ok()?))
                }
            }
        };
        let access = text()??;
        let refresh = text()?;
        let scope = text()?;
        Some(Fields {
            access,
            refresh,
            expires_at,
            scope,
        })
    }
}

impl Fields<'_> {
    pub(super) fn of(tokens: &UpstreamTokens) -> Fields<'_> {
        Fields {
            access: tokens.access_token.expose(),
            refresh: tokens.refresh_token.as_ref().map(Secret::expose),
            expires_at: tokens.expires_at,
            scope: tokens.scope.as_deref(),
        }
    }

    /// Whether the access token has more than `margin` seconds left at `now` (a token without
    /// an expiry is taken as valid: the upstream did not say).
    pub(super) fn is_fresh(&self, now: u64, margin: u64) -> bool {
        self.expires_at
            .is_none_or(|e| e > now.saturating_add(margin))
    }
}
