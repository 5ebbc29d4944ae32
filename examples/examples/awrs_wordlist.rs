//! An expensive, user-written constraint sampled with AWRS next to
//! SmolLM2: every word of the story must come from *Alice's Adventures in
//! Wonderland* and be at most 8 letters long, each check costing about
//! 1 ms (see `potential_examples::wordlist`). 8 particles of at most 30
//! tokens, first with the constraint in this process, then in 2 worker
//! processes; it prints the texts, both wall times and the constraint
//! checks per generated token (the full-vocabulary proposal would need
//! one per token of the vocabulary).
//!
//! ```sh
//! cargo run --release -p potential-examples --example awrs_wordlist
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use potential_core::{Potential, PotentialError};
use potential_examples::wordlist::{self, WordList};
use potential_runtime::MultiprocessExt;
use potential_smc::Run;

/// The worker processes the constraint runs in, in the second run.
const WORKERS: usize = 2;

fn main() -> ExitCode {
    // Workers are this program started again: this line comes first.
    potential_runtime::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), PotentialError> {
    let path = potential_llm::smollm2_path().map_err(PotentialError::custom)?;
    let (lm, words) = wordlist::build(&path)?;
    println!(
        "SmolLM2 ({} tokens) under a list of {} words of at most {} letters, {} ms a check",
        lm.vocab().len(),
        words.len(),
        wordlist::MAX_WORD,
        wordlist::CHECK_COST.as_millis()
    );
    // Shared, so that the same constraint answers in this process and is
    // sent to the workers.
    let words = Arc::new(words);
    // In this process the checks run one at a time; in workers, each
    // particle's draws are checked as many at a time as there are workers
    // (the same draws and weights, a few more checks).
    let (local, local_time) = wordlist::sample(&lm, &words, 1).await?;
    report("in this process", &local, &words)?;
    let workers = words.clone().to_multiprocess(WORKERS).await?;
    let (remote, remote_time) = wordlist::sample(&lm, &workers, WORKERS).await?;
    workers.shutdown().await;
    report(
        &format!("in {WORKERS} worker processes, checking {WORKERS} draws at a time"),
        &remote,
        &words,
    )?;
    println!(
        "\nwall time: {:.2} s in this process, {:.2} s with the constraint in {WORKERS} workers ({:.2}x); same particles: {}",
        local_time.as_secs_f64(),
        remote_time.as_secs_f64(),
        local_time.as_secs_f64() / remote_time.as_secs_f64(),
        local.samples == remote.samples
    );
    Ok(())
}

/// Prints a run's texts with their posterior probabilities and its checks
/// per generated token, after confirming each finished text is allowed.
fn report(label: &str, run: &Run<Vec<u8>>, words: &WordList) -> Result<(), PotentialError> {
    println!("\n{label}:");
    for sample in run.samples.iter().filter(|s| s.finished) {
        wordlist::check_text(words, &sample.tokens)?;
    }
    for text in run.text_posterior() {
        println!(
            "  {:.3} x{} {:?}",
            text.probability, text.particles, text.text
        );
    }
    println!(
        "  {} tokens drawn, {} constraint checks: {:.2} checks a token (the full vocabulary: {})",
        run.draws,
        run.calls.checks,
        run.checks_per_draw(),
        words.vocab().len()
    );
    Ok(())
}
