//! The precision of the matmuls: what the forward pass rounds on the way.
//! (An option of the [`Llm`](crate::Llm), defined here because the
//! kernels and the loading depend on it, not the other way round.)

use serde::{Deserialize, Serialize};

/// How an [`Llm`](crate::Llm) multiplies by its weight matrices.
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
