// A `Result` alias with the error type fixed, as many crates write one,
// is accepted: rustc compares the types.
use potential_core::{LogWeights, Potential, PotentialError, Vocab, batched};

type Result<T> = std::result::Result<T, PotentialError>;

#[derive(Potential)]
#[potential(local)]
struct Length {
    vocab: Vocab<u8>,
}

#[batched]
impl Length {
    async fn complete(&self, context: &[u8]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
    async fn batch_logw_next(&self, contexts: &[Vec<u8>]) -> Result<Vec<LogWeights<u8>>> {
        let mut out = Vec::new();
        for c in contexts {
            out.push(self.logw_next(c).await?);
        }
        Ok(out)
    }
}

fn main() {}
