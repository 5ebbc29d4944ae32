//! Parser states kept by context, least recently used out.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};

use llguidance::Matcher;

/// How the state cache of a [`Grammar`](super::Grammar) has served its
/// calls so far (see [`Grammar::cache_stats`](super::Grammar::cache_stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Calls whose whole context had a kept state, or a prefix kept as
    /// out of the language.
    pub hits: u64,
    /// Calls that started from the state of a shorter prefix (or from the
    /// start of the grammar).
    pub misses: u64,
    /// Tokens fed to the parser on misses: `ctx + [t]` after `ctx` costs one.
    pub tokens_advanced: u64,
    /// States kept now.
    pub len: usize,
    /// The most states kept.
    pub capacity: usize,
}

/// A kept state: `None` for a context that left the language (so that its
/// extensions are known dead without a parser).
struct Entry {
    ids: Box<[u32]>,
    state: Option<Matcher>,
    stamp: u64,
}

/// The parser states of recent contexts, keyed by a hash of their token
/// ids and checked against the ids themselves, so a collision is a miss,
/// never a wrong answer.
pub(super) struct StateCache {
    /// The state at the start of the output; never evicted.
    root: Matcher,
    capacity: usize,
    entries: HashMap<u64, Entry>,
    /// Stamp of last use -> key, oldest first.
    recency: BTreeMap<u64, u64>,
    clock: u64,
    hits: u64,
    misses: u64,
    tokens_advanced: u64,
}

/// The hashes of every prefix of `ids`, the empty one first, in one pass.
pub(super) fn prefix_hashes(ids: &[u32]) -> Vec<u64> {
    let mut hasher = DefaultHasher::new();
    let mut out = Vec::with_capacity(ids.len() + 1);
    out.push(hasher.clone().finish());
    for &id in ids {
        hasher.write_u32(id);
        out.push(hasher.clone().finish());
    }
    out
}

/// Where a context's parse starts: after `done` of its tokens, in `state`
/// (`None`: those tokens already left the language).
pub(super) struct Start {
    pub(super) done: usize,
    pub(super) state: Option<Matcher>,
}

impl StateCache {
    pub(super) fn new(root: Matcher, capacity: usize) -> Self {
        StateCache {
            root,
            capacity,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            clock: 0,
            hits: 0,
            misses: 0,
            tokens_advanced: 0,
        }
    }

    pub(super) fn root(&self) -> &Matcher {
        &self.root
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The state of the longest kept prefix of `ids` (`hashes` from
    /// [`prefix_hashes`]), cloned, and counts the call as a hit or a miss.
    pub(super) fn start(&mut self, ids: &[u32], hashes: &[u64]) -> Start {
        let stamp = self.tick();
        for done in (0..=ids.len()).rev() {
            let key = hashes[done];
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if *entry.ids != ids[..done] {
                continue;
            }
            self.recency.remove(&entry.stamp);
            self.recency.insert(stamp, key);
            entry.stamp = stamp;
            let state = entry.state.clone();
            // A dead prefix answers for the whole context.
            let done_all = if state.is_some() { done } else { ids.len() };
            self.count(ids.len(), done_all);
            return Start { done, state };
        }
        self.count(ids.len(), 0);
        Start {
            done: 0,
            state: Some(self.root.clone()),
        }
    }

    fn count(&mut self, len: usize, done: usize) {
        if done == len {
            self.hits += 1;
        } else {
            self.misses += 1;
            self.tokens_advanced += (len - done) as u64;
        }
    }

    /// Keeps the state of `ids`, evicting the least recently used state
    /// when full.
    pub(super) fn insert(&mut self, ids: &[u32], hash: u64, state: Option<Matcher>) {
        if self.capacity == 0 {
            return;
        }
        let stamp = self.tick();
        if let Some(old) = self.entries.remove(&hash) {
            self.recency.remove(&old.stamp);
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.recency.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.recency.insert(stamp, hash);
        self.entries.insert(
            hash,
            Entry {
                ids: ids.into(),
                state,
                stamp,
            },
        );
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            tokens_advanced: self.tokens_advanced,
            len: self.entries.len(),
            capacity: self.capacity,
        }
    }
}
