//! Every proposal's estimate of the marginal likelihood, exponentiated, is
//! unbiased for the exact total weight of the target, with and without
//! resampling.

use potential_core::ops::Product;
use potential_smc::{Awrs, LocallyOptimal, Proposal, Resampling, SamplerOptions, Smc};

use crate::common::{NoRepeat, Unigram, assert_unbiased, total};
use potential_core::checks::block_on;

const MAX_TOKENS: usize = 4;
const RUNS: u64 = 400;

/// An unnormalized model whose empty context weighs 1.5, so that the
/// start weight is part of the total.
fn lm() -> Unigram {
    Unigram::new("abc", &[0.5, 0.3, 0.15], 0.3, 1.5)
}

fn constraint() -> NoRepeat {
    NoRepeat::new("abc", 'c')
}

/// The settings under test: importance sampling, and resampling (often,
/// so that it has an effect) under 90% of the particles systematically
/// and under all of them multinomially.
fn settings(seed: u64) -> [SamplerOptions; 3] {
    let base = SamplerOptions::new(8, MAX_TOKENS, seed);
    [
        SamplerOptions {
            ess_threshold: 0.0,
            ..base
        },
        SamplerOptions {
            ess_threshold: 0.9,
            ..base
        },
        SamplerOptions {
            ess_threshold: 1.0,
            resampling: Resampling::Multinomial,
            ..base
        },
    ]
}

/// Runs `sampler(seed)` for every seed and setting, and checks the mean of
/// `exp(log_ml)` against `exact` within 4 standard errors (see
/// `awrs::check_step` for why 4).
async fn check<Q: Proposal<Token = char>>(
    what: &str,
    proposal: &Q,
    critic: Option<&NoRepeat>,
    exact: f64,
) {
    for k in 0..3 {
        let mut estimates = Vec::new();
        let mut resamples = 0;
        for seed in 0..RUNS {
            let options = settings(seed)[k];
            let smc = Smc::new(proposal, options);
            let run = match critic {
                Some(c) => smc.with_critic(c).run(|_| {}).await.unwrap(),
                None => smc.run(|_| {}).await.unwrap(),
            };
            estimates.push(run.log_ml.exp());
            resamples += run.resamples;
        }
        assert_eq!(resamples == 0, k == 0, "{what} {k}: {resamples}");
        assert_unbiased(&format!("{what}, setting {k}"), &estimates, exact);
    }
}

#[test]
fn every_proposal_estimates_the_total_weight_without_bias() {
    block_on(async {
        let (model, c) = (lm(), constraint());
        let exact = total(&model, &c, MAX_TOKENS).await;
        assert!(exact > 0.1, "{exact}");
        let product = Product::new(lm(), constraint()).unwrap();
        check(
            "locally optimal on the product",
            &LocallyOptimal::new(&product),
            None,
            exact,
        )
        .await;
        check(
            "direct on the model, the constraint as critic",
            &LocallyOptimal::new(&model),
            Some(&c),
            exact,
        )
        .await;
        check("AWRS", &Awrs::new(&model, &c).unwrap(), None, exact).await;
        // Without a constraint, the total of the model alone.
        let alone = total(&model, &NoRepeat::new("abc", 'z'), MAX_TOKENS).await;
        let free = NoRepeat::new("abc", 'z');
        assert!(alone > exact);
        check(
            "AWRS, a looser constraint",
            &Awrs::new(&model, &free).unwrap(),
            None,
            alone,
        )
        .await;
    });
}
