//! `logw_next` and `score` written by hand; a helper method stays inherent,
//! and a `local` potential (not spawnable) may hold anything `Send + Sync`.
use std::sync::atomic::{AtomicUsize, Ordering};

use potential_core::{LogWeights, NativeBatch, Potential, PotentialError, Symbol, Vocab, batched};

#[derive(Potential)]
#[potential(local)]
struct Counted {
    vocab: Vocab<char>,
    calls: AtomicUsize,
}

#[batched]
impl Counted {
    async fn complete(&self, _: &[char]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[char]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn score(&self, _: &[Symbol<char>]) -> Result<f64, PotentialError> {
        Ok(-1.0)
    }
    async fn logw_next(&self, _: &[char]) -> Result<LogWeights<char>, PotentialError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        LogWeights::new(self.vocab.clone(), vec![0.0; self.vocab.len() + 1])
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

fn main() {
    let p = Counted { vocab: Vocab::new(['a']).unwrap(), calls: AtomicUsize::new(0) };
    assert_eq!(p.calls(), 0);
    assert_eq!(p.native_batch(), NativeBatch::NONE);
}
