//! `potential generate`: the flags checked, the constraint and the model
//! built, the sampler run with a progress bar, the results written.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use potential_core::Potential;
use potential_smc::{Progress, SamplerOptions};

use crate::CliError;
use crate::cli::{Format, GenerateArgs, SamplerKind};
use crate::constraint::Constraint;
use crate::model;
use crate::output::{write_json, write_text};
use crate::sample::{How, sample};

/// Runs `potential generate`: `Ok(true)` when every finished answer passed
/// its independent check, `Ok(false)` when one did not (exit status 1).
///
/// The progress bar and the spinner go to standard error and only on a
/// terminal (indicatif draws nothing elsewhere), so that piped output is
/// the results alone.
pub fn run(args: &GenerateArgs) -> Result<bool, CliError> {
    check_flags(args)?;
    // The constraint first: its errors cost no model load.
    let constraint = Constraint::from_args(args)?;
    let prompt = model::Prompt {
        user: &args.prompt,
        system: args.system.as_deref(),
        raw: args.raw,
    };
    let spinner = ProgressBar::new_spinner().with_message(format!("opening {}", args.model));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let opened = model::open(&args.model, prompt, args.max_tokens);
    spinner.finish_and_clear();
    let model = opened?;
    let grammar = constraint.grammar(model.lm.vocab().clone())?;

    let how = How {
        sampler: args.sampler,
        options: SamplerOptions {
            // One group: the model's batched forward pass gains with every
            // row, and drawing is cheap next to it.
            groups: 1,
            ess_threshold: args.ess_threshold,
            ..SamplerOptions::new(args.particles, args.max_tokens, args.seed)
        },
        workers: args.workers,
        autobatch: !args.no_autobatch,
    };
    let bar = ProgressBar::new(args.max_tokens as u64).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] token {pos}/{len}: {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("sampling from {}", model.name));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    // The run is a task on the runtime's worker threads rather than on the
    // main thread: the weight vectors (hundreds of KB each) are freed where
    // they are used, and glibc's main-arena trimming would make every
    // allocation of that size fault its pages in again.
    let (lm, task_bar) = (model.lm, bar.clone());
    let task = runtime.spawn(async move {
        let mut on_step = |p: &Progress<'_, Vec<u8>>| {
            task_bar.set_position(p.step as u64);
            task_bar.set_message(format!("{} particles growing, ESS {:.1}", p.live, p.ess));
        };
        sample(lm, grammar, &how, &mut on_step).await
    });
    let outcome = runtime.block_on(task);
    bar.finish_and_clear();
    let run = outcome.map_err(|e| CliError::failed(format!("the run failed: {e}")))??;

    let mut stdout = io::stdout().lock();
    let written = match args.format {
        Format::Text => write_text(&mut stdout, &run, &constraint, args.max_tokens),
        Format::Json => write_json(&mut stdout, &run, &constraint),
    }
    .and_then(|valid| stdout.flush().map(|()| valid));
    match written {
        Ok(valid) => Ok(valid),
        // A reader that stopped reading (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(CliError::failed(format!("cannot write the results: {e}"))),
    }
}

/// The flags that make no sense together, beyond what clap checks.
fn check_flags(args: &GenerateArgs) -> Result<(), CliError> {
    let constrained = args.json_schema.is_some() || args.lark.is_some() || args.regex.is_some();
    if args.prompt.is_empty() {
        return Err(CliError::usage(
            "--prompt is empty: give the model something to answer",
        ));
    }
    if !constrained && args.sampler == SamplerKind::Awrs {
        return Err(CliError::usage(
            "--sampler awrs needs a constraint (--json-schema, --lark or --regex): it checks the model's tokens against one",
        ));
    }
    if !constrained && args.workers.is_some() {
        return Err(CliError::usage(
            "--workers puts the constraint in worker processes, and there is no constraint (--json-schema, --lark or --regex)",
        ));
    }
    Ok(())
}
