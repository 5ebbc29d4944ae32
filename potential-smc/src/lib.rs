//! Sequential Monte Carlo: many particles driven concurrently through a
//! potential, as genlm-control runs it.
//!
//! Each step, every live particle asks the potential for its next-token
//! log weights (all particles at once, as concurrent calls: this is where
//! autobatching gathers them into batches), draws a token or EOS from them
//! (the locally optimal proposal), and multiplies its importance weight by
//! their total (the proposal's normalizing constant). After the step, when
//! the effective sample size of the population falls under
//! [`SamplerOptions::ess_threshold`] times the number of particles, the
//! population is resampled ([`Resampling`]): each particle takes the text of
//! an ancestor drawn in proportion to the weights, and every weight becomes
//! their mean, so that the log marginal likelihood estimate
//! ([`Run::log_ml`]) stays unbiased. A threshold of 0 never resamples: the
//! sampler is then the plain importance sampler. EOS ends a particle; an
//! ended particle still takes part in resampling.
//!
//! Each particle draws from its own seeded random stream and resampling
//! from one more, so a run depends only on the seed and on the potential's
//! answers, never on the order in which the calls complete: plain,
//! autobatched and multiprocess runs of the same potential give the same
//! particles.

#![warn(missing_docs)]

mod options;
mod resample;
mod run;
mod smc;

pub use options::SamplerOptions;
pub use resample::{Resampling, ancestors, effective_sample_size};
pub use run::{Run, Sample};
pub use smc::sample;
