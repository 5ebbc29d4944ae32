//! Sampling without replacement by Gumbel keys: the order in which AWRS
//! draws tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Stream;

/// The indices of the finite log probabilities in the order of a draw
/// without replacement: each index's key is its log probability plus
/// Gumbel noise, and the keys are taken largest first (the Gumbel-top-k
/// trick, as genlm-control's AWRS draws).
///
/// The keys sit in a heap, built in linear time: AWRS usually needs the
/// first few indices only, not a sort of the whole vocabulary.
pub(super) struct GumbelOrder(BinaryHeap<Key>);

impl GumbelOrder {
    /// A fresh order of the indices of the finite entries of `logps`.
    pub(super) fn new(logps: &[f64], stream: &mut Stream) -> Self {
        let keys: Vec<Key> = logps
            .iter()
            .enumerate()
            .filter(|(_, lp)| **lp > f64::NEG_INFINITY)
            .map(|(index, lp)| Key {
                key: lp - (-stream.open_uniform().ln()).ln(),
                index,
            })
            .collect();
        GumbelOrder(BinaryHeap::from(keys))
    }
}

impl Iterator for GumbelOrder {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.0.pop().map(|k| k.index)
    }
}

/// A Gumbel key and its index, ordered by key (ties by index, so that the
/// order is total and the draw reproducible).
struct Key {
    key: f64,
    index: usize,
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(other.index.cmp(&self.index))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_index_follows_the_probabilities_and_skips_impossible_ones() {
        let logps = [0.5f64.ln(), f64::NEG_INFINITY, 0.3f64.ln(), 0.2f64.ln()];
        let mut stream = Stream::new(3, 0);
        let mut first = [0usize; 4];
        let runs = 20_000;
        for _ in 0..runs {
            let order: Vec<usize> = GumbelOrder::new(&logps, &mut stream).collect();
            assert_eq!(order.len(), 3);
            assert!(!order.contains(&1));
            first[order[0]] += 1;
        }
        // Standard error of a frequency near 0.5 over 20,000 draws: 0.0035.
        for (i, p) in [(0, 0.5), (2, 0.3), (3, 0.2)] {
            let f = first[i] as f64 / runs as f64;
            assert!((f - p).abs() < 0.015, "{i}: {f}");
        }
    }
}
