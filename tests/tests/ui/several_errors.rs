use potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
struct Length {
    vocab: Vocab<u8>,
}

// Every mistake in the block is reported at once.
#[batched]
impl Length {
    fn complete(&mut self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn batch_prefix(&self) -> Result<Vec<f64>, PotentialError> {
        Ok(Vec::new())
    }
}

fn main() {}
