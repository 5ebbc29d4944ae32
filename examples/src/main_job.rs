//! The main job: constrained generation with an n-gram language model
//! steered by a regular expression, run four ways.
//!
//! The potential is `Product<NgramLm, Regex>`: the language model's
//! next-token weights times the constraint's (zero for tokens that would
//! make the text unable to match). The same seeded [`sample`] run goes
//! through it plain, autobatched, in worker processes, and both, and the
//! four runs must give the same particles.

use std::fmt;
use std::time::{Duration, Instant};

use potential_builtins::{NgramConfig, NgramLm, Regex};
use potential_core::ops::Product;
use potential_core::{AutoBatchOptions, Potential, PotentialExt, Result};
use potential_runtime::MultiprocessExt;

use crate::sampler::{Run, SamplerOptions, sample};

/// The product the main job samples from.
pub type Job = Product<NgramLm, Regex>;

/// How the potential is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct calls in this process.
    Plain,
    /// Concurrent calls gathered into batch calls.
    Autobatched,
    /// Calls answered by worker processes.
    Workers,
    /// Batches formed here and split across worker processes.
    Both,
}

impl Mode {
    /// The four modes, plain first.
    pub const ALL: [Mode; 4] = [Mode::Plain, Mode::Autobatched, Mode::Workers, Mode::Both];
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Plain => "plain",
            Mode::Autobatched => "autobatched",
            Mode::Workers => "workers",
            Mode::Both => "autobatched + workers",
        })
    }
}

/// The settings of a main-job run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    /// The constraint, a byte-level regular expression over the generated text.
    pub pattern: String,
    /// The language model's settings.
    pub model: NgramConfig,
    /// The sampler's settings.
    pub sampler: SamplerOptions,
    /// The number of worker processes in the worker modes.
    pub workers: usize,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            pattern: r"[A-Z][a-z]+( [a-z]+){3,12}[.!?]".to_string(),
            model: NgramConfig {
                order: 4,
                merges: 8000,
            },
            sampler: SamplerOptions {
                particles: 64,
                max_tokens: 40,
                seed: 2026,
                groups: 2,
            },
            workers: 2,
        }
    }
}

/// Trains the language model on the bundled corpus and builds the constraint.
pub fn build(options: &JobOptions) -> Result<(NgramLm, Regex)> {
    let lm = NgramLm::from_bundled_corpus_plain(&options.model)?;
    let regex = Regex::new_plain(&options.pattern, lm.vocab().clone())?;
    Ok((lm, regex))
}

/// What one mode did.
#[derive(Debug, Clone)]
pub struct ModeReport {
    /// The mode.
    pub mode: Mode,
    /// The particles.
    pub run: Run<Vec<u8>>,
    /// Wall time of the generation, without starting workers.
    pub wall: Duration,
    /// Time to start the workers (zero without workers).
    pub setup: Duration,
    /// The calls of the potential's methods that reached the potential:
    /// `logw_next` calls, or batch calls when batching.
    pub potential_calls: u64,
    /// The mean number of contexts per call of the potential.
    pub mean_batch: f64,
}

/// Runs the sampler through `product` in one mode; `on_step` sees the
/// number of live particles after each step.
pub async fn run_mode(
    mode: Mode,
    product: Job,
    options: &JobOptions,
    on_step: impl FnMut(usize) + Send,
) -> Result<ModeReport> {
    let sampler = options.sampler;
    let started = Instant::now();
    let (run, setup, batches) = match mode {
        Mode::Plain => {
            let run = timed(sample(&product, sampler, on_step)).await?;
            (run, Duration::ZERO, None)
        }
        Mode::Autobatched => {
            let batched = product.to_autobatched_with(group_batches(&sampler));
            let run = timed(sample(&batched, sampler, on_step)).await?;
            let batches = batched.stats().batches;
            batched.shutdown().await;
            (run, Duration::ZERO, Some(batches))
        }
        Mode::Workers => {
            let workers = product.to_multiprocess(options.workers).await?;
            let setup = started.elapsed();
            let run = timed(sample(&workers, sampler, on_step)).await;
            workers.shutdown().await;
            (run?, setup, None)
        }
        Mode::Both => {
            let batched = product
                .to_multiprocess(options.workers)
                .await?
                .to_autobatched_with(group_batches(&sampler));
            let setup = started.elapsed();
            let run = timed(sample(&batched, sampler, on_step)).await;
            let batches = batched.stats().batches;
            batched.shutdown().await;
            batched.inner().shutdown().await;
            (run?, setup, Some(batches))
        }
    };
    let (run, wall) = run;
    let calls = run.calls as u64;
    let potential_calls = batches.unwrap_or(calls);
    Ok(ModeReport {
        mode,
        run,
        wall,
        setup,
        potential_calls,
        mean_batch: calls as f64 / potential_calls.max(1) as f64,
    })
}

/// Batches of one group of particles at most: the groups then take turns,
/// one drawing its tokens while the potential answers the next.
fn group_batches(sampler: &SamplerOptions) -> AutoBatchOptions {
    AutoBatchOptions {
        max_batch_size: sampler.particles.div_ceil(sampler.groups.max(1)),
        ..AutoBatchOptions::default()
    }
}

async fn timed<T>(f: impl Future<Output = Result<T>>) -> Result<(T, Duration)> {
    let started = Instant::now();
    let value = f.await?;
    Ok((value, started.elapsed()))
}

/// The text of a particle's tokens.
pub fn text(tokens: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&tokens.concat()).into_owned()
}
