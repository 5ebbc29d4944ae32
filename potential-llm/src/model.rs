//! The weights of a llama-architecture GGUF model and a forward pass that
//! serves a batch of sequences, each with a key-value cache of its own.
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

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

use crate::error::LoadError;
use crate::llm::Precision;

/// The hyper-parameters read from the GGUF metadata (`llama.*` keys).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) n_layer: usize,
    pub(crate) dim: usize,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
    pub(crate) ffn_dim: usize,
    pub(crate) rope_base: f32,
    pub(crate) eps: f32,
    pub(crate) context_length: usize,
    pub(crate) n_vocab: usize,
}

impl Config {
    /// Floats of keys (or of values) per token and layer.
    pub(crate) fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}

/// A block's tensors as the file has them.
struct RawLayer {
    name: String,
    attn_norm: QTensor,
    qkv: [QTensor; 3],
    wo: QTensor,
    ffn_norm: QTensor,
    gate_up: [QTensor; 2],
    down: QTensor,
}

impl RawLayer {
    fn build(self, precision: Precision) -> Result<Layer, LoadError> {
        let p = &self.name;
        Ok(Layer {
            attn_norm: norm(self.attn_norm, &format!("{p}.attn_norm"))?,
            wqkv: stack(&self.qkv, &format!("{p}.attn_qkv"), precision)?,
            wo: matmul(self.wo, &format!("{p}.attn_output"), precision)?,
            ffn_norm: norm(self.ffn_norm, &format!("{p}.ffn_norm"))?,
            w_gate_up: stack(&self.gate_up, &format!("{p}.ffn_gate_up"), precision)?,
            w_down: matmul(self.down, &format!("{p}.ffn_down"), precision)?,
        })
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Queries, keys and values in one matrix (their rows stacked), so that
    /// one matmul serves all three.
    wqkv: Linear,
    wo: Linear,
    ffn_norm: Vec<f32>,
    /// Gate and up projections stacked, for the same reason.
    w_gate_up: Linear,
    w_down: Linear,
}

/// The model: its configuration and weights, immutable once loaded, so one
/// copy serves any number of sequences and threads.
pub(crate) struct Model {
    pub(crate) config: Config,
    /// The token embedding, dequantized (`n_vocab * dim`): a lookup per
    /// token reads one row.
    embedding: Vec<f32>,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// The output projection; `token_embd.weight` itself when the file has
    /// no `output.weight` (tied embeddings, as SmolLM2's).
    output: Linear,
    /// `cos` and `sin` of the rotary embedding per position and frequency
    /// (`context_length * head_dim / 2` each).
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
}

/// What the forward pass needs of one sequence: the keys and values cached
/// for its first positions, the new token ids and which of the new
/// positions want logits.
pub(crate) struct SeqInput<'a> {
    /// The cached positions, in order.
    pub(crate) past: &'a [KvRef<'a>],
    /// The tokens to run, at positions `past.len()..`.
    pub(crate) new_ids: &'a [u32],
    /// Logits are returned for new positions `logits_from..new_ids.len()`.
    pub(crate) logits_from: usize,
}

/// One cached position: a chunk of keys and values and the index of the
/// position within it.
#[derive(Clone, Copy)]
pub(crate) struct KvRef<'a> {
    pub(crate) chunk: &'a KvChunk,
    pub(crate) index: usize,
}

impl<'a> KvRef<'a> {
    fn key(self, layer: usize) -> &'a [f32] {
        self.chunk.key(layer, self.index)
    }

    fn value(self, layer: usize) -> &'a [f32] {
        self.chunk.value(layer, self.index)
    }
}

/// The keys and values of a run of consecutive positions, for every layer.
///
/// Layout: `[layer][k or v][position][kv_dim]`.
pub(crate) struct KvChunk {
    pub(crate) len: usize,
    data: Vec<f32>,
    kv_dim: usize,
}

impl KvChunk {
    fn new(config: &Config, len: usize) -> Self {
        KvChunk {
            len,
            data: vec![0.0; config.n_layer * 2 * len * config.kv_dim()],
            kv_dim: config.kv_dim(),
        }
    }

    fn offset(&self, layer: usize, which: usize, index: usize) -> usize {
        ((layer * 2 + which) * self.len + index) * self.kv_dim
    }

    fn key(&self, layer: usize, index: usize) -> &[f32] {
        let o = self.offset(layer, 0, index);
        &self.data[o..o + self.kv_dim]
    }

    fn value(&self, layer: usize, index: usize) -> &[f32] {
        let o = self.offset(layer, 1, index);
        &self.data[o..o + self.kv_dim]
    }

    fn key_value_mut(&mut self, layer: usize, index: usize) -> (&mut [f32], &mut [f32]) {
        let (k, v) = (self.offset(layer, 0, index), self.offset(layer, 1, index));
        let d = self.kv_dim;
        // k comes before v in the layout, so splitting at v separates them.
        let (head, tail) = self.data.split_at_mut(v);
        (&mut head[k..k + d], &mut tail[..d])
    }

    /// Bytes of keys and values held.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

/// The result for one sequence: the keys and values of its new positions
/// and the logits asked for (`[n_rows][n_vocab]`, flattened).
pub(crate) struct SeqOutput {
    pub(crate) kv: KvChunk,
    pub(crate) logits: Vec<f32>,
}

fn candle_err(what: &str) -> impl FnOnce(candle_core::Error) -> LoadError + '_ {
    move |e| LoadError::Invalid(format!("{what}: {e}"))
}

fn meta<'a>(content: &'a Content, key: &str) -> Result<&'a Value, LoadError> {
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

/// Reads the GGUF header and metadata of a file.
pub(crate) fn read_content(path: &Path) -> Result<(Content, BufReader<File>), LoadError> {
    let file = File::open(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let content = Content::read(&mut reader)
        .map_err(|e| LoadError::Invalid(format!("not a readable GGUF file: {e}")))?;
    Ok((content, reader))
}

impl Model {
    /// Loads the weights of a llama-architecture model from a GGUF file
    /// whose header has been read, for matmuls of the given precision.
    pub(crate) fn load(
        content: &Content,
        reader: &mut BufReader<File>,
        precision: Precision,
    ) -> Result<Self, LoadError> {
        let arch = meta(content, "general.architecture")?
            .to_string()
            .map_err(|e| LoadError::Invalid(format!("general.architecture: {e}")))?;
        if arch != "llama" {
            return Err(LoadError::Architecture(arch.clone()));
        }
        let n_head = meta_usize(content, "llama.attention.head_count")?;
        let n_kv_head = meta_usize(content, "llama.attention.head_count_kv").unwrap_or(n_head);
        let dim = meta_usize(content, "llama.embedding_length")?;
        let config = Config {
            n_layer: meta_usize(content, "llama.block_count")?,
            dim,
            n_head,
            n_kv_head,
            head_dim: dim.checked_div(n_head).unwrap_or(0),
            ffn_dim: meta_usize(content, "llama.feed_forward_length")?,
            rope_base: meta_f32(content, "llama.rope.freq_base").unwrap_or(10_000.0),
            eps: meta_f32(content, "llama.attention.layer_norm_rms_epsilon")?,
            context_length: meta_usize(content, "llama.context_length")?,
            n_vocab: 0, // from the embedding below
        };
        if n_head == 0
            || n_kv_head == 0
            || n_head % n_kv_head != 0
            || dim % n_head != 0
            || !config.head_dim.is_multiple_of(2)
        {
            return Err(LoadError::Invalid(format!(
                "unsupported attention shape: {dim} dims, {n_head} heads, {n_kv_head} key-value heads"
            )));
        }
        let device = Device::Cpu;
        let mut tensor = |name: &str| -> Result<QTensor, LoadError> {
            if !content.tensor_infos.contains_key(name) {
                return Err(LoadError::MissingTensor(name.to_string()));
            }
            content
                .tensor(reader, name, &device)
                .map_err(|e| LoadError::Invalid(format!("tensor `{name}`: {e}")))
        };
        let embd = tensor("token_embd.weight")?;
        let (n_vocab, embd_dim) = embd.shape().dims2().map_err(candle_err("token_embd"))?;
        if embd_dim != dim {
            return Err(LoadError::Invalid(format!(
                "token_embd.weight has {embd_dim} columns, embedding_length is {dim}"
            )));
        }
        let config = Config { n_vocab, ..config };
        let embedding = embd
            .dequantize(&device)
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(candle_err("token_embd.weight"))?;
        let kv_dim = config.kv_dim();
        // The file is read in order; turning the tensors into matmuls
        // (stacking, requantizing) then runs on every core, a few layers
        // each, since it is most of the loading time.
        let mut raw = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let p = format!("blk.{i}");
            let mut t = |s: &str, rows: usize, cols: usize| {
                check_shape(
                    tensor(&format!("{p}.{s}.weight"))?,
                    &format!("{p}.{s}"),
                    rows,
                    cols,
                )
            };
            let f = config.ffn_dim;
            raw.push(RawLayer {
                name: p.clone(),
                attn_norm: t("attn_norm", 1, dim)?,
                qkv: [
                    t("attn_q", dim, dim)?,
                    t("attn_k", kv_dim, dim)?,
                    t("attn_v", kv_dim, dim)?,
                ],
                wo: t("attn_output", dim, dim)?,
                ffn_norm: t("ffn_norm", 1, dim)?,
                gate_up: [t("ffn_gate", f, dim)?, t("ffn_up", f, dim)?],
                down: t("ffn_down", dim, f)?,
            });
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = raw.len().div_ceil(threads).max(1);
        let mut groups: Vec<Vec<RawLayer>> = Vec::new();
        let mut rest = raw.into_iter().peekable();
        while rest.peek().is_some() {
            groups.push(rest.by_ref().take(per_thread).collect());
        }
        let layers = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|group| {
                    scope.spawn(move || {
                        group
                            .into_iter()
                            .map(|layer| layer.build(precision))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut layers = Vec::with_capacity(config.n_layer);
            for h in handles {
                let built = h
                    .join()
                    .map_err(|_| LoadError::Invalid("a loading thread panicked".into()))??;
                layers.extend(built);
            }
            Ok::<_, LoadError>(layers)
        })?;
        let output_norm = norm(
            check_shape(tensor("output_norm.weight")?, "output_norm", 1, dim)?,
            "output_norm",
        )?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            check_shape(tensor("output.weight")?, "output", n_vocab, dim)?
        } else {
            embd
        };
        let output = matmul(output, "output", precision)?;
        let (rope_cos, rope_sin) = rope_tables(&config);
        Ok(Model {
            config,
            embedding,
            layers,
            output_norm,
            output,
            rope_cos,
            rope_sin,
        })
    }

    /// Runs the new tokens of every sequence through the model in one pass.
    ///
    /// The caller checks that every id is below `n_vocab` and that no
    /// sequence runs past the context length.
    pub(crate) fn forward(&self, seqs: &[SeqInput<'_>]) -> candle_core::Result<Vec<SeqOutput>> {
        let c = &self.config;
        let (dim, hd, kv_dim) = (c.dim, c.head_dim, c.kv_dim());
        let q_dim = c.n_head * hd;
        let n: usize = seqs.iter().map(|s| s.new_ids.len()).sum();
        // Where each new token sits: its sequence and its absolute position.
        let mut rows = Vec::with_capacity(n);
        for (s, seq) in seqs.iter().enumerate() {
            for i in 0..seq.new_ids.len() {
                rows.push((s, seq.past.len() + i));
            }
        }
        let mut x = Vec::with_capacity(n * dim);
        for seq in seqs {
            for &id in seq.new_ids {
                let id = id as usize;
                x.extend_from_slice(&self.embedding[id * dim..(id + 1) * dim]);
            }
        }
        let mut out_kv: Vec<KvChunk> = seqs
            .iter()
            .map(|s| KvChunk::new(c, s.new_ids.len()))
            .collect();
        let mut h = vec![0.0_f32; n * dim];
        let mut attn = vec![0.0_f32; n * q_dim];
        let mut scores = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            rms_norm(&x, &layer.attn_norm, c.eps, &mut h);
            let qkv = apply(&layer.wqkv, &h, n, dim)?;
            let width = q_dim + 2 * kv_dim;
            let mut q = vec![0.0_f32; n * q_dim];
            for (r, &(s, pos)) in rows.iter().enumerate() {
                let row = &qkv[r * width..(r + 1) * width];
                let qr = &mut q[r * q_dim..(r + 1) * q_dim];
                qr.copy_from_slice(&row[..q_dim]);
                self.rope(qr, pos);
                let index = pos - seqs[s].past.len();
                let (k, v) = out_kv[s].key_value_mut(l, index);
                k.copy_from_slice(&row[q_dim..q_dim + kv_dim]);
                self.rope(k, pos);
                v.copy_from_slice(&row[q_dim + kv_dim..]);
            }
            let mut r = 0;
            for (s, seq) in seqs.iter().enumerate() {
                let new = &out_kv[s];
                for i in 0..seq.new_ids.len() {
                    self.attend(
                        l,
                        seq.past,
                        new,
                        i,
                        &q[r * q_dim..(r + 1) * q_dim],
                        &mut attn[r * q_dim..(r + 1) * q_dim],
                        &mut scores,
                    );
                    r += 1;
                }
            }
            let o = apply(&layer.wo, &attn, n, q_dim)?;
            add(&mut x, &o);
            rms_norm(&x, &layer.ffn_norm, c.eps, &mut h);
            let gu = apply(&layer.w_gate_up, &h, n, dim)?;
            let f = c.ffn_dim;
            let mut act = vec![0.0_f32; n * f];
            for (r, a) in act.chunks_exact_mut(f).enumerate() {
                let (g, u) = gu[r * 2 * f..(r + 1) * 2 * f].split_at(f);
                for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                    *a = g / (1.0 + (-g).exp()) * u;
                }
            }
            let d = apply(&layer.w_down, &act, n, f)?;
            add(&mut x, &d);
        }
        // Only the rows asked for go through the output projection, the
        // costliest matmul (n_vocab rows).
        let mut wanted = Vec::new();
        let mut r = 0;
        for seq in seqs {
            for i in 0..seq.new_ids.len() {
                if i >= seq.logits_from {
                    wanted.extend_from_slice(&x[(r + i) * dim..(r + i + 1) * dim]);
                }
            }
            r += seq.new_ids.len();
        }
        let m = wanted.len() / dim;
        let mut normed = vec![0.0_f32; wanted.len()];
        rms_norm(&wanted, &self.output_norm, c.eps, &mut normed);
        let logits = if m == 0 {
            Vec::new()
        } else {
            apply(&self.output, &normed, m, dim)?
        };
        let mut outputs = Vec::with_capacity(seqs.len());
        let mut at = 0;
        for (seq, kv) in seqs.iter().zip(out_kv) {
            let rows = seq.new_ids.len().saturating_sub(seq.logits_from);
            let end = at + rows * c.n_vocab;
            outputs.push(SeqOutput {
                kv,
                logits: logits[at..end].to_vec(),
            });
            at = end;
        }
        Ok(outputs)
    }

    /// Rotates consecutive pairs of each head (llama.cpp's layout, which
    /// GGUF converters permute the query and key weights for).
    fn rope(&self, v: &mut [f32], pos: usize) {
        let half = self.config.head_dim / 2;
        let cos = &self.rope_cos[pos * half..(pos + 1) * half];
        let sin = &self.rope_sin[pos * half..(pos + 1) * half];
        for head in v.chunks_exact_mut(self.config.head_dim) {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * cos[i] - b * sin[i];
                pair[1] = a * sin[i] + b * cos[i];
            }
        }
    }

    /// Attention of new token `i` of a sequence (all heads) over the cached
    /// positions and the new positions up to itself; writes `out`.
    #[allow(clippy::too_many_arguments)] // one token's attention needs all of them
    fn attend(
        &self,
        layer: usize,
        past: &[KvRef<'_>],
        new: &KvChunk,
        i: usize,
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let c = &self.config;
        let hd = c.head_dim;
        let group = c.n_head / c.n_kv_head;
        let scale = 1.0 / (hd as f32).sqrt();
        let len = past.len() + i + 1;
        for head in 0..c.n_head {
            let kv_off = (head / group) * hd;
            let qh = &q[head * hd..(head + 1) * hd];
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for p in 0..len {
                let at = position(past, new, p);
                let s = dot(qh, &at.key(layer)[kv_off..kv_off + hd]) * scale;
                max = max.max(s);
                scores.push(s);
            }
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                total += *s;
            }
            let oh = &mut out[head * hd..(head + 1) * hd];
            oh.fill(0.0);
            for (p, &w) in scores.iter().enumerate() {
                let w = w / total;
                for (o, &v) in oh
                    .iter_mut()
                    .zip(&position(past, new, p).value(layer)[kv_off..kv_off + hd])
                {
                    *o += w * v;
                }
            }
        }
    }
}

/// Position `p` of a sequence: a cached one or one of the current pass.
fn position<'a>(past: &[KvRef<'a>], new: &'a KvChunk, p: usize) -> KvRef<'a> {
    match past.get(p) {
        Some(&r) => r,
        None => KvRef {
            chunk: new,
            index: p - past.len(),
        },
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler vectorize without reassociating.
    let mut acc = [0.0_f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
            *o = v * inv * w;
        }
    }
}

/// A weight matrix as a quantized matmul, its rows padded with zero
/// blocks to `k_pad` columns where that opens a faster kernel.
struct Linear {
    mm: QMatMul,
    k_pad: usize,
}

/// `x @ w^T` for `x` of `m` rows of `k` floats.
fn apply(w: &Linear, x: &[f32], m: usize, k: usize) -> candle_core::Result<Vec<f32>> {
    let t = if w.k_pad > k {
        let mut padded = vec![0.0_f32; m * w.k_pad];
        for (dst, src) in padded.chunks_exact_mut(w.k_pad).zip(x.chunks_exact(k)) {
            dst[..k].copy_from_slice(src);
        }
        Tensor::from_vec(padded, (m, w.k_pad), &Device::Cpu)?
    } else {
        Tensor::from_slice(x, (m, k), &Device::Cpu)?
    };
    w.mm.forward(&t)?.flatten_all()?.to_vec1::<f32>()
}

/// Whether candle's repacked Q8_0 kernels (AVX-512 VNNI or AVX-VNNI) run
/// here; they need rows of a multiple of 256 values.
fn vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni"))
            || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Where the VNNI kernels are, candle runs a Q8_0 matrix through its
/// repacked kernel exactly when the rows hold a multiple of this many
/// values; that kernel rounds the input in blocks of as many (Q8_K).
const PAD_TO: usize = 256;

/// Pads Q8_0 rows with zero blocks (which add exactly nothing to a dot
/// product) to choose candle's kernel on a VNNI CPU: to a multiple of
/// [`PAD_TO`] for [`Precision::Blocks256`] (SmolLM2's 576 are not one),
/// and by one block off such a multiple for [`Precision::Blocks32`], so
/// that its input is rounded in blocks of 32 as on every other CPU.
fn pad_rows(t: QTensor, name: &str, precision: Precision) -> Result<(QTensor, usize), LoadError> {
    let (n, k) = t.shape().dims2().map_err(candle_err(name))?;
    let per_block = GgmlDType::Q8_0.block_size();
    if t.dtype() != GgmlDType::Q8_0 || !vnni() {
        return Ok((t, k));
    }
    let k_pad = match precision {
        Precision::Blocks256 if !k.is_multiple_of(PAD_TO) => k.next_multiple_of(PAD_TO),
        Precision::Blocks32 if k.is_multiple_of(PAD_TO) => k + per_block,
        _ => return Ok((t, k)),
    };
    let block = GgmlDType::Q8_0.type_size();
    let (row, pad) = (k / per_block * block, (k_pad - k) / per_block * block);
    let data = t.data().map_err(candle_err(name))?;
    let mut padded = Vec::with_capacity(n * (row + pad));
    for r in data.chunks_exact(row) {
        padded.extend_from_slice(r);
        padded.resize(padded.len() + pad, 0);
    }
    let storage = QStorage::from_data(Cow::Owned(padded), &Device::Cpu, GgmlDType::Q8_0)
        .map_err(candle_err(name))?;
    let t = QTensor::new(storage, (n, k_pad)).map_err(candle_err(name))?;
    Ok((t, k_pad))
}

fn rope_tables(c: &Config) -> (Vec<f32>, Vec<f32>) {
    let half = c.head_dim / 2;
    let mut cos = Vec::with_capacity(c.context_length * half);
    let mut sin = Vec::with_capacity(c.context_length * half);
    for pos in 0..c.context_length {
        for i in 0..half {
            let freq = 1.0 / c.rope_base.powf(2.0 * i as f32 / c.head_dim as f32);
            let angle = pos as f32 * freq;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

/// Checks a matrix's shape; `rows == 1` also accepts a vector of `cols`
/// values, as norms are stored.
fn check_shape(t: QTensor, name: &str, rows: usize, cols: usize) -> Result<QTensor, LoadError> {
    let dims = t.shape().dims().to_vec();
    if dims != [rows, cols] && !(rows == 1 && dims == [cols]) {
        return Err(LoadError::Invalid(format!(
            "tensor `{name}` has shape {dims:?}, expected [{rows}, {cols}]"
        )));
    }
    Ok(t)
}

fn norm(t: QTensor, name: &str) -> Result<Vec<f32>, LoadError> {
    t.dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(candle_err(name))
}

/// Block types whose dot product candle 0.11 runs as a scalar loop on
/// x86 (`vec_dot_unopt`): SmolLM2's Q4_1 layers spent three quarters of a
/// step there. Such matrices are requantized to Q8_0 at load, whose dot
/// product has an AVX2 kernel: each Q4_1 value moves by at most a
/// 254th of its block's largest magnitude (a few percent of one Q4_1
/// step), for three to four times the speed and 1.7 times the memory.
const SLOW_ON_CPU: &[GgmlDType] = &[GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

fn requantize_if_slow(t: QTensor, name: &str) -> Result<QTensor, LoadError> {
    if !SLOW_ON_CPU.contains(&t.dtype()) {
        return Ok(t);
    }
    if t.dtype() == GgmlDType::Q4_1 {
        let shape = t.shape().clone();
        let data = q4_1_to_q8_0(&t.data().map_err(candle_err(name))?);
        let storage = QStorage::from_data(Cow::Owned(data), &Device::Cpu, GgmlDType::Q8_0)
            .map_err(candle_err(name))?;
        return QTensor::new(storage, shape).map_err(candle_err(name));
    }
    t.dequantize(&Device::Cpu)
        .and_then(|f| QTensor::quantize(&f, GgmlDType::Q8_0))
        .map_err(candle_err(name))
}

/// Q4_1 blocks (f16 scale, f16 minimum, 32 nibbles) to Q8_0 blocks (f16
/// scale, 32 signed bytes), value for value as candle's dequantize then
/// quantize compute them, without the `f32` matrix in between (loading
/// SmolLM2 spent a third of its time there).
fn q4_1_to_q8_0(data: &[u8]) -> Vec<u8> {
    const Q4_1: usize = 20;
    const Q8_0: usize = 34;
    let mut out = Vec::with_capacity(data.len() / Q4_1 * Q8_0);
    let mut x = [0.0_f32; 32];
    for block in data.chunks_exact(Q4_1) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let m = f16::from_le_bytes([block[2], block[3]]).to_f32();
        for (j, &q) in block[4..].iter().enumerate() {
            x[j] = f32::from(q & 0x0F) * d + m;
            x[j + 16] = f32::from(q >> 4) * d + m;
        }
        let amax = x.iter().fold(0.0_f32, |a, v| a.max(v.abs()));
        let scale = amax / 127.0;
        let inverse = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(scale).to_le_bytes());
        out.extend(x.iter().map(|v| round_half_away(v * inverse) as i8 as u8));
    }
    out
}

/// `r.round()` for `|r| <= 127` without a call to libm's `roundf`, which
/// took a third of the conversion: the cast truncates, and `r - t` is
/// exact for such values.
fn round_half_away(r: f32) -> i32 {
    let t = r as i32;
    let frac = r - t as f32;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

fn matmul(t: QTensor, name: &str, precision: Precision) -> Result<Linear, LoadError> {
    if precision == Precision::Exact {
        // The file's values, dequantized once: `f32` matmuls from then on.
        let k = t.shape().dims2().map_err(candle_err(name))?.1;
        let w = t.dequantize(&Device::Cpu).map_err(candle_err(name))?;
        return Ok(Linear {
            mm: QMatMul::Tensor(w),
            k_pad: k,
        });
    }
    let (t, k_pad) = pad_rows(requantize_if_slow(t, name)?, name, precision)?;
    let mm = QMatMul::from_arc(Arc::new(t)).map_err(candle_err(name))?;
    Ok(Linear { mm, k_pad })
}

/// One matrix whose rows are those of `parts` in order. Quantized blocks
/// run along rows, so stacking is concatenating the raw data; parts of
/// different types are dequantized and stacked as `f32`.
fn stack(parts: &[QTensor], name: &str, precision: Precision) -> Result<Linear, LoadError> {
    let cols = parts[0].shape().dims()[1];
    let rows: usize = parts.iter().map(|t| t.shape().dims()[0]).sum();
    let dtype = parts[0].dtype();
    let stacked = if parts.iter().all(|t| t.dtype() == dtype) {
        let mut data = Vec::new();
        for t in parts {
            data.extend_from_slice(&t.data().map_err(candle_err(name))?);
        }
        let storage =
            QStorage::from_data(Cow::Owned(data), &Device::Cpu, dtype).map_err(candle_err(name))?;
        QTensor::new(storage, (rows, cols)).map_err(candle_err(name))?
    } else {
        let tensors = parts
            .iter()
            .map(|t| t.dequantize(&Device::Cpu))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(candle_err(name))?;
        let joined = Tensor::cat(&tensors, 0).map_err(candle_err(name))?;
        QTensor::quantize(&joined, GgmlDType::F32).map_err(candle_err(name))?
    };
    matmul(stacked, name, precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_the_standard_library() {
        for i in -127_000..=127_000 {
            let r = i as f32 / 1000.0;
            assert_eq!(round_half_away(r), r.round() as i32, "{r}");
        }
        for r in [
            0.5_f32,
            -0.5,
            1.5,
            -2.5,
            0.49999997,
            -0.49999997,
            126.5,
            -127.0,
        ] {
            assert_eq!(round_half_away(r), r.round() as i32, "{r}");
        }
    }

    #[test]
    fn q4_1_to_q8_0_matches_candles_dequantize_then_quantize() {
        let values: Vec<f32> = (0..32 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Tensor::from_vec(values, (8, 256), &Device::Cpu).unwrap();
        let q4 = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        let via_f32 =
            QTensor::quantize(&q4.dequantize(&Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap();
        let direct = requantize_if_slow(q4, "test").unwrap();
        assert_eq!(direct.dtype(), GgmlDType::Q8_0);
        assert_eq!(direct.shape(), via_f32.shape());
        assert_eq!(direct.data().unwrap(), via_f32.data().unwrap());
    }
}
