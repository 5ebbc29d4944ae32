//! Samplers over potentials: sequential Monte Carlo and importance
//! sampling, as genlm-control runs them.
//!
//! A sampler drives many particles, token sequences that grow one token at
//! a time, through a *target* potential. Each step a [`Proposal`] extends
//! every live particle by a token or EOS and weights the step so that the
//! particles stay properly weighted for the target; an optional
//! [`Critic`] reweights them by a second potential's prefix ratio; when
//! the weights grow too uneven the population is resampled. At the end
//! each particle is a text with a weight, and the mean weight estimates
//! the target's total weight ([`Run::log_ml`]).
//!
//! - [`LocallyOptimal`]: draws from the target's own normalized
//!   `logw_next` (genlm's `DirectTokenSampler`). Over the product of a
//!   language model and a constraint it is the locally optimal proposal;
//!   over the language model alone, with the constraint as a critic, it is
//!   genlm's direct sampler with a critic.
//! - [`Awrs`]: adaptive weighted rejection sampling over a language model
//!   and a boolean constraint, which checks only the tokens it draws.
//! - [`Smc`], [`smc`] and [`importance`] run a proposal, with or without a
//!   critic, resampling or not.
//! - [`Run`] holds the particles (as texts, for byte-string tokens:
//!   [`Sample::text`], [`Run::text_posterior`]), the estimate, the
//!   effective sample size after each step and the calls made; the
//!   callback of [`Smc::run`] sees a [`Progress`] after each step.
//!
//! Each particle draws from its own seeded [`Stream`] and resampling from
//! one more, so a run depends only on the seed and on the potentials'
//! answers, never on the order in which the calls complete: plain,
//! autobatched and multiprocess runs of the same potentials give the same
//! particles.

#![forbid(unsafe_code)]

mod awrs;
mod calls;
mod critic;
mod locally_optimal;
mod options;
mod proposal;
mod resample;
mod run;
mod smc;
mod stream;
mod text;

pub use awrs::Awrs;
pub use calls::Calls;
pub use critic::{Critic, NoCritic};
pub use locally_optimal::LocallyOptimal;
pub use options::SamplerOptions;
pub use proposal::{Extension, Proposal, Slot};
pub use resample::{Resampling, ancestors, effective_sample_size};
pub use run::{Progress, Run, Sample};
pub use smc::{Smc, importance, smc};
pub use stream::Stream;
pub use text::{ByteToken, TextPosterior};
