//! The model families and the hyper-parameters read from a GGUF file's
//! metadata (`general.architecture`, then `{architecture}.*` keys).

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::LoadError;

/// The architectures the forward pass knows, chosen by the file's
/// `general.architecture`. A new family adds a variant here, its
/// hyper-parameters in [`Config::from_gguf`] and its tensor names in
/// `load`; the forward pass reads only the [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `llama` (SmolLM2 and most small instruct models): pre-norms, SiLU
    /// gate, rotary embedding on consecutive pairs.
    Llama,
    /// `gemma3`: pre- and post-norms, RMS norms on each query and key head,
    /// GELU (tanh) gate, the embedding scaled by `sqrt(dim)`, sliding-window
    /// layers (rope base 10,000) between global ones (the file's base),
    /// rotary embedding on halves.
    Gemma3,
}

impl Family {
    /// The family of a `general.architecture` value; anything else is
    /// [`LoadError::Architecture`].
    pub(crate) fn from_architecture(arch: &str) -> Result<Family, LoadError> {
        match arch {
            "llama" => Ok(Family::Llama),
            "gemma3" => Ok(Family::Gemma3),
            other => Err(LoadError::Architecture(other.to_string())),
        }
    }
}

/// How a rotary embedding pairs the values of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// Consecutive pairs `(2i, 2i + 1)` (llama in GGUF).
    Pairs,
    /// `(i, i + head_dim / 2)` (NeoX; Gemma).
    Halves,
}

/// The gate's activation in the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// SwiGLU (llama).
    Silu,
    /// GeGLU with the tanh approximation of GELU (Gemma).
    GeluTanh,
}

/// The hyper-parameters of a model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) family: Family,
    pub(crate) n_layer: usize,
    pub(crate) dim: usize,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
    pub(crate) ffn_dim: usize,
    /// The rope base of the global layers (of every layer without a
    /// sliding window).
    pub(crate) rope_base: f32,
    /// The rope base of the sliding-window layers.
    pub(crate) rope_local_base: f32,
    pub(crate) rope_style: RopeStyle,
    pub(crate) activation: Activation,
    /// The embedding is multiplied by it (`sqrt(dim)` for Gemma, 1 else).
    pub(crate) embed_scale: f32,
    /// Keys a sliding-window layer sees: positions `p0` with
    /// `p - p0 < window`.
    pub(crate) sliding_window: Option<usize>,
    /// Every `swa_pattern`-th layer (the last of each group) is global,
    /// the others slide (Gemma 3: 6).
    pub(crate) swa_pattern: usize,
    pub(crate) eps: f32,
    pub(crate) context_length: usize,
    pub(crate) n_vocab: usize,
}

impl Config {
    /// Floats of keys (or of values) per token and layer.
    pub(crate) fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Floats of queries per token.
    pub(crate) fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The window of layer `l`, `None` for a global layer.
    pub(crate) fn window(&self, l: usize) -> Option<usize> {
        self.sliding_window
            .filter(|_| self.swa_pattern > 0 && !(l + 1).is_multiple_of(self.swa_pattern))
    }

    /// Which of the model's rotary embeddings layer `l` uses: 0 global, 1
    /// local.
    pub(crate) fn layer_rope(&self, l: usize) -> usize {
        usize::from(self.window(l).is_some())
    }

    /// Reads the hyper-parameters of a file; `n_vocab` is 0 until the
    /// embedding is read.
    pub(crate) fn from_gguf(content: &Content) -> Result<Config, LoadError> {
        let arch = meta(content, "general.architecture")?
            .to_string()
            .map_err(|e| LoadError::Invalid(format!("general.architecture: {e}")))?;
        let family = Family::from_architecture(arch)?;
        let key = |k: &str| format!("{arch}.{k}");
        let n_head = meta_usize(content, &key("attention.head_count"))?;
        let n_kv_head = meta_usize(content, &key("attention.head_count_kv")).unwrap_or(n_head);
        let dim = meta_usize(content, &key("embedding_length"))?;
        let head_dim = meta_usize(content, &key("attention.key_length"))
            .unwrap_or_else(|_| dim.checked_div(n_head).unwrap_or(0));
        let rope_base = meta_f32(content, &key("rope.freq_base")).unwrap_or(10_000.0);
        let gemma = family == Family::Gemma3;
        let config = Config {
            family,
            n_layer: meta_usize(content, &key("block_count"))?,
            dim,
            n_head,
            n_kv_head,
            head_dim,
            ffn_dim: meta_usize(content, &key("feed_forward_length"))?,
            rope_base,
            // llama.cpp's value for Gemma 3's local layers (the GGUF has no
            // key for it).
            rope_local_base: if gemma { 10_000.0 } else { rope_base },
            rope_style: if gemma {
                RopeStyle::Halves
            } else {
                RopeStyle::Pairs
            },
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            embed_scale: if gemma { (dim as f32).sqrt() } else { 1.0 },
            sliding_window: if gemma {
                meta_usize(content, &key("attention.sliding_window")).ok()
            } else {
                None
            },
            swa_pattern: if gemma {
                meta_usize(content, &key("attention.sliding_window_pattern")).unwrap_or(6)
            } else {
                0
            },
            eps: meta_f32(content, &key("attention.layer_norm_rms_epsilon"))?,
            context_length: meta_usize(content, &key("context_length"))?,
            n_vocab: 0,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), LoadError> {
        let (n_head, n_kv_head) = (self.n_head, self.n_kv_head);
        if n_head == 0
            || n_kv_head == 0
            || n_head % n_kv_head != 0
            || self.head_dim == 0
            || !self.head_dim.is_multiple_of(2)
            || (self.family == Family::Llama && self.head_dim * n_head != self.dim)
        {
            return Err(LoadError::Invalid(format!(
                "unsupported attention shape: {} dims, {n_head} heads of {}, {n_kv_head} key-value heads",
                self.dim, self.head_dim
            )));
        }
        Ok(())
    }
}

pub(super) fn meta<'a>(content: &'a Content, key: &str) -> Result<&'a Value, LoadError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| LoadError::Invalid(format!("metadata key `{key}` is missing")))
}

fn meta_usize(content: &Content, key: &str) -> Result<usize, LoadError> {
    let v = meta(content, key)?;
    v.to_u64()
        .or_else(|_| v.to_u32().map(u64::from))
        .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
        .map(|x| x as usize)
        .map_err(|e| LoadError::Invalid(format!("metadata key `{key}`: {e}")))
}

fn meta_f32(content: &Content, key: &str) -> Result<f32, LoadError> {
    let v = meta(content, key)?;
    v.to_f32()
        .or_else(|_| v.to_f64().map(|x| x as f32))
        .map_err(|e| LoadError::Invalid(format!("metadata key `{key}`: {e}")))
}
