//! How an [`Llm`](crate::Llm) runs: its options.

use serde::{Deserialize, Serialize};

use crate::model::Precision;

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
