use potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
struct Length {
    vocab: Vocab<u8>,
}

#[batched]
impl Length {
    async fn complete(&self, context: Vec<u8>) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn batch_prefix(&self, contexts: &[u8]) -> Result<Vec<f64>, PotentialError> {
        Ok(vec![0.0; contexts.len()])
    }
}

fn main() {}
