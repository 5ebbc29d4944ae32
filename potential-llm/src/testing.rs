//! A tiny llama-architecture GGUF model for tests that need no download.
//!
//! [`TinyModel::write`] writes a file with random weights (quantized as
//! SmolLM2's are: Q4_1 layer matrices, a Q8_0 embedding tied to the
//! output, F32 norms), a byte-level BPE vocabulary of a few hundred tokens
//! (three special tokens, the 256 bytes and a handful of merges) and the
//! metadata a real model carries, so that it loads through the same code
//! path as SmolLM2.
//!
//! ```
//! use potential_llm::testing::TinyModel;
//! use potential_llm::{Llm, LlmOptions};
//! use potential_core::Potential;
//!
//! let dir = std::env::temp_dir().join(format!("tiny-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("tiny.gguf");
//! TinyModel::default().write(&path)?;
//! let llm = Llm::open_plain(&path, LlmOptions { prompt: "the cat".into(), ..LlmOptions::default() })?;
//! assert_eq!(llm.vocab().len(), TinyModel::VOCAB_LEN);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::error::LoadError;
use crate::tokens::byte_level_text;

/// The shape and the deliberate defects of a tiny test model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyModel {
    /// Seeds the random weights.
    pub seed: u64,
    /// `general.architecture` (`llama`; anything else must be refused).
    pub architecture: String,
    /// A tensor to leave out of the file (its loading must fail clearly).
    pub omit_tensor: Option<String>,
    /// Transformer blocks.
    pub layers: usize,
    /// The context length written in the metadata.
    pub context_length: usize,
}

impl Default for TinyModel {
    fn default() -> Self {
        TinyModel {
            seed: 7,
            architecture: "llama".into(),
            omit_tensor: None,
            layers: 2,
            context_length: 256,
        }
    }
}

/// Merges after the 256 bytes, in rank order (GPT-2 alphabet: `Ġ` is a
/// space); each result is a token.
const MERGES: &[(&str, &str)] = &[
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("Ġ", "c"),
    ("a", "t"),
    ("Ġc", "at"),
    ("Ġ", "s"),
    ("Ġs", "at"),
    ("i", "n"),
    ("Ġ", "a"),
    ("o", "n"),
    ("Ġ", "m"),
    ("Ġm", "at"),
    ("e", "r"),
    ("Ġ", "d"),
    ("o", "g"),
    ("Ġd", "og"),
];

/// The special tokens, first in the vocabulary as in SmolLM2: unknown,
/// beginning and end of sequence.
const SPECIALS: &[&str] = &["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

const DIM: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 128;

impl TinyModel {
    /// Tokens in the potential's vocabulary: the bytes and the merges (the
    /// special tokens are left out).
    pub const VOCAB_LEN: usize = 256 + MERGES.len();

    /// Writes the model to `path`.
    pub fn write(&self, path: &Path) -> Result<(), LoadError> {
        let err = |e: candle_core::Error| LoadError::Invalid(format!("writing a tiny model: {e}"));
        let mut texts: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
        let mut types = vec![3_i32; SPECIALS.len()]; // control
        for b in 0..=255_u8 {
            texts.push(byte_level_text(&[b]));
            types.push(1);
        }
        for (a, b) in MERGES {
            texts.push(format!("{a}{b}"));
            types.push(1);
        }
        let n_vocab = texts.len();
        let tensors = self.tensors(n_vocab).map_err(err)?;
        let string = |s: &str| Value::String(s.to_string());
        let u32v = |n: usize| Value::U32(n as u32);
        let metadata: Vec<(&str, Value)> = vec![
            ("general.architecture", string(&self.architecture)),
            ("general.name", string("tiny test model")),
            ("llama.block_count", u32v(self.layers)),
            ("llama.context_length", u32v(self.context_length)),
            ("llama.embedding_length", u32v(DIM)),
            ("llama.feed_forward_length", u32v(FFN)),
            ("llama.attention.head_count", u32v(HEADS)),
            ("llama.attention.head_count_kv", u32v(KV_HEADS)),
            ("llama.rope.freq_base", Value::F32(10_000.0)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("llama.vocab_size", u32v(n_vocab)),
            ("tokenizer.ggml.model", string("gpt2")),
            ("tokenizer.ggml.pre", string("smollm")),
            (
                "tokenizer.ggml.tokens",
                Value::Array(texts.iter().map(|t| string(t)).collect()),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.merges",
                Value::Array(
                    MERGES
                        .iter()
                        .map(|(a, b)| string(&format!("{a} {b}")))
                        .collect(),
                ),
            ),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
            ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
            ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ];
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let file = File::create(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
        let mut w = BufWriter::new(file);
        gguf_file::write(&mut w, &metadata, &tensors).map_err(err)?;
        w.into_inner()
            .map_err(|e| LoadError::Io(path.to_path_buf(), e.into_error()))?
            .sync_all()
            .map_err(|e| LoadError::Io(path.to_path_buf(), e))
    }

    /// The tensors: random weights quantized as SmolLM2's are, unit norms,
    /// without the one [`TinyModel::omit_tensor`] names.
    fn tensors(&self, n_vocab: usize) -> candle_core::Result<Vec<(String, QTensor)>> {
        let kv_dim = DIM / HEADS * KV_HEADS;
        let mut rng = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut random = |rows: usize, cols: usize, scale: f32| -> candle_core::Result<Tensor> {
            let values: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    // xorshift64*: deterministic weights without a dependency.
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    let u = (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32
                        / (1u64 << 24) as f32;
                    (2.0 * u - 1.0) * scale
                })
                .collect();
            Tensor::from_vec(values, (rows, cols), &Device::Cpu)
        };
        let q = |t: Tensor, dtype: GgmlDType| QTensor::quantize(&t, dtype);
        let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu);
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        tensors.push((
            "token_embd.weight".into(),
            q(random(n_vocab, DIM, 1.0)?, GgmlDType::Q8_0)?,
        ));
        for i in 0..self.layers {
            let mut layer = |name: &str, rows: usize, cols: usize| -> candle_core::Result<()> {
                let scale = 1.0 / (cols as f32).sqrt();
                let t = q(random(rows, cols, scale * 1.7)?, GgmlDType::Q4_1)?;
                tensors.push((format!("blk.{i}.{name}.weight"), t));
                Ok(())
            };
            layer("attn_q", DIM, DIM)?;
            layer("attn_k", kv_dim, DIM)?;
            layer("attn_v", kv_dim, DIM)?;
            layer("attn_output", DIM, DIM)?;
            layer("ffn_gate", FFN, DIM)?;
            layer("ffn_up", FFN, DIM)?;
            layer("ffn_down", DIM, FFN)?;
            for norm in ["attn_norm", "ffn_norm"] {
                let t = q(ones(DIM)?, GgmlDType::F32)?;
                tensors.push((format!("blk.{i}.{norm}.weight"), t));
            }
        }
        tensors.push(("output_norm.weight".into(), q(ones(DIM)?, GgmlDType::F32)?));
        if let Some(omit) = &self.omit_tensor {
            tensors.retain(|(name, _)| name != omit);
        }

        Ok(tensors)
    }
}

/// A real model's path for a test, or `None` (with a line saying why on
/// standard output) when it was not fetched, so that the test skips;
/// under `POTENTIAL_REQUIRE_MODEL=1` (set by `.ci/run`) a missing model
/// panics instead, so that CI cannot pass by skipping.
///
/// ```
/// use potential_llm::testing::model_or_skip;
/// let missing: Result<std::path::PathBuf, String> = Err("no file here".into());
/// if std::env::var("POTENTIAL_REQUIRE_MODEL").as_deref() != Ok("1") {
///     assert_eq!(model_or_skip("a doc test", missing), None);
/// }
/// ```
pub fn model_or_skip<E: std::fmt::Display>(
    test: &str,
    found: Result<std::path::PathBuf, E>,
) -> Option<std::path::PathBuf> {
    match found {
        Ok(path) => Some(path),
        Err(e) if std::env::var("POTENTIAL_REQUIRE_MODEL").as_deref() == Ok("1") => {
            panic!("{test}: POTENTIAL_REQUIRE_MODEL=1 and {e}")
        }
        Err(e) => {
            println!("{test}: skipped: {e}");
            None
        }
    }
}
