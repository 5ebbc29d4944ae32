//! The critic: a potential that reweights the particles after each step
//! instead of taking part in the proposal.

use potential_core::{Method, Potential, Result, check_weight};

/// A potential that reweights particles by its own weight of their texts,
/// genlm-control's critic.
///
/// After each step the sampler asks the critic for the `prefix` of each
/// particle's new context (or its `complete`, when the particle has just
/// ended) and replaces the critic's previous factor in the weight by it:
/// the weight changes by the critic's prefix ratio, and a finished
/// particle carries the critic's `complete`. The critic is asked about the
/// drawn tokens only, once per particle and step, never about every token
/// of the vocabulary, and a particle the critic rules out dies at once.
/// The particles are then properly weighted for the product of the
/// proposal's target and the critic.
///
/// genlm-control asks the critic only at the end when the sampler never
/// resamples; here it is asked after every step in every mode: the final
/// weights are the same (the prefix ratios telescope to the critic's
/// `complete`), and the particles it rules out stop growing at once.
///
/// Every [`Potential`] is a critic; [`NoCritic`] is the absence of one.
pub trait Critic<T>: Sync {
    /// The critic's log weight of `tokens` as a finished text (`finished`)
    /// or as a prefix; `None` when there is no critic.
    fn weigh(
        &self,
        tokens: &[T],
        finished: bool,
    ) -> impl Future<Output = Result<Option<f64>>> + Send;
}

/// No critic: the particles are weighted by the proposal alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCritic;

impl<T: Sync> Critic<T> for NoCritic {
    async fn weigh(&self, _: &[T], _: bool) -> Result<Option<f64>> {
        Ok(None)
    }
}

impl<P: Potential> Critic<P::Token> for P {
    async fn weigh(&self, tokens: &[P::Token], finished: bool) -> Result<Option<f64>> {
        let weight = if finished {
            check_weight(Method::Complete, self.complete(tokens).await?)?
        } else {
            check_weight(Method::Prefix, self.prefix(tokens).await?)?
        };
        Ok(Some(weight))
    }
}
