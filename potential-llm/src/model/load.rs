//! Reading a GGUF file's tensors and turning them into the model's
//! matmuls and vectors.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Content;

use super::kernels::{Embedding, candle_err, matmul, stack};
use super::ops::Rope;
use super::precision::Precision;
use super::{Config, Family, Layer, Model};
use crate::error::LoadError;

/// Reads the GGUF header and metadata of a file.
pub(crate) fn read_content(path: &Path) -> Result<(Content, BufReader<File>), LoadError> {
    let file = File::open(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let content = Content::read(&mut reader).map_err(|e| {
        let e = e.to_string();
        if e.contains("unknown dtype") {
            LoadError::Invalid(format!(
                "the file holds a tensor format candle cannot read ({e}); supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q8_K"
            ))
        } else {
            LoadError::Invalid(format!("not a readable GGUF file: {e}"))
        }
    })?;
    Ok((content, reader))
}

/// The file's tensors, read by name.
struct Tensors<'a> {
    content: &'a Content,
    reader: &'a mut BufReader<File>,
}

impl Tensors<'_> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn get(&mut self, name: &str) -> Result<QTensor, LoadError> {
        if !self.has(name) {
            return Err(LoadError::MissingTensor(name.to_string()));
        }
        self.content
            .tensor(self.reader, name, &Device::Cpu)
            .map_err(|e| LoadError::Invalid(format!("tensor `{name}`: {e}")))
    }

    /// `name.weight`, checked to be `rows x cols` (`rows == 1`: a vector).
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<QTensor, LoadError> {
        check_shape(self.get(&format!("{name}.weight"))?, name, rows, cols)
    }
}

/// A block's tensors as the file has them.
struct RawLayer {
    name: String,
    attn_norm: QTensor,
    qkv: [QTensor; 3],
    q_norm: Option<QTensor>,
    k_norm: Option<QTensor>,
    wo: QTensor,
    post_attn_norm: Option<QTensor>,
    ffn_norm: QTensor,
    gate_up: [QTensor; 2],
    down: QTensor,
    post_ffn_norm: Option<QTensor>,
}

impl RawLayer {
    /// Reads block `i`; the families differ only in Gemma's four extra
    /// norms.
    fn read(t: &mut Tensors<'_>, c: &Config, i: usize) -> Result<RawLayer, LoadError> {
        let p = format!("blk.{i}");
        let (dim, q_dim, kv_dim, f) = (c.dim, c.q_dim(), c.kv_dim(), c.ffn_dim);
        let mut m = |s: &str, rows: usize, cols: usize| t.matrix(&format!("{p}.{s}"), rows, cols);
        let gemma = c.family == Family::Gemma3;
        let mut extra = |s: &str, cols: usize| -> Result<Option<QTensor>, LoadError> {
            if gemma {
                m(s, 1, cols).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(RawLayer {
            q_norm: extra("attn_q_norm", c.head_dim)?,
            k_norm: extra("attn_k_norm", c.head_dim)?,
            post_attn_norm: extra("post_attention_norm", dim)?,
            post_ffn_norm: extra("post_ffw_norm", dim)?,
            attn_norm: m("attn_norm", 1, dim)?,
            qkv: [
                m("attn_q", q_dim, dim)?,
                m("attn_k", kv_dim, dim)?,
                m("attn_v", kv_dim, dim)?,
            ],
            wo: m("attn_output", dim, q_dim)?,
            ffn_norm: m("ffn_norm", 1, dim)?,
            gate_up: [m("ffn_gate", f, dim)?, m("ffn_up", f, dim)?],
            down: m("ffn_down", dim, f)?,
            name: p,
        })
    }

    fn build(self, precision: Precision) -> Result<Layer, LoadError> {
        let p = &self.name;
        let opt = |t: Option<QTensor>, s: &str| t.map(|t| norm(t, &format!("{p}.{s}"))).transpose();
        Ok(Layer {
            attn_norm: norm(self.attn_norm, &format!("{p}.attn_norm"))?,
            wqkv: stack(Vec::from(self.qkv), &format!("{p}.attn_qkv"), precision)?,
            q_norm: opt(self.q_norm, "attn_q_norm")?,
            k_norm: opt(self.k_norm, "attn_k_norm")?,
            wo: matmul(self.wo, &format!("{p}.attn_output"), precision)?,
            post_attn_norm: opt(self.post_attn_norm, "post_attention_norm")?,
            ffn_norm: norm(self.ffn_norm, &format!("{p}.ffn_norm"))?,
            w_gate_up: stack(
                Vec::from(self.gate_up),
                &format!("{p}.ffn_gate_up"),
                precision,
            )?,
            w_down: matmul(self.down, &format!("{p}.ffn_down"), precision)?,
            post_ffn_norm: opt(self.post_ffn_norm, "post_ffw_norm")?,
        })
    }
}

/// Turns the blocks into matmuls on every core, a few blocks each, since
/// it (stacking, requantizing) is most of the loading time.
fn build_layers(raw: Vec<RawLayer>, precision: Precision) -> Result<Vec<Layer>, LoadError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = raw.len().div_ceil(threads).max(1);
    let total = raw.len();
    let mut groups: Vec<Vec<RawLayer>> = Vec::new();
    let mut rest = raw.into_iter().peekable();
    while rest.peek().is_some() {
        groups.push(rest.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
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
        let mut layers = Vec::with_capacity(total);
        for h in handles {
            let built = h
                .join()
                .map_err(|_| LoadError::Invalid("a loading thread panicked".into()))??;
            layers.extend(built);
        }
        Ok(layers)
    })
}

impl Model {
    /// Loads the weights of a model of one of the [`Family`]s from a GGUF
    /// file whose header has been read, for matmuls of the given
    /// precision.
    pub(crate) fn load(
        content: &Content,
        reader: &mut BufReader<File>,
        precision: Precision,
    ) -> Result<Self, LoadError> {
        let config = Config::from_gguf(content)?;
        let dim = config.dim;
        let mut t = Tensors { content, reader };
        let embd = t.get("token_embd.weight")?;
        let (n_vocab, embd_dim) = embd.shape().dims2().map_err(candle_err("token_embd"))?;
        if embd_dim != dim {
            return Err(LoadError::Invalid(format!(
                "token_embd.weight has {embd_dim} columns, embedding_length is {dim}"
            )));
        }
        let config = Config { n_vocab, ..config };
        let embedding = Embedding::new(&embd, "token_embd.weight")?;
        // The file is read in order, then the blocks are built in parallel.
        let raw = (0..config.n_layer)
            .map(|i| RawLayer::read(&mut t, &config, i))
            .collect::<Result<Vec<_>, _>>()?;
        let layers = build_layers(raw, precision)?;
        let output_norm = norm(t.matrix("output_norm", 1, dim)?, "output_norm")?;
        let output = if t.has("output.weight") {
            t.matrix("output", n_vocab, dim)?
        } else {
            embd
        };
        let output = matmul(output, "output", precision)?;
        // The global rope, then the local one where layers slide.
        let mut bases = vec![config.rope_base];
        if config.sliding_window.is_some() {
            bases.push(config.rope_local_base);
        }
        let ropes = bases
            .into_iter()
            .map(|base| {
                Rope::new(
                    base,
                    config.head_dim,
                    config.context_length,
                    config.rope_style,
                )
            })
            .collect();
        Ok(Model {
            config,
            embedding,
            layers,
            output_norm,
            output,
            ropes,
        })
    }
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
