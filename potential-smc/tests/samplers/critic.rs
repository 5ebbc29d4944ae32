//! The critic: it weighs the drawn contexts, once per particle and step.

use potential_core::{Potential, PotentialError, Result, Vocab};
use potential_smc::{
    Calls, Extension, LocallyOptimal, Proposal, SamplerOptions, Slot, Smc, importance, smc,
};

use crate::common::{NoRepeat, Unigram};
use potential_core::checks::block_on;

#[test]
fn the_critic_weighs_each_drawn_context_once_and_rules_out_particles_at_once() {
    block_on(async {
        let lm = Unigram::new("abc", &[0.4, 0.3, 0.2], 0.1, 1.0);
        let c = NoRepeat::new("abc", 'c');
        let direct = LocallyOptimal::new(&lm);
        let options = SamplerOptions::new(32, 6, 9);
        let run = Smc::new(&direct, options)
            .with_critic(&c)
            .run(|_| {})
            .await
            .unwrap();
        // One call per symbol drawn with weight, never one per token of
        // the vocabulary.
        assert_eq!(run.calls.critic, c.calls());
        assert_eq!(run.calls.critic, run.draws);
        assert_eq!(run.calls.checks, 0);
        for s in &run.samples {
            if s.finished {
                assert_eq!(c.complete(&s.tokens).await.unwrap(), 0.0, "{s:?}");
            } else {
                // Dead at the first token the critic ruled out.
                assert_eq!(s.log_weight, f64::NEG_INFINITY);
                let ok = s.tokens.len().saturating_sub(1);
                assert_eq!(c.prefix(&s.tokens[..ok]).await.unwrap(), 0.0, "{s:?}");
            }
        }
        assert!(run.samples.iter().any(|s| s.finished));
        assert!(run.samples.iter().any(|s| !s.finished));
    });
}

#[test]
fn importance_never_resamples_and_smc_does() {
    block_on(async {
        let lm = Unigram::new("abc", &[0.4, 0.3, 0.2], 0.1, 1.0);
        let c = NoRepeat::new("abc", 'c');
        let direct = LocallyOptimal::new(&lm);
        let options = SamplerOptions {
            ess_threshold: 1.0,
            ..SamplerOptions::new(16, 6, 2)
        };
        let run = Smc::new(&direct, options).with_critic(&c).run(|_| {});
        assert!(run.await.unwrap().resamples > 0);
        let plain = importance(&direct, options, |_| {}).await.unwrap();
        assert_eq!(plain.resamples, 0);
        assert_eq!(plain.calls.critic, 0);
    });
}

/// Gives one extension too few, or (`endless`) one per particle, always
/// the first token, even where only EOS may follow.
struct Short {
    vocab: Vocab<char>,
    endless: bool,
}

impl Proposal for Short {
    type Token = char;
    async fn start_weight(&self) -> Result<f64> {
        Ok(0.0)
    }
    async fn extend(&self, slots: &mut [Slot<'_, char>]) -> Result<(Vec<Extension<char>>, Calls)> {
        let n = if self.endless {
            slots.len()
        } else {
            slots.len().saturating_sub(1)
        };
        let step = Extension {
            next: potential_core::Symbol::Token(self.vocab.tokens()[0]),
            log_weight: 0.0,
        };
        Ok((vec![step; n], Calls::default()))
    }
}

#[test]
fn a_proposal_that_loses_particles_or_ignores_the_limit_is_an_error() {
    block_on(async {
        for endless in [false, true] {
            let vocab = Vocab::new(['a']).unwrap();
            let short = Short { vocab, endless };
            let err = smc(&short, SamplerOptions::new(4, 3, 1), |_| {})
                .await
                .unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        }
    });
}
