//! How an [`Llm`](crate::Llm) runs: its options and the precision of its
//! matmuls.

use serde::{Deserialize, Serialize};

/// How an [`Llm`] runs: its prompt, temperature and cache budget.
///
/// ```
/// use potential_llm::LlmOptions;
/// let o = LlmOptions { prompt: "Once upon a time".into(), ..LlmOptions::default() };
/// assert_eq!(o.temperature, 1.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmOptions {
    /// The text whose tokens precede every context. Special tokens written
    /// in it (`<|im_start|>`) are encoded as such; see
    /// [`chat_prompt`](crate::chat_prompt). An empty prompt stands for the
    /// model's beginning-of-sequence token (a model without one needs a
    /// prompt).
    pub prompt: String,
    /// The logits are divided by it before the softmax; must be positive
    /// and finite. Default 1.
    pub temperature: f64,
    /// The most bytes of key-value caches and next-token weights kept
    /// between calls (least recently used out). Default 512 MiB; 0 keeps
    /// nothing.
    pub cache_bytes: usize,
    /// How the weight matrices multiply: [`Precision::Blocks32`] (the
    /// default), [`Precision::Blocks256`] or [`Precision::Exact`]. The
    /// crate docs give each one's measured distance from the file's own
    /// model.
    pub precision: Precision,
}

/// How an [`Llm`] multiplies by its weight matrices.
///
/// All use the file's weights; they differ in what they round on the way
/// (see the crate docs for the measured KL divergence of each from a
/// float32 reference on the same file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Quantized matmuls whose inputs are rounded to 8 bits in blocks of
    /// 32 values (Q8_0), as llama.cpp rounds them for these formats: the
    /// same kernel, and so the same numbers, on every x86 CPU with AVX2.
    #[default]
    Blocks32,
    /// Where the CPU has VNNI (AVX-512 VNNI or AVX-VNNI), rows padded for
    /// candle's repacked Q8_0 kernel, which rounds each input to 8 bits in
    /// blocks of 256 values (Q8_K): batches up to three times faster there,
    /// for a distance from the model about ten times that of
    /// [`Precision::Blocks32`]. Elsewhere it is `Blocks32`.
    Blocks256,
    /// Every weight matrix dequantized to `f32` once, at load, and `f32`
    /// matmuls: the file's model as a float32 reference computes it, for
    /// about four times the memory and a slower batch.
    Exact,
}

impl Default for LlmOptions {
    fn default() -> Self {
        LlmOptions {
            prompt: String::new(),
            temperature: 1.0,
            cache_bytes: 512 << 20,
            precision: Precision::Blocks32,
        }
    }
}
