//! llama.cpp's figures on the model files of the language-model rows: the
//! reference that a Rust bench cannot run itself.
//!
//! Measured by `potential-llm/reference/llama_cpp_speed.py` (llama-cpp-python
//! 0.3.36 built from source with AVX2, `GGML_NATIVE=OFF`; see its docstring)
//! on the machine these rows were last checked on, an AMD EPYC with AVX2 and
//! no VNNI, 2 cores shared with other tenants (load 1.2-2.0), 2 threads,
//! every position's logits kept: the median of three runs, each alternated
//! with a run of the rows (2026-12-03). On another CPU, measure again.

/// One llama.cpp model's figures.
pub(crate) struct LlamaCpp {
    /// A one-token step on a cached 33-token context (ms).
    pub(crate) step_ms: f64,
    /// 32 tokens in one pass after a cached prompt, per token (ms): its
    /// analogue of 32 particles' one-token steps in one batch (easier for
    /// it, the 32 share one cache).
    pub(crate) pass32_token_ms: f64,
}

impl LlamaCpp {
    /// llama.cpp's own batch gain: a step over a token of the 32-token pass.
    pub(crate) fn batch_gain(&self) -> f64 {
        self.step_ms / self.pass32_token_ms
    }
}

/// SmolLM2-135M-Instruct, Q4_1 (runs of 7.29, 8.33, 7.11 ms and 4.22,
/// 4.36, 4.20 ms a token).
pub(crate) const SMOLLM2: LlamaCpp = LlamaCpp {
    step_ms: 7.29,
    pass32_token_ms: 4.22,
};

/// Gemma 3 270M, Q4_K_M (runs of 15.19, 15.61, 14.60 ms and 5.36, 5.34,
/// 5.45 ms a token).
pub(crate) const GEMMA3: LlamaCpp = LlamaCpp {
    step_ms: 15.19,
    pass32_token_ms: 5.36,
};
