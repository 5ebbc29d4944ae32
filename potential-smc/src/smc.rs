//! The sequential Monte Carlo loop: extending, reweighting, resampling.

use futures::future::try_join_all;

use potential_core::{
    Method, PotentialError, Result, Symbol, check_weight, logsumexp, zero_weight,
};

use crate::{
    Calls, Critic, Extension, NoCritic, Progress, Proposal, Run, Sample, SamplerOptions, Slot,
    Stream, ancestors, effective_sample_size,
};

/// A sampler: a proposal, an optional critic, and the options.
///
/// Each step, every live particle is extended by one symbol from the
/// proposal (the live particles in [`SamplerOptions::groups`] concurrent
/// groups, each group's potential calls at once: this is where
/// autobatching gathers them into batches), its weight multiplied by the
/// step's importance weight, then by the critic's prefix ratio. After the
/// step, when the effective sample size of the population falls under
/// [`SamplerOptions::ess_threshold`] times the number of particles, the
/// population is resampled ([`Resampling`](crate::Resampling)): each
/// particle takes the text of an ancestor drawn in proportion to the
/// weights, and every weight becomes their mean, so that the estimate of
/// the marginal likelihood ([`Run::log_ml`]) stays unbiased. A threshold
/// of 0 never resamples: the sampler is then the importance sampler. EOS
/// ends a particle; an ended particle still takes part in resampling. A
/// particle at [`SamplerOptions::max_tokens`] tokens is ended with EOS,
/// weighted by the target's weight of ending there.
///
/// Each particle draws from its own seeded [`Stream`] and resampling from
/// one more, so a run depends only on the seed and on the potentials'
/// answers, never on the order in which the calls complete: plain,
/// autobatched and multiprocess runs of the same potentials give the same
/// particles.
#[derive(Debug)]
pub struct Smc<'a, Q, C = NoCritic> {
    proposal: &'a Q,
    critic: &'a C,
    options: SamplerOptions,
}

impl<'a, Q: Proposal> Smc<'a, Q> {
    /// A sampler that extends particles with `proposal`, without a critic.
    pub fn new(proposal: &'a Q, options: SamplerOptions) -> Self {
        Smc {
            proposal,
            critic: &NoCritic,
            options,
        }
    }
}

impl<'a, Q: Proposal, C: Critic<Q::Token>> Smc<'a, Q, C> {
    /// The same sampler with `critic` reweighting the particles after each
    /// step (see [`Critic`]).
    pub fn with_critic<D: Critic<Q::Token>>(self, critic: &'a D) -> Smc<'a, Q, D> {
        Smc {
            proposal: self.proposal,
            critic,
            options: self.options,
        }
    }

    /// Runs the sampler; `on_step` sees the population after each step
    /// (for a progress bar, or to stream the texts). Invalid options are
    /// [`PotentialError::InvalidInput`]s (see [`SamplerOptions::validate`]);
    /// a target that gives the empty context zero weight is a
    /// [`PotentialError::ZeroWeightContext`]; the potentials' errors are
    /// passed on.
    pub async fn run(
        self,
        mut on_step: impl FnMut(&Progress<'_, Q::Token>) + Send,
    ) -> Result<Run<Q::Token>> {
        let options = self.options;
        options.validate()?;
        let n = options.particles;
        let start = check_weight(Method::Prefix, self.proposal.start_weight().await?)?;
        if start == f64::NEG_INFINITY {
            return Err(zero_weight::<Q::Token>(&[]));
        }
        let mut population = Population {
            samples: vec![
                Sample {
                    tokens: Vec::new(),
                    log_weight: start,
                    finished: false,
                };
                n
            ],
            streams: (0..n)
                .map(|i| Stream::new(options.seed, i as u64))
                .collect(),
            live: vec![true; n],
            twists: vec![0.0; n],
        };
        // Resampling draws from a stream of its own, after the particles' ones.
        let mut resampler = Stream::new(options.seed, n as u64);
        let (mut calls, mut draws, mut resamples) = (Calls::default(), 0, 0);
        let mut ess_history = Vec::new();
        while population.live.contains(&true) {
            let (extensions, step_calls) = self.extend(&mut population).await?;
            calls += step_calls;
            draws += extensions.len();
            let extended = population.apply(extensions, options.max_tokens)?;
            calls.critic += population.criticize(self.critic, &extended).await?;
            let log_weights = population.log_weights();
            let ess = effective_sample_size(&log_weights);
            ess_history.push(ess);
            let resampled = ess > 0.0 && ess < options.ess_threshold * n as f64;
            if resampled {
                population.resample(&log_weights, &options, &mut resampler)?;
                resamples += 1;
            }
            on_step(&Progress {
                step: ess_history.len(),
                live: population.live.iter().filter(|l| **l).count(),
                ess,
                resampled,
                particles: &population.samples,
            });
        }
        Ok(Run {
            log_ml: log_mean_exp(&population.log_weights()),
            samples: population.samples,
            ess: ess_history,
            resamples,
            calls,
            draws,
        })
    }

    /// One extension of every live particle, in concurrent groups; the
    /// extensions in the order of the live particles.
    async fn extend(
        &self,
        population: &mut Population<Q::Token>,
    ) -> Result<(Vec<Extension<Q::Token>>, Calls)> {
        let max_tokens = self.options.max_tokens;
        let mut slots: Vec<Slot<'_, Q::Token>> = population
            .samples
            .iter()
            .zip(population.streams.iter_mut())
            .zip(&population.live)
            .filter(|(_, live)| **live)
            .map(|((sample, stream), _)| Slot {
                tokens: &sample.tokens,
                stream,
                eos_only: sample.tokens.len() >= max_tokens,
            })
            .collect();
        let size = slots.len().div_ceil(self.options.groups);
        let groups = slots.chunks_mut(size).map(|group| async {
            let expected = group.len();
            let (extensions, calls) = self.proposal.extend(group).await?;
            if extensions.len() != expected {
                return Err(PotentialError::InvalidInput(format!(
                    "the proposal extended {} particles of a group of {expected}",
                    extensions.len()
                )));
            }
            Ok((extensions, calls))
        });
        let mut all = Vec::new();
        let mut calls = Calls::default();
        for (extensions, group_calls) in try_join_all(groups).await? {
            all.extend(extensions);
            calls += group_calls;
        }
        Ok((all, calls))
    }
}

/// Runs sequential Monte Carlo with `proposal` and no critic: shorthand for
/// [`Smc::new`]`(proposal, options).run(on_step)`.
///
/// ```
/// use potential_core::{Potential, PotentialError, Vocab};
/// use potential_smc::{LocallyOptimal, SamplerOptions, smc};
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
/// let proposal = LocallyOptimal::new(&p);
/// let run = smc(&proposal, options, |_| {}).await?;
/// assert_eq!(run.samples.len(), 8);
/// // The weights total 1 over every text, so the estimate is log 1.
/// assert!(run.log_ml.abs() < 1e-9);
/// assert_eq!(run, smc(&proposal, options, |_| {}).await?); // same seed, same particles
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub async fn smc<Q: Proposal>(
    proposal: &Q,
    options: SamplerOptions,
    on_step: impl FnMut(&Progress<'_, Q::Token>) + Send,
) -> Result<Run<Q::Token>> {
    Smc::new(proposal, options).run(on_step).await
}

/// Runs importance sampling with `proposal` and no critic: sequential Monte
/// Carlo that never resamples (`options.ess_threshold` is taken as 0).
pub async fn importance<Q: Proposal>(
    proposal: &Q,
    options: SamplerOptions,
    on_step: impl FnMut(&Progress<'_, Q::Token>) + Send,
) -> Result<Run<Q::Token>> {
    let options = SamplerOptions {
        ess_threshold: 0.0,
        ..options
    };
    Smc::new(proposal, options).run(on_step).await
}

/// The particles, as columns: the samples stay one slice, which the
/// callback sees.
struct Population<T> {
    samples: Vec<Sample<T>>,
    streams: Vec<Stream>,
    live: Vec<bool>,
    /// The critic's factor in each particle's weight (its prefix weight of
    /// the particle's context), replaced at the next step.
    twists: Vec<f64>,
}

impl<T: Clone> Population<T> {
    fn log_weights(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.log_weight).collect()
    }

    /// Applies the extensions to the live particles, in order; returns the
    /// particles that were extended and still have weight (the ones the
    /// critic weighs). A token past `max_tokens` is an error: a proposal
    /// that ignored [`Slot::eos_only`] would otherwise never let the run end.
    fn apply(&mut self, extensions: Vec<Extension<T>>, max_tokens: usize) -> Result<Vec<usize>> {
        let live: Vec<usize> = (0..self.live.len()).filter(|&i| self.live[i]).collect();
        let mut extended = Vec::with_capacity(live.len());
        for (i, extension) in live.into_iter().zip(extensions) {
            let weight = extension.log_weight;
            if weight.is_nan() || weight == f64::INFINITY {
                return Err(PotentialError::InvalidInput(format!(
                    "the proposal weighted a step by {weight}, which is not a log weight"
                )));
            }
            let sample = &mut self.samples[i];
            // The critic's factor is replaced after the step.
            sample.log_weight += weight - std::mem::take(&mut self.twists[i]);
            if weight == f64::NEG_INFINITY {
                sample.log_weight = f64::NEG_INFINITY;
                self.live[i] = false;
                continue;
            }
            match extension.next {
                Symbol::Token(_) if sample.tokens.len() >= max_tokens => {
                    return Err(PotentialError::InvalidInput(format!(
                        "the proposal gave a token after {max_tokens} tokens, where only EOS may follow"
                    )));
                }
                Symbol::Token(token) => sample.tokens.push(token),
                Symbol::Eos => {
                    self.live[i] = false;
                    sample.finished = true;
                }
            }
            extended.push(i);
        }
        Ok(extended)
    }

    /// Weighs the `extended` particles by the critic (all at once, so that
    /// the calls batch): a finished particle by the critic's `complete`,
    /// a live one by its `prefix`, kept as its twist. Returns the calls.
    async fn criticize<C: Critic<T>>(&mut self, critic: &C, extended: &[usize]) -> Result<usize> {
        let samples = &self.samples;
        let weights = try_join_all(
            extended
                .iter()
                .map(|&i| critic.weigh(&samples[i].tokens, samples[i].finished)),
        )
        .await?;
        let mut calls = 0;
        for (&i, weight) in extended.iter().zip(weights) {
            let Some(weight) = weight else { continue };
            calls += 1;
            let sample = &mut self.samples[i];
            sample.log_weight += weight;
            if weight == f64::NEG_INFINITY {
                sample.finished = false;
                self.live[i] = false;
            } else if self.live[i] {
                self.twists[i] = weight;
            }
        }
        Ok(calls)
    }

    /// Resamples the population: each particle takes the text, weight,
    /// state and critic factor of its ancestor, keeps its own random
    /// stream (copies of one ancestor must not draw the same tokens), and
    /// every weight becomes the mean weight.
    fn resample(
        &mut self,
        log_weights: &[f64],
        options: &SamplerOptions,
        stream: &mut Stream,
    ) -> Result<()> {
        let mean = log_mean_exp(log_weights);
        let chosen = ancestors(log_weights, options.resampling, stream)?;
        self.samples = chosen
            .iter()
            .map(|&a| Sample {
                log_weight: mean,
                ..self.samples[a].clone()
            })
            .collect();
        self.live = chosen.iter().map(|&a| self.live[a]).collect();
        self.twists = chosen.iter().map(|&a| self.twists[a]).collect();
        Ok(())
    }
}

/// `log(mean(exp(w)))`, stable, `-inf` for an empty or all-`-inf` slice.
fn log_mean_exp(log_weights: &[f64]) -> f64 {
    logsumexp(log_weights) - (log_weights.len() as f64).ln()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocallyOptimal, Resampling};
    use potential_core::checks::block_on;
    use potential_core::{LogWeights, Potential, PotentialError, Vocab};

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

    #[test]
    fn samples_satisfy_the_constraint_and_repeat_with_the_seed() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b', 'c']).unwrap());
            let options = SamplerOptions {
                groups: 3,
                ..SamplerOptions::new(16, 9, 1)
            };
            let run = smc(&LocallyOptimal::new(&p), options, |_| {})
                .await
                .unwrap();
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
            assert!(run.calls.logw_next >= 16);
            assert_eq!(
                run,
                smc(&LocallyOptimal::new(&p), options, |_| {})
                    .await
                    .unwrap()
            );
            let other = smc(
                &LocallyOptimal::new(&p),
                SamplerOptions { seed: 2, ..options },
                |_| {},
            )
            .await
            .unwrap();
            assert_ne!(run.samples, other.samples);
            // Stepping in groups changes when the calls are made, not the particles.
            for groups in [1, 2, 16, 40] {
                let grouped = SamplerOptions { groups, ..options };
                let proposal = LocallyOptimal::new(&p);
                assert_eq!(smc(&proposal, grouped, |_| {}).await.unwrap(), run);
            }
        });
    }

    /// [`AbStar`] whose `logw_next` is a mask (the default's values, as bits).
    struct AbStarMask(AbStar);

    impl Potential for AbStarMask {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            self.0.vocab()
        }
        async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> {
            self.0.complete(c).await
        }
        async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> {
            self.0.prefix(c).await
        }
        async fn logw_next(&self, c: &[char]) -> Result<LogWeights<char>, PotentialError> {
            let values = self.0.logw_next(c).await?;
            let mask = potential_core::Mask::from_values(values.as_slice()).expect("0 and -inf");
            LogWeights::from_mask(self.vocab().clone(), mask)
        }
    }

    /// Weights that come as a mask are drawn from as bits, with the very
    /// draws the same weights as values give.
    #[test]
    fn a_mask_draws_what_its_values_draw() {
        block_on(async {
            let vocab = Vocab::new(['a', 'b', 'c']).unwrap();
            let dense = AbStar(vocab.clone());
            let mask = AbStarMask(AbStar(vocab));
            assert!(mask.logw_next(&[]).await.unwrap().as_mask().is_some());
            for seed in 0..8 {
                let options = SamplerOptions {
                    ess_threshold: 0.0,
                    ..SamplerOptions::new(16, 6, seed)
                };
                let want = smc(&LocallyOptimal::new(&dense), options, |_| {})
                    .await
                    .unwrap();
                let got = smc(&LocallyOptimal::new(&mask), options, |_| {})
                    .await
                    .unwrap();
                assert_eq!(got, want, "seed {seed}");
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
            let run = smc(&LocallyOptimal::new(&p), options, |_| {})
                .await
                .unwrap();
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
                    let run = smc(&LocallyOptimal::new(&p), options, |_| {})
                        .await
                        .unwrap();
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
        let sample = |tokens: &str, log_weight: f64, finished| Sample {
            tokens: tokens.chars().collect::<Vec<char>>(),
            log_weight,
            finished,
        };
        let mut population = Population {
            samples: vec![
                sample("ab", 0.0, true),
                sample("a", f64::NEG_INFINITY, false),
                sample("aba", f64::NEG_INFINITY, false),
            ],
            streams: (0..3).map(|i| Stream::new(9, i)).collect(),
            live: vec![false, true, true],
            twists: vec![0.0, -1.0, -2.0],
        };
        let options = SamplerOptions::new(3, 9, 9);
        let log_weights = population.log_weights();
        population
            .resample(&log_weights, &options, &mut Stream::new(9, 3))
            .unwrap();
        let mean = (1.0f64 / 3.0).ln();
        for (i, s) in population.samples.iter().enumerate() {
            assert_eq!(s.tokens, ['a', 'b']);
            assert!((s.log_weight - mean).abs() < 1e-12);
            assert!(!population.live[i] && s.finished && population.twists[i] == 0.0);
        }
        // Each particle kept its own stream.
        assert_ne!(population.streams[0], population.streams[1]);
        // Equal weights are not degenerate: their ESS is the population's size.
        assert!((effective_sample_size(&population.log_weights()) - 3.0).abs() < 1e-12);
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
                let err = smc(&LocallyOptimal::new(&p), bad, |_| {})
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, PotentialError::InvalidInput(_)),
                    "{bad:?}: {err}"
                );
            }
        });
    }

    #[test]
    fn the_callback_sees_every_step_and_the_run_keeps_the_ess_of_each() {
        block_on(async {
            let p = AbStar(Vocab::new(['a', 'b', 'c']).unwrap());
            let options = SamplerOptions::new(16, 9, 4);
            let mut seen = Vec::new();
            let run = smc(&LocallyOptimal::new(&p), options, |progress| {
                seen.push((
                    progress.step,
                    progress.live,
                    progress.ess,
                    progress.resampled,
                    progress.particles.to_vec(),
                ))
            })
            .await
            .unwrap();
            assert_eq!(seen.len(), run.ess.len());
            for (k, (step, live, ess, _, particles)) in seen.iter().enumerate() {
                assert_eq!(*step, k + 1);
                assert_eq!(*ess, run.ess[k]);
                assert!((0.0..=16.0 + 1e-9).contains(ess), "{ess}");
                assert_eq!(particles.len(), 16);
                // Only the last step leaves no particle growing.
                assert_eq!(*live == 0, k + 1 == seen.len(), "{k}: {live}");
            }
            let resampled = seen.iter().filter(|s| s.3).count();
            assert_eq!(resampled, run.resamples);
            assert_eq!(seen.last().unwrap().4, run.samples);
            assert_eq!(run.draws, run.calls.logw_next);
        });
    }

    /// Accepts the byte strings that are prefixes of "café", complete
    /// when equal to it.
    struct Cafe(Vocab<Vec<u8>>);

    impl Potential for Cafe {
        type Token = Vec<u8>;
        fn vocab(&self) -> &Vocab<Vec<u8>> {
            &self.0
        }
        async fn complete(&self, c: &[Vec<u8>]) -> Result<f64> {
            let ok = c.concat() == "café".as_bytes();
            Ok(if ok { 0.0 } else { f64::NEG_INFINITY })
        }
        async fn prefix(&self, c: &[Vec<u8>]) -> Result<f64> {
            let ok = "café".as_bytes().starts_with(&c.concat());
            Ok(if ok { 0.0 } else { f64::NEG_INFINITY })
        }
    }

    #[test]
    fn byte_string_particles_read_as_text_while_growing_and_at_the_end() {
        block_on(async {
            let tokens = ["ca", "caf", "f", "x"].map(|t| t.as_bytes().to_vec());
            let vocab = Vocab::new(tokens.into_iter().chain([vec![0xC3], vec![0xA9]])).unwrap();
            let p = Cafe(vocab);
            let mut texts = std::collections::HashSet::new();
            let run = smc(
                &LocallyOptimal::new(&p),
                SamplerOptions::new(8, 6, 3),
                |progress| texts.extend(progress.particles.iter().map(|s| s.text())),
            )
            .await
            .unwrap();
            // Every particle passes through "caf" + the first byte of "é".
            assert!(texts.contains("caf\u{FFFD}"), "{texts:?}");
            let posterior = run.text_posterior();
            assert_eq!(posterior.len(), 1, "{posterior:?}");
            assert_eq!(posterior[0].text, "café");
            assert_eq!(posterior[0].particles, 8);
            assert!((posterior[0].probability - 1.0).abs() < 1e-12);
            // Two tokenizations of one text: "ca" "f" and "caf", both of weight 1.
            assert!((run.log_ml - 2f64.ln()).abs() < 1e-9, "{}", run.log_ml);
        });
    }

    /// Zero weight for everything, the empty context included.
    struct Nothing(Vocab<char>);

    impl Potential for Nothing {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0
        }
        async fn complete(&self, _: &[char]) -> Result<f64> {
            Ok(f64::NEG_INFINITY)
        }
        async fn prefix(&self, _: &[char]) -> Result<f64> {
            Ok(f64::NEG_INFINITY)
        }
    }

    #[test]
    fn a_target_without_weight_is_an_error_not_a_run() {
        block_on(async {
            let p = Nothing(Vocab::new(['a']).unwrap());
            let err = smc(
                &LocallyOptimal::new(&p),
                SamplerOptions::new(2, 3, 1),
                |_| {},
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, PotentialError::ZeroWeightContext { .. }),
                "{err}"
            );
        });
    }
}
