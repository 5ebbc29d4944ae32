// `#[batched]` reads types as written: a return type behind an alias of
// its own name is refused with a word on aliases.
use potential_core::{Potential, PotentialError, Vocab, batched};

type Weight = Result<f64, PotentialError>;

#[derive(Potential)]
#[potential(local)]
struct Length {
    vocab: Vocab<u8>,
}

#[batched]
impl Length {
    async fn complete(&self, context: &[u8]) -> Weight {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
}

fn main() {}
