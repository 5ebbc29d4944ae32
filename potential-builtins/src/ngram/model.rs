//! Interpolated Kneser-Ney tables and the distributions they give.
//!
//! Outcomes are the token ids `0..V` and EOS (id `V`); histories are padded
//! on the left with BOS (id `V + 1`), which is never an outcome. A history
//! of `m` ids is packed into a `u64`, 16 bits per id, the newest in the low
//! bits, so its most recent `j` ids are `key & mask(j)`; hence at most
//! 65,534 tokens and an order of at most 5.
//!
//! The probability of `w` after a history `h` of order `k` (Chen and
//! Goodman's interpolated Kneser-Ney, one discount `D_k` per order):
//!
//! ```text
//! P_k(w | h) = (max(a_k(h w) - D_k, 0) + D_k N1+(h •) P_{k-1}(w | h')) / a_k(h •)
//! ```
//!
//! where `h'` drops the oldest id of `h`, `a_n` are raw counts at the top
//! order, `a_k` for lower orders are continuation counts (the number of
//! distinct ids seen before `h w`), and the order-1 model interpolates with
//! the uniform distribution over the `V + 1` outcomes. A history never seen
//! at order `k` leaves `P_{k-1}` unchanged. Each seen history is stored as
//! a node with `gamma = D_k N1+(h •) / a_k(h •)` and, for each `w` seen
//! after it, `coef = (a_k(h w) - D_k) / a_k(h •)`, so that
//! `P_k(w | h) = gamma P_{k-1}(w | h') + coef(w)`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// The highest order the 64-bit history keys can hold.
pub(crate) const MAX_ORDER: usize = 5;

/// The most recent `ids` ids of a packed history.
pub(crate) fn mask(ids: usize) -> u64 {
    if ids >= 4 {
        u64::MAX
    } else {
        (1u64 << (16 * ids)) - 1
    }
}

/// The history seen by the next token after `context` (token ids), padded
/// with BOS, `order - 1` ids.
pub(crate) fn history_key(context: &[u32], order: usize, bos: u32) -> u64 {
    let m = order - 1;
    let mut key = 0u64;
    for i in 0..m {
        let id = (context.len() + i)
            .checked_sub(m)
            .map_or(bos, |j| context[j]);
        key = (key << 16) | u64::from(id);
    }
    key
}

/// A history seen in training at one order.
#[derive(Debug, Clone, Copy)]
struct Node {
    start: u32,
    len: u32,
    gamma: f64,
}

/// One outcome seen after a history.
#[derive(Debug, Clone, Copy)]
struct Entry {
    outcome: u32,
    coef: f64,
}

/// The nodes of one order `k >= 2`, by key; entries of a node are sorted
/// by outcome.
#[derive(Debug, Clone)]
struct Level {
    nodes: Vec<Node>,
    entries: Vec<Entry>,
    index: HashMap<u64, u32, KeyHash>,
}

/// A hasher for packed history keys: one multiply and a fold, instead of
/// SipHash, which is built to resist adversarial keys that these (made by
/// training or validated on load) are not. Rebuilding the index is most of
/// the time a worker spends rebuilding a model from its recipe.
type KeyHash = BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Level {
    fn node(&self, key: u64) -> Option<(f64, &[Entry])> {
        let n = self.nodes[*self.index.get(&key)? as usize];
        let start = n.start as usize;
        Some((n.gamma, &self.entries[start..start + n.len as usize]))
    }
}

/// The counts of one order `k >= 2`: for each history (sorted by key), the
/// outcomes seen after it (sorted) and their counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LevelCounts {
    keys: Vec<u64>,
    lens: Vec<u32>,
    outcomes: Vec<u32>,
    counts: Vec<u64>,
}

/// What a model is built from, and its serde form: integer counts are a
/// third the size of the probability tables they give, and rebuilding the
/// tables from them is the same arithmetic, so a worker gets the same
/// model bit for bit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Counts {
    order: usize,
    /// Order-1 continuation counts, one per outcome.
    unigrams: Vec<u64>,
    /// Orders `2..=order`.
    levels: Vec<LevelCounts>,
}

/// A trained model: the order-1 distribution and one level per higher order.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    counts: Counts,
    /// `P_1` over the `V + 1` outcomes.
    base: Vec<f64>,
    /// Orders `2..=order`.
    levels: Vec<Level>,
}

impl Model {
    /// Counts `sequences` (token ids below `vocab_len`) and builds the tables.
    pub(crate) fn train(
        sequences: &[Vec<u32>],
        order: usize,
        vocab_len: usize,
    ) -> Result<Model, String> {
        let eos = vocab_len as u32;
        let bos = eos + 1;
        // counts[m] maps (history of m ids, outcome) to a_{m+1}.
        let mut counts: Vec<HashMap<(u64, u32), u64, KeyHash>> = vec![HashMap::default(); order];
        let top = &mut counts[order - 1];
        for s in sequences {
            let mut key = history_key(&[], order, bos);
            for &w in s.iter().chain(std::iter::once(&eos)) {
                *top.entry((key, w)).or_default() += 1;
                key = ((key << 16) | u64::from(w)) & mask(order - 1);
            }
        }
        for m in (0..order - 1).rev() {
            let (lower, higher) = counts.split_at_mut(m + 1);
            for &(key, w) in higher[0].keys() {
                *lower[m].entry((key & mask(m), w)).or_default() += 1;
            }
        }
        let mut unigrams = vec![0; vocab_len + 1];
        for (&(_, w), &a) in &counts[0] {
            unigrams[w as usize] = a;
        }
        let levels = counts[1..]
            .iter()
            .map(|level| {
                let mut items: Vec<((u64, u32), u64)> =
                    level.iter().map(|(&k, &v)| (k, v)).collect();
                items.sort_unstable();
                let mut c = LevelCounts {
                    keys: Vec::new(),
                    lens: Vec::new(),
                    outcomes: Vec::with_capacity(items.len()),
                    counts: Vec::with_capacity(items.len()),
                };
                for group in items.chunk_by(|a, b| a.0.0 == b.0.0) {
                    c.keys.push(group[0].0.0);
                    c.lens.push(group.len() as u32);
                    for &((_, w), a) in group {
                        c.outcomes.push(w);
                        c.counts.push(a);
                    }
                }
                c
            })
            .collect();
        let counts = Counts {
            order,
            unigrams,
            levels,
        };
        Model::from_counts(counts, vocab_len)
    }

    /// Builds the probability tables from counts, checking them against the
    /// vocabulary size first (counts from a recipe may be corrupt): a
    /// message on any inconsistency.
    pub(crate) fn from_counts(counts: Counts, vocab_len: usize) -> Result<Model, String> {
        let outcomes = vocab_len + 1;
        let order = counts.order;
        if !(2..=MAX_ORDER).contains(&order) {
            return Err(format!("order {order} is not in 2..={MAX_ORDER}"));
        }
        if counts.unigrams.len() != outcomes || counts.levels.len() != order - 1 {
            return Err("the counts do not fit the vocabulary and order".into());
        }
        let seen = counts.unigrams.iter().filter(|&&a| a > 0).count() as f64;
        let total: u64 = counts.unigrams.iter().sum();
        if total == 0 {
            return Err("no outcome was ever seen".into());
        }
        let d1 = discount(counts.unigrams.iter());
        let base = counts
            .unigrams
            .iter()
            .map(|&a| ((a as f64 - d1).max(0.0) + d1 * seen / outcomes as f64) / total as f64)
            .collect();
        let levels = counts
            .levels
            .iter()
            .map(|c| build_level(c, outcomes))
            .collect::<Result<_, String>>()?;
        Ok(Model {
            counts,
            base,
            levels,
        })
    }

    /// The counts the model was built from (its serde form).
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The order of the model.
    pub(crate) fn order(&self) -> usize {
        self.counts.order
    }

    /// `P(w | history)` for one outcome: one lookup per order.
    pub(crate) fn probability(&self, history: u64, w: u32) -> f64 {
        let mut p = self.base[w as usize];
        for (m, level) in (1..).zip(&self.levels) {
            if let Some((gamma, entries)) = level.node(history & mask(m)) {
                p *= gamma;
                if let Ok(i) = entries.binary_search_by_key(&w, |e| e.outcome) {
                    p += entries[i].coef;
                }
            }
        }
        p
    }

    /// Turns `P_{m}` (history of `m - 1` ids) in `dist` into `P_{m+1}` for
    /// the history `key` of `m` ids: a dense pass over every outcome plus
    /// the sparse entries of the node. Returns false, leaving `dist` as it
    /// is, when that history was never seen.
    pub(crate) fn refine(&self, m: usize, key: u64, dist: &mut [f64]) -> bool {
        let Some((gamma, entries)) = self.levels[m - 1].node(key & mask(m)) else {
            return false;
        };
        for p in dist.iter_mut() {
            *p *= gamma;
        }
        for e in entries {
            dist[e.outcome as usize] += e.coef;
        }
        true
    }

    /// Like [`Model::refine`], writing into `to` from `from` rather than in
    /// place (the same arithmetic, so the same values).
    pub(crate) fn refine_into(&self, m: usize, key: u64, from: &[f64], to: &mut [f64]) -> bool {
        let Some((gamma, entries)) = self.levels[m - 1].node(key & mask(m)) else {
            return false;
        };
        for (t, f) in to.iter_mut().zip(from) {
            *t = f * gamma;
        }
        for e in entries {
            to[e.outcome as usize] += e.coef;
        }
        true
    }

    /// The log distributions after many distinct histories, sharing work:
    /// the histories are visited in order of their most recent ids, as a
    /// depth-first walk of the tree of their suffixes, and a level is
    /// recomputed only where a history's suffix differs from the one
    /// before. Buffers are reused, so the working set stays one
    /// distribution per order.
    pub(crate) fn log_distributions(&self, histories: &[u64]) -> Vec<Vec<f64>> {
        let levels = self.order() - 1;
        let suffixes = |h: u64| -> [u64; MAX_ORDER] {
            let mut s = [0; MAX_ORDER];
            for (m, slot) in s.iter_mut().enumerate().take(levels) {
                *slot = h & mask(m + 1);
            }
            s
        };
        let mut order: Vec<usize> = (0..histories.len()).collect();
        order.sort_by_key(|&i| suffixes(histories[i]));
        let mut buffers = vec![vec![0.0; self.base.len()]; levels];
        // holder[m]: the buffer holding P after the level-m refinement,
        // None for the base distribution.
        let mut holder: [Option<usize>; MAX_ORDER] = [None; MAX_ORDER];
        let mut out: Vec<Vec<f64>> = vec![Vec::new(); histories.len()];
        let mut previous: Option<u64> = None;
        for i in order {
            let h = histories[i];
            let first = previous.map_or(1, |p| {
                (1..=levels)
                    .find(|&m| p & mask(m) != h & mask(m))
                    .unwrap_or(levels + 1)
            });
            for m in first..=levels {
                let (done, rest) = buffers.split_at_mut(m - 1);
                let from: &[f64] = match holder[m - 1] {
                    Some(b) => &done[b],
                    None => &self.base,
                };
                holder[m] = if self.refine_into(m, h, from, &mut rest[0]) {
                    Some(m - 1)
                } else {
                    holder[m - 1]
                };
            }
            let top: &[f64] = match holder[levels] {
                Some(b) => &buffers[b],
                None => &self.base,
            };
            out[i] = top.iter().map(|p| p.ln()).collect();
            previous = Some(h);
        }
        out
    }

    /// The full distribution after `history` (`order - 1` ids), in place.
    pub(crate) fn distribution(&self, history: u64, dist: &mut Vec<f64>) {
        dist.clear();
        dist.extend_from_slice(&self.base);
        for m in 1..self.order() {
            self.refine(m, history, dist);
        }
    }
}

#[cfg(test)]
impl Counts {
    /// Points the first outcome of the top level past the last outcome.
    pub(crate) fn corrupt_an_outcome(&mut self) {
        let outcomes = self.unigrams.len() as u32;
        if let Some(w) = self.levels.last_mut().and_then(|l| l.outcomes.first_mut()) {
            *w = outcomes;
        }
    }
}

/// `n1 / (n1 + 2 n2)` from the counts of counts, clamped into `[0.1, 0.9]`
/// (0.5 when either is zero, as for a tiny corpus).
fn discount<'a>(values: impl Iterator<Item = &'a u64>) -> f64 {
    let (mut n1, mut n2) = (0u64, 0u64);
    for &v in values {
        match v {
            1 => n1 += 1,
            2 => n2 += 1,
            _ => {}
        }
    }
    if n1 == 0 || n2 == 0 {
        0.5
    } else {
        (n1 as f64 / (n1 + 2 * n2) as f64).clamp(0.1, 0.9)
    }
}

/// The nodes of one level from its counts, after checking that the
/// groups cover the entries, every outcome is in range and sorted within
/// its group, and every count is positive.
fn build_level(c: &LevelCounts, outcomes: usize) -> Result<Level, String> {
    let entries = c.outcomes.len();
    if c.keys.len() != c.lens.len()
        || c.counts.len() != entries
        || c.lens.iter().map(|&l| l as usize).sum::<usize>() != entries
    {
        return Err("a level's groups do not cover its entries".into());
    }
    if c.counts.contains(&0) {
        return Err("a level holds a zero count".into());
    }
    let d = discount(c.counts.iter());
    let mut level = Level {
        nodes: Vec::with_capacity(c.keys.len()),
        entries: Vec::with_capacity(entries),
        index: HashMap::with_capacity_and_hasher(c.keys.len(), KeyHash::default()),
    };
    let mut start = 0usize;
    for (i, (&key, &len)) in c.keys.iter().zip(&c.lens).enumerate() {
        let range = start..start + len as usize;
        start = range.end;
        let (ws, counts) = (&c.outcomes[range.clone()], &c.counts[range]);
        if ws.iter().any(|&w| w as usize >= outcomes) || !ws.is_sorted_by(|a, b| a < b) {
            return Err("a level names an outcome outside the vocabulary, or twice".into());
        }
        let total = counts.iter().sum::<u64>() as f64;
        level.nodes.push(Node {
            start: level.entries.len() as u32,
            len,
            gamma: d * f64::from(len) / total,
        });
        level
            .entries
            .extend(ws.iter().zip(counts).map(|(&outcome, &a)| Entry {
                outcome,
                coef: (a as f64 - d) / total,
            }));
        if level.index.insert(key, i as u32).is_some() {
            return Err("a level holds one history twice".into());
        }
    }
    Ok(level)
}
