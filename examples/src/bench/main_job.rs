//! The main job's row of §7: the constrained-generation run, autobatched
//! and in worker processes, against the same run plain.

use potential_core::PotentialError;
use potential_core::ops::Product;

use super::stats::median;
use super::{Row, wanted};
use crate::main_job::{JobOptions, Mode, build, run_mode};

/// Repetitions of each mode; each repetition runs plain, then both.
const REPS: usize = 5;

/// The `main_job_speedup` row (when [`wanted`] selects it). Needs `main`
/// to have called [`potential_runtime::init`] first.
pub fn rows() -> Vec<Row> {
    if !wanted("main_job_speedup") {
        return Vec::new();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let measured = runtime.block_on(async {
        // On a worker thread, as in the example (see its `main`).
        tokio::spawn(async move { speedup(&JobOptions::default()).await }).await
    });
    match measured {
        Ok(Ok(row)) => vec![row],
        Ok(Err(e)) => panic!("main job benchmark failed: {e}"),
        Err(e) => panic!("main job benchmark panicked: {e}"),
    }
}

async fn speedup(options: &JobOptions) -> Result<Row, PotentialError> {
    let (lm, regex) = build(options)?;
    let (mut plain, mut both, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    // The first repetition warms up and is thrown away.
    for rep in 0..=REPS {
        let wall = |mode| {
            let product = Product::new(lm.clone(), regex.clone());
            async move {
                let report = run_mode(mode, product?, options, |_| {}).await?;
                Ok::<_, PotentialError>(report.wall.as_secs_f64() * 1e3)
            }
        };
        let p = wall(Mode::Plain).await?;
        let b = wall(Mode::Both).await?;
        if rep > 0 {
            plain.push(p);
            both.push(b);
            ratios.push(p / b);
        }
    }
    let value = median(&ratios);
    Ok(Row {
        id: "main_job_speedup",
        figure: format!(
            "constrained generation ({} particles, at most {} tokens, {} tokens of vocabulary): speedup (x) of autobatched + {} workers over plain; plain {:.1} ms, both {:.1} ms; median of {REPS}",
            options.sampler.particles,
            options.sampler.max_tokens,
            256 + options.model.merges,
            options.workers,
            median(&plain),
            median(&both)
        ),
        value,
        unit: "x",
        reference: None,
        target: "reported; at least 1.5x on 2 cores".to_string(),
        met: value >= 1.5,
    })
}
