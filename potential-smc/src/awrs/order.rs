//! Sampling without replacement by Gumbel keys: the order in which AWRS
//! draws tokens.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::Stream;

/// The indices of the finite log probabilities in the order of a draw
/// without replacement: each index's key is its log probability plus
/// Gumbel noise, and the keys are taken largest first (the Gumbel-top-k
/// trick, as genlm-control's AWRS draws).
///
/// The keys sit in a heap, built in linear time: AWRS usually needs the
/// first few indices only, not a sort of the whole vocabulary.
pub(super) struct GumbelOrder {
    keys: BinaryHeap<Key>,
    /// Indices taken from the heap by [`peek`](GumbelOrder::peek), not
    /// yet handed out, in order.
    peeked: VecDeque<usize>,
}

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
        GumbelOrder {
            keys: BinaryHeap::from(keys),
            peeked: VecDeque::new(),
        }
    }

    /// The next `n` indices (fewer at the end), without handing them out:
    /// [`next`](Iterator::next) still gives them, in this order.
    pub(super) fn peek(&mut self, n: usize) -> &[usize] {
        while self.peeked.len() < n {
            match self.keys.pop() {
                Some(key) => self.peeked.push_back(key.index),
                None => break,
            }
        }
        let peeked = self.peeked.make_contiguous();
        &peeked[..n.min(peeked.len())]
    }
}

impl Iterator for GumbelOrder {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.peeked
            .pop_front()
            .or_else(|| self.keys.pop().map(|k| k.index))
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

    #[test]
    fn peeking_does_not_change_the_order() {
        let logps: Vec<f64> = (1..=20).map(|i| (i as f64 / 210.0).ln()).collect();
        for seed in 0..50 {
            let plain: Vec<usize> = GumbelOrder::new(&logps, &mut Stream::new(seed, 1)).collect();
            let mut order = GumbelOrder::new(&logps, &mut Stream::new(seed, 1));
            let mut peeked = Vec::new();
            for step in 0.. {
                let ahead = order.peek(step % 4).to_vec();
                let Some(next) = order.next() else { break };
                assert_eq!(ahead.first().copied().unwrap_or(next), next);
                peeked.push(next);
            }
            assert_eq!(peeked, plain);
        }
    }
}
