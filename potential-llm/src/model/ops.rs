//! The element-wise steps of the forward pass: plain loops over `f32`
//! slices (see the module docs of `model` for why not candle ops).

use super::config::{Activation, RopeStyle};

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
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

pub(super) fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// RMS norm of each run of `weight.len()` values of `x`, times `weight`
/// (as the GGUF stores it: Gemma's `1 + w` is already added by the
/// converter).
pub(super) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
            *o = v * inv * w;
        }
    }
}

/// [`rms_norm`] in place.
pub(super) fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let d = weight.len();
    for xr in x.chunks_exact_mut(d) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, &w) in xr.iter_mut().zip(weight) {
            *v = *v * inv * w;
        }
    }
}

/// `act(gate) * up` for each row of `gate_up` (the gate's `f` values
/// followed by the up projection's) into the rows of `out`.
pub(super) fn gated(activation: Activation, gate_up: &[f32], f: usize, out: &mut [f32]) {
    for (a, gu) in out.chunks_exact_mut(f).zip(gate_up.chunks_exact(2 * f)) {
        let (g, u) = gu.split_at(f);
        for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
            *a = match activation {
                Activation::Silu => g / (1.0 + (-g).exp()) * u,
                Activation::GeluTanh => gelu_tanh(g) * u,
            };
        }
    }
}

/// GELU with the tanh approximation (Gemma's `gelu_pytorch_tanh`).
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

/// A rotary embedding: `cos` and `sin` per position and frequency
/// (`positions * head_dim / 2` each).
pub(super) struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    head_dim: usize,
    style: RopeStyle,
}

impl Rope {
    pub(super) fn new(base: f32, head_dim: usize, positions: usize, style: RopeStyle) -> Rope {
        let half = head_dim / 2;
        let freqs: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for pos in 0..positions {
            for &freq in &freqs {
                let angle = pos as f32 * freq;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Rope {
            cos,
            sin,
            head_dim,
            style,
        }
    }

    /// Rotates every head of `v` (heads of `head_dim` values) for position
    /// `pos`: consecutive pairs (llama.cpp's layout for llama, which GGUF
    /// converters permute the query and key weights for) or the two halves
    /// of each head (the NeoX layout, Gemma's).
    pub(super) fn apply(&self, v: &mut [f32], pos: usize) {
        let half = self.head_dim / 2;
        let cos = &self.cos[pos * half..(pos + 1) * half];
        let sin = &self.sin[pos * half..(pos + 1) * half];
        for head in v.chunks_exact_mut(self.head_dim) {
            match self.style {
                RopeStyle::Pairs => {
                    for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                        let (a, b) = (pair[0], pair[1]);
                        pair[0] = a * cos[i] - b * sin[i];
                        pair[1] = a * sin[i] + b * cos[i];
                    }
                }
                RopeStyle::Halves => {
                    let (x, y) = head.split_at_mut(half);
                    for i in 0..half {
                        let (a, b) = (x[i], y[i]);
                        x[i] = a * cos[i] - b * sin[i];
                        y[i] = a * sin[i] + b * cos[i];
                    }
                }
            }
        }
    }
}
