// A product needs one token type on both sides: the message says to
// coerce one of them.
use potential_core::{Potential, PotentialError, PotentialExt, Vocab, batched};

#[derive(Potential)]
#[potential(local)]
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

#[derive(Potential)]
#[potential(local)]
struct Chars {
    vocab: Vocab<char>,
}

#[batched]
impl Chars {
    async fn complete(&self, _: &[char]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[char]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

fn main() {
    let bytes = Bytes { vocab: Vocab::new(*b"ab").unwrap() };
    let chars = Chars { vocab: Vocab::new(['a', 'b']).unwrap() };
    let _ = bytes.product(chars);
}
