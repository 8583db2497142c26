//! The access token syntax the bearer layer accepts (rule 4 of [`bearer`](crate::bearer)): an
//! RFC 6750 §2.1 `b64token` of at most [`MAX_TOKEN_LEN`] bytes. A leaf module: the bearer layer
//! checks it, and the token cache remembers it for each token it keeps.

/// The longest token the layer passes to a verifier; longer ones are `invalid_token` at once.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Whether the layer passes `token` to a verifier: a `b64token` (RFC 6750 §2.1) of at most
/// [`MAX_TOKEN_LEN`] bytes. The token cache remembers this per entry, so a token it recalls is
/// known to pass without scanning it again.
pub(crate) fn is_well_formed(token: &[u8]) -> bool {
    token.len() <= MAX_TOKEN_LEN && is_b64token(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Vectorised through [`all_bytes`](mcp_auth_jwt::ascii::all_bytes): this runs on every request
/// whose token the verifier does not recall.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    if body.is_empty() {
        return false;
    }
    mcp_auth_jwt::ascii::all_bytes(body, b'A', is_b64_char)
}

/// `+`, `-./0-9` (one range), `A-Z`/`a-z` (folded by `| 0x20`, which maps nothing else onto
/// `a..=z`), `_` and `~`.
///
/// Signed comparisons, which SSE2 has (`pcmpgtb`), so the vectorised scan needs no unsigned
/// emulation; bytes from `0x80` are negative and fail every range.
#[inline]
#[allow(clippy::cast_possible_wrap)]
const fn is_b64_char(b: u8) -> bool {
    let x = b as i8;
    let folded = (b | 0x20) as i8;
    ((x > 0x2C) & (x < 0x3A))
        | ((folded > 0x60) & (folded < 0x7B))
        | (x == 0x2B)
        | (x == 0x5F)
        | (x == 0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block check (full blocks and the padded last block) against the grammar, byte by byte.
    #[test]
    fn b64token_matches_the_grammar_for_every_byte_and_position() {
        let reference = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        for b in 0..=255u8 {
            for len in [1usize, 2, 63, 64, 65, 127, 128, 129, 200] {
                for at in [0, 1, len / 2, len.saturating_sub(2), len - 1] {
                    if at >= len {
                        continue;
                    }
                    let mut token = vec![b'x'; len];
                    token[at] = b;
                    let want = reference(b) || (b == b'=' && at == len - 1 && len > 1);
                    assert_eq!(is_b64token(&token), want, "{b:#04x} at {at}/{len}");
                    token.extend_from_slice(b"==");
                    let want = reference(b) || (b == b'=' && at == len - 1 && len > 1);
                    assert_eq!(is_b64token(&token), want, "{b:#04x} at {at}/{len} + ==");
                }
            }
        }
    }

    #[test]
    fn b64_alphabet_matches_rfc6750_for_every_byte() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64_char(b), expected, "{b:#04x}");
        }
    }
}
