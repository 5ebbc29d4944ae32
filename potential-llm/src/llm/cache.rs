//! The cache: every context's state (its keys and values, its `prefix`
//! and its next-token weights) keyed by its tokens, under a byte budget,
//! least recently used out.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{KvChunk, KvRef};

/// The counters of an [`Llm`]'s cache, as [`Llm::cache_stats`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Contexts answered from the cache.
    pub hits: u64,
    /// Contexts that needed a forward pass.
    pub misses: u64,
    /// Contexts held.
    pub entries: usize,
    /// Bytes held: keys, values and next-token weights.
    pub bytes: usize,
    /// The budget ([`LlmOptions::cache_bytes`]).
    pub budget: usize,
}

/// The keys and values of a run of positions, after those of its parent.
pub(super) struct Node {
    pub(super) parent: Option<Arc<Node>>,
    pub(super) chunk: KvChunk,
}

impl Node {
    /// The cached positions up to and including this node's, in order.
    pub(super) fn positions(self: &Arc<Self>) -> Vec<KvRef<'_>> {
        let mut chain = Vec::new();
        let mut at = Some(self);
        while let Some(node) = at {
            chain.push(node);
            at = node.parent.as_ref();
        }
        chain
            .iter()
            .rev()
            .flat_map(|&node| {
                (0..node.chunk.len).map(move |index| KvRef {
                    chunk: &node.chunk,
                    index,
                })
            })
            .collect()
    }
}

impl Drop for Node {
    /// Frees a long chain of nodes in a loop rather than by recursion, which
    /// could overflow the stack for contexts of thousands of tokens.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            match Arc::try_unwrap(parent) {
                Ok(mut node) => next = node.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// A context's state: what the forward pass left and what it answered.
#[derive(Clone)]
pub(super) struct State {
    pub(super) node: Arc<Node>,
    /// `prefix` of the context.
    pub(super) prefix: f64,
    /// Next-token log probabilities, vocabulary order, EOS last.
    pub(super) next: Arc<[f32]>,
}

pub(super) struct Entry {
    pub(super) state: State,
    bytes: usize,
    stamp: u64,
}

/// The cache: contexts (their model ids, after the prompt) to states.
pub(super) struct Store {
    pub(super) map: HashMap<Vec<u32>, Entry>,
    pub(super) bytes: usize,
    pub(super) budget: usize,
    pub(super) clock: u64,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl Store {
    pub(super) fn new(budget: usize) -> Store {
        Store {
            map: HashMap::new(),
            bytes: 0,
            budget,
            clock: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Marks `key` and its cached prefixes as used now.
    pub(super) fn touch(&mut self, key: &[u32]) {
        for j in 0..=key.len() {
            if let Some(e) = self.map.get_mut(&key[..j]) {
                e.stamp = self.clock;
            }
        }
    }

    pub(super) fn insert(&mut self, key: Vec<u32>, state: State) {
        let bytes = state.node.chunk.bytes()
            + state.next.len() * std::mem::size_of::<f32>()
            + key.len() * std::mem::size_of::<u32>()
            + std::mem::size_of::<Entry>();
        let entry = Entry {
            state,
            bytes,
            stamp: self.clock,
        };
        if let Some(old) = self.map.insert(key.clone(), entry) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
        self.touch(&key);
    }

    /// Drops the least recently used entries until the budget holds, down
    /// to seven eighths of it so that the sort is paid once per many
    /// insertions. Among entries used at the same time, longer contexts go
    /// first, so that a prefix outlives the contexts that build on it.
    pub(super) fn evict(&mut self) {
        if self.bytes <= self.budget {
            return;
        }
        let target = self.budget - self.budget / 8;
        let mut order: Vec<(u64, usize, Vec<u32>)> = self
            .map
            .iter()
            .map(|(k, e)| (e.stamp, usize::MAX - k.len(), k.clone()))
            .collect();
        order.sort_unstable();
        for (_, _, key) in order {
            if self.bytes <= target {
                break;
            }
            if let Some(e) = self.map.remove(&key) {
                self.bytes -= e.bytes;
            }
        }
    }
}
