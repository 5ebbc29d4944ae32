//! Parser states kept by context, least recently used out.

use llguidance::Matcher;
use potential_core::Mask;
use potential_core::prefix_cache::PrefixCache;

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
    /// Of those, the tokens known to be allowed by the mask kept with the
    /// state they were fed to, so fed without being checked first.
    pub tokens_known_allowed: u64,
    /// States kept now.
    pub len: usize,
    /// The most states kept.
    pub capacity: usize,
}

/// A kept context: its parser state (`None` for a context that left the
/// language, so that its extensions are known dead without a parser) and
/// its next-token mask, once `logw_next` has computed it.
struct Kept {
    state: Option<Matcher>,
    mask: Option<Mask>,
}

/// The parser states of recent contexts, least recently used out.
pub(super) struct StateCache {
    /// The state at the start of the output; never evicted.
    root: Matcher,
    /// Each state weighs one: the budget is the most states kept.
    states: PrefixCache<Kept>,
    hits: u64,
    misses: u64,
    tokens_advanced: u64,
    tokens_known_allowed: u64,
}

/// Where a context's parse starts: after `done` of its tokens, in `state`
/// (`None`: those tokens already left the language).
pub(super) struct Start {
    pub(super) done: usize,
    pub(super) state: Option<Matcher>,
    /// Whether the kept mask of the prefix allows the next token: a
    /// sampler's `ctx + [t]` after `logw_next(ctx)` drew `t` from it, so
    /// the token needs no check before it is fed (llguidance's check
    /// lexes the token's bytes once more than feeding it does).
    pub(super) next_allowed: bool,
}

impl StateCache {
    pub(super) fn new(root: Matcher, capacity: usize) -> Self {
        StateCache {
            root,
            states: PrefixCache::new(capacity),
            hits: 0,
            misses: 0,
            tokens_advanced: 0,
            tokens_known_allowed: 0,
        }
    }

    pub(super) fn root(&self) -> &Matcher {
        &self.root
    }

    /// The state of the longest kept prefix of `ids`, cloned, and counts
    /// the call as a hit or a miss.
    pub(super) fn start(&mut self, ids: &[u32]) -> Start {
        let start = match self.states.longest(ids) {
            Some((done, kept)) => Start {
                done,
                state: kept.state.clone(),
                next_allowed: ids
                    .get(done)
                    .zip(kept.mask.as_ref())
                    .is_some_and(|(&t, mask)| mask.contains(t as usize)),
            },
            None => Start {
                done: 0,
                state: Some(self.root.clone()),
                next_allowed: false,
            },
        };
        self.tokens_known_allowed += u64::from(start.next_allowed);
        // A dead prefix answers for the whole context.
        let done_all = if start.state.is_some() {
            start.done
        } else {
            ids.len()
        };
        self.count(ids.len(), done_all);
        start
    }

    fn count(&mut self, len: usize, done: usize) {
        if done == len {
            self.hits += 1;
        } else {
            self.misses += 1;
            self.tokens_advanced += (len - done) as u64;
        }
    }

    /// Keeps the state of `ids` (and the mask computed there, if any),
    /// evicting the least recently used state when full.
    pub(super) fn insert(&mut self, ids: &[u32], state: Option<Matcher>, mask: Option<Mask>) {
        self.states.insert(ids, Kept { state, mask }, 1);
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            tokens_advanced: self.tokens_advanced,
            tokens_known_allowed: self.tokens_known_allowed,
            len: self.states.len(),
            capacity: self.states.budget(),
        }
    }
}
