//! Masks on the wire: weights that are all `0` or `-∞`, as a constraint
//! (a grammar, a regex) answers them, travel as one bit each.
//!
//! A `logw_next` over 50,000 tokens is 400 KB as `f64`s and 6 KB as a
//! mask. Between processes, moving 400 KB from one core to another costs
//! about 50 µs on a 2-core machine (more than a grammar takes to compute
//! the mask); writing the same 400 KB from 6 KB on the receiving core
//! costs a fraction of that.
//!
//! The body after the tag [`MASK`](super::MASK): the number of rows and
//! their width as `u64` LE, then each row's bits, least significant first,
//! 1 for `0`, 0 for `-∞`, the row padded to whole bytes (so that every
//! row starts on a byte, and decodes a byte at a time).

/// `-∞`'s bits: the only value a mask holds besides `+0.0` (`-0.0`, whose
/// bits differ, is not a mask value: the values round-trip bit for bit).
const NEG_INF_BITS: u64 = f64::NEG_INFINITY.to_bits();

/// The eight values of each byte of bits.
static EXPANDED: [[f64; 8]; 256] = expanded();

const fn expanded() -> [[f64; 8]; 256] {
    let mut table = [[f64::NEG_INFINITY; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut bit = 0;
        while bit < 8 {
            if byte >> bit & 1 == 1 {
                table[byte][bit] = 0.0;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
}

/// Whether every value of `row` is `+0.0` or `-∞`, a block at a time, so
/// that weights that are not a mask (a language model's) are told apart
/// within their first block.
fn is_mask(row: &[f64]) -> bool {
    row.chunks(256).all(block_is_mask)
}

/// [`is_mask`] over one block, with ORs only (which the compiler
/// vectorizes; a fold of comparisons took half as long again): a value is
/// one of the two when its bits outside sign and exponent are 0, and its
/// sign and exponent bits are all 0 or all 1.
fn block_is_mask(block: &[f64]) -> bool {
    let (mut outside, mut partial) = (0u64, 0u64);
    for value in block {
        let bits = value.to_bits();
        outside |= bits & !NEG_INF_BITS;
        let high = bits & NEG_INF_BITS;
        partial |= high ^ (NEG_INF_BITS & u64::from(high != 0).wrapping_neg());
    }
    outside == 0 && partial == 0
}

/// The bits of eight mask values: 1 for `+0.0`, whose sign bit is 0, and
/// 0 for `-∞`, whose sign bit is 1 (a vector sign-mask instruction).
fn pack(values: &[f64; 8]) -> u8 {
    let mut signs = 0u8;
    for (bit, value) in values.iter().enumerate() {
        signs |= ((value.to_bits() >> 63) as u8) << bit;
    }
    !signs
}

/// Appends the mask body of `rows` (each of the same width) when every
/// value is `+0.0` or `-∞`; otherwise leaves `out` as it was and returns
/// `false`.
pub(super) fn encode(rows: &[&[f64]], out: &mut Vec<u8>) -> bool {
    let Some(width) = rows.first().map(|row| row.len()) else {
        return false;
    };
    // Checked first: the weights of a language model fail in the first
    // block of their first row, in nanoseconds.
    if !rows.iter().all(|row| row.len() == width && is_mask(row)) {
        return false;
    }
    let row_bytes = width.div_ceil(8);
    let start = out.len();
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&(width as u64).to_le_bytes());
    out.resize(start + 16 + rows.len() * row_bytes, 0);
    for (row, bits) in rows
        .iter()
        .zip(out[start + 16..].chunks_exact_mut(row_bytes.max(1)))
    {
        let eights = row.chunks_exact(8);
        let tail = eights.remainder();
        for (eight, byte) in eights.zip(bits.iter_mut()) {
            *byte = pack(eight.try_into().expect("chunks of 8"));
        }
        if !tail.is_empty() {
            // Padded with -inf, whose bits are 0.
            let mut eight = [f64::NEG_INFINITY; 8];
            eight[..tail.len()].copy_from_slice(tail);
            bits[row_bytes - 1] = pack(&eight);
        }
    }
    true
}

/// The number of rows and their width that a mask body announces.
pub(super) fn shape(body: &[u8]) -> Option<(usize, usize)> {
    let rows = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let width = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    Some((usize::try_from(rows).ok()?, usize::try_from(width).ok()?))
}

/// The rows of a mask body whose shape was checked, or why the body is
/// malformed.
pub(super) fn decode(body: &[u8], rows: usize, width: usize) -> Result<Vec<Vec<f64>>, String> {
    let row_bytes = width.div_ceil(8);
    let bits = &body[16.min(body.len())..];
    if Some(bits.len()) != rows.checked_mul(row_bytes) {
        return Err(format!(
            "a mask of {rows} rows of {width} values in {} bytes",
            bits.len()
        ));
    }
    Ok(bits
        .chunks_exact(row_bytes.max(1))
        .take(rows)
        .map(|row_bits| {
            // Sized first, then written eight values at a time: no
            // capacity check per byte.
            let mut row = vec![0.0; width];
            let mut eights = row.chunks_exact_mut(8);
            for (eight, &byte) in (&mut eights).zip(row_bits) {
                eight.copy_from_slice(&EXPANDED[usize::from(byte)]);
            }
            let tail = eights.into_remainder();
            if let Some(&byte) = row_bits.get(width / 8) {
                tail.copy_from_slice(&EXPANDED[usize::from(byte)][..tail.len()]);
            }
            row
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(rows: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let mut out = vec![7];
        if !encode(&refs, &mut out) {
            assert_eq!(out, [7], "a refused mask leaves nothing behind");
            return None;
        }
        let (n, width) = shape(&out[1..]).unwrap();
        Some(decode(&out[1..], n, width).unwrap())
    }

    #[test]
    fn only_positive_zero_and_negative_infinity_are_mask_values() {
        let ninf = f64::NEG_INFINITY;
        assert!(round_trip(&[vec![0.0, ninf, 0.0]]).is_some());
        for other in [-0.0, f64::INFINITY, f64::NAN, -1.0, f64::MIN_POSITIVE] {
            assert_eq!(round_trip(&[vec![0.0, other, ninf]]), None, "{other}");
        }
        // Rows of different widths are not one reply.
        assert_eq!(round_trip(&[vec![0.0], vec![0.0, 0.0]]), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let mut out = Vec::new();
        assert!(encode(
            &[&[0.0; 20][..], &[f64::NEG_INFINITY; 20][..]],
            &mut out
        ));
        assert_eq!(out.len(), 16 + 2 * 3);
        assert_eq!(shape(&out), Some((2, 20)));
        assert!(decode(&out[..out.len() - 1], 2, 20).is_err());
        assert!(decode(&out, 3, 20).is_err());
        assert!(decode(&out[..10], 2, 20).is_err());
        assert_eq!(shape(&out[..10]), None);
        assert!(decode(&out, usize::MAX, 2).is_err());
    }

    proptest! {
        /// Masks of any shape come back bit for bit.
        #[test]
        fn masks_round_trip(
            width in 1usize..70,
            bits in proptest::collection::vec(any::<bool>(), 0..400),
        ) {
            let rows: Vec<Vec<f64>> = bits
                .chunks_exact(width)
                .map(|row| row.iter().map(|&b| if b { 0.0 } else { f64::NEG_INFINITY }).collect())
                .collect();
            prop_assume!(!rows.is_empty());
            let back = round_trip(&rows).expect("a mask");
            let bits_of = |rows: &[Vec<f64>]| -> Vec<u64> {
                rows.iter().flatten().map(|v| v.to_bits()).collect()
            };
            prop_assert_eq!(bits_of(&back), bits_of(&rows));
        }
    }
}
