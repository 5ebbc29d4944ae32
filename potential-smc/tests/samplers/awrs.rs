//! AWRS's step weights: unbiased estimates of the exact normalizer, and
//! properly weighted draws, in each of its regimes.

use potential_core::{Potential, PotentialError, Symbol};
use potential_smc::{Awrs, Proposal, SamplerOptions, Slot, Stream, smc};

use crate::common::{NoRepeat, Unigram, assert_unbiased};
use potential_core::checks::block_on;

/// Seeds per check: with 2,000 independent estimates the standard error
/// of their mean is 0.1% to 3% of the normalizers here, small enough to
/// see a wrong estimator, and the tests take a fraction of a second.
const SEEDS: u64 = 2000;

/// Runs AWRS's step from `context` once per seed and checks, within 4
/// standard errors, that the weights average to the exact normalizer of
/// the product (the model's weights of the tokens the constraint
/// accepts), and that each symbol's weighted frequency is its exact
/// weight (proper weighting).
///
/// Why 4 standard errors: the estimates are independent and bounded, so
/// their mean is close to normal; the chance that an unbiased estimator
/// lands outside 4 standard errors is 6e-5 per check, and with fixed
/// seeds the test is deterministic anyway. Estimators with a plausible
/// mistake (recursive AWRS without its coin flip, geometric AWRS counting
/// every acceptance or not capping the phantom rejections) miss by 12 to
/// 160 standard errors here.
fn check_step(awrs: &Awrs<'_, Unigram, NoRepeat>, lm: &Unigram, c: &NoRepeat, context: &[char]) {
    block_on(async {
        let lm_next = lm.logw_next(context).await.unwrap();
        let exact: Vec<f64> = lm
            .vocab()
            .symbols()
            .map(|x| {
                let allowed = match x {
                    Symbol::Token(t) => {
                        let mut ext = context.to_vec();
                        ext.push(*t);
                        c.vocab().contains(t) && c.allows_text(&ext)
                    }
                    Symbol::Eos => !context.is_empty() && c.allows_text(context),
                };
                if allowed {
                    lm_next.get_symbol(x).exp()
                } else {
                    0.0
                }
            })
            .collect();
        let mut per_symbol = vec![Vec::new(); exact.len()];
        let mut totals = Vec::new();
        for seed in 0..SEEDS {
            let mut stream = Stream::new(seed, 0);
            let mut slots = [Slot {
                tokens: context,
                stream: &mut stream,
                eos_only: false,
            }];
            let (extensions, calls) = awrs.extend(&mut slots).await.unwrap();
            assert_eq!(calls.logw_next, 1);
            assert!(calls.checks >= 1);
            let e = &extensions[0];
            let w = e.log_weight.exp();
            totals.push(w);
            let index = lm.vocab().symbol_index(e.next.as_ref()).unwrap();
            for (i, values) in per_symbol.iter_mut().enumerate() {
                values.push(if i == index { w } else { 0.0 });
            }
        }
        let z: f64 = exact.iter().sum();
        assert_unbiased(&format!("normalizer after {context:?}"), &totals, z);
        for (i, values) in per_symbol.iter().enumerate() {
            assert_unbiased(&format!("symbol {i} after {context:?}"), values, exact[i]);
        }
    })
}

/// A flat model: no token reaches probability 2/3, so recursive AWRS runs.
fn flat() -> Unigram {
    Unigram::new("abcde", &[0.3, 0.25, 0.2, 0.1, 0.05], 0.1, 1.0)
}

/// A peaked model (`a` has probability 0.8, times an unnormalized 1.5):
/// geometric AWRS runs, with phantom rejections when `a` is ruled out.
fn peaked() -> Unigram {
    Unigram::new("abcde", &[1.2, 0.1, 0.05, 0.05, 0.05], 0.05, 2.0)
}

/// Rules out `d`, repeats and ending at once; does not know `e` (pruned).
fn constraint() -> NoRepeat {
    NoRepeat::new("abcd", 'd')
}

#[test]
fn recursive_awrs_estimates_the_normalizer_without_bias() {
    let (lm, c) = (flat(), constraint());
    let awrs = Awrs::new(&lm, &c).unwrap();
    for context in [&[][..], &['a'][..], &['b', 'a'][..]] {
        check_step(&awrs, &lm, &c, context);
    }
}

#[test]
fn geometric_awrs_estimates_the_normalizer_without_bias() {
    let (lm, c) = (peaked(), constraint());
    let awrs = Awrs::new(&lm, &c).unwrap();
    // After `a`, the peak is rejected: the rejected mass is 0.8.
    for context in [&[][..], &['a'][..], &['b'][..]] {
        check_step(&awrs, &lm, &c, context);
    }
    // More acceptances: geometric AWRS on the flat model too.
    let (flat, c) = (flat(), constraint());
    let awrs = Awrs::new(&flat, &c).unwrap().with_max_accepts(4).unwrap();
    check_step(&awrs, &flat, &c, &['a']);
}

#[test]
fn a_limit_on_rejections_keeps_the_estimate_unbiased() {
    for lm in [flat(), peaked()] {
        let c = constraint();
        let awrs = Awrs::new(&lm, &c).unwrap().with_max_rejects(2).unwrap();
        check_step(&awrs, &lm, &c, &['a']);
    }
}

#[test]
fn awrs_checks_only_drawn_tokens_and_counts_its_checks() {
    block_on(async {
        let (lm, c) = (flat(), constraint());
        let awrs = Awrs::new(&lm, &c).unwrap();
        let options = SamplerOptions::new(16, 6, 5);
        let run = smc(&awrs, options, |_| {}).await.unwrap();
        // The start weight asks the constraint's prefix of the empty context once.
        assert_eq!(run.calls.checks + 1, c.calls());
        assert_eq!(run.calls.logw_next, run.draws);
        // Recursive AWRS checks one or two symbols a draw, rarely more:
        // fewer than the 6 symbols the full product would score.
        assert!(run.checks_per_draw() < 3.0, "{}", run.checks_per_draw());
        for s in run.samples.iter().filter(|s| s.finished) {
            assert_eq!(c.complete(&s.tokens).await.unwrap(), 0.0, "{s:?}");
        }
        assert!(run.samples.iter().any(|s| s.finished));
        // Stepping in groups changes when calls are made, not the particles.
        let grouped = SamplerOptions {
            groups: 3,
            ..options
        };
        assert_eq!(
            smc(&awrs, grouped, |_| {}).await.unwrap().samples,
            run.samples
        );
    });
}

/// Says 0.5 (log) to everything: not boolean.
struct Half(potential_core::Vocab<char>);

impl Potential for Half {
    type Token = char;
    fn vocab(&self) -> &potential_core::Vocab<char> {
        &self.0
    }
    async fn complete(&self, _: &[char]) -> potential_core::Result<f64> {
        Ok(0.5f64.ln())
    }
    async fn prefix(&self, c: &[char]) -> potential_core::Result<f64> {
        Ok(if c.is_empty() { 0.0 } else { 0.5f64.ln() })
    }
}

#[test]
fn bad_settings_and_a_constraint_that_is_not_boolean_are_errors() {
    block_on(async {
        let (lm, c) = (flat(), constraint());
        for err in [
            Awrs::new(&lm, &c).unwrap().with_max_accepts(1).unwrap_err(),
            Awrs::new(&lm, &c).unwrap().with_max_rejects(1).unwrap_err(),
        ] {
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        }
        let elsewhere = NoRepeat::new("xyz", 'x');
        let err = Awrs::new(&lm, &elsewhere).unwrap_err();
        assert!(matches!(err, PotentialError::EmptyIntersection), "{err}");
        let half = Half(lm.vocab().clone());
        let awrs = Awrs::new(&lm, &half).unwrap();
        let err = smc(&awrs, SamplerOptions::new(4, 3, 1), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
    });
}

#[test]
fn checking_ahead_gives_the_same_runs_for_every_seed_at_more_checks() {
    block_on(async {
        let c = constraint();
        for lm in [flat(), peaked()] {
            for (max_accepts, max_rejects) in [(2, usize::MAX), (4, usize::MAX), (2, 2)] {
                let one = Awrs::new(&lm, &c)
                    .unwrap()
                    .with_max_accepts(max_accepts)
                    .unwrap()
                    .with_max_rejects(max_rejects)
                    .unwrap();
                for lookahead in [2, 3, 8] {
                    let ahead = Awrs::new(&lm, &c)
                        .unwrap()
                        .with_max_accepts(max_accepts)
                        .unwrap()
                        .with_max_rejects(max_rejects)
                        .unwrap()
                        .with_lookahead(lookahead)
                        .unwrap();
                    for seed in 0..40 {
                        let options = SamplerOptions::new(8, 6, seed);
                        let plain = smc(&one, options, |_| {}).await.unwrap();
                        let run = smc(&ahead, options, |_| {}).await.unwrap();
                        // The same particles, weights and estimate, bit for bit.
                        assert_eq!(run.samples, plain.samples, "seed {seed}");
                        assert_eq!(run.log_ml.to_bits(), plain.log_ml.to_bits());
                        assert!(run.calls.checks >= plain.calls.checks);
                    }
                }
            }
        }
        // Checking ahead costs checks: more of them, each draw's overshoot.
        let lm = flat();
        let (plain, ahead) = (
            Awrs::new(&lm, &c).unwrap(),
            Awrs::new(&lm, &c).unwrap().with_lookahead(4).unwrap(),
        );
        let options = SamplerOptions::new(16, 6, 5);
        let (p, a) = (
            smc(&plain, options, |_| {}).await.unwrap(),
            smc(&ahead, options, |_| {}).await.unwrap(),
        );
        assert!(a.calls.checks > p.calls.checks);
        assert!(Awrs::new(&lm, &c).unwrap().with_lookahead(0).is_err());
    });
}

/// A constraint whose checks of `d` fail with an error: an error is
/// raised only when AWRS asks about `d`, not when `d` was checked ahead.
struct FailsOnD(NoRepeat);

impl Potential for FailsOnD {
    type Token = char;
    fn vocab(&self) -> &potential_core::Vocab<char> {
        self.0.vocab()
    }
    async fn complete(&self, c: &[char]) -> potential_core::Result<f64> {
        self.0.complete(c).await
    }
    async fn prefix(&self, c: &[char]) -> potential_core::Result<f64> {
        if c.last() == Some(&'d') {
            Err(PotentialError::msg("d is not to be asked about"))
        } else {
            self.0.prefix(c).await
        }
    }
}

#[test]
fn a_failed_check_ahead_is_an_error_only_when_asked_about() {
    block_on(async {
        let lm = flat();
        let failing = FailsOnD(constraint());
        let plain = Awrs::new(&lm, &failing).unwrap();
        let ahead = Awrs::new(&lm, &failing).unwrap().with_lookahead(5).unwrap();
        let (mut both_ok, mut both_failed) = (0, 0);
        for seed in 0..60 {
            let options = SamplerOptions::new(4, 4, seed);
            let p = smc(&plain, options, |_| {}).await;
            let a = smc(&ahead, options, |_| {}).await;
            match (p, a) {
                (Ok(p), Ok(a)) => {
                    assert_eq!(p.samples, a.samples, "seed {seed}");
                    both_ok += 1;
                }
                (Err(p), Err(a)) => {
                    assert_eq!(p.to_string(), a.to_string());
                    both_failed += 1;
                }
                (p, a) => panic!("seed {seed}: one at a time {p:?}, ahead {a:?}"),
            }
        }
        // Both cases happen: the test shows something.
        assert!(both_ok > 0 && both_failed > 0, "{both_ok} {both_failed}");
    });
}
