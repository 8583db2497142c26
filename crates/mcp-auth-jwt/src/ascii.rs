//! Byte-class scans for the request path.

/// Whether every byte of `input` satisfies `ok`.
///
/// Branch-free over 64-byte blocks so the compiler vectorises it (tokens are long and this runs
/// on every request). The last partial block is copied into a block filled with `pad`, which must
/// itself satisfy `ok`, so no byte goes through a scalar loop.
#[inline(always)]
pub fn all_bytes<F: Fn(u8) -> bool + Copy>(input: &[u8], pad: u8, ok: F) -> bool {
    #[inline(always)]
    fn block_ok<F: Fn(u8) -> bool>(block: &[u8; 64], ok: F) -> bool {
        let mut bad = 0u8;
        for &b in block {
            bad |= u8::from(!ok(b));
        }
        bad == 0
    }
    debug_assert!(ok(pad));
    let (blocks, rest) = input.as_chunks::<64>();
    for block in blocks {
        if !block_ok(block, ok) {
            return false;
        }
    }
    let mut last = [pad; 64];
    last[..rest.len()].copy_from_slice(rest);
    block_ok(&last, ok)
}
