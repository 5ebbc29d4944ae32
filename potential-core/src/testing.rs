//! genlm-control's test potential and its zero-weight variant, written
//! once for every test that wants them: this crate's unit tests and, with
//! the `testing` feature, other crates' tests (the worker-process tests
//! send [`Length`] to workers, so it is registered here).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::potential::Potential;
use crate::spawn::Registered;
use crate::vocab::Vocab;

/// genlm-control's test potential: `complete` is `-len`, `prefix` is
/// `-0.5 len`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Length {
    /// The vocabulary.
    pub vocab: Vocab<char>,
}

impl Length {
    /// Over `a`, `b`, `c`.
    pub fn abc() -> Length {
        Length {
            vocab: Vocab::new(['a', 'b', 'c']).expect("three tokens"),
        }
    }
}

impl Potential for Length {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[char]) -> Result<f64> {
        Ok(-0.5 * context.len() as f64)
    }
}

impl Registered for Length {}
crate::register!(Length);

/// [`Length`] with zero weight as a prefix once the context holds a `c`
/// (`complete` unchanged).
#[derive(Debug)]
pub struct NoC(pub Length);

impl Potential for NoC {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.0.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64> {
        self.0.complete(context).await
    }
    async fn prefix(&self, context: &[char]) -> Result<f64> {
        if context.contains(&'c') {
            Ok(f64::NEG_INFINITY)
        } else {
            self.0.prefix(context).await
        }
    }
}
