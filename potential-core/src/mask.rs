//! A set of symbols as bits: the weights of a constraint.
//!
//! A grammar or a regular expression answers `logw_next` with weights that
//! are all `0` (allowed) or `-∞` (not): over 50,000 tokens that is 400 KB
//! of `f64`s that say one bit each. A [`Mask`] holds those bits (6 KB), and
//! [`LogWeights::from_mask`](crate::LogWeights::from_mask) wraps it as
//! weights that are written out as `f64`s only if someone asks for the
//! slice. A product adds a mask to a language model's weights by writing
//! `-∞` where its bits are clear, and the wire sends the bits as they are.

use crate::error::{PotentialError, Result};

/// `-∞`'s bits: the only value a mask's weights hold besides `+0.0`
/// (`-0.0`, whose bits differ, is not one: masks round-trip bit for bit).
const NEG_INF_BITS: u64 = f64::NEG_INFINITY.to_bits();

/// The eight weights of each byte of bits, least significant bit first.
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

/// A set of positions `0..len` (a vocabulary's tokens, then EOS), one bit
/// each: the allowed symbols of a constraint.
///
/// Bit `i` of word `i / 64` is position `i`; the bits past `len` are
/// always clear, so that two masks of the same set compare equal.
///
/// ```
/// use potential_core::Mask;
///
/// let mut mask = Mask::none(5);
/// mask.insert(1);
/// mask.insert(4);
/// assert!(mask.contains(4) && !mask.contains(0) && !mask.contains(99));
/// assert_eq!(mask.count(), 2);
/// assert_eq!(mask.iter().collect::<Vec<_>>(), [1, 4]);
/// assert_eq!(mask.to_values()[..2], [f64::NEG_INFINITY, 0.0]);
/// assert_eq!(Mask::from_values(&mask.to_values()), Some(mask));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mask {
    len: usize,
    words: Vec<u64>,
}

impl Mask {
    /// The empty set of `len` positions.
    pub fn none(len: usize) -> Mask {
        Mask {
            len,
            words: vec![0; len.div_ceil(64)],
        }
    }

    /// The set of all `len` positions.
    pub fn all(len: usize) -> Mask {
        let mut mask = Mask {
            len,
            words: vec![u64::MAX; len.div_ceil(64)],
        };
        mask.clear_tail();
        mask
    }

    /// The set whose bit `i` is bit `i % 64` of `words[i / 64]`; bits past
    /// `len` are ignored. `len.div_ceil(64)` words, or an error.
    ///
    /// ```
    /// use potential_core::Mask;
    ///
    /// let mask = Mask::from_words(70, vec![0b101, 1 << 5 | 1 << 63])?;
    /// assert_eq!(mask.iter().collect::<Vec<_>>(), [0, 2, 69]);
    /// assert!(Mask::from_words(70, vec![0]).is_err());
    /// # Ok::<(), potential_core::PotentialError>(())
    /// ```
    pub fn from_words(len: usize, words: Vec<u64>) -> Result<Mask> {
        if words.len() != len.div_ceil(64) {
            return Err(PotentialError::InvalidInput(format!(
                "a mask of {len} positions in {} words of 64 bits",
                words.len()
            )));
        }
        let mut mask = Mask { len, words };
        mask.clear_tail();
        Ok(mask)
    }

    /// The set of the positions whose value is `+0.0`, when every value of
    /// `values` is `+0.0` or `-∞`; `None` otherwise (in the first 256
    /// values for a language model's weights).
    pub fn from_values(values: &[f64]) -> Option<Mask> {
        if !values.chunks(256).all(block_is_mask) {
            return None;
        }
        let mut mask = Mask::none(values.len());
        for (word, sixty_four) in mask.words.iter_mut().zip(values.chunks(64)) {
            for (bit, value) in sixty_four.iter().enumerate() {
                // `+0.0` has sign bit 0, `-∞` sign bit 1.
                *word |= ((!value.to_bits() >> 63) & 1) << bit;
            }
        }
        Some(mask)
    }

    /// The weights of the set: `0.0` at its positions, `-∞` elsewhere.
    pub fn to_values(&self) -> Vec<f64> {
        // Sized first, then written eight values at a time from a table: no
        // capacity check per value.
        let mut values = vec![0.0; self.len];
        let bytes = self.words.iter().flat_map(|w| w.to_le_bytes());
        let mut eights = values.chunks_exact_mut(8);
        for (eight, byte) in (&mut eights).zip(bytes) {
            eight.copy_from_slice(&EXPANDED[usize::from(byte)]);
        }
        let tail = eights.into_remainder();
        // The byte after the whole ones, read from its word (not by
        // walking the bytes again).
        if let Some(word) = self.words.get(self.len / 64).filter(|_| !tail.is_empty()) {
            let byte = (word >> (8 * (self.len / 8 % 8))) as u8;
            tail.copy_from_slice(&EXPANDED[usize::from(byte)][..tail.len()]);
        }
        values
    }

    /// The number of positions, in and out of the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no positions at all (not whether the set is empty:
    /// see [`Mask::count`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether position `i` is in the set; `false` past [`Mask::len`].
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Puts position `i` in the set.
    ///
    /// # Panics
    ///
    /// When `i` is not below [`Mask::len`], as indexing a slice would.
    pub fn insert(&mut self, i: usize) {
        assert!(i < self.len, "position {i} of a mask of {}", self.len);
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Takes position `i` out of the set (nothing past [`Mask::len`]).
    pub fn remove(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// The number of positions in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The positions in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    w * 64 + bit
                })
            })
        })
    }

    /// The `n`-th position in the set (from 0), counting a word at a time.
    pub fn nth(&self, mut n: usize) -> Option<usize> {
        for (w, &word) in self.words.iter().enumerate() {
            let ones = word.count_ones() as usize;
            if n < ones {
                let mut rest = word;
                for _ in 0..n {
                    rest &= rest - 1;
                }
                return Some(w * 64 + rest.trailing_zeros() as usize);
            }
            n -= ones;
        }
        None
    }

    /// The bits, 64 positions a word (see [`Mask::from_words`]).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Keeps only the positions also in `other` (the product of two
    /// constraints). Masks of other lengths are an error.
    pub fn intersect_with(&mut self, other: &Mask) -> Result<()> {
        if other.len != self.len {
            return Err(PotentialError::InvalidInput(format!(
                "masks of {} and {} positions",
                self.len, other.len
            )));
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
        Ok(())
    }

    /// Writes `-∞` into `values` wherever the set has no position, keeping
    /// the others: the sum of `values` and this mask's weights, in place.
    ///
    /// ```
    /// use potential_core::Mask;
    ///
    /// let mask = Mask::from_words(3, vec![0b101])?;
    /// let mut values = vec![-1.0, -2.0, -3.0];
    /// mask.restrict(&mut values)?;
    /// assert_eq!(values, [-1.0, f64::NEG_INFINITY, -3.0]);
    /// # Ok::<(), potential_core::PotentialError>(())
    /// ```
    pub fn restrict(&self, values: &mut [f64]) -> Result<()> {
        if values.len() != self.len {
            return Err(PotentialError::InvalidInput(format!(
                "a mask of {} positions over {} values",
                self.len,
                values.len()
            )));
        }
        for (sixty_four, &word) in values.chunks_mut(64).zip(&self.words) {
            // A select per value, without branches: the compiler
            // vectorizes it, where skipping to the clear bits would not be.
            for (bit, value) in sixty_four.iter_mut().enumerate() {
                if word >> bit & 1 == 0 {
                    *value = f64::NEG_INFINITY;
                }
            }
        }
        Ok(())
    }

    fn clear_tail(&mut self) {
        if let (Some(last), tail @ 1..) = (self.words.last_mut(), self.len % 64) {
            *last &= (1 << tail) - 1;
        }
    }
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first: Vec<usize> = self.iter().take(8).collect();
        f.debug_struct("Mask")
            .field("len", &self.len)
            .field("count", &self.count())
            .field("first", &first)
            .finish()
    }
}

/// Whether every value of `block` is `+0.0` or `-∞`, with ORs only (which
/// the compiler vectorizes; a fold of comparisons took half as long again):
/// a value is one of the two when its bits outside sign and exponent are
/// 0, and its sign and exponent bits are all 0 or all 1.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NEG: f64 = f64::NEG_INFINITY;

    #[test]
    fn only_positive_zero_and_negative_infinity_are_mask_values() {
        assert!(Mask::from_values(&[0.0, NEG, 0.0]).is_some());
        for other in [-0.0, f64::INFINITY, f64::NAN, -1.0, f64::MIN_POSITIVE] {
            assert_eq!(Mask::from_values(&[0.0, other, NEG]), None, "{other}");
        }
        assert_eq!(Mask::from_values(&[]), Some(Mask::none(0)));
    }

    #[test]
    fn bits_past_the_length_never_count() {
        let mask = Mask::from_words(3, vec![u64::MAX]).unwrap();
        assert_eq!(mask, Mask::all(3));
        assert_eq!(mask.count(), 3);
        assert_eq!(mask.words(), [0b111]);
        assert!(!mask.contains(3));
        let mut other = Mask::all(3);
        other.remove(70);
        assert_eq!(other, mask);
        assert!(Mask::all(64).words() == [u64::MAX]);
        assert!(Mask::all(0).words().is_empty());
    }

    #[test]
    fn intersect_and_restrict_check_their_lengths() {
        let mut a = Mask::all(5);
        assert!(a.intersect_with(&Mask::all(6)).is_err());
        assert!(a.restrict(&mut [0.0; 4]).is_err());
        a.intersect_with(&Mask::from_words(5, vec![0b10010]).unwrap())
            .unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    #[should_panic(expected = "position 5 of a mask of 5")]
    fn inserting_past_the_length_panics() {
        Mask::none(5).insert(5);
    }

    proptest! {
        /// Values and bits say the same set, whatever the length: through
        /// `from_values`/`to_values`, `iter`, `nth`, `count`, `contains`
        /// and `restrict`.
        #[test]
        fn every_view_of_a_mask_agrees(bits in proptest::collection::vec(any::<bool>(), 0..300)) {
            let values: Vec<f64> = bits.iter().map(|&b| if b { 0.0 } else { NEG }).collect();
            let mask = Mask::from_values(&values).expect("a mask");
            let back = mask.to_values();
            prop_assert_eq!(
                back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            let set: Vec<usize> = (0..bits.len()).filter(|&i| bits[i]).collect();
            prop_assert_eq!(mask.iter().collect::<Vec<_>>(), set.clone());
            prop_assert_eq!(mask.count(), set.len());
            for (n, &i) in set.iter().enumerate() {
                prop_assert_eq!(mask.nth(n), Some(i));
                prop_assert!(mask.contains(i));
            }
            prop_assert_eq!(mask.nth(set.len()), None);
            let mut restricted: Vec<f64> = (0..bits.len()).map(|i| -(i as f64)).collect();
            mask.restrict(&mut restricted).unwrap();
            for (i, v) in restricted.iter().enumerate() {
                prop_assert_eq!(*v, if bits[i] { -(i as f64) } else { NEG });
            }
        }
    }
}
