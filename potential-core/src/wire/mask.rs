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
//! row starts on a byte). The receiver keeps the bits as a [`Mask`]: the
//! `f64`s are written only if someone reads them as values.

use crate::mask::Mask;

/// Appends the mask body of `rows` (each of the same width) when every
/// value is `+0.0` or `-∞`; otherwise leaves `out` as it was and returns
/// `false`. For weights that are values: a potential's own `0`/`-∞`
/// vectors travel as bits too.
pub(super) fn encode_values(rows: &[&[f64]], out: &mut Vec<u8>) -> bool {
    let Some(width) = rows.first().map(|row| row.len()) else {
        return false;
    };
    // Checked first: the weights of a language model fail in the first
    // block of their first row, in nanoseconds.
    if rows.iter().any(|row| row.len() != width) {
        return false;
    }
    let Some(masks) = rows
        .iter()
        .map(|row| Mask::from_values(row))
        .collect::<Option<Vec<Mask>>>()
    else {
        return false;
    };
    encode(&masks.iter().collect::<Vec<_>>(), out)
}

/// Appends the mask body of `masks` when they have one width; otherwise
/// leaves `out` as it was and returns `false`.
pub(super) fn encode(masks: &[&Mask], out: &mut Vec<u8>) -> bool {
    let Some(width) = masks.first().map(|mask| mask.len()) else {
        return false;
    };
    if masks.iter().any(|mask| mask.len() != width) {
        return false;
    }
    let row_bytes = width.div_ceil(8);
    out.reserve(16 + masks.len() * row_bytes);
    out.extend_from_slice(&(masks.len() as u64).to_le_bytes());
    out.extend_from_slice(&(width as u64).to_le_bytes());
    for mask in masks {
        // Little-endian words are the bits least significant first, a
        // byte at a time: the body's order. The last word's unused bytes
        // are left out.
        let start = out.len();
        out.extend(mask.words().iter().flat_map(|w| w.to_le_bytes()));
        out.truncate(start + row_bytes);
    }
    true
}

/// The number of rows and their width that a mask body announces.
pub(super) fn shape(body: &[u8]) -> Option<(usize, usize)> {
    let rows = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let width = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    Some((usize::try_from(rows).ok()?, usize::try_from(width).ok()?))
}

/// The masks of a body whose shape was checked, or why the body is
/// malformed. Padding bits past the width are ignored.
pub(super) fn decode(body: &[u8], rows: usize, width: usize) -> Result<Vec<Mask>, String> {
    let row_bytes = width.div_ceil(8);
    let bits = &body[16.min(body.len())..];
    if Some(bits.len()) != rows.checked_mul(row_bytes) {
        return Err(format!(
            "a mask of {rows} rows of {width} values in {} bytes",
            bits.len()
        ));
    }
    bits.chunks_exact(row_bytes.max(1))
        .take(rows)
        .map(|row_bits| {
            let words = row_bits
                .chunks(8)
                .map(|chunk| {
                    let mut word = [0; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    u64::from_le_bytes(word)
                })
                .collect();
            Mask::from_words(width, words).map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(rows: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let mut out = vec![7];
        if !encode_values(&refs, &mut out) {
            assert_eq!(out, [7], "a refused mask leaves nothing behind");
            return None;
        }
        let (n, width) = shape(&out[1..]).unwrap();
        let masks = decode(&out[1..], n, width).unwrap();
        Some(masks.iter().map(Mask::to_values).collect())
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
        assert!(encode_values(
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
        // Padding bits past the width are not positions.
        let last = out.len() - 1;
        out[last] = 0xff;
        assert_eq!(decode(&out, 2, 20).unwrap()[1].count(), 4);
        // Masks of two widths are not one reply.
        let mut out = vec![7];
        assert!(!encode(&[&Mask::all(3), &Mask::all(4)], &mut out));
        assert!(!encode(&[], &mut out));
        assert_eq!(out, [7]);
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
