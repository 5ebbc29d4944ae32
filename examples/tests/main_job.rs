//! The main job, small: the four modes generate the same particles, and
//! every finished text matches the constraint.
//!
//! `harness = false`: the worker processes re-execute this binary, so
//! `main` calls `potential_runtime::init()` before anything else.

use potential_builtins::NgramConfig;
use potential_core::ops::Product;
use potential_examples::main_job::{JobOptions, Mode, build, run_mode};
use potential_examples::sampler::SamplerOptions;

fn main() {
    potential_runtime::init();
    let options = JobOptions {
        pattern: r"[A-Z][a-z]+( [a-z]+){1,4}[.!?]".to_string(),
        model: NgramConfig {
            order: 3,
            merges: 300,
        },
        sampler: SamplerOptions {
            particles: 12,
            max_tokens: 24,
            seed: 11,
            groups: 2,
        },
        workers: 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (lm, regex) = build(&options).expect("the model trains");
        let mut runs = Vec::new();
        for mode in Mode::ALL {
            let product = Product::new(lm.clone(), regex.clone()).expect("one vocabulary");
            let report = tokio::time::timeout(
                std::time::Duration::from_secs(120),
                run_mode(mode, product, &options, |_| {}),
            )
            .await
            .unwrap_or_else(|_| panic!("{mode} did not finish in 120 s"))
            .unwrap_or_else(|e| panic!("{mode} failed: {e}"));
            assert!(report.run.calls as u64 >= report.potential_calls);
            runs.push((mode, report.run));
        }
        let (_, plain) = &runs[0];
        let finished: Vec<_> = plain.samples.iter().filter(|s| s.finished).collect();
        assert!(!finished.is_empty(), "no particle finished: {plain:?}");
        for s in &finished {
            let text = s.tokens.concat();
            assert!(
                regex.is_match(&text),
                "{:?} does not match the constraint",
                String::from_utf8_lossy(&text)
            );
        }
        for (mode, run) in &runs[1..] {
            assert_eq!(run, plain, "{mode} generated other particles than plain");
        }
    });
    println!("main_job: 1 passed, 0 failed");
}
