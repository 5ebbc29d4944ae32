//! genlm-control's test potential and its zero-weight variant, written
//! once for this crate's unit tests, and the body its tests' wrappers of
//! it share.

use crate::error::Result;
use crate::mask::Mask;
use crate::potential::Potential;
use crate::vocab::Vocab;
use crate::weights::LogWeights;

/// genlm-control's test potential: `complete` is `-len`, `prefix` is
/// `-0.5 len`.
#[derive(Debug, Clone)]
pub(crate) struct Length {
    /// The vocabulary.
    pub(crate) vocab: Vocab<char>,
}

impl Length {
    /// Over `a`, `b`, `c`.
    pub(crate) fn abc() -> Length {
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

/// [`Length`] with zero weight as a prefix once the context holds a `c`
/// (`complete` unchanged).
#[derive(Debug)]
pub(crate) struct NoC(pub(crate) Length);

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

/// A constraint over `a`, `b`, `c`: weight one while the context holds no
/// `c`, zero once it does. Its `logw_next` is a [`Mask`] (`a`, `b` and
/// EOS), or with `dense` the same weights as values: the two forms that
/// must give the same answers everywhere.
#[derive(Debug)]
pub(crate) struct NoCConstraint {
    /// The vocabulary: `a`, `b`, `c`.
    pub(crate) vocab: Vocab<char>,
    /// Answer `logw_next` with values rather than a mask.
    pub(crate) dense: bool,
}

impl NoCConstraint {
    /// Answering with a mask, or with values when `dense`.
    pub(crate) fn new(dense: bool) -> NoCConstraint {
        NoCConstraint {
            vocab: Length::abc().vocab,
            dense,
        }
    }
}

impl Potential for NoCConstraint {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64> {
        self.prefix(context).await
    }
    async fn prefix(&self, context: &[char]) -> Result<f64> {
        Ok(if context.contains(&'c') {
            f64::NEG_INFINITY
        } else {
            0.0
        })
    }
    async fn logw_next(&self, _: &[char]) -> Result<LogWeights<char>> {
        let mask = Mask::from_words(4, vec![0b1011])?;
        if self.dense {
            LogWeights::new(self.vocab.clone(), mask.to_values())
        } else {
            LogWeights::from_mask(self.vocab.clone(), mask)
        }
    }
}

/// The methods a test's wrapper of [`Length`] (its field `.0`) keeps:
/// `vocab`, `complete` and `prefix`, so that the wrapper writes only the
/// one it changes.
macro_rules! keeps_length {
    () => {
        fn vocab(&self) -> &$crate::Vocab<char> {
            &self.0.vocab
        }
        async fn complete(&self, context: &[char]) -> $crate::Result<f64> {
            $crate::Potential::complete(&self.0, context).await
        }
        async fn prefix(&self, context: &[char]) -> $crate::Result<f64> {
            $crate::Potential::prefix(&self.0, context).await
        }
    };
}
pub(crate) use keeps_length;
