//! The sequential Monte Carlo loop: stepping, reweighting, resampling.

use futures::future::try_join_all;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rayon::prelude::*;

use potential_core::{LogWeights, Potential, Result, TokenType};

use crate::resample::{self, ancestors, effective_sample_size};
use crate::{Run, Sample, SamplerOptions};

struct Particle<T> {
    sample: Sample<T>,
    rng: ChaCha8Rng,
    live: bool,
}

/// Runs the sampler; `on_step` is called after each step with the number
/// of live particles (for a progress bar). Invalid options are
/// [`PotentialError::InvalidInput`]s (see [`SamplerOptions::validate`]).
///
/// ```
/// use potential_core::{Potential, PotentialError, Vocab};
/// use potential_smc::{sample, SamplerOptions};
///
/// /// Uniform over {a, b}, ends with probability 1/3 at each step.
/// struct Uniform(Vocab<char>);
/// impl Potential for Uniform {
///     type Token = char;
///     fn vocab(&self) -> &Vocab<char> { &self.0 }
///     async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64) * 3f64.ln() - 3f64.ln()) }
///     async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64) * 3f64.ln()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let options = SamplerOptions::new(8, 20, 7);
/// let p = Uniform(Vocab::new(['a', 'b'])?);
/// let run = sample(&p, options, |_| {}).await?;
/// assert_eq!(run.samples.len(), 8);
/// // The weights total 1 over every text, so the estimate is log 1.
/// assert!(run.log_ml.abs() < 1e-9);
/// assert_eq!(run, sample(&p, options, |_| {}).await?); // same seed, same particles
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub async fn sample<P: Potential>(
    potential: &P,
    options: SamplerOptions,
    mut on_step: impl FnMut(usize) + Send,
) -> Result<Run<P::Token>> {
    options.validate()?;
    let n = options.particles;
    let mut particles: Vec<Particle<P::Token>> = (0..n)
        .map(|i| Particle {
            sample: Sample {
                tokens: Vec::new(),
                log_weight: 0.0,
                finished: false,
            },
            rng: particle_rng(options.seed, i as u64),
            live: true,
        })
        .collect();
    // Resampling draws from a stream of its own, after the particles' ones.
    let mut resampler = particle_rng(options.seed, n as u64);
    let (mut calls, mut resamples) = (0, 0);
    loop {
        let mut live: Vec<&mut Particle<P::Token>> =
            particles.iter_mut().filter(|p| p.live).collect();
        if live.is_empty() {
            break;
        }
        let size = live.len().div_ceil(options.groups);
        let groups = live
            .chunks_mut(size)
            .map(|group| step_group(potential, group, options.max_tokens));
        calls += try_join_all(groups).await?.into_iter().sum::<usize>();
        on_step(particles.iter().filter(|p| p.live).count());
        if resample_if_degenerate(&mut particles, &options, &mut resampler) {
            resamples += 1;
        }
    }
    let log_weights: Vec<f64> = particles.iter().map(|p| p.sample.log_weight).collect();
    Ok(Run {
        log_ml: log_mean_exp(&log_weights),
        samples: particles.into_iter().map(|p| p.sample).collect(),
        calls,
        resamples,
    })
}

/// Resamples the population when its effective sample size is under the
/// threshold (and some particle still has weight): each particle takes the
/// text, weight and state of its ancestor, keeps its own random stream
/// (copies of one ancestor must not draw the same tokens), and every
/// weight becomes the mean weight. Returns whether it resampled.
fn resample_if_degenerate<T: Clone>(
    particles: &mut [Particle<T>],
    options: &SamplerOptions,
    rng: &mut ChaCha8Rng,
) -> bool {
    let log_weights: Vec<f64> = particles.iter().map(|p| p.sample.log_weight).collect();
    let ess = effective_sample_size(&log_weights);
    if ess == 0.0 || ess >= options.ess_threshold * particles.len() as f64 {
        return false;
    }
    let mean = log_mean_exp(&log_weights);
    let chosen: Vec<(Sample<T>, bool)> = ancestors(&log_weights, options.resampling, rng)
        .into_iter()
        .map(|a| (particles[a].sample.clone(), particles[a].live))
        .collect();
    for (particle, (sample, live)) in particles.iter_mut().zip(chosen) {
        particle.sample = Sample {
            log_weight: mean,
            ..sample
        };
        particle.live = live;
    }
    true
}

/// `log(mean(exp(w)))`, stable, `-inf` for an empty or all-`-inf` slice.
fn log_mean_exp(log_weights: &[f64]) -> f64 {
    let total = potential_core::logsumexp(log_weights);
    total - (log_weights.len() as f64).ln()
}

/// One step of a group of live particles: their next-token weights, as
/// concurrent calls (this is where autobatching gathers them), then a draw
/// for each. Returns the number of calls.
async fn step_group<P: Potential>(
    potential: &P,
    group: &mut [&mut Particle<P::Token>],
    max_tokens: usize,
) -> Result<usize> {
    let answers = try_join_all(group.iter().map(|p| potential.logw_next(&p.sample.tokens))).await?;
    let calls = answers.len();
    // Drawing is the sampler's own work, a pass of `exp` over the whole
    // vocabulary per particle, and independent between particles: it runs
    // on every core, in every mode alike.
    let mut stepping: Vec<_> = group.iter_mut().zip(answers).collect();
    stepping
        .par_iter_mut()
        .for_each_init(Vec::new, |scratch, (particle, weights)| {
            step(particle, weights, max_tokens, scratch)
        });
    Ok(calls)
}

/// The random stream of particle `index`: ChaCha's stream id keeps the
/// particles' streams independent under one seed.
fn particle_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Extends one particle by a symbol drawn from `weights`; `scratch` is a
/// reused buffer for the linear weights.
fn step<T: TokenType>(
    particle: &mut Particle<T>,
    weights: &LogWeights<T>,
    max_tokens: usize,
    scratch: &mut Vec<f64>,
) {
    // One pass of `exp` gives both the total and the table to draw from:
    // with a vocabulary of thousands of tokens this pass is most of the
    // sampler's own cost.
    let values = weights.as_slice();
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        particle.sample.log_weight = f64::NEG_INFINITY;
        particle.live = false;
        return;
    }
    scratch.clear();
    scratch.extend(values.iter().map(|w| {
        if *w == f64::NEG_INFINITY {
            0.0
        } else {
            (w - max).exp()
        }
    }));
    let sum: f64 = scratch.iter().sum();
    let total = max + sum.ln();
    particle.sample.log_weight += total;
    // At the token limit only EOS may follow; otherwise draw from the normalized weights.
    let at_limit = particle.sample.tokens.len() >= max_tokens;
    let index = if at_limit {
        weights.vocab().eos_index()
    } else {
        draw(scratch, sum, &mut particle.rng)
    };
    match weights.vocab().get(index) {
        Some(token) => particle.sample.tokens.push(token.clone()),
        None => {
            particle.live = false;
            particle.sample.finished = weights.eos() > f64::NEG_INFINITY;
            if at_limit {
                // The EOS was forced, so the weight is that of ending here.
                particle.sample.log_weight += weights.eos() - total;
            }
        }
    }
}

/// Inverse-CDF draw of an index from linear weights that sum to `sum`.
fn draw(linear: &[f64], sum: f64, rng: &mut ChaCha8Rng) -> usize {
    let u = resample::uniform(rng) * sum;
    let mut cumulative = 0.0;
    let mut last = linear.len() - 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resampling;
    use potential_core::{PotentialError, Vocab};

    /// Allows only "ab" repeated, ending after a `b`.
    struct AbStar(Vocab<char>);

    impl Potential for AbStar {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0
        }
        async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> {
            let ok = c.len().is_multiple_of(2) && self.prefix(c).await? == 0.0;
            Ok(if ok { 0.0 } else { f64::NEG_INFINITY })
        }
        async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> {
            let ok = c
                .iter()
                .enumerate()
                .all(|(i, t)| *t == if i % 2 == 0 { 'a' } else { 'b' });
            Ok(if ok { 0.0 } else { f64::NEG_INFINITY })
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn samples_satisfy_the_constraint_and_repeat_with_the_seed() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b', 'c']).unwrap());
            let options = SamplerOptions {
                groups: 3,
                ..SamplerOptions::new(16, 9, 1)
            };
            let run = sample(&p, options, |_| {}).await.unwrap();
            assert_eq!(run.samples.len(), 16);
            for s in run
                .samples
                .iter()
                .filter(|s| s.log_weight > f64::NEG_INFINITY)
            {
                assert!(s.finished, "{s:?}");
                assert_eq!(p.complete(&s.tokens).await.unwrap(), 0.0, "{s:?}");
                assert!(s.tokens.len() <= 9);
            }
            assert!(run.calls >= 16);
            assert_eq!(run, sample(&p, options, |_| {}).await.unwrap());
            let other = sample(&p, SamplerOptions { seed: 2, ..options }, |_| {})
                .await
                .unwrap();
            assert_ne!(run.samples, other.samples);
            // Stepping in groups changes when the calls are made, not the particles.
            for groups in [1, 2, 16, 40] {
                let grouped = sample(&p, SamplerOptions { groups, ..options }, |_| {});
                assert_eq!(grouped.await.unwrap(), run);
            }
        });
    }

    #[test]
    fn a_particle_at_the_limit_ends_with_eos_or_dies() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b']).unwrap());
            let options = SamplerOptions {
                ess_threshold: 0.0,
                ..SamplerOptions::new(4, 1, 3)
            };
            let run = sample(&p, options, |_| {}).await.unwrap();
            // After "a" only "b" may follow, and the limit forces EOS: zero weight.
            for s in run.samples.iter().filter(|s| s.tokens == ['a']) {
                assert!(!s.finished);
                assert_eq!(s.log_weight, f64::NEG_INFINITY);
            }
        });
    }

    /// Under `AbStar` with at most 9 tokens, the texts of weight one are
    /// (ab)^k for k = 0..=4: the total weight is 5. Each choice between
    /// `a` and EOS doubles a particle's weight, so the weights spread apart
    /// and resampling has work to do.
    #[test]
    fn the_marginal_likelihood_estimate_is_unbiased_with_and_without_resampling() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b']).unwrap());
            for (threshold, resampling) in [
                (0.0, Resampling::Systematic),
                (0.5, Resampling::Systematic),
                (1.0, Resampling::Multinomial),
            ] {
                let (mut sum, mut resamples, runs) = (0.0, 0, 300);
                for seed in 0..runs {
                    let options = SamplerOptions {
                        ess_threshold: threshold,
                        resampling,
                        ..SamplerOptions::new(8, 9, seed)
                    };
                    let run = sample(&p, options, |_| {}).await.unwrap();
                    sum += run.log_ml.exp();
                    resamples += run.resamples;
                }
                let mean = sum / runs as f64;
                assert!(
                    (mean - 5.0).abs() < 0.25,
                    "{threshold} {resampling:?}: {mean}"
                );
                assert_eq!(resamples == 0, threshold == 0.0, "{threshold}: {resamples}");
            }
        });
    }

    #[test]
    fn resampling_copies_ancestors_and_equalizes_weights() {
        let rng = |i| particle_rng(9, i);
        let particle = |tokens: &str, log_weight: f64, live: bool, i| Particle {
            sample: Sample {
                tokens: tokens.chars().collect::<Vec<char>>(),
                log_weight,
                finished: !live,
            },
            rng: rng(i),
            live,
        };
        let mut particles = vec![
            particle("ab", 0.0, false, 0),
            particle("a", f64::NEG_INFINITY, true, 1),
            particle("aba", f64::NEG_INFINITY, true, 2),
        ];
        let options = SamplerOptions::new(3, 9, 9);
        assert!(resample_if_degenerate(
            &mut particles,
            &options,
            &mut rng(3)
        ));
        let mean = (1.0f64 / 3.0).ln();
        for p in &particles {
            assert_eq!(p.sample.tokens, ['a', 'b']);
            assert!((p.sample.log_weight - mean).abs() < 1e-12);
            assert!(!p.live && p.sample.finished);
        }
        // Each particle kept its own stream.
        assert_ne!(particles[0].rng, particles[1].rng);
        // Equal weights are not resampled again.
        assert!(!resample_if_degenerate(
            &mut particles,
            &options,
            &mut rng(3)
        ));
    }

    #[test]
    fn invalid_options_are_errors() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b']).unwrap());
            let good = SamplerOptions::new(4, 3, 1);
            for bad in [
                SamplerOptions {
                    particles: 0,
                    ..good
                },
                SamplerOptions { groups: 0, ..good },
                SamplerOptions {
                    ess_threshold: 1.5,
                    ..good
                },
                SamplerOptions {
                    ess_threshold: f64::NAN,
                    ..good
                },
            ] {
                let err = sample(&p, bad, |_| {}).await.unwrap_err();
                assert!(
                    matches!(err, PotentialError::InvalidInput(_)),
                    "{bad:?}: {err}"
                );
            }
        });
    }
}
