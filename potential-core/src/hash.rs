//! A fast, non-cryptographic hasher: FxHash (as rustc's own maps use), one
//! rotate, xor and multiply per word.
//!
//! For keys that nobody hostile chooses: the vocabulary's tokens (looking
//! them up is on the per-call path: the autobatching wrapper checks every
//! token of every context), and the runtime's call ids and contexts.
//! SipHash, std's default, costs several times more for a small key; its
//! resistance to collision floods buys nothing there.
//!
//! ```
//! use std::collections::HashMap;
//! use potential_core::hash::BuildFastHasher;
//! let mut index: HashMap<&str, usize, BuildFastHasher> = HashMap::default();
//! index.insert("a", 0);
//! assert_eq!(index["a"], 0);
//! ```

use std::hash::Hasher;

/// The multiplier of FxHash: odd, with its bits spread.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// See the module's documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// Builds [`FastHasher`]s, for `HashMap`s and `HashSet`s.
pub type BuildFastHasher = std::hash::BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::Hash;

    fn hash_of(value: impl Hash) -> u64 {
        let mut h = FastHasher::default();
        value.hash(&mut h);
        h.finish()
    }

    #[test]
    fn sequential_ids_and_short_byte_strings_spread() {
        let ids: HashSet<u64> = (0..10_000u64).map(|id| hash_of(id) & 0xFFF).collect();
        assert!(ids.len() > 3_000, "{} distinct buckets", ids.len());
        let words = [
            b"a".to_vec(),
            b"b".to_vec(),
            b"ab".to_vec(),
            b"ba".to_vec(),
            vec![],
        ];
        let hashes: HashSet<u64> = words.iter().map(hash_of).collect();
        assert_eq!(hashes.len(), words.len());
    }
}
