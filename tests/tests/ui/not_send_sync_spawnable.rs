use std::cell::RefCell;
use serde::{Deserialize, Serialize};

use potential_core::{Potential, PotentialError, Vocab, batched};

#[derive(Potential, Serialize, Deserialize)]
struct Counting {
    vocab: Vocab<u8>,
    #[serde(skip)]
    calls: RefCell<usize>,
}

#[batched]
impl Counting {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        *self.calls.borrow_mut() += 1;
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
}

fn main() {}
