//! Only `complete` and `prefix`: every other method is the trait's default.
use potential_core::{NativeBatch, Potential, PotentialError, Spawnable, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
struct Length {
    vocab: Vocab<u8>,
}

#[batched]
impl Length {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-0.5 * context.len() as f64)
    }
}

fn spawnable<P: Spawnable>(_: &P) {}

fn main() {
    let p = Length { vocab: Vocab::new([1, 2]).unwrap() };
    assert_eq!(p.native_batch(), NativeBatch::NONE);
    spawnable(&p);
}
