//! The main job, small: the four modes generate the same particles, and
//! every finished text satisfies the constraint.
//!
//! `harness = false`: the worker processes re-execute this binary, so
//! `main` calls `potential_runtime::init()` before anything else.

use potential_llm::testing::model_or_skip;
use std::time::Duration;

use potential_builtins::NgramConfig;
use potential_core::Spawnable;
use potential_examples::llm_job;
use potential_examples::main_job::{Fresh, InWorkers, JobOptions, Mode, run_mode, same_particles};
use potential_examples::ngram_job::NgramJob;
use potential_smc::SamplerOptions;

fn main() {
    potential_runtime::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let passed = runtime.block_on(async {
        ngram_job().await;
        1 + usize::from(smollm2_job().await)
    });
    println!("main_job: {passed} passed, 0 failed");
}

/// SmolLM2 under the book schema's grammar, small: the four modes agree
/// and every finished text is valid JSON under the schema. Skipped (false)
/// when the model was not fetched, unless `POTENTIAL_REQUIRE_MODEL=1`
/// (set by `.ci/run`) makes that a failure.
async fn smollm2_job() -> bool {
    let Some(path) = model_or_skip("main_job: SmolLM2 job", potential_llm::smollm2_path()) else {
        return false;
    };
    let (lm, grammar) = llm_job::build(&path).expect("SmolLM2 opens");
    let options = JobOptions {
        sampler: SamplerOptions {
            groups: 1,
            ..SamplerOptions::new(4, 60, 7)
        },
        ..llm_job::job_options()
    };
    let check = llm_job::SchemaCheck::new(&llm_job::book_schema()).expect("a valid schema");
    four_modes(&lm, &grammar, &options, |text| check.check(text)).await;
    true
}

/// The embedded default: the n-gram model under a regular expression.
async fn ngram_job() {
    let job = NgramJob {
        pattern: r"[A-Z][a-z]+( [a-z]+){1,4}[.!?]".to_string(),
        model: NgramConfig {
            order: 3,
            merges: 300,
        },
    };
    let (lm, regex) = job.build().expect("the model trains");
    let options = JobOptions {
        sampler: SamplerOptions {
            groups: 2,
            ..SamplerOptions::new(12, 24, 11)
        },
        workers: 2,
        in_workers: InWorkers::Product,
    };
    four_modes(&lm, &regex, &options, |text| {
        if regex.is_match(text) {
            Ok(())
        } else {
            Err("does not match the constraint".to_string())
        }
    })
    .await;
}

/// Runs the four modes, each within a generous time limit, and checks
/// that they generated the same particles, that some particle finished,
/// and that `check` accepts every finished text.
async fn four_modes<L, C>(
    lm: &L,
    constraint: &C,
    options: &JobOptions,
    check: impl Fn(&[u8]) -> Result<(), String>,
) where
    L: Spawnable<Token = Vec<u8>> + Fresh,
    C: Spawnable<Token = Vec<u8>> + Fresh,
{
    let mut reports = Vec::new();
    for mode in Mode::ALL {
        let report = tokio::time::timeout(
            Duration::from_secs(300),
            run_mode(mode, lm, constraint, options, |_| {}),
        )
        .await
        .unwrap_or_else(|_| panic!("{mode} did not finish in 300 s"))
        .unwrap_or_else(|e| panic!("{mode} failed: {e}"));
        assert!(report.run.calls.logw_next as u64 >= report.potential_calls);
        reports.push(report);
    }
    for r in &reports[1..] {
        assert!(
            same_particles(&r.run, &reports[0].run),
            "{} generated other particles than plain:\n{:?}\n{:?}",
            r.mode,
            r.run,
            reports[0].run
        );
    }
    let plain = &reports[0].run;
    let finished: Vec<_> = plain.samples.iter().filter(|s| s.finished).collect();
    assert!(!finished.is_empty(), "no particle finished: {plain:?}");
    for s in &finished {
        let text = s.tokens.concat();
        if let Err(why) = check(&text) {
            panic!("{:?}: {why}", String::from_utf8_lossy(&text));
        }
    }
}
