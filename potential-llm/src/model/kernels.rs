//! The weight matrices: candle's quantized matmul (`QMatMul`) on the
//! file's blocks, and the choices of block format and row padding that
//! pick candle's kernel (see [`Precision`]); the token embedding, read one
//! row at a time.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

use super::precision::Precision;
use super::q8_0::Q8_0Matrix;
use crate::error::LoadError;

pub(super) fn candle_err(what: &str) -> impl FnOnce(candle_core::Error) -> LoadError + '_ {
    move |e| LoadError::Invalid(format!("{what}: {e}"))
}

/// The token embedding as the file stores it (`n_vocab` rows of `dim`
/// values in the file's block format): a lookup dequantizes one row, so
/// that a 262,144-token vocabulary (Gemma's) does not cost a gigabyte of
/// `f32`.
pub(super) struct Embedding {
    data: Vec<u8>,
    dtype: GgmlDType,
    dim: usize,
    row_bytes: usize,
}

impl Embedding {
    pub(super) fn new(t: &QTensor, name: &str) -> Result<Embedding, LoadError> {
        let (_, dim) = t.shape().dims2().map_err(candle_err(name))?;
        let dtype = t.dtype();
        if !dim.is_multiple_of(dtype.block_size()) {
            return Err(LoadError::Invalid(format!(
                "{name}: rows of {dim} values are not whole {dtype:?} blocks"
            )));
        }
        Ok(Embedding {
            data: t.data().map_err(candle_err(name))?.into_owned(),
            dtype,
            dim,
            row_bytes: dim / dtype.block_size() * dtype.type_size(),
        })
    }

    /// Appends row `id`, dequantized and multiplied by `scale`, to `out`.
    pub(super) fn push_row(
        &self,
        id: usize,
        scale: f32,
        out: &mut Vec<f32>,
    ) -> candle_core::Result<()> {
        let bytes = &self.data[id * self.row_bytes..(id + 1) * self.row_bytes];
        let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, self.dtype)?;
        let row = QTensor::new(storage, (self.dim,))?
            .dequantize(&Device::Cpu)?
            .to_vec1::<f32>()?;
        if scale == 1.0 {
            out.extend_from_slice(&row);
        } else {
            out.extend(row.iter().map(|v| v * scale));
        }
        Ok(())
    }
}

/// A weight matrix as a quantized matmul, its rows padded with zero
/// blocks to `k_pad` columns where that opens a faster kernel.
pub(super) struct Linear {
    mm: Kernel,
    k_pad: usize,
    /// Whether a single row runs as two (the second zero): candle takes
    /// another kernel for one row of some formats (Q6_K on x86: a compact
    /// dot product for one row, repacked tiles for more), whose sums
    /// differ in the last bits, so that a cached one-token step would not
    /// give the numbers of the same token in a longer pass.
    two_rows: bool,
}

/// Who multiplies: candle, or for Q8_0 on AVX2 without VNNI our kernel
/// (candle's sums, faster: see `q8_0.rs`).
enum Kernel {
    Candle(QMatMul),
    Q8_0(Q8_0Matrix),
}

/// Block formats for which candle picks its kernel by the number of rows
/// (`repack_x86::select`): Q6_K takes the repacked tiles only for more
/// than one row.
const KERNEL_BY_ROWS: &[GgmlDType] = &[GgmlDType::Q6K];

/// `x @ w^T` for `x` of `m` rows of `k` floats.
pub(super) fn apply(w: &Linear, x: &[f32], m: usize, k: usize) -> candle_core::Result<Vec<f32>> {
    let mm = match &w.mm {
        Kernel::Q8_0(matrix) => return Ok(matrix.matmul(x, m)),
        Kernel::Candle(mm) => mm,
    };
    let rows = if m == 1 && w.two_rows { 2 } else { m };
    let t = if w.k_pad > k || rows > m {
        let mut padded = vec![0.0_f32; rows * w.k_pad];
        for (dst, src) in padded.chunks_exact_mut(w.k_pad).zip(x.chunks_exact(k)) {
            dst[..k].copy_from_slice(src);
        }
        Tensor::from_vec(padded, (rows, w.k_pad), &Device::Cpu)?
    } else {
        Tensor::from_slice(x, (m, k), &Device::Cpu)?
    };
    let mut out = mm.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
    if rows > m {
        out.truncate(out.len() / rows * m);
    }
    Ok(out)
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

pub(super) fn matmul(t: QTensor, name: &str, precision: Precision) -> Result<Linear, LoadError> {
    if precision == Precision::Exact {
        // The file's values, dequantized once: `f32` matmuls from then on.
        let k = t.shape().dims2().map_err(candle_err(name))?.1;
        let w = t.dequantize(&Device::Cpu).map_err(candle_err(name))?;
        return Ok(Linear {
            mm: Kernel::Candle(QMatMul::Tensor(w)),
            k_pad: k,
            two_rows: false,
        });
    }
    let (t, k_pad) = pad_rows(requantize_if_slow(t, name)?, name, precision)?;
    let two_rows = KERNEL_BY_ROWS.contains(&t.dtype());
    // Where candle's VNNI kernels run, the precision modes choose among
    // them; elsewhere its Q8_0 kernel is ours, faster with the same sums.
    let ours = if t.dtype() == GgmlDType::Q8_0 && !vnni() {
        let n = t.shape().dims2().map_err(candle_err(name))?.0;
        let data = t.data().map_err(candle_err(name))?;
        Q8_0Matrix::new(&data, n, k_pad / GgmlDType::Q8_0.block_size())
    } else {
        None
    };
    let mm = match ours {
        Some(matrix) => Kernel::Q8_0(matrix),
        None => Kernel::Candle(QMatMul::from_arc(Arc::new(t)).map_err(candle_err(name))?),
    };
    Ok(Linear {
        mm,
        k_pad,
        two_rows,
    })
}

/// One matrix whose rows are those of `parts` in order. Quantized blocks
/// run along rows, so stacking is concatenating the raw data; parts of
/// different types are dequantized and stacked as `f32`.
pub(super) fn stack(
    parts: Vec<QTensor>,
    name: &str,
    precision: Precision,
) -> Result<Linear, LoadError> {
    // Parts that would be requantized are requantized first, so that
    // Gemma's Q5_0 queries and keys stack with its Q8_0 values.
    let parts = if precision == Precision::Exact {
        parts
    } else {
        parts
            .into_iter()
            .map(|t| requantize_if_slow(t, name))
            .collect::<Result<Vec<_>, _>>()?
    };
    let cols = parts[0].shape().dims()[1];
    let rows: usize = parts.iter().map(|t| t.shape().dims()[0]).sum();
    let dtype = parts[0].dtype();
    let stacked = if parts.iter().all(|t| t.dtype() == dtype) {
        let mut data = Vec::new();
        for t in &parts {
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
