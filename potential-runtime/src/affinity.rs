//! Which worker served a context, so that the context's next call (the
//! same context with a token more, as a sampler's particle asks) goes to
//! the worker whose caches may hold its state: a grammar's parser state, a
//! language model's keys and values.
//!
//! Load comes first: the preferred worker keeps the call only while it is
//! within [`AFFINITY_SLACK`](crate::tuning::AFFINITY_SLACK) calls of the
//! least loaded and no other worker is idle while it is busy (see
//! `Pool::least_loaded`); otherwise round-robin breaks ties. The memory is a
//! fixed table of atomics indexed by hash, lossy by design: a newer
//! context overwrites an older one in its entry, and a wrong guess costs
//! only a cache miss in the worker.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use potential_core::wire::CallRef;

use potential_core::hash::FastHasher;

/// Entries of the table (a power of two): room for the contexts of a few
/// thousand particles' last steps.
const ENTRIES: usize = 4096;

/// The low bits of an entry hold its slot plus one (0: empty); the high
/// bits, the context's hash.
const SLOT_BITS: u32 = 16;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The hashes of a call's context: of the context without its last token
/// (its parent, if it has tokens) and of the context itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hashes {
    pub(crate) parent: Option<u64>,
    pub(crate) own: u64,
}

impl Hashes {
    /// The hashes of a call of one context; `None` for a batch.
    pub(crate) fn of<T: Hash>(call: &CallRef<'_, T>) -> Option<Hashes> {
        match call {
            CallRef::Complete(c) | CallRef::Prefix(c) | CallRef::LogwNext(c) => {
                Some(Hashes::of_context(c))
            }
            CallRef::Score(c) => Some(Hashes::of_context(c)),
            CallRef::BatchComplete(_)
            | CallRef::BatchPrefix(_)
            | CallRef::BatchScore(_)
            | CallRef::BatchLogwNext(_) => None,
        }
    }

    /// Both hashes in one pass over the tokens: the hasher's state after
    /// all but the last token is the parent's hash.
    fn of_context<T: Hash>(context: &[T]) -> Hashes {
        let mut hasher = FastHasher::default();
        let Some((last, parent)) = context.split_last() else {
            return Hashes {
                parent: None,
                own: hasher.finish(),
            };
        };
        for token in parent {
            token.hash(&mut hasher);
        }
        let parent = hasher.finish();
        last.hash(&mut hasher);
        Hashes {
            parent: Some(parent),
            own: hasher.finish(),
        }
    }
}

/// See the module's documentation.
pub(crate) struct Affinity {
    table: Box<[AtomicU64]>,
}

impl Affinity {
    pub(crate) fn new() -> Affinity {
        Affinity {
            table: (0..ENTRIES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn entry(&self, hash: u64) -> &AtomicU64 {
        &self.table[hash as usize & (ENTRIES - 1)]
    }

    /// The slot that last served the context of hash `hash`, if the table
    /// still remembers it.
    pub(crate) fn served(&self, hash: u64) -> Option<usize> {
        let entry = self.entry(hash).load(Ordering::Relaxed);
        let slot = entry & SLOT_MASK;
        (slot != 0 && entry & !SLOT_MASK == hash & !SLOT_MASK).then(|| slot as usize - 1)
    }

    /// Remembers that `slot` served the context of hash `hash`.
    pub(crate) fn record(&self, hash: u64, slot: usize) {
        if let Ok(slot) = u64::try_from(slot + 1)
            && slot <= SLOT_MASK
        {
            self.entry(hash)
                .store(hash & !SLOT_MASK | slot, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_and_its_extension_share_the_parents_hash() {
        let parent = Hashes::of(&CallRef::LogwNext(&[1u32, 2])).unwrap();
        let child = Hashes::of(&CallRef::Prefix(&[1u32, 2, 3])).unwrap();
        assert_eq!(child.parent, Some(parent.own));
        assert_ne!(child.own, parent.own);
        let empty = Hashes::of(&CallRef::Complete(&[] as &[u32])).unwrap();
        assert_eq!(empty.parent, None);
        assert_eq!(
            Hashes::of(&CallRef::Complete(&[7u32])).unwrap().parent,
            Some(empty.own)
        );
        assert_eq!(Hashes::of(&CallRef::BatchComplete(&[vec![1u32]])), None);
    }

    #[test]
    fn the_table_remembers_the_last_slot_and_forgets_on_collision() {
        let affinity = Affinity::new();
        let hash = 0xDEAD_BEEF_0000_0123;
        assert_eq!(affinity.served(hash), None);
        affinity.record(hash, 3);
        assert_eq!(affinity.served(hash), Some(3));
        affinity.record(hash, 0);
        assert_eq!(affinity.served(hash), Some(0));
        // Same entry, another context: the newer one wins, the older is forgotten.
        let other = hash ^ (1 << 40);
        affinity.record(other, 1);
        assert_eq!(affinity.served(other), Some(1));
        assert_eq!(affinity.served(hash), None);
        // Slots beyond the entry's bits are not remembered.
        affinity.record(hash, 1 << 20);
        assert_eq!(affinity.served(hash), None);
    }
}
