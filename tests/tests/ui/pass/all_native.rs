//! All four batch forms written by hand: all native.
use potential_core::{
    LogWeights, NativeBatch, Potential, PotentialError, Symbol, Vocab, batched,
};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
struct Flat {
    vocab: Vocab<u32>,
}

#[batched]
impl Flat {
    async fn complete(&self, _: &[u32]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[u32]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn batch_complete(&self, contexts: &[Vec<u32>]) -> Result<Vec<f64>, PotentialError> {
        Ok(vec![0.0; contexts.len()])
    }
    async fn batch_prefix(&self, contexts: &[Vec<u32>]) -> Result<Vec<f64>, PotentialError> {
        Ok(vec![0.0; contexts.len()])
    }
    async fn batch_score(&self, contexts: &[Vec<Symbol<u32>>]) -> Result<Vec<f64>, PotentialError> {
        Ok(vec![0.0; contexts.len()])
    }
    async fn batch_logw_next(
        &self,
        contexts: &[Vec<u32>],
    ) -> Result<Vec<LogWeights<u32>>, PotentialError> {
        let n = self.vocab.len() + 1;
        let uniform = LogWeights::new(self.vocab.clone(), vec![0.0; n])?;
        Ok(vec![uniform; contexts.len()])
    }
}

fn main() {
    let p = Flat { vocab: Vocab::new([1, 2]).unwrap() };
    assert_eq!(p.native_batch(), NativeBatch::ALL);
}
