//! What a proposal is: the way a sampler extends its particles by one token.

use potential_core::{Result, Symbol, TokenType};

use crate::{Calls, Stream};

/// One live particle, as a proposal extends it.
#[derive(Debug)]
pub struct Slot<'a, T> {
    /// The particle's tokens so far.
    pub tokens: &'a [T],
    /// The particle's own random stream: a proposal draws only from it, so
    /// that the particle does not depend on the others or on timing.
    pub stream: &'a mut Stream,
    /// The particle is at the token limit: the proposal must give EOS,
    /// weighted by the target's next-token weight of EOS (the proposal is
    /// then a point mass on EOS, and that weight its importance weight).
    pub eos_only: bool,
}

/// What a proposal gives one particle.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension<T> {
    /// The next token, or EOS.
    pub next: Symbol<T>,
    /// The log importance weight of the step: the target's weight of the
    /// extension over the proposal's probability of it, or an unbiased
    /// estimate of it. `-inf` kills the particle (its `next` is then
    /// ignored).
    pub log_weight: f64,
}

/// A way to extend particles by one token, properly weighted with respect
/// to a target potential: for any function `f` of the next symbol, the
/// mean of `exp(log_weight) f(next)` is the sum over symbols `x` of the
/// target's `exp(logw_next(ctx)[x]) f(x)`.
///
/// The sampler hands a proposal a group of live particles at once, so that
/// it can ask its potentials about all of them concurrently (where
/// autobatching gathers the calls into batches and worker processes share
/// them out).
pub trait Proposal: Sync {
    /// The token type of the particles.
    type Token: TokenType;

    /// The target's log weight of the empty context as a prefix (every
    /// particle starts with it, so that the marginal likelihood estimate
    /// is that of the target's total weight).
    fn start_weight(&self) -> impl Future<Output = Result<f64>> + Send;

    /// Extends every particle of `slots` by one symbol: one [`Extension`]
    /// per slot, in order, and the calls it made.
    fn extend(
        &self,
        slots: &mut [Slot<'_, Self::Token>],
    ) -> impl Future<Output = Result<(Vec<Extension<Self::Token>>, Calls)>> + Send;
}
