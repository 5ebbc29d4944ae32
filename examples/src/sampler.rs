//! A sampler that drives many particles concurrently through a potential.
//!
//! Each step, every live particle asks the potential for its next-token
//! log weights (all particles at once, as concurrent calls: this is where
//! autobatching gathers them into batches), samples a token or EOS from
//! them, and multiplies its importance weight by their total (the
//! normalizing constant of the locally optimal proposal, as in
//! genlm-control's direct token sampler).
//!
//! Each particle has its own seeded random stream, so a run depends only on
//! the seed and on the potential's answers, never on the order in which
//! the calls complete: plain, autobatched and multiprocess runs of the same
//! potential give the same particles.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::try_join_all;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;

use potential_core::{LogWeights, Potential, PotentialError, Result, TokenType};

/// What to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerOptions {
    /// The number of particles.
    pub particles: usize,
    /// The most tokens a particle may take (EOS not counted).
    pub max_tokens: usize,
    /// The seed of the particles' random streams.
    pub seed: u64,
    /// The particles are stepped in this many groups, each at its own
    /// pace (at least 1): while one group draws its next tokens, the
    /// potential can already answer another, so the sampler's own work and
    /// the potential's overlap. One group steps all particles in lockstep.
    pub groups: usize,
}

/// One particle at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<T> {
    /// The tokens it took.
    pub tokens: Vec<T>,
    /// Its log importance weight.
    pub log_weight: f64,
    /// Whether it ended with EOS (rather than running out of tokens or weight).
    pub finished: bool,
}

/// The particles of a run and the number of `logw_next` calls it made.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// The particles, in order.
    pub samples: Vec<Sample<T>>,
    /// The `logw_next` calls made.
    pub calls: usize,
}

struct Particle<T> {
    sample: Sample<T>,
    rng: ChaCha8Rng,
    live: bool,
}

/// Runs the sampler; `on_step` is called after each step with the number
/// of live particles (for a progress bar).
///
/// ```
/// use potential_core::{Potential, PotentialError, Vocab};
/// use potential_examples::sampler::{sample, SamplerOptions};
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
/// let options = SamplerOptions { particles: 8, max_tokens: 20, seed: 7, groups: 2 };
/// let p = Uniform(Vocab::new(['a', 'b'])?);
/// let run = sample(&p, options, |_| {}).await?;
/// assert_eq!(run.samples.len(), 8);
/// assert_eq!(run, sample(&p, options, |_| {}).await?); // same seed, same particles
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub async fn sample<P: Potential>(
    potential: &P,
    options: SamplerOptions,
    on_step: impl FnMut(usize) + Send,
) -> Result<Run<P::Token>> {
    let mut particles: Vec<Particle<P::Token>> = (0..options.particles)
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
    let size = options.particles.div_ceil(options.groups.max(1)).max(1);
    // The groups run in one task (a `try_join_all`, not spawned tasks), so
    // these are never contended; they only keep the future `Send`.
    let on_step = Mutex::new(on_step);
    let live = AtomicUsize::new(options.particles);
    let groups = particles.chunks_mut(size).map(|group| async {
        let mut calls = 0;
        for _ in 0..=options.max_tokens {
            let before = group.iter().filter(|p| p.live).count();
            if before == 0 {
                break;
            }
            calls += step_group(potential, group, options.max_tokens).await?;
            let ended = before - group.iter().filter(|p| p.live).count();
            let now = live.fetch_sub(ended, Ordering::Relaxed) - ended;
            (on_step.lock().expect("the on_step callback panicked"))(now);
        }
        Ok::<_, PotentialError>(calls)
    });
    let calls = try_join_all(groups).await?.into_iter().sum();
    Ok(Run {
        samples: particles.into_iter().map(|p| p.sample).collect(),
        calls,
    })
}

/// One step of the live particles of a group: their next-token weights, as
/// concurrent calls (this is where autobatching gathers them), then a draw
/// for each. Returns the number of calls.
async fn step_group<P: Potential>(
    potential: &P,
    group: &mut [Particle<P::Token>],
    max_tokens: usize,
) -> Result<usize> {
    let answers = try_join_all(
        group
            .iter()
            .filter(|p| p.live)
            .map(|p| potential.logw_next(&p.sample.tokens)),
    )
    .await?;
    let calls = answers.len();
    // Drawing is the sampler's own work, a pass of `exp` over the whole
    // vocabulary per particle, and independent between particles: it runs
    // on every core, in every mode alike.
    let mut stepping: Vec<_> = group.iter_mut().filter(|p| p.live).zip(answers).collect();
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
    // 53 random bits make a uniform float in [0, 1).
    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * sum;
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
                particles: 16,
                max_tokens: 9,
                seed: 1,
                groups: 3,
            };
            let run = sample(&p, options, |_| {}).await.unwrap();
            assert_eq!(run.samples.len(), 16);
            for s in &run.samples {
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
                particles: 4,
                max_tokens: 1,
                seed: 3,
                groups: 1,
            };
            let run = sample(&p, options, |_| {}).await.unwrap();
            // After "a" only "b" may follow, and the limit forces EOS: zero weight.
            for s in run.samples.iter().filter(|s| s.tokens == ['a']) {
                assert!(!s.finished);
                assert_eq!(s.log_weight, f64::NEG_INFINITY);
            }
        });
    }
}
