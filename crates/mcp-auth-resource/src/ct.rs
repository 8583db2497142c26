//! Constant-time equality of byte strings, for the secrets the layers compare on every request:
//! the token cache's stored tokens and the session binder's session keys.

use subtle::ConstantTimeEq as _;

/// Constant-time equality of two byte strings (the time depends only on the length).
///
/// `subtle`'s slice comparison puts an optimisation barrier on every byte, which costs about a
/// nanosecond per byte; this folds 32 bytes at a time into four accumulators with no branch on the
/// data, and uses `subtle` for the final test.
#[inline]
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // 32-byte blocks in four independent lanes (which the compiler turns into vector
    // instructions), then 8-byte words, then bytes: every byte is read whatever differs.
    let (a_blocks, a_tail) = a.as_chunks::<32>();
    let (b_blocks, b_tail) = b.as_chunks::<32>();
    let mut lanes = [0u64; 4];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        let (x, _) = x.as_chunks::<8>();
        let (y, _) = y.as_chunks::<8>();
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
        }
    }
    let mut diff = lanes[0] | lanes[1] | lanes[2] | lanes[3];
    let (a_words, a_rest) = a_tail.as_chunks::<8>();
    let (b_words, b_rest) = b_tail.as_chunks::<8>();
    for (x, y) in a_words.iter().zip(b_words) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff |= u64::from(x ^ y);
    }
    diff.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_every_byte() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"0123456789abcdefXYZ", b"0123456789abcdefXYZ"));
        assert!(!ct_eq(b"0123456789abcdefXYZ", b"0123456789abcdefXYz"));
        assert!(!ct_eq(b"x123456789abcdefXYZ", b"0123456789abcdefXYZ"));
        assert!(!ct_eq(b"abc", b"abcd"));
        // Every length across the block, word and byte parts, a difference at every position.
        for len in 0..100_usize {
            let a: Vec<u8> = (0..len)
                .map(|i| b'a' + u8::try_from(i % 26).unwrap())
                .collect();
            assert!(ct_eq(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x01;
                assert!(!ct_eq(&a, &b), "{len} {at}");
            }
        }
    }
}
