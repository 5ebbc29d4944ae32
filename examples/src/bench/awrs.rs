//! The AWRS rows of §7: SmolLM2 under an expensive, user-written
//! constraint ([`WordList`](crate::wordlist::WordList), about 1 ms a
//! check, no batch form), sampled with AWRS, 8 particles of at most 30
//! tokens: the gain of putting the constraint in 2 worker processes, and
//! the constraint checks per generated token.
//!
//! Without the model file each row says so and is not met, as the other
//! language-model rows do. Needs `main` to have called
//! [`potential_runtime::init`] first (the workers are this program).

use std::sync::Arc;

use potential_core::{Potential, PotentialError, Result};
use potential_runtime::MultiprocessExt;

use super::llm::smollm2_or_missing;
use super::stats::median;
use super::{Row, wanted};
use crate::wordlist;

const IDS: [&str; 2] = ["awrs_worker_gain", "awrs_checks_per_token"];

/// Interleaved rounds of the two runs (the first is a warm-up, not
/// counted): each run takes seconds, so few.
const REPS: usize = 4;

/// What the rounds measured.
struct Measured {
    /// In-process over 2-worker wall time, per counted round.
    gains: Vec<f64>,
    /// Median wall times (s): in this process, in 2 workers.
    local: f64,
    remote: f64,
    checks_per_token: f64,
    /// The same in the worker run, which checks 2 draws at a time.
    checks_ahead: f64,
    vocab: usize,
}

/// The rows selected by [`wanted`].
pub fn rows() -> Vec<Row> {
    if !IDS.iter().any(|id| wanted(id)) {
        return Vec::new();
    }
    let path = match smollm2_or_missing(&IDS) {
        Ok(path) => path,
        Err(rows) => return rows,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let m = runtime
        .block_on(measure(&path))
        .unwrap_or_else(|e| panic!("AWRS benchmark failed: {e}"));
    let mut rows = Vec::new();
    if wanted("awrs_worker_gain") {
        let value = median(&m.gains);
        rows.push(Row {
            id: "awrs_worker_gain",
            figure: format!(
                "AWRS, SmolLM2 under a word list checked in about 1 ms a call (no batch form), 8 particles, 30 tokens: wall time with the constraint in this process over in 2 workers checking 2 draws of a particle at a time (x): {:.2} s against {:.2} s ({:.1} checks a token against {:.1}); median of {}",
                m.local,
                m.remote,
                m.checks_ahead,
                m.checks_per_token,
                m.gains.len()
            ),
            value,
            unit: "x",
            reference: None,
            target: "at least 1.6x on 2 cores".into(),
            met: value >= 1.6,
        });
    }
    if wanted("awrs_checks_per_token") {
        rows.push(Row {
            id: "awrs_checks_per_token",
            figure: format!(
                "constraint calls per generated token (and EOS) under AWRS in the same job; the full-vocabulary proposal would need {}",
                m.vocab
            ),
            value: m.checks_per_token,
            unit: "calls",
            reference: Some(m.vocab as f64),
            target: "reported".into(),
            met: true,
        });
    }
    rows
}

async fn measure(path: &std::path::Path) -> Result<Measured> {
    let (lm, words) = wordlist::build(path)?;
    let vocab = lm.vocab().len();
    let words = Arc::new(words);
    let workers = words.clone().to_multiprocess(2).await?;
    let (mut gains, mut local, mut remote) = (vec![], vec![], vec![]);
    let (mut checks, mut checks_ahead) = (0.0, 0.0);
    for rep in 0..REPS {
        let (run, l) = wordlist::sample(&lm, &words, 1).await?;
        // The same seed and the same verdicts: the worker run draws the
        // same particles (checking 2 draws at a time changes how many
        // checks, not which draws), so the checks are counted on the first.
        let (ahead, r) = wordlist::sample(&lm, &workers, 2).await?;
        if ahead.samples != run.samples {
            return Err(PotentialError::msg(
                "the run in workers drew other particles than the one in this process",
            ));
        }
        checks = run.checks_per_draw();
        checks_ahead = ahead.checks_per_draw();
        if rep > 0 {
            let (l, r) = (l.as_secs_f64(), r.as_secs_f64());
            gains.push(l / r);
            local.push(l);
            remote.push(r);
        }
    }
    workers.shutdown().await;
    Ok(Measured {
        gains,
        local: median(&local),
        remote: median(&remote),
        checks_per_token: checks,
        checks_ahead,
        vocab,
    })
}
