//! The cache: every context's state (its keys and values, its `prefix`
//! and its next-token weights) keyed by its tokens, under a byte budget,
//! least recently used out.

use std::sync::Arc;

use potential_core::prefix_cache::PrefixCache;

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

/// The cache: contexts (their model ids, after the prompt) to states, each
/// weighing its bytes, and how it served the calls.
pub(super) struct Store {
    pub(super) states: PrefixCache<State>,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl Store {
    pub(super) fn new(budget: usize) -> Store {
        Store {
            states: PrefixCache::new(budget),
            hits: 0,
            misses: 0,
        }
    }

    /// Marks `key` and its cached prefixes as used now, the shorter ones
    /// later: a state holds its prefixes' keys and values, so a prefix goes
    /// after the contexts that build on it, and the bytes counted are the
    /// bytes held.
    pub(super) fn touch(&mut self, key: &[u32]) {
        self.states.touch_prefixes(key);
    }

    /// Keeps the state of `key`, least recently used states out.
    pub(super) fn insert(&mut self, key: &[u32], state: State) {
        let bytes = state.node.chunk.bytes()
            + state.next.len() * std::mem::size_of::<f32>()
            + std::mem::size_of_val(key)
            + std::mem::size_of::<State>();
        self.states.insert(key, state, bytes);
        self.touch(key);
    }
}
