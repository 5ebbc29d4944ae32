//! Q8_0 weight matrices times rows of activations on AVX2, with candle's
//! arithmetic and faster.
//!
//! candle 0.11's CPU matmul of a Q8_0 matrix (what SmolLM2's layers are
//! once loaded, see `kernels.rs`) spent three quarters of a step in
//! `vec_dot_q8_0_q8_0`, one (activation row, weight row) pair per call:
//! every 32-value block converts two `f16` scales through an out-of-line
//! call, and each activation block is loaded again for every weight row.
//! That made the single step compute-bound, and a batch of rows cost the
//! same per row: batching the model gained nothing on an AVX2 CPU.
//!
//! Here the weights stay in the file's blocks (the single step streams
//! them from memory: no byte more than candle reads), their `f16` scales
//! are converted by one inline F16C instruction, and each activation
//! block, quantized once with its scale as `f32`, is loaded once for
//! [`TILE`] weight rows; a batch's rows run against each tile of weight
//! rows while it is in cache. Each block does
//! exactly candle's operations in candle's order (the product of the two
//! scales, the sign trick and `maddubs`/`madd` sums of the 32 byte
//! products, one FMA into an 8-lane accumulator per output, then the same
//! horizontal sum), and the activations are quantized exactly as candle's
//! `BlockQ8_0::from_float` does, so every output is candle's bit for bit:
//! the fidelity fixtures and the batch-equals-single tests hold unchanged.

use std::sync::atomic::{AtomicU32, Ordering};

use half::f16;

/// Values per block.
const QK: usize = 32;
/// Bytes per block in the file: an `f16` scale and 32 signed bytes.
const BLOCK_BYTES: usize = 2 + QK;
/// Weight rows multiplied together against each pair of activation rows:
/// three times two is what AVX2's 16 registers hold (six accumulators, the
/// two activation blocks, a weight block and its temporaries). Four times
/// two spilled two accumulators to the stack at every block and ran 8%
/// slower batched (SmolLM2 8.2 against 7.5 ms a token, Gemma 3 17.3-18.0
/// against 16.2-16.9, alternating runs of the bench rows).
const TILE: usize = 3;

/// Quantized activation rows: each block's scale (as `f32`) and its 32 values.
struct Blocks {
    scales: Vec<f32>,
    quants: Vec<[i8; QK]>,
}

/// A Q8_0 matrix of `n` rows of `blocks` blocks in the file's layout,
/// ready for [`Q8_0Matrix::matmul`].
pub(super) struct Q8_0Matrix {
    n: usize,
    blocks: usize,
    data: Vec<u8>,
}

impl Q8_0Matrix {
    /// The matrix of `n` rows of `blocks` Q8_0 blocks in `data` (the
    /// file's layout), when this CPU has AVX2, FMA and F16C (the kernel's
    /// instructions) and the data has that size; `None` otherwise, and
    /// candle's kernel runs instead.
    pub(super) fn new(data: &[u8], n: usize, blocks: usize) -> Option<Q8_0Matrix> {
        if !avx2::available() || data.len() != n * blocks * BLOCK_BYTES || n == 0 {
            return None;
        }
        Some(Q8_0Matrix {
            n,
            blocks,
            data: data.to_vec(),
        })
    }

    /// `x @ w^T` for `x` of `m` rows of `blocks * 32` values: `m` rows of
    /// `n` outputs. The tiles of [`TILE`] weight rows are spread over
    /// candle's thread pool (`CANDLE_NUM_THREADS`), every activation row
    /// against a tile done by the thread that holds its weights in cache.
    pub(super) fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let k = self.blocks * QK;
        debug_assert_eq!(x.len(), m * k);
        let acts = quantize(x);
        let n = self.n;
        // Each output is written once, by the thread of its tile; relaxed
        // stores of the bits are plain stores on x86.
        let out: Vec<AtomicU32> = (0..m * n).map(|_| AtomicU32::new(0)).collect();
        let tiles = n.div_ceil(TILE);
        candle_core::utils::barrier_pool().execute_chunked(tiles, |range| {
            for tile in range {
                let cols: [usize; TILE] = std::array::from_fn(|c| (TILE * tile + c).min(n - 1));
                let rows = cols.map(|c| self.weight_row(c));
                let store = |r: usize, sums: [f32; TILE]| {
                    for (c, sum) in cols.iter().zip(sums).take(n - TILE * tile) {
                        out[r * n + c].store(sum.to_bits(), Ordering::Relaxed);
                    }
                };
                if m == 1 {
                    // One row streams the weights from memory: one weight
                    // row at a time keeps that one sequential stream (four
                    // at once ran a third slower on a 30 MB matrix).
                    let act = [self.activation_row(&acts, 0)];
                    store(0, rows.map(|row| avx2::dot([row], act)[0][0]));
                    continue;
                }
                // Two activation rows against the tile: each weight block
                // (and its scale and sign) is read once for both.
                let mut r = 0;
                while r + 1 < m {
                    let pair = [r, r + 1].map(|i| self.activation_row(&acts, i));
                    let [first, second] = avx2::dot(rows, pair);
                    store(r, first);
                    store(r + 1, second);
                    r += 2;
                }
                if r < m {
                    store(r, avx2::dot(rows, [self.activation_row(&acts, r)])[0]);
                }
            }
        });
        out.into_iter()
            .map(|v| f32::from_bits(v.into_inner()))
            .collect()
    }

    /// The bytes of weight row `i`: `blocks` blocks of [`BLOCK_BYTES`].
    fn weight_row(&self, i: usize) -> &[u8] {
        let row = self.blocks * BLOCK_BYTES;
        &self.data[i * row..(i + 1) * row]
    }

    /// Activation row `i` of `acts`: its scales and its values.
    fn activation_row<'a>(&self, acts: &'a Blocks, i: usize) -> (&'a [f32], &'a [[i8; QK]]) {
        let range = i * self.blocks..(i + 1) * self.blocks;
        (&acts.scales[range.clone()], &acts.quants[range])
    }
}

/// Rows of activations in Q8_0 blocks, as candle's `BlockQ8_0::from_float`
/// makes them: the scale is the largest magnitude over 127, stored (and
/// so used) as `f16`; the values are rounded with the unrounded scale.
fn quantize(x: &[f32]) -> Blocks {
    let mut blocks = Blocks {
        scales: Vec::with_capacity(x.len() / QK),
        quants: Vec::with_capacity(x.len() / QK),
    };
    for block in x.chunks_exact(QK) {
        // A comparison rather than `f32::max` (whose NaN rule keeps the
        // loop scalar): the same largest magnitude, NaN ignored alike.
        let amax = block
            .iter()
            .fold(0.0_f32, |a, v| if v.abs() > a { v.abs() } else { a });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        blocks.scales.push(f16::from_f32(d).to_f32());
        blocks
            .quants
            .push(std::array::from_fn(|j| round_to_i8(block[j] * id)));
    }
    blocks
}

/// `f32::round(v) as i8` (halves away from zero) for `|v| <= 127.5`, the
/// values `quantize` rounds, and NaN (0), without a call to libm's `roundf`
/// per value (1.4% of a batched step): the integer part by conversion and
/// the fraction it leaves, both exact at these magnitudes.
#[inline(always)]
fn round_to_i8(v: f32) -> i8 {
    let whole = v as i32;
    let fraction = v - whole as f32;
    let away = i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5);
    (whole + away).clamp(-128, 127) as i8
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK_BYTES, QK};

    /// Whether this CPU runs [`dot`]'s instructions.
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }

    /// An activation row: its blocks' scales and values.
    pub(super) type Act<'a> = (&'a [f32], &'a [[i8; QK]]);

    /// The dot products of `C` weight rows (the file's Q8_0 blocks) with
    /// `R` activation rows, all of the same number of blocks: `[row][col]`.
    pub(super) fn dot<const C: usize, const R: usize>(
        ws: [&[u8]; C],
        acts: [Act<'_>; R],
    ) -> [[f32; C]; R] {
        let blocks = acts.first().map_or(0, |a| a.0.len());
        assert!(
            acts.iter()
                .all(|a| a.0.len() == blocks && a.1.len() == blocks)
                && ws.iter().all(|w| w.len() == blocks * BLOCK_BYTES),
            "rows of one length"
        );
        // SAFETY: a `Q8_0Matrix` exists only where `available()` said the
        // CPU has AVX2, FMA and F16C, the features `dot_avx2` is compiled
        // for; the lengths it relies on were checked just above.
        unsafe { dot_avx2(ws, acts, blocks) }
    }

    /// # Safety
    ///
    /// Each of `ws` holds `blocks` blocks of [`BLOCK_BYTES`] bytes, and each
    /// of `acts` `blocks` scales and blocks of values (the loads below read
    /// within them).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_avx2<const C: usize, const R: usize>(
        ws: [&[u8]; C],
        acts: [Act<'_>; R],
        blocks: usize,
    ) -> [[f32; C]; R] {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        for b in 0..blocks {
            // SAFETY: a `[i8; 32]` is 32 readable bytes, what an unaligned
            // 256-bit load reads.
            let by = acts.map(|a| unsafe { _mm256_loadu_si256(a.1[b].as_ptr().cast()) });
            // The scales as vectors, each broadcast once per block: the
            // product of a pair's two is then one vector multiply (the same
            // `f32` product as candle's scalar one), not a multiply and a
            // broadcast per pair (17% faster at 32 rows).
            let da = acts.map(|a| _mm256_set1_ps(a.0[b]));
            for (c, w) in ws.iter().enumerate() {
                // SAFETY: block `b` of `w` is bytes `34 b .. 34 b + 34`,
                // within `w` (the caller's contract): its scale is the two
                // bytes at `34 b`, its values the 32 after them.
                let (d, bx) = unsafe {
                    let block = w.as_ptr().add(b * BLOCK_BYTES);
                    let bits = u16::from_le_bytes([*block, *block.add(1)]);
                    let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))));
                    (d, _mm256_loadu_si256(block.add(2).cast()))
                };
                // candle's `mul_sum_i8_pairs_float(bx, by)`, the weight's
                // sign taken once for every activation row.
                let ax = _mm256_sign_epi8(bx, bx);
                let dw = _mm256_set1_ps(d);
                for ((acc, by), da) in acc.iter_mut().zip(by).zip(da) {
                    let sy = _mm256_sign_epi8(by, bx);
                    let dot = _mm256_maddubs_epi16(ax, sy);
                    let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot));
                    acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), q, acc[c]);
                }
            }
        }
        let mut sums = [[0.0; C]; R];
        for (row, acc) in sums.iter_mut().zip(acc) {
            for (sum, acc) in row.iter_mut().zip(acc) {
                *sum = hsum_float_8(acc);
            }
        }
        sums
    }

    /// candle's horizontal sum of 8 floats, in its order.
    #[target_feature(enable = "avx2,fma")]
    fn hsum_float_8(x: __m256) -> f32 {
        let res = _mm256_extractf128_ps(x, 1);
        let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        let res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }
}

/// Elsewhere there is no kernel here: candle's runs.
#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::QK;

    pub(super) fn available() -> bool {
        false
    }

    pub(super) type Act<'a> = (&'a [f32], &'a [[i8; QK]]);

    pub(super) fn dot<const C: usize, const R: usize>(
        _: [&[u8]; C],
        _: [Act<'_>; R],
    ) -> [[f32; C]; R] {
        unreachable!("no Q8_0Matrix is made where avx2::available() is false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    /// Every output equals candle's bit for bit, for one row and for
    /// many, for a column count that is not a multiple of the tile.
    #[test]
    fn the_products_are_candles_bit_for_bit() {
        if !avx2::available() {
            return;
        }
        let (n, k) = (37, 3 * QK);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 257) as f32 - 128.0) / 37.0)
            .collect();
        let w = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let ours = Q8_0Matrix::new(&q.data().unwrap(), n, k / QK).expect("AVX2");
        let candle = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 2, 5, 17] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 104_729 % 1_009) as f32 - 504.0) / 113.0)
                .collect();
            let want = candle
                .forward(&Tensor::from_slice(&x, (m, k), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let got = ours.matmul(&x, m);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m} rows");
        }
    }

    /// The length check that the kernel's unchecked loads rely on.
    #[test]
    #[should_panic(expected = "rows of one length")]
    fn rows_of_other_lengths_are_refused_before_any_load() {
        if !avx2::available() {
            panic!("rows of one length (no AVX2 here: nothing to check)");
        }
        let weights = [0u8; BLOCK_BYTES];
        avx2::dot([&weights[..]], [(&[1.0, 1.0], &[[0; QK]; 2])]);
    }

    /// The rounding is `f32::round`'s at every value `quantize` can meet,
    /// including each half and the floats just beside it.
    #[test]
    fn rounding_is_rounds() {
        let mut values = vec![
            0.0,
            -0.0,
            f32::NAN,
            127.5,
            -127.5,
            0.499_999_97,
            -0.499_999_97,
        ];
        for k in -128..128 {
            let half = k as f32 + 0.5;
            values.extend([half, half.next_up(), half.next_down(), k as f32]);
        }
        values.extend((0..100_000).map(|i| (i as f32 - 50_000.0) * 0.002_54));
        for v in values {
            assert_eq!(round_to_i8(v), f32::round(v) as i8, "{v}");
        }
    }

    #[test]
    fn data_of_another_size_is_not_a_matrix() {
        assert!(Q8_0Matrix::new(&[0; BLOCK_BYTES * 3], 2, 2).is_none());
        assert!(Q8_0Matrix::new(&[], 0, 1).is_none());
    }
}
