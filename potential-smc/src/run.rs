//! What a run gives back: the particles, the estimates, and the progress
//! a callback sees after each step.

use crate::Calls;

/// One particle.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<T> {
    /// The tokens it took.
    pub tokens: Vec<T>,
    /// Its log importance weight.
    pub log_weight: f64,
    /// Whether it ended with EOS with a positive weight (rather than dying
    /// or, during a run, still growing).
    pub finished: bool,
}

/// The particles of a run and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// The particles, in order. At the end of a run each has either
    /// finished or died (weight zero).
    pub samples: Vec<Sample<T>>,
    /// The estimate of the log marginal likelihood (the log of the mean
    /// weight): an unbiased estimate, once exponentiated, of the total
    /// weight of the texts the target allows (of at most `max_tokens`
    /// tokens); `-inf` when every particle died.
    pub log_ml: f64,
    /// The effective sample size after each step, before any resampling.
    pub ess: Vec<f64>,
    /// How many times the population was resampled.
    pub resamples: usize,
    /// The potential calls made.
    pub calls: Calls,
    /// The symbols drawn (tokens and EOS, over every particle and step).
    pub draws: usize,
}

impl<T> Run<T> {
    /// The particles' normalized posterior probabilities (the weights over
    /// their sum), in order; all zero when every particle died.
    pub fn posterior(&self) -> Vec<f64> {
        let w: Vec<f64> = self.samples.iter().map(|s| s.log_weight).collect();
        let max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return vec![0.0; w.len()];
        }
        let linear: Vec<f64> = w.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = linear.iter().sum();
        linear.into_iter().map(|x| x / sum).collect()
    }

    /// Constraint checks per drawn symbol (AWRS's `prefix`/`complete`
    /// calls, see [`Calls::checks`], over the tokens and EOS drawn: the
    /// figure `awrs_checks_per_token`, where the full-vocabulary proposal
    /// would need the vocabulary's size); 0 when nothing was drawn.
    pub fn checks_per_draw(&self) -> f64 {
        if self.draws == 0 {
            0.0
        } else {
            self.calls.checks as f64 / self.draws as f64
        }
    }
}

/// Where a run stands after a step: what the callback of
/// [`Smc::run`](crate::Smc::run) sees, for a progress bar or for
/// streaming the particles' texts.
#[derive(Debug)]
pub struct Progress<'a, T> {
    /// The step just taken, from 1.
    pub step: usize,
    /// The particles still growing.
    pub live: usize,
    /// The effective sample size after the step, before any resampling.
    pub ess: f64,
    /// Whether the population was resampled after the step.
    pub resampled: bool,
    /// Every particle as it stands (after any resampling).
    pub particles: &'a [Sample<T>],
}
