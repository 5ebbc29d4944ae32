//! AWRS, adaptive weighted rejection sampling (Lipkin et al. 2025,
//! "Fast Controlled Generation from Language Models with Adaptive Weighted
//! Rejection Sampling"), as genlm-control's `AWRS` token sampler runs it.

mod check;
mod geometric;
mod order;
mod recursive;

use futures::future::{try_join, try_join_all};

use potential_core::{Potential, PotentialError, Result, Symbol, logsumexp};

use crate::{Calls, Extension, Proposal, Slot};
use check::{Checker, boolean};
use geometric::geometric_awrs;
use recursive::recursive_awrs;

/// When the most probable token has at least this probability, geometric
/// AWRS makes fewer constraint calls than recursive AWRS (which always
/// makes two): its expected number of distinct calls is under
/// `1 + 2(1 - p)/p`, which is under 2 for `p > 2/3` (genlm-control's rule).
const GEOMETRIC_THRESHOLD: f64 = 2.0 / 3.0;

/// Adaptive weighted rejection sampling over a language model and a
/// boolean constraint: the target is their product.
///
/// For each particle it draws a token from the language model's
/// normalized `logw_next` and checks only that token with the constraint
/// (`prefix` of the context and the token, or `complete` of the context
/// for EOS); a rejected token is removed and the draw repeated. The step's
/// weight is the model's total times an unbiased estimate of the
/// probability mass the constraint accepts, so the particles are properly
/// weighted for the product, while the constraint is asked about a few
/// tokens instead of the whole vocabulary: the sampler that makes an
/// expensive constraint usable. [`Calls::checks`] counts its calls.
///
/// Which estimate: recursive AWRS (one run without replacement, a coin
/// flip at the first acceptance) unless the most probable token has
/// probability at least 2/3 or `max_accepts` is over 2, when geometric
/// AWRS (with replacement, simulated) is cheaper; both exactly as
/// genlm-control's. Tokens of the model outside the constraint's
/// vocabulary are never drawn.
///
/// ```
/// use potential_core::{Potential, PotentialError, Vocab};
/// use potential_smc::{Awrs, SamplerOptions, smc};
///
/// /// A "language model": uniform over {a, b, c}, ending with probability 1/4.
/// struct Lm(Vocab<char>);
/// impl Potential for Lm {
///     type Token = char;
///     fn vocab(&self) -> &Vocab<char> { &self.0 }
///     async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64 + 1.0) * 4f64.ln()) }
///     async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64) * 4f64.ln()) }
/// }
/// /// A constraint: no `c`.
/// struct NoC(Vocab<char>);
/// impl Potential for NoC {
///     type Token = char;
///     fn vocab(&self) -> &Vocab<char> { &self.0 }
///     async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> { self.prefix(c).await }
///     async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> {
///         Ok(if c.contains(&'c') { f64::NEG_INFINITY } else { 0.0 })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vocab = Vocab::new(['a', 'b', 'c'])?;
/// let (lm, no_c) = (Lm(vocab.clone()), NoC(vocab));
/// let awrs = Awrs::new(&lm, &no_c)?;
/// let run = smc(&awrs, SamplerOptions::new(16, 10, 1), |_| {}).await?;
/// for sample in run.samples.iter().filter(|s| s.finished) {
///     assert!(!sample.tokens.contains(&'c'));
/// }
/// // Fewer constraint calls than the vocabulary's size per token.
/// assert!(run.checks_per_draw() < 4.0);
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct Awrs<'a, L, C> {
    lm: &'a L,
    constraint: &'a C,
    /// For each of the model's tokens, whether the constraint knows it
    /// (the others are pruned: the constraint would reject them).
    known: Vec<bool>,
    max_accepts: usize,
    max_rejects: usize,
    lookahead: usize,
}

impl<'a, L, C> Awrs<'a, L, C>
where
    L: Potential,
    C: Potential<Token = L::Token>,
{
    /// AWRS over `lm` and the boolean `constraint` (log weights 0 or
    /// `-inf` only; any other weight is an error when it comes), with
    /// genlm-control's defaults: 2 acceptances, no limit on rejections.
    /// Their vocabularies must share a token
    /// ([`PotentialError::EmptyIntersection`]), as for their product.
    pub fn new(lm: &'a L, constraint: &'a C) -> Result<Self> {
        let known: Vec<bool> = lm
            .vocab()
            .tokens()
            .iter()
            .map(|t| constraint.vocab().contains(t))
            .collect();
        if !known.contains(&true) {
            return Err(PotentialError::EmptyIntersection);
        }
        Ok(Awrs {
            lm,
            constraint,
            known,
            max_accepts: 2,
            max_rejects: usize::MAX,
            lookahead: 1,
        })
    }

    /// The number of acceptances geometric AWRS waits for (at least 2;
    /// more lowers the variance of the weights, at more constraint calls;
    /// over 2 always uses geometric AWRS).
    pub fn with_max_accepts(self, max_accepts: usize) -> Result<Self> {
        if max_accepts < 2 {
            return Err(PotentialError::InvalidInput(
                "AWRS needs max_accepts of at least 2 for its weights to be unbiased".to_string(),
            ));
        }
        Ok(Awrs {
            max_accepts,
            ..self
        })
    }

    /// The most rejections per step (at least 2): fewer bound the
    /// constraint calls, at the cost of killing a particle whose accepted
    /// tokens were not found in time.
    pub fn with_max_rejects(self, max_rejects: usize) -> Result<Self> {
        if max_rejects < 2 {
            return Err(PotentialError::InvalidInput(
                "AWRS needs max_rejects of at least 2 for its weights to be unbiased".to_string(),
            ));
        }
        Ok(Awrs {
            max_rejects,
            ..self
        })
    }

    /// How many drawn symbols of one particle are checked at the same time
    /// (at least 1; default 1, genlm-control's one at a time).
    ///
    /// AWRS checks one particle's draws one after another, so with an
    /// expensive constraint in worker processes one long rejection chain
    /// keeps all but one worker idle (in the word-list job, the longest
    /// chain of a step held 91% of its checks). With a lookahead of `k`,
    /// each check goes out with up to `k - 1` of the symbols that would be
    /// drawn after it, so up to `k` workers share a chain. The draws and the
    /// weights are exactly those of `k = 1` for every seed (the order of
    /// the draws does not depend on the verdicts, and the verdicts are read
    /// in that order); the price is the symbols checked after the accepted
    /// one, up to `k - 1` a draw, counted in [`Calls::checks`]. Use the
    /// number of workers the constraint runs in, or its batch size if it
    /// has a batch form; keep 1 for a constraint that runs in this process
    /// one call at a time.
    ///
    /// ```
    /// # use potential_core::{Potential, PotentialError, Vocab};
    /// # struct Any(Vocab<u8>);
    /// # impl Potential for Any {
    /// #     type Token = u8;
    /// #     fn vocab(&self) -> &Vocab<u8> { &self.0 }
    /// #     async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
    /// #     async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
    /// # }
    /// # let (lm, constraint) = (Any(Vocab::new([1, 2])?), Any(Vocab::new([1, 2])?));
    /// use potential_smc::Awrs;
    /// let awrs = Awrs::new(&lm, &constraint)?.with_lookahead(2)?;
    /// assert!(Awrs::new(&lm, &constraint)?.with_lookahead(0).is_err());
    /// # Ok::<(), PotentialError>(())
    /// ```
    pub fn with_lookahead(self, lookahead: usize) -> Result<Self> {
        if lookahead == 0 {
            return Err(PotentialError::InvalidInput(
                "AWRS checks at least one drawn symbol at a time: a lookahead of 0 means nothing"
                    .to_string(),
            ));
        }
        Ok(Awrs { lookahead, ..self })
    }

    /// One particle's step: the symbol, the step's log weight and the
    /// constraint calls.
    async fn extend_one(
        &self,
        slot: &mut Slot<'_, L::Token>,
    ) -> Result<(Extension<L::Token>, usize)> {
        let weights = self.lm.logw_next(slot.tokens).await?;
        if slot.eos_only {
            // The target's EOS weight: the model's, times the
            // constraint's verdict on the finished context (its prefix
            // weight is 1, or the particle would be dead).
            let verdict = self.constraint.complete(slot.tokens).await?;
            let allowed = boolean(potential_core::check_weight(
                potential_core::Method::Complete,
                verdict,
            )?)?;
            let log_weight = if allowed {
                weights.eos()
            } else {
                f64::NEG_INFINITY
            };
            return Ok((
                Extension {
                    next: Symbol::Eos,
                    log_weight,
                },
                1,
            ));
        }
        let mut logps = weights.into_vec();
        for (w, known) in logps.iter_mut().zip(&self.known) {
            if !known {
                *w = f64::NEG_INFINITY;
            }
        }
        let log_z = logsumexp(&logps);
        if log_z == f64::NEG_INFINITY {
            let dead = Extension {
                next: Symbol::Eos,
                log_weight: f64::NEG_INFINITY,
            };
            return Ok((dead, 0));
        }
        for w in &mut logps {
            *w -= log_z;
        }
        let vocab = self.lm.vocab();
        let mut checker = Checker::new(self.constraint, slot.tokens, vocab, self.lookahead);
        let max_logp = logps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (index, log_estimate) = if self.max_accepts > 2 || max_logp >= GEOMETRIC_THRESHOLD.ln()
        {
            geometric_awrs(
                &logps,
                &mut checker,
                slot.stream,
                self.max_rejects,
                self.max_accepts,
            )
            .await?
        } else {
            recursive_awrs(&logps, &mut checker, slot.stream, self.max_rejects).await?
        };
        let next = vocab.symbol(index).map_or(Symbol::Eos, |s| s.cloned());
        let extension = Extension {
            next,
            log_weight: log_estimate + log_z,
        };
        Ok((extension, checker.calls))
    }
}

impl<L, C> Proposal for Awrs<'_, L, C>
where
    L: Potential,
    C: Potential<Token = L::Token>,
{
    type Token = L::Token;

    async fn start_weight(&self) -> Result<f64> {
        let (lm, constraint) = try_join(self.lm.prefix(&[]), self.constraint.prefix(&[])).await?;
        Ok(lm + constraint)
    }

    async fn extend(
        &self,
        slots: &mut [Slot<'_, L::Token>],
    ) -> Result<(Vec<Extension<L::Token>>, Calls)> {
        // Every particle's rejection loop at once: the model's calls batch,
        // and the constraint's checks of different particles are in flight
        // together (in worker processes, on every core).
        let steps = try_join_all(slots.iter_mut().map(|slot| self.extend_one(slot))).await?;
        let mut calls = Calls {
            logw_next: slots.len(),
            ..Calls::default()
        };
        let extensions = steps
            .into_iter()
            .map(|(extension, checks)| {
                calls.checks += checks;
                extension
            })
            .collect();
        Ok((extensions, calls))
    }
}
