//! The main job: constrained generation.
//!
//! Many particles are driven concurrently through the product of an n-gram
//! language model (trained on the bundled public-domain corpus) and a
//! regular-expression constraint, four ways: plain, autobatched, in worker
//! processes, and both. It prints the generated text and a table of the
//! four runs, and checks that they generated the same particles.
//!
//! ```sh
//! cargo run --release -p potential-examples --example constrained_generation -- --help
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use potential_builtins::NgramConfig;
use potential_core::Potential;
use potential_core::ops::Product;
use potential_examples::bench::stats::median;
use potential_examples::main_job::{JobOptions, Mode, ModeReport, build, run_mode, text};
use potential_examples::sampler::SamplerOptions;

/// Constrained generation with a language model and a regular expression,
/// plain, autobatched, in worker processes and both.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of particles.
    #[arg(long, default_value_t = JobOptions::default().sampler.particles)]
    particles: usize,
    /// Most tokens per particle.
    #[arg(long, default_value_t = JobOptions::default().sampler.max_tokens)]
    steps: usize,
    /// The constraint: a regular expression the whole text must match.
    #[arg(long, default_value_t = JobOptions::default().pattern)]
    pattern: String,
    /// Number of worker processes.
    #[arg(long, default_value_t = JobOptions::default().workers)]
    workers: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = JobOptions::default().sampler.seed)]
    seed: u64,
    /// Byte-pair merges of the tokenizer (the vocabulary is 256 + merges tokens).
    #[arg(long, default_value_t = JobOptions::default().model.merges)]
    merges: usize,
    /// Order of the n-gram model (2 to 5).
    #[arg(long, default_value_t = JobOptions::default().model.order)]
    order: usize,
    /// Groups of particles stepped at their own pace (1: all in lockstep).
    #[arg(long, default_value_t = JobOptions::default().sampler.groups)]
    groups: usize,
    /// Rounds of the four modes; the table shows each mode's median wall time.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// How many generated texts to print.
    #[arg(long, default_value_t = 12)]
    show: usize,
}

fn main() -> ExitCode {
    potential_runtime::init(); // first: in a worker process this serves and exits
    potential_examples::memory::keep_freed_memory();
    let args = Args::parse();
    let options = JobOptions {
        pattern: args.pattern,
        model: NgramConfig {
            order: args.order,
            merges: args.merges,
        },
        sampler: SamplerOptions {
            particles: args.particles,
            max_tokens: args.steps,
            seed: args.seed,
            groups: args.groups,
        },
        workers: args.workers,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The job runs as a task on the runtime's worker threads rather than on
    // the main thread: the weight vectors (tens of KB each) are freed where
    // they are used, and glibc's main-arena trimming would make every
    // allocation of that size fault its pages in again.
    let (show, repeat) = (args.show, args.repeat.max(1));
    let outcome = runtime.block_on(async move {
        tokio::spawn(async move { job(&options, show, repeat).await }).await
    });
    match outcome.unwrap_or_else(|e| Err(potential_core::PotentialError::Panicked(e.to_string()))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the four modes; `Ok(false)` when they disagree.
async fn job(options: &JobOptions, show: usize, repeat: usize) -> potential_core::Result<bool> {
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "training a {}-gram model with {} tokens on the bundled corpus",
        options.model.order,
        256 + options.model.merges
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let (lm, regex) = build(options)?;
    spinner.finish_and_clear();
    println!(
        "model: {}-gram, {} tokens; constraint: /{}/; {} particles, at most {} tokens, seed {}",
        lm.order(),
        lm.vocab().len(),
        options.pattern,
        options.sampler.particles,
        options.sampler.max_tokens,
        options.sampler.seed
    );

    let mut reports: Vec<ModeReport> = Vec::new();
    // The modes take turns, `repeat` rounds of all four, so that a slow
    // moment of a shared machine does not land on one mode only; the table
    // shows each mode's median wall time.
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    let total = (options.sampler.particles * repeat * Mode::ALL.len()) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} particle runs")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    for round in 0..repeat {
        for (m, mode) in Mode::ALL.into_iter().enumerate() {
            bar.set_prefix(mode.to_string());
            let done = bar.position();
            let particles = options.sampler.particles;
            let product = Product::new(lm.clone(), regex.clone())?;
            let report = run_mode(mode, product, options, |live| {
                bar.set_position(done + (particles - live) as u64)
            })
            .await?;
            walls[m].push(report.wall.as_secs_f64());
            if round == 0 {
                reports.push(report);
            } else if report.run != reports[m].run {
                bar.finish_and_clear();
                println!("{mode} generated other particles in round {}", round + 1);
                return Ok(false);
            }
        }
    }
    bar.finish_and_clear();
    for (report, wall) in reports.iter_mut().zip(&walls) {
        report.wall = Duration::from_secs_f64(median(wall));
    }

    let plain = &reports[0];
    let mut samples: Vec<_> = plain.run.samples.iter().filter(|s| s.finished).collect();
    samples.sort_by(|a, b| b.log_weight.total_cmp(&a.log_weight));
    println!(
        "\n{} of {} particles finished; the heaviest texts:",
        samples.len(),
        plain.run.samples.len()
    );
    let mut all_match = true;
    for s in &samples {
        all_match &= regex.is_match(&s.tokens.concat());
    }
    for s in samples.iter().take(show) {
        println!("  {:>9.3}  {:?}", s.log_weight, text(&s.tokens));
    }
    println!(
        "every finished text matches the constraint: {}",
        if all_match { "yes" } else { "NO" }
    );

    println!(
        "\n{:<22} {:>10} {:>9} {:>10} {:>16} {:>11}",
        "mode", "wall (ms)", "speedup", "setup (ms)", "potential calls", "mean batch"
    );
    println!("(wall: the median of {repeat} rounds; setup: starting the workers, not in wall)");
    let base = plain.wall.as_secs_f64();
    for r in &reports {
        println!(
            "{:<22} {:>10.1} {:>8.2}x {:>10.1} {:>16} {:>11.1}",
            r.mode.to_string(),
            r.wall.as_secs_f64() * 1e3,
            base / r.wall.as_secs_f64(),
            r.setup.as_secs_f64() * 1e3,
            r.potential_calls,
            r.mean_batch
        );
    }
    let identical = reports.iter().all(|r| r.run.samples == plain.run.samples);
    println!(
        "\nthe four modes generated identical particles: {}",
        if identical { "yes" } else { "NO" }
    );
    Ok(identical && all_match)
}
