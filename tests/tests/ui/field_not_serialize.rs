use potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

/// A handle that only lives in this process.
struct Handle;

#[derive(Potential, Serialize, Deserialize)]
struct Length {
    vocab: Vocab<u8>,
    handle: Handle,
}

#[batched]
impl Length {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
}

fn main() {}
