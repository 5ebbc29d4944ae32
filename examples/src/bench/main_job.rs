//! The main job's rows of §7: the constrained-generation run, autobatched
//! and in worker processes, against the same run plain.

use potential_core::{PotentialError, Spawnable};

use super::stats::median;
use super::{Row, wanted};
use crate::llm_job;
use crate::main_job::{Fresh, JobOptions, Mode, run_mode};
use crate::ngram_job::NgramJob;

/// Repetitions of each mode; each repetition runs plain, then both.
const REPS: usize = 3;

/// The `main_job_speedup` (SmolLM2 under the book schema's grammar) and
/// `main_job_ngram_speedup` (the embedded default) rows, those that
/// [`wanted`] selects. Needs `main` to have called
/// [`potential_runtime::init`] first.
pub fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    if wanted("main_job_speedup") {
        rows.push(match potential_llm::smollm2_path() {
            Err(e) => super::llm::missing("main_job_speedup", &e),
            Ok(path) => on_a_worker_thread(async move {
                let (lm, grammar) = llm_job::build(&path)?;
                let options = llm_job::job_options();
                let (value, plain, both) = speedup(&lm, &grammar, &options).await?;
                Ok(Row {
                    id: "main_job_speedup",
                    figure: format!(
                        "the main job (SmolLM2 x JSON-schema grammar, SMC, {} particles, at most {} tokens): speedup (x) of autobatched + the grammar in {} workers over plain; plain {plain:.0} ms, both {both:.0} ms; median of {REPS} interleaved",
                        options.sampler.particles, options.sampler.max_tokens, options.workers,
                    ),
                    value,
                    unit: "x",
                    reference: None,
                    target: "at least 2x on 2 cores".to_string(),
                    met: value >= 2.0,
                })
            }),
        });
    }
    if wanted("main_job_ngram_speedup") {
        rows.push(on_a_worker_thread(async {
            let job = NgramJob::default();
            let (lm, regex) = job.build()?;
            let options = NgramJob::job_options();
            let (value, plain, both) = speedup(&lm, &regex, &options).await?;
            Ok(Row {
                id: "main_job_ngram_speedup",
                figure: format!(
                    "the embedded default ({}-gram x regex, {} particles, at most {} tokens, {} tokens of vocabulary): speedup (x) of autobatched + {} workers over plain; plain {plain:.1} ms, both {both:.1} ms; median of {REPS} interleaved",
                    job.model.order,
                    options.sampler.particles,
                    options.sampler.max_tokens,
                    256 + job.model.merges,
                    options.workers,
                ),
                value,
                unit: "x",
                reference: None,
                target: "at least 1.5x on 2 cores".to_string(),
                met: value >= 1.5,
            })
        }));
    }
    rows
}

/// Runs `job` as a task of a fresh multi-thread runtime, as the example
/// runs its job (see its `main`), and panics with its error.
fn on_a_worker_thread(
    job: impl Future<Output = Result<Row, PotentialError>> + Send + 'static,
) -> Row {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(async { tokio::spawn(job).await }) {
        Ok(Ok(row)) => row,
        Ok(Err(e)) => panic!("main job benchmark failed: {e}"),
        Err(e) => panic!("main job benchmark panicked: {e}"),
    }
}

/// The median over [`REPS`] interleaved repetitions of plain's wall time
/// over both's, and the two medians in ms. A first repetition warms up
/// and is thrown away.
async fn speedup<L, C>(
    lm: &L,
    constraint: &C,
    options: &JobOptions,
) -> Result<(f64, f64, f64), PotentialError>
where
    L: Spawnable<Token = Vec<u8>> + Fresh,
    C: Spawnable<Token = Vec<u8>> + Fresh,
{
    let (mut plain, mut both, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..=REPS {
        let p = run_mode(Mode::Plain, lm, constraint, options, |_| {}).await?;
        let b = run_mode(Mode::Both, lm, constraint, options, |_| {}).await?;
        let (p, b) = (p.wall.as_secs_f64() * 1e3, b.wall.as_secs_f64() * 1e3);
        if rep > 0 {
            plain.push(p);
            both.push(b);
            ratios.push(p / b);
        }
    }
    Ok((median(&ratios), median(&plain), median(&both)))
}
