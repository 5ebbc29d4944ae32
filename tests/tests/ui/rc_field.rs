// A potential is shared between threads: an `Rc` field is refused, and
// the error points at the field.
use std::rc::Rc;

use potential_core::{Potential, PotentialError, Vocab, batched};

#[derive(Potential)]
#[potential(local)]
struct Length {
    vocab: Vocab<u8>,
    cache: Rc<Vec<f64>>,
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
