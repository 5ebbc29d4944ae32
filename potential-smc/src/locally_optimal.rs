//! The locally optimal proposal: draw from the target's own normalized
//! next-token weights.

use futures::future::try_join_all;
use rayon::prelude::*;

use potential_core::{LogWeights, Potential, Result, TokenType};

use crate::{Calls, Extension, Proposal, Slot, Stream};

/// Draws each next symbol from the normalized `logw_next` of one potential
/// and weights the step by their total (the normalizing constant): the
/// locally optimal proposal of that potential, genlm-control's
/// `DirectTokenSampler`.
///
/// Over the product of a language model and a constraint it is the
/// locally optimal proposal for the product (every token is scored by
/// both). Over the language model alone, with the constraint as the
/// sampler's critic ([`Smc::with_critic`](crate::Smc::with_critic)), it is
/// genlm's direct sampler with a critic: tokens come from the model, and
/// the constraint reweights the particles.
#[derive(Debug)]
pub struct LocallyOptimal<'a, P> {
    potential: &'a P,
}

impl<'a, P: Potential> LocallyOptimal<'a, P> {
    /// The locally optimal proposal of `potential`.
    pub fn new(potential: &'a P) -> Self {
        LocallyOptimal { potential }
    }
}

impl<P: Potential> Proposal for LocallyOptimal<'_, P> {
    type Token = P::Token;

    async fn start_weight(&self) -> Result<f64> {
        self.potential.prefix(&[]).await
    }

    async fn extend(
        &self,
        slots: &mut [Slot<'_, P::Token>],
    ) -> Result<(Vec<Extension<P::Token>>, Calls)> {
        // All the group's calls at once: this is where autobatching
        // gathers them.
        let answers =
            try_join_all(slots.iter().map(|s| self.potential.logw_next(s.tokens))).await?;
        // Drawing is the sampler's own work, a pass of `exp` over the whole
        // vocabulary per particle, and independent between particles: it
        // runs on every core, in every mode alike.
        let extensions = slots
            .par_iter_mut()
            .zip(answers.par_iter())
            .map_init(Vec::new, |scratch, (slot, weights)| {
                draw_symbol(weights, slot, scratch)
            })
            .collect();
        let calls = Calls {
            logw_next: slots.len(),
            ..Calls::default()
        };
        Ok((extensions, calls))
    }
}

/// Draws the next symbol of one particle from `weights`; `scratch` is a
/// reused buffer for the linear weights.
fn draw_symbol<T: TokenType>(
    weights: &LogWeights<T>,
    slot: &mut Slot<'_, T>,
    scratch: &mut Vec<f64>,
) -> Extension<T> {
    let eos = || potential_core::Symbol::Eos;
    if slot.eos_only {
        return Extension {
            next: eos(),
            log_weight: weights.eos(),
        };
    }
    if let Some(mask) = weights.as_mask() {
        return draw_from_mask(weights, mask, slot.stream);
    }
    // One pass of `exp` gives both the total and the table to draw from:
    // with a vocabulary of thousands of tokens this pass is most of the
    // sampler's own cost.
    let values = weights.as_slice();
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return Extension {
            next: eos(),
            log_weight: f64::NEG_INFINITY,
        };
    }
    scratch.clear();
    scratch.extend(values.iter().map(|w| (w - max).exp()));
    let sum: f64 = scratch.iter().sum();
    let index = draw(scratch, sum, slot.stream);
    Extension {
        next: weights
            .vocab()
            .symbol(index)
            .map_or_else(eos, |s| s.cloned()),
        log_weight: max + sum.ln(),
    }
}

/// [`draw_symbol`] from a constraint's weights, read as bits: the symbols
/// of the mask are equally likely, and the normalizing constant is their
/// number. The draw is the one the inverse CDF over the same weights as
/// values makes (the `k`-th allowed symbol, for `k = ⌊u·n⌋`, from the same
/// uniform), so a run is the same whichever form the weights come in.
fn draw_from_mask<T: TokenType>(
    weights: &LogWeights<T>,
    mask: &potential_core::Mask,
    stream: &mut Stream,
) -> Extension<T> {
    let eos = || potential_core::Symbol::Eos;
    let count = mask.count();
    if count == 0 {
        return Extension {
            next: eos(),
            log_weight: f64::NEG_INFINITY,
        };
    }
    let k = ((stream.uniform() * count as f64) as usize).min(count - 1);
    let index = mask.nth(k).expect("k is below the mask's count");
    Extension {
        next: weights
            .vocab()
            .symbol(index)
            .map_or_else(eos, |s| s.cloned()),
        log_weight: (count as f64).ln(),
    }
}

/// Inverse-CDF draw of an index from linear weights that sum to `sum`
/// (at least one of them positive).
pub(crate) fn draw(linear: &[f64], sum: f64, stream: &mut Stream) -> usize {
    let u = stream.uniform() * sum;
    let mut cumulative = 0.0;
    let mut last = 0;
    for (i, w) in linear.iter().enumerate() {
        if *w == 0.0 {
            continue;
        }
        cumulative += w;
        last = i;
        if u < cumulative {
            return i;
        }
    }
    // Rounding can leave the cumulative sum a hair under u: take the last possible index.
    last
}
