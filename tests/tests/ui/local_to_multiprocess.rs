// A potential marked `#[potential(local)]` has no spawn recipe: sending it
// to worker processes is refused at compile time.
use potential_core::{Potential, PotentialError, Vocab, batched};
use potential_runtime::MultiprocessExt;

#[derive(Potential)]
#[potential(local)]
struct Length {
    vocab: Vocab<u8>,
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

async fn start(p: Length) {
    let _ = p.to_multiprocess(4).await;
}

fn main() {
    let _ = start(Length { vocab: Vocab::new([1]).unwrap() });
}
