//! `u8`, `u32` and `String` tokens, the token type taken from the
//! vocabulary field or given with `#[potential(token = ...)]`.
use potential_core::{Potential, PotentialError, Vocab, batched};
use serde::{Deserialize, Serialize};

#[derive(Potential, Serialize, Deserialize)]
struct Bytes {
    vocab: Vocab<u8>,
}

#[batched]
impl Bytes {
    async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

type Ids = Vocab<u32>;

#[derive(Potential, Serialize, Deserialize)]
#[potential(token = u32)]
struct TokenIds {
    #[potential(vocab)]
    ids: Ids,
}

#[batched]
impl TokenIds {
    async fn complete(&self, _: &[u32]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[u32]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

#[derive(Potential, Serialize, Deserialize)]
struct Words {
    words: potential_core::Vocab<String>,
}

#[batched]
impl Words {
    async fn complete(&self, context: &[String]) -> potential_core::Result<f64> {
        Ok(-(context.iter().map(String::len).sum::<usize>() as f64))
    }
    async fn prefix(&self, _: &[String]) -> potential_core::Result<f64> {
        Ok(0.0)
    }
}

fn main() {
    fn token<P: Potential>(_: &P) -> &'static str {
        std::any::type_name::<P::Token>()
    }
    let bytes = Bytes { vocab: Vocab::new([1]).unwrap() };
    let ids = TokenIds { ids: Vocab::new([1]).unwrap() };
    let words = Words { words: Vocab::new(["a".to_string()]).unwrap() };
    assert_eq!(
        [token(&bytes), token(&ids), token(&words)],
        ["u8", "u32", "alloc::string::String"]
    );
}
