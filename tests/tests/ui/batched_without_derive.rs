use potential_core::{PotentialError, Vocab, batched};

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

fn main() {
    let _ = Length { vocab: Vocab::new([1]).unwrap() }.vocab;
}
