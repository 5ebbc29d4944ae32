//! Tuple structs are supported: the vocabulary is found by its type.
use potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
#[potential(tag = "pass::MaxLen")]
struct MaxLen(usize, Vocab<u8>);

#[batched]
impl MaxLen {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(if context.len() <= self.0 { 0.0 } else { f64::NEG_INFINITY })
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        self.complete(context).await
    }
}

fn main() {
    assert_eq!(MaxLen(3, Vocab::new([1]).unwrap()).vocab().len(), 1);
    assert!(potential_core::registered_tags().contains(&"pass::MaxLen"));
}
