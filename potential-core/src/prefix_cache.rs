//! A cache keyed by token-id prefixes, least recently used out, under a
//! budget of weight: for potentials that keep a state per context and
//! extend it by the tokens that follow (a parser's state, a language
//! model's keys and values).
//!
//! Entries are found by a hash of their ids and checked against the ids
//! themselves, so a collision is a miss, never a wrong answer (the hash is
//! [`FastHasher`]'s: ids that someone chose to collide cost misses, nothing
//! else). The hashes of every prefix of a context come from one pass over
//! it, into a buffer the cache keeps: a lookup allocates nothing.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;

use crate::hash::{BuildFastHasher, FastHasher};

/// Values kept by token-id prefix, least recently used out, holding at most
/// a budget of weight (each value's weight is the caller's: `1` to count
/// entries, a size in bytes to bound memory).
///
/// ```
/// use potential_core::prefix_cache::PrefixCache;
///
/// let mut cache = PrefixCache::new(2);
/// cache.insert(&[1], "after 1", 1);
/// cache.insert(&[1, 2], "after 1 2", 1);
/// // The longest kept prefix of a context, and its length.
/// assert_eq!(cache.longest(&[1, 2, 3]), Some((2, &"after 1 2")));
/// assert_eq!(cache.longest(&[1, 5]), Some((1, &"after 1")));
/// assert_eq!(cache.longest(&[7]), None);
/// // Full: the least recently used entry ([1, 2]) makes room.
/// cache.insert(&[4], "after 4", 1);
/// assert_eq!(cache.longest(&[1, 2]), Some((1, &"after 1")));
/// assert_eq!((cache.len(), cache.weight(), cache.budget()), (2, 2, 2));
/// ```
pub struct PrefixCache<V> {
    /// Hash of the ids -> entry.
    entries: HashMap<u64, Entry<V>, BuildFastHasher>,
    /// Stamp of last use -> hash of the ids, least recently used first.
    recency: BTreeMap<u64, u64>,
    clock: u64,
    weight: usize,
    budget: usize,
    /// The hashes of the prefixes of the last context looked up, kept so
    /// that a lookup reuses the buffer.
    hashes: Vec<u64>,
}

struct Entry<V> {
    ids: Box<[u32]>,
    value: V,
    weight: usize,
    stamp: u64,
}

impl<V> PrefixCache<V> {
    /// An empty cache that holds at most `budget` of weight (`0`: it keeps
    /// nothing).
    pub fn new(budget: usize) -> Self {
        PrefixCache {
            entries: HashMap::default(),
            recency: BTreeMap::new(),
            clock: 0,
            weight: 0,
            budget,
            hashes: Vec::new(),
        }
    }

    /// The value of the longest kept prefix of `ids` (`ids` itself and the
    /// empty prefix included) with that prefix's length, marked as used
    /// now; `None` when no prefix is kept.
    pub fn longest(&mut self, ids: &[u32]) -> Option<(usize, &V)> {
        self.hash_prefixes(ids);
        let len = (0..=ids.len()).rev().find(|&len| self.holds(ids, len))?;
        let entry = self.touch(self.hashes[len]);
        Some((len, &entry.value))
    }

    /// Marks every kept prefix of `ids` (`ids` itself included) as used
    /// now, the shorter ones later, so that a kept prefix is evicted after
    /// the entries that extend it. For values that share their prefix's
    /// (a chain of `Arc`s) and weigh only their own part: what the entries
    /// hold then stays within the budget.
    pub fn touch_prefixes(&mut self, ids: &[u32]) {
        self.hash_prefixes(ids);
        for len in (0..=ids.len()).rev() {
            if self.holds(ids, len) {
                self.touch(self.hashes[len]);
            }
        }
    }

    /// Keeps `value` for `ids` as the most recently used entry, in place of
    /// any value kept for them, evicting the least recently used entries
    /// until the weights fit the budget. A value heavier than the whole
    /// budget is not kept and changes nothing.
    pub fn insert(&mut self, ids: &[u32], value: V, weight: usize) {
        if weight > self.budget {
            return;
        }
        let key = hash(ids);
        // An entry under the same hash holds these ids or collides with
        // them: either way it goes.
        if let Some(old) = self.entries.remove(&key) {
            self.recency.remove(&old.stamp);
            self.weight -= old.weight;
        }
        while self.weight + weight > self.budget {
            let (_, oldest) = self
                .recency
                .pop_first()
                .expect("entries weigh what the cache holds");
            let evicted = self.entries.remove(&oldest).expect("a kept entry");
            self.weight -= evicted.weight;
        }
        let stamp = self.tick();
        self.recency.insert(stamp, key);
        self.weight += weight;
        self.entries.insert(
            key,
            Entry {
                ids: ids.into(),
                value,
                weight,
                stamp,
            },
        );
    }

    /// Drops every entry (the budget stays).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.recency.clear();
        self.weight = 0;
    }

    /// The number of entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The weight of the entries kept, at most [`PrefixCache::budget`].
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The most weight the cache holds.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Fills `hashes` with the hash of every prefix of `ids`, the empty one
    /// first, in one pass.
    fn hash_prefixes(&mut self, ids: &[u32]) {
        let mut hasher = FastHasher::default();
        self.hashes.clear();
        self.hashes.push(hasher.finish());
        for &id in ids {
            hasher.write_u32(id);
            self.hashes.push(hasher.finish());
        }
    }

    /// Whether the first `len` of `ids` are kept (`hashes` filled for them).
    fn holds(&self, ids: &[u32], len: usize) -> bool {
        self.entries
            .get(&self.hashes[len])
            .is_some_and(|entry| *entry.ids == ids[..len])
    }

    fn touch(&mut self, key: u64) -> &Entry<V> {
        let stamp = self.tick();
        let entry = self.entries.get_mut(&key).expect("a kept entry");
        self.recency.remove(&entry.stamp);
        self.recency.insert(stamp, key);
        entry.stamp = stamp;
        entry
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// The hash of `ids`: the last of [`PrefixCache::hash_prefixes`].
fn hash(ids: &[u32]) -> u64 {
    let mut hasher = FastHasher::default();
    for &id in ids {
        hasher.write_u32(id);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(cache: &mut PrefixCache<&'static str>, ids: &[u32]) -> Option<&'static str> {
        match cache.longest(ids) {
            Some((len, value)) if len == ids.len() => Some(*value),
            _ => None,
        }
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut cache = PrefixCache::new(3);
        cache.insert(&[1], "a", 1);
        cache.insert(&[2], "b", 1);
        cache.insert(&[3], "c", 1);
        // Using [1] makes [2] the oldest.
        assert_eq!(kept(&mut cache, &[1]), Some("a"));
        cache.insert(&[4], "d", 1);
        assert_eq!(kept(&mut cache, &[2]), None);
        cache.insert(&[5], "e", 1);
        assert_eq!(kept(&mut cache, &[3]), None);
        for (ids, value) in [([1], "a"), ([4], "d"), ([5], "e")] {
            assert_eq!(kept(&mut cache, &ids), Some(value));
        }
        // A lookup that finds a shorter prefix marks that prefix used.
        cache.insert(&[], "root", 1);
        assert_eq!(cache.longest(&[9, 9]), Some((0, &"root")));
        assert_eq!(cache.longest(&[4, 1]), Some((1, &"d")));
        cache.insert(&[6], "f", 1);
        assert_eq!(kept(&mut cache, &[]), Some("root"));
        assert_eq!(kept(&mut cache, &[4]), Some("d"));
        assert_eq!(kept(&mut cache, &[6]), Some("f"));
    }

    #[test]
    fn the_weights_stay_within_the_budget() {
        let mut cache = PrefixCache::new(10);
        cache.insert(&[1], "a", 4);
        cache.insert(&[2], "b", 4);
        assert_eq!((cache.len(), cache.weight()), (2, 8));
        // 3 more does not fit: the oldest goes.
        cache.insert(&[3], "c", 3);
        assert_eq!((cache.len(), cache.weight()), (2, 7));
        assert_eq!(kept(&mut cache, &[1]), None);
        cache.insert(&[4], "d", 6);
        assert_eq!((cache.len(), cache.weight()), (2, 9));
        assert_eq!(kept(&mut cache, &[2]), None);
        assert_eq!(kept(&mut cache, &[3]), Some("c"));
        // Replacing an entry takes its old weight off first.
        cache.insert(&[3], "c2", 4);
        assert_eq!((cache.len(), cache.weight()), (2, 10));
        assert_eq!(kept(&mut cache, &[3]), Some("c2"));
        cache.clear();
        assert_eq!((cache.len(), cache.weight(), cache.budget()), (0, 0, 10));
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_heavier_than_the_budget_is_not_kept_and_evicts_nothing() {
        let mut cache = PrefixCache::new(5);
        cache.insert(&[1], "a", 5);
        cache.insert(&[2], "b", 6);
        assert_eq!(kept(&mut cache, &[2]), None);
        assert_eq!(kept(&mut cache, &[1]), Some("a"));
        assert_eq!(cache.weight(), 5);
        // A zero budget keeps nothing that weighs anything.
        let mut none = PrefixCache::new(0);
        none.insert(&[1], "a", 1);
        assert!(none.is_empty());
        none.insert(&[1], "a", 0);
        assert_eq!(kept(&mut none, &[1]), Some("a"));
    }

    #[test]
    fn the_longest_kept_prefix_is_found_and_ids_are_checked() {
        let mut cache = PrefixCache::new(8);
        assert_eq!(cache.longest(&[]), None);
        cache.insert(&[5, 6], "56", 1);
        assert_eq!(cache.longest(&[5, 6, 7, 8]), Some((2, &"56")));
        assert_eq!(cache.longest(&[5]), None);
        assert_eq!(cache.longest(&[6, 5]), None);
        // A collision: an entry under the hash of [1, 2] that holds other
        // ids is a miss, and inserting [1, 2] replaces it.
        cache.insert(&[1], "1", 1);
        cache.insert(&[3, 4], "34", 1);
        let planted = cache.entries.remove(&hash(&[3, 4])).unwrap();
        cache.recency.insert(planted.stamp, hash(&[1, 2]));
        cache.entries.insert(hash(&[1, 2]), planted);
        assert_eq!(cache.longest(&[1, 2, 3]), Some((1, &"1")));
        cache.insert(&[1, 2], "12", 1);
        assert_eq!(cache.longest(&[1, 2, 3]), Some((2, &"12")));
        assert_eq!(cache.longest(&[3, 4]), None);
        assert_eq!((cache.len(), cache.weight()), (3, 3));
    }

    #[test]
    fn touched_prefixes_outlive_the_entries_that_extend_them() {
        let mut cache = PrefixCache::new(3);
        cache.insert(&[], "root", 1);
        cache.insert(&[1], "1", 1);
        cache.insert(&[1, 2], "12", 1);
        cache.touch_prefixes(&[1, 2, 3]);
        // [1, 2] is now the oldest, then [1], then the root.
        cache.insert(&[7], "7", 1);
        assert_eq!(cache.longest(&[1, 2]), Some((1, &"1")));
        cache.insert(&[8], "8", 1);
        assert_eq!(kept(&mut cache, &[]), None);
        assert_eq!(kept(&mut cache, &[1]), Some("1"));
    }
}
