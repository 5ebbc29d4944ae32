//! A generic potential, registered per instantiation.
use potential_core::{Potential, PotentialError, Registered, TokenType, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
#[serde(bound = "T: TokenType, W: Serialize + serde::de::DeserializeOwned")]
struct Weighted<T, W>
where
    W: Copy + Into<f64>,
{
    vocab: Vocab<T>,
    weight: W,
}

#[batched]
impl<T: TokenType, W> Weighted<T, W>
where
    W: Copy + Into<f64> + Send + Sync + 'static,
{
    async fn complete(&self, context: &[T]) -> Result<f64, PotentialError> {
        Ok(self.weight.into() * context.len() as f64)
    }
    async fn prefix(&self, _: &[T]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

potential_core::register!(Weighted<u8, f32>, Weighted<String, u16>);

fn main() {
    let p = Weighted { vocab: Vocab::new([1u8, 2]).unwrap(), weight: 0.5f32 };
    assert_eq!(p.vocab().len(), 2);
    assert!(potential_core::registered_tags().contains(&<Weighted<u8, f32>>::tag()));
}
