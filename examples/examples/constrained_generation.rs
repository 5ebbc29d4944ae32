//! The main job: constrained generation. For now a short demo of the core
//! model; the sampler over a language model and a constraint replaces it.

use potential_core::{Potential, PotentialError, Symbol, Vocab, ops::Product};

/// genlm-control's test potential: complete = -len, prefix = -0.5 len.
struct Length {
    vocab: Vocab<char>,
}

impl Potential for Length {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64, PotentialError> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[char]) -> Result<f64, PotentialError> {
        Ok(-0.5 * context.len() as f64)
    }
}

#[tokio::main]
async fn main() -> Result<(), PotentialError> {
    let length = Length {
        vocab: Vocab::new(['a', 'b', 'c'])?,
    };
    for ctx in [
        vec![Symbol::Token('a')],
        vec![Symbol::Token('a'), Symbol::Token('b')],
        vec![Symbol::Token('a'), Symbol::Token('b'), Symbol::Eos],
    ] {
        println!("score({ctx:?}) = {}", length.score(&ctx).await?);
    }
    let squared = Product::new(
        length,
        Length {
            vocab: Vocab::new(['b', 'c', 'd'])?,
        },
    )?;
    let next = squared.logw_next(&['b']).await?;
    println!("product vocabulary: {:?}", squared.vocab());
    println!("logw_next([b]) of the product: {:?}", next.top_k(3));
    Ok(())
}
