//! Reaching potential-core through another crate's re-export, as a crate
//! that depends on potential-runtime only does.
use potential_runtime::potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
#[potential(crate = "potential_runtime::potential_core")]
struct Length {
    vocab: Vocab<u8>,
}

#[batched(crate = "potential_runtime::potential_core")]
impl Length {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

fn main() {
    assert_eq!(Length { vocab: Vocab::new([1]).unwrap() }.vocab().len(), 1);
}
