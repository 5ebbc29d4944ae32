// Stands for `p.to_multiprocess(n)` of the runtime's extension trait,
// which requires the same `Spawnable` bound.
use potential_core::{Potential, PotentialError, Spawnable, Vocab, batched};

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

fn to_multiprocess<P: Spawnable>(potential: P, _workers: usize) -> P {
    potential
}

fn main() {
    let p = Length { vocab: Vocab::new([1]).unwrap() };
    let _ = to_multiprocess(p, 4);
}
