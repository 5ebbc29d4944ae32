//! The weights of a GGUF transformer (one of the [`Family`]s) and a forward
//! pass that serves a batch of sequences, each with a key-value cache of
//! its own.
//!
//! One idea per file:
//!
//! - `config`: the families and the hyper-parameters read from the
//!   metadata (`general.architecture` picks the family);
//! - `load`: reading the tensors and turning them into matmuls;
//! - `kernels`: the quantized matmul (candle's `QMatMul`) and the choices
//!   about block formats;
//! - `ops`: the element-wise steps (RMS norm, rotary embedding, dot
//!   products), plain loops over `f32`;
//! - `q8_0`: the Q8_0 matmul on AVX2 without VNNI (candle's sums, each
//!   weight block read once for a tile of activation rows);
//! - `precision`: what the matmuls round ([`Precision`], an option of
//!   the `Llm`);
//! - `kv`: the keys and values of a run of positions;
//! - `forward`: the pass itself.
//!
//! # How a batch runs
//!
//! The new tokens of every sequence in the batch are stacked into one
//! `[n_tokens, dim]` matrix, which goes through each linear layer as a
//! single quantized matmul (candle's `QMatMul` on the GGUF blocks; Q4_1
//! converted to Q8_0, and rows padded to choose candle's kernel, see
//! `SLOW_ON_CPU` and `pad_rows`): this is where batching pays, since the weights are read once per
//! layer for the whole batch instead of once per sequence. Attention then
//! runs per sequence, each new token against its own sequence's cached keys
//! and values followed by the new ones up to itself. Sequences of different
//! lengths therefore need neither padding nor a mask: grouping is implicit,
//! and no work is spent on padded positions. (Padding to the longest
//! sequence would make every linear layer pay for the padding too.)
//!
//! Attention and the element-wise steps (RMS norm, rotary embedding, SiLU)
//! are plain loops over `f32` slices rather than candle ops: at these sizes
//! (a few hundred floats a token) the per-op overhead of a tensor library
//! would cost more than the arithmetic, and the loops run in the same order
//! whether a position comes from a cache or from the current pass, so a
//! cached step gives the same numbers as a fresh computation.

mod config;
mod forward;
mod kernels;
mod kv;
mod load;
mod ops;
mod precision;
mod q8_0;

pub(crate) use config::{Config, Family};
pub(crate) use kv::{KvChunk, KvRef, SeqInput};
pub(crate) use load::read_content;
pub use precision::Precision;

use kernels::{Embedding, Linear};
use ops::Rope;

/// A block's weights, ready for the forward pass.
struct Layer {
    attn_norm: Vec<f32>,
    /// Queries, keys and values in one matrix (their rows stacked), so that
    /// one matmul serves all three.
    wqkv: Linear,
    /// RMS norms over each head of the queries and of the keys (Gemma 3).
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    wo: Linear,
    /// RMS norm of the attention's output before the residual (Gemma 3).
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    /// Gate and up projections stacked, for the same reason.
    w_gate_up: Linear,
    w_down: Linear,
    /// RMS norm of the feed-forward output before the residual (Gemma 3).
    post_ffn_norm: Option<Vec<f32>>,
}

/// The model: its configuration and weights, immutable once loaded, so one
/// copy serves any number of sequences and threads.
pub(crate) struct Model {
    pub(crate) config: Config,
    /// The token embedding as the file stores it: a lookup per token
    /// dequantizes one row.
    embedding: Embedding,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// The output projection; `token_embd.weight` itself when the file has
    /// no `output.weight` (tied embeddings, as SmolLM2's and Gemma's).
    output: Linear,
    /// The rotary embeddings: `ropes[config.layer_rope(l)]` for layer `l`.
    ropes: Vec<Rope>,
}
