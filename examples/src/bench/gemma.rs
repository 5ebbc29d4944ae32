//! The Gemma 3 rows: `Llm` on Gemma 3 270M (Q4_K_M), a one-token step
//! with a cache and the gain of batching 32 such steps, measured as the
//! SmolLM2 rows are (see `llm`). The 262,144-token vocabulary makes the
//! output projection (262,144 x 640) most of a step.
//!
//! Without the model file (fetch it with `bash
//! potential-llm/fetch-gemma.sh`) each row says so and is not met.

use potential_core::PotentialError;
use potential_llm::{ChatTemplate, Llm, LlmOptions};

use super::llama_cpp::GEMMA3 as LLAMA_CPP;
use super::llm::{measure_batch, measure_step, missing};
use super::{Row, wanted};

const IDS: [&str; 2] = ["gemma_step", "gemma_batch_gain"];

/// The rows selected by [`wanted`].
pub fn rows() -> Vec<Row> {
    if !IDS.iter().any(|id| wanted(id)) {
        return Vec::new();
    }
    let path = match potential_llm::gemma3_path() {
        Ok(path) => path,
        Err(e) => {
            return IDS
                .iter()
                .filter(|id| wanted(id))
                .map(|id| missing(id, &e))
                .collect();
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let llm = Llm::open_plain(&path, options()).expect("Gemma 3 opens");
        let mut rows = Vec::new();
        if wanted("gemma_step") {
            rows.push(step(&llm).await);
        }
        if wanted("gemma_batch_gain") {
            rows.push(batch_gain(&llm).await);
        }
        rows.into_iter()
            .collect::<Result<Vec<Row>, PotentialError>>()
            .unwrap_or_else(|e| panic!("gemma benchmark failed: {e}"))
    })
}

fn options() -> LlmOptions {
    LlmOptions {
        prompt: ChatTemplate::Gemma.prompt("", "Write a short story about a cat."),
        ..LlmOptions::default()
    }
}

async fn step(llm: &Llm) -> Result<Row, PotentialError> {
    let (value, n) = measure_step(llm).await?;
    Ok(Row {
        id: "gemma_step",
        figure: format!(
            "Gemma 3 270M (Q4_K_M): Llm::logw_next of a context of 33 tokens (after a {}-token prompt) that extends a cached one by one token, one call at a time (ms), median of {n}; reference: llama.cpp, 2 threads, same file",
            llm.prompt_ids().len(),
        ),
        value,
        unit: "ms",
        reference: Some(LLAMA_CPP.step_ms),
        target: "reported (no target)".into(),
        met: value.is_finite(),
    })
}

async fn batch_gain(llm: &Llm) -> Result<Row, PotentialError> {
    let g = measure_batch(llm, options()).await?;
    Ok(Row {
        id: "gemma_batch_gain",
        figure: format!("Gemma 3 270M: {}", g.figure(&LLAMA_CPP)),
        value: g.gain,
        unit: "x",
        reference: None,
        target: "reported (no target)".into(),
        met: g.gain.is_finite(),
    })
}
