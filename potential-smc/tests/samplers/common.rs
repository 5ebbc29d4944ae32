//! Tiny potentials whose exact answers are known, for the samplers' tests.

use std::sync::atomic::{AtomicUsize, Ordering};

use potential_core::{Potential, PotentialError, Result, Vocab};

/// A unigram "language model": each token `x` multiplies the weight by
/// `w[x]`, ending by `w_eos`, and the empty context weighs `start`. Its
/// weights need not be normalized, and its next-token weights are the
/// same after every context.
#[derive(Debug)]
pub(crate) struct Unigram {
    pub(crate) vocab: Vocab<char>,
    pub(crate) weights: Vec<f64>,
    pub(crate) eos: f64,
    pub(crate) start: f64,
}

impl Unigram {
    pub(crate) fn new(tokens: &str, weights: &[f64], eos: f64, start: f64) -> Self {
        Unigram {
            vocab: Vocab::new(tokens.chars()).unwrap(),
            weights: weights.to_vec(),
            eos,
            start,
        }
    }

    fn weight(&self, c: &[char]) -> Result<f64> {
        c.iter().try_fold(self.start.ln(), |acc, t| {
            let i = self.vocab.index_of(t).ok_or_else(|| {
                PotentialError::InvalidInput(format!("{t:?} is not in the vocabulary"))
            })?;
            Ok(acc + self.weights[i].ln())
        })
    }
}

impl Potential for Unigram {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, c: &[char]) -> Result<f64> {
        Ok(self.weight(c)? + self.eos.ln())
    }
    async fn prefix(&self, c: &[char]) -> Result<f64> {
        self.weight(c)
    }
}

/// A boolean constraint: no token twice in a row, no `banned` token, and
/// at least one token before EOS. Counts its calls.
#[derive(Debug)]
pub(crate) struct NoRepeat {
    pub(crate) vocab: Vocab<char>,
    pub(crate) banned: char,
    pub(crate) calls: AtomicUsize,
}

impl NoRepeat {
    pub(crate) fn new(tokens: &str, banned: char) -> Self {
        NoRepeat {
            vocab: Vocab::new(tokens.chars()).unwrap(),
            banned,
            calls: AtomicUsize::new(0),
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Whether `c` is allowed as a prefix.
    pub(crate) fn allows_text(&self, c: &[char]) -> bool {
        !c.contains(&self.banned) && c.windows(2).all(|w| w[0] != w[1])
    }
}

fn boolean(ok: bool) -> f64 {
    if ok { 0.0 } else { f64::NEG_INFINITY }
}

impl Potential for NoRepeat {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, c: &[char]) -> Result<f64> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(boolean(!c.is_empty() && self.allows_text(c)))
    }
    async fn prefix(&self, c: &[char]) -> Result<f64> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(boolean(self.allows_text(c)))
    }
}

/// Every text over `vocab` of at most `max_tokens` tokens.
pub(crate) fn texts(vocab: &Vocab<char>, max_tokens: usize) -> Vec<Vec<char>> {
    let mut all = vec![Vec::new()];
    let mut frontier = vec![Vec::new()];
    for _ in 0..max_tokens {
        frontier = frontier
            .iter()
            .flat_map(|t: &Vec<char>| {
                vocab.tokens().iter().map(move |x| {
                    let mut t = t.clone();
                    t.push(*x);
                    t
                })
            })
            .collect();
        all.extend(frontier.iter().cloned());
    }
    all
}

/// The exact total weight of the product of `a` and `b` over the texts of
/// at most `max_tokens` tokens of `a`'s vocabulary.
pub(crate) async fn total<A, B>(a: &A, b: &B, max_tokens: usize) -> f64
where
    A: Potential<Token = char>,
    B: Potential<Token = char>,
{
    let mut sum = 0.0;
    for t in texts(a.vocab(), max_tokens) {
        if t.iter().all(|x| b.vocab().contains(x)) {
            sum += (a.complete(&t).await.unwrap() + b.complete(&t).await.unwrap()).exp();
        }
    }
    sum
}

/// The mean of `values` and its standard error.
pub(crate) fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Asserts that the mean of `values` is within 4 standard errors of
/// `exact` (and within rounding when every value is the same).
pub(crate) fn assert_unbiased(what: &str, values: &[f64], exact: f64) {
    let (mean, se) = mean_and_standard_error(values);
    assert!(
        (mean - exact).abs() <= 4.0 * se + 1e-9 * exact.abs(),
        "{what}: mean {mean} over {} runs, exact {exact}, standard error {se}",
        values.len()
    );
}
