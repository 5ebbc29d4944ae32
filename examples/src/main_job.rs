//! The main job: constrained generation, a language model steered by a
//! constraint, sampled by sequential Monte Carlo, run four ways.
//!
//! The potential is the product of the constraint and the language model:
//! the model's next-token weights times the constraint's (zero for tokens
//! that would make the text unable to satisfy it). The same seeded
//! [`smc`] run goes through it plain, autobatched, in worker processes,
//! and both, and the four runs must give the same particles.
//!
//! Two jobs use it: SmolLM2 under a JSON-schema grammar (the
//! [`crate::llm_job`]), and the embedded default that needs nothing
//! downloaded, an n-gram model under a regular expression
//! ([`crate::ngram_job`]).

use std::fmt;
use std::time::{Duration, Instant};

use potential_builtins::{Grammar, NgramLm, Regex};
use potential_core::ops::Product;
use potential_core::{AutoBatchOptions, PotentialError, PotentialExt, Result, Spawnable};
use potential_llm::Llm;
use potential_runtime::MultiprocessExt;

use potential_smc::{LocallyOptimal, Progress, Run, SamplerOptions, smc};

/// How the potential is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct calls in this process.
    Plain,
    /// Concurrent calls gathered into batch calls.
    Autobatched,
    /// Calls answered by worker processes (see [`InWorkers`]).
    Workers,
    /// Batches formed here, their worker part split across worker processes.
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

/// What the worker modes send to worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InWorkers {
    /// The whole product: each worker rebuilds both potentials (right when
    /// the language model is cheap to copy and its calls are the work).
    Product,
    /// The constraint only: the language model stays here, where one
    /// batched forward pass serves every particle, and the workers compute
    /// the constraint's masks meanwhile.
    Constraint,
}

/// The settings of a main-job run that do not depend on the potentials.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    /// The sampler's settings.
    pub sampler: SamplerOptions,
    /// The number of worker processes in the worker modes (at least 1).
    pub workers: usize,
    /// What the worker modes send to the workers.
    pub in_workers: InWorkers,
}

impl JobOptions {
    /// Checks the options: the sampler's (see [`SamplerOptions::validate`])
    /// and at least one worker.
    pub fn validate(&self) -> Result<()> {
        self.sampler.validate()?;
        if self.workers == 0 {
            return Err(PotentialError::InvalidInput(
                "the worker modes need at least one worker process".to_string(),
            ));
        }
        Ok(())
    }
}

/// A potential that can give a copy of itself that keeps nothing from
/// earlier calls (no cached states), so that each run of the job measures
/// the same work. Copies share what never changes (weights, compiled
/// grammars).
pub trait Fresh: Clone {
    /// A copy with empty caches.
    fn fresh(&self) -> Result<Self>;
}

impl Fresh for Llm {
    fn fresh(&self) -> Result<Self> {
        self.with_options(self.options().clone())
    }
}

impl Fresh for Grammar {
    fn fresh(&self) -> Result<Self> {
        Ok(self
            .clone()
            .with_cache_capacity(self.cache_stats().capacity))
    }
}

/// The n-gram model keeps nothing between calls.
impl Fresh for NgramLm {
    fn fresh(&self) -> Result<Self> {
        Ok(self.clone())
    }
}

/// The regular expression keeps nothing between calls.
impl Fresh for Regex {
    fn fresh(&self) -> Result<Self> {
        Ok(self.clone())
    }
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

/// Runs the sampler through the product of `constraint` and `lm` in one
/// mode; `on_step` sees the number of live particles after each step.
///
/// The constraint is the product's first factor: a product asks its two
/// factors concurrently, and a constraint in worker processes then has its
/// requests on their way before the language model, which computes in
/// this thread, takes the thread.
pub async fn run_mode<L, C>(
    mode: Mode,
    lm: &L,
    constraint: &C,
    options: &JobOptions,
    mut on_step: impl FnMut(usize) + Send,
) -> Result<ModeReport>
where
    L: Spawnable<Token = Vec<u8>> + Fresh,
    C: Spawnable<Token = Vec<u8>> + Fresh,
{
    options.validate()?;
    let sampler = options.sampler;
    let on_step = |progress: &Progress<'_, Vec<u8>>| on_step(progress.live);
    // Each run starts from nothing kept: a language model that remembered
    // the contexts of the previous run would answer them from its cache,
    // and the run after the first would time lookups, not the model.
    let (lm, constraint) = (lm.fresh()?, constraint.fresh()?);
    let product = || Product::new(constraint.clone(), lm.clone());
    let started = Instant::now();
    let (run, setup, batches) = match (mode, options.in_workers) {
        (Mode::Plain, _) => (
            timed(smc(&LocallyOptimal::new(&product()?), sampler, on_step)).await?,
            Duration::ZERO,
            None,
        ),
        (Mode::Autobatched, _) => {
            let batched = product()?.to_autobatched_with(group_batches(&sampler));
            let run = timed(smc(&LocallyOptimal::new(&batched), sampler, on_step)).await;
            let batches = batched.stats().batches;
            batched.shutdown().await;
            (run?, Duration::ZERO, Some(batches))
        }
        (Mode::Workers, InWorkers::Product) => {
            let workers = product()?.to_multiprocess(options.workers).await?;
            let setup = started.elapsed();
            let run = timed(smc(&LocallyOptimal::new(&workers), sampler, on_step)).await;
            workers.shutdown().await;
            (run?, setup, None)
        }
        (Mode::Workers, InWorkers::Constraint) => {
            // A product that cannot be built drops its pool, which reaps it.
            let product = Product::new(
                constraint.clone().to_multiprocess(options.workers).await?,
                lm.clone(),
            )?;
            let setup = started.elapsed();
            let run = timed(smc(&LocallyOptimal::new(&product), sampler, on_step)).await;
            product.first().shutdown().await;
            (run?, setup, None)
        }
        (Mode::Both, InWorkers::Product) => {
            let batched = product()?
                .to_multiprocess(options.workers)
                .await?
                .to_autobatched_with(group_batches(&sampler));
            let setup = started.elapsed();
            let run = timed(smc(&LocallyOptimal::new(&batched), sampler, on_step)).await;
            let batches = batched.stats().batches;
            batched.shutdown().await;
            batched.inner().shutdown().await;
            (run?, setup, Some(batches))
        }
        (Mode::Both, InWorkers::Constraint) => {
            let product = Product::new(
                constraint.clone().to_multiprocess(options.workers).await?,
                lm.clone(),
            )?;
            let setup = started.elapsed();
            let batched = product.to_autobatched_with(group_batches(&sampler));
            let run = timed(smc(&LocallyOptimal::new(&batched), sampler, on_step)).await;
            let batches = batched.stats().batches;
            batched.shutdown().await;
            batched.inner().first().shutdown().await;
            (run?, setup, Some(batches))
        }
    };
    let (run, wall) = run;
    let calls = run.calls.logw_next as u64;
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

/// Whether two runs gave the same particles: the same tokens and ends,
/// and weights equal within `1e-9` relative (a language model's batched
/// forward pass may round its last bits otherwise than a lone one).
pub fn same_particles(a: &Run<Vec<u8>>, b: &Run<Vec<u8>>) -> bool {
    let close = |x: f64, y: f64| x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    a.samples.len() == b.samples.len()
        && a.samples.iter().zip(&b.samples).all(|(x, y)| {
            x.tokens == y.tokens && x.finished == y.finished && close(x.log_weight, y.log_weight)
        })
        && close(a.log_ml, b.log_ml)
}
