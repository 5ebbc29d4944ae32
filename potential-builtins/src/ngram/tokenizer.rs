//! The tokenizer of the n-gram model: a vocabulary of byte strings learned
//! by byte-pair encoding, applied by greedy longest match.
//!
//! Learning is BPE over the distinct pieces of the corpus (see
//! [`pieces`](super::corpus::pieces)): start from the 256 single bytes,
//! then repeatedly merge the most frequent adjacent pair of symbols (ties
//! broken by the smaller pair of symbol ids, so the result is
//! deterministic) until `merges` merges are made or no pair occurs twice.
//! The vocabulary is the 256 bytes followed by the merged byte strings in
//! the order they were made (a merge that spells an existing string adds no
//! token).
//!
//! Encoding is greedy longest match against that vocabulary, for the corpus
//! and for user text alike; it is simpler than replaying the merges and,
//! since every single byte is a token, encodes any byte string.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::corpus::pieces;

/// Symbols are token ids; a pair of adjacent symbols is a merge candidate.
type Pair = (u32, u32);

/// A vocabulary of byte strings and its greedy longest-match encoder.
#[derive(Debug, Clone)]
pub(crate) struct Tokenizer {
    tokens: Vec<Vec<u8>>,
    by_bytes: HashMap<Vec<u8>, u32>,
    max_len: usize,
}

impl Tokenizer {
    /// The tokenizer of a vocabulary (token ids are positions).
    pub(crate) fn from_tokens(tokens: Vec<Vec<u8>>) -> Self {
        let by_bytes = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let max_len = tokens.iter().map(Vec::len).max().unwrap_or(0);
        Tokenizer {
            tokens,
            by_bytes,
            max_len,
        }
    }

    /// Learns up to `merges` merges from `sequences` (see the module docs).
    pub(crate) fn learn(sequences: &[Vec<u8>], merges: usize) -> Self {
        let mut piece_counts: HashMap<&[u8], i64> = HashMap::new();
        for s in sequences {
            for p in pieces(s) {
                *piece_counts.entry(p).or_default() += 1;
            }
        }
        let mut distinct: Vec<(&[u8], i64)> = piece_counts.into_iter().collect();
        distinct.sort_unstable();
        let freq: Vec<i64> = distinct.iter().map(|&(_, f)| f).collect();
        let mut words: Vec<Vec<u32>> = distinct
            .iter()
            .map(|(p, _)| p.iter().map(|&b| u32::from(b)).collect())
            .collect();

        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut by_bytes: HashMap<Vec<u8>, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();

        let mut counts: HashMap<Pair, i64> = HashMap::new();
        let mut holders: HashMap<Pair, HashSet<usize>> = HashMap::new();
        for (w, word) in words.iter().enumerate() {
            for pair in word.windows(2).map(|p| (p[0], p[1])) {
                *counts.entry(pair).or_default() += freq[w];
                holders.entry(pair).or_default().insert(w);
            }
        }
        let mut heap: BinaryHeap<(i64, Reverse<Pair>)> =
            counts.iter().map(|(&p, &c)| (c, Reverse(p))).collect();

        let mut made = 0;
        while made < merges {
            // Entries are pushed on every change, so skip stale ones.
            let Some((count, Reverse(pair))) = heap.pop() else {
                break;
            };
            if counts.get(&pair).copied() != Some(count) {
                continue;
            }
            if count < 2 {
                break;
            }
            made += 1;
            let mut bytes = tokens[pair.0 as usize].clone();
            bytes.extend_from_slice(&tokens[pair.1 as usize]);
            let merged = *by_bytes.entry(bytes.clone()).or_insert_with(|| {
                tokens.push(bytes);
                (tokens.len() - 1) as u32
            });
            let mut affected: Vec<usize> = holders
                .remove(&pair)
                .unwrap_or_default()
                .into_iter()
                .collect();
            affected.sort_unstable();
            let mut touched: HashSet<Pair> = HashSet::new();
            for w in affected {
                let old = &words[w];
                let mut new = Vec::with_capacity(old.len());
                let mut i = 0;
                while i < old.len() {
                    if i + 1 < old.len() && (old[i], old[i + 1]) == pair {
                        new.push(merged);
                        i += 2;
                    } else {
                        new.push(old[i]);
                        i += 1;
                    }
                }
                if new.len() == old.len() {
                    continue;
                }
                for p in old.windows(2).map(|p| (p[0], p[1])) {
                    *counts.entry(p).or_default() -= freq[w];
                    touched.insert(p);
                }
                for p in new.windows(2).map(|p| (p[0], p[1])) {
                    *counts.entry(p).or_default() += freq[w];
                    holders.entry(p).or_default().insert(w);
                    touched.insert(p);
                }
                words[w] = new;
            }
            counts.remove(&pair);
            for p in touched {
                if let Some(&c) = counts.get(&p) {
                    heap.push((c, Reverse(p)));
                }
            }
        }
        let max_len = tokens.iter().map(Vec::len).max().unwrap_or(0);
        Tokenizer {
            tokens,
            by_bytes,
            max_len,
        }
    }

    /// The vocabulary, by token id.
    pub(crate) fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }

    /// The id of a token.
    pub(crate) fn id(&self, token: &[u8]) -> Option<u32> {
        self.by_bytes.get(token).copied()
    }

    /// Token ids of `text` by greedy longest match. A byte that no token
    /// starts with (only possible for a vocabulary without every single
    /// byte) is skipped.
    pub(crate) fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let longest = (1..=self.max_len.min(text.len() - i))
                .rev()
                .find_map(|len| self.id(&text[i..i + len]).map(|id| (id, len)));
            match longest {
                Some((id, len)) => {
                    out.push(id);
                    i += len;
                }
                None => i += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_frequent_words_deterministically() {
        let text = vec![b"the cat and the hat and the bat".to_vec(); 3];
        let a = Tokenizer::learn(&text, 10);
        let b = Tokenizer::learn(&text, 10);
        assert_eq!(a.tokens(), b.tokens());
        assert_eq!(a.tokens().len(), 266);
        assert!(a.id(b" the").is_some(), "{:?}", &a.tokens()[256..]);
        assert!(a.id(b" and").is_some());
        assert_eq!(a.encode(b" the"), vec![a.id(b" the").unwrap()]);
    }

    #[test]
    fn encoding_covers_every_byte_and_round_trips() {
        let t = Tokenizer::learn(&[b"abab abab".to_vec()], 50);
        let text = b"\xff ab\x00abab";
        let ids = t.encode(text);
        let back: Vec<u8> = ids
            .iter()
            .flat_map(|&i| t.tokens()[i as usize].clone())
            .collect();
        assert_eq!(back, text);
    }

    #[test]
    fn stops_when_no_pair_repeats() {
        let t = Tokenizer::learn(&[b"ab".to_vec()], 100);
        assert_eq!(t.tokens().len(), 256);
    }
}
