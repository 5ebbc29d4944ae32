//! The forward pass over a batch of sequences (see the module docs of
//! `model` for how a batch runs).

use super::kernels::apply;
use super::kv::{KvChunk, KvRef, SeqInput, SeqOutput, position};
use super::ops::{add, dot, gated, rms_norm, rms_norm_in_place};
use super::{Layer, Model};

/// Where each new token of a batch sits: its sequence and its absolute
/// position.
type Rows = Vec<(usize, usize)>;

impl Model {
    /// Runs the new tokens of every sequence through the model in one pass.
    ///
    /// The caller checks that every id is below `n_vocab` and that no
    /// sequence runs past the context length.
    pub(crate) fn forward(&self, seqs: &[SeqInput<'_>]) -> candle_core::Result<Vec<SeqOutput>> {
        let c = &self.config;
        let rows: Rows = seqs
            .iter()
            .enumerate()
            .flat_map(|(s, seq)| (0..seq.new_ids.len()).map(move |i| (s, seq.past.len() + i)))
            .collect();
        let mut x = Vec::with_capacity(rows.len() * c.dim);
        for seq in seqs {
            for &id in seq.new_ids {
                self.embedding
                    .push_row(id as usize, c.embed_scale, &mut x)?;
            }
        }
        let mut out_kv: Vec<KvChunk> = seqs
            .iter()
            .map(|s| KvChunk::new(c, s.new_ids.len()))
            .collect();
        for (l, layer) in self.layers.iter().enumerate() {
            self.attention_block(l, layer, seqs, &rows, &mut out_kv, &mut x)?;
            self.ffn_block(layer, rows.len(), &mut x)?;
        }
        let logits = self.logits(seqs, &x)?;
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

    /// Attention of layer `l` over every sequence, added to `x`; the new
    /// positions' keys and values go into `out_kv`.
    fn attention_block(
        &self,
        l: usize,
        layer: &Layer,
        seqs: &[SeqInput<'_>],
        rows: &Rows,
        out_kv: &mut [KvChunk],
        x: &mut [f32],
    ) -> candle_core::Result<()> {
        let c = &self.config;
        let (dim, n) = (c.dim, rows.len());
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        let rope = &self.ropes[c.layer_rope(l)];
        let mut h = vec![0.0_f32; n * dim];
        rms_norm(x, &layer.attn_norm, c.eps, &mut h);
        let qkv = apply(&layer.wqkv, &h, n, dim)?;
        let width = q_dim + 2 * kv_dim;
        let mut q = vec![0.0_f32; n * q_dim];
        for (r, &(s, pos)) in rows.iter().enumerate() {
            let row = &qkv[r * width..(r + 1) * width];
            let qr = &mut q[r * q_dim..(r + 1) * q_dim];
            qr.copy_from_slice(&row[..q_dim]);
            if let Some(w) = &layer.q_norm {
                rms_norm_in_place(qr, w, c.eps);
            }
            rope.apply(qr, pos);
            let index = pos - seqs[s].past.len();
            let (k, v) = out_kv[s].key_value_mut(l, index);
            k.copy_from_slice(&row[q_dim..q_dim + kv_dim]);
            if let Some(w) = &layer.k_norm {
                rms_norm_in_place(k, w, c.eps);
            }
            rope.apply(k, pos);
            v.copy_from_slice(&row[q_dim + kv_dim..]);
        }
        let mut attn = vec![0.0_f32; n * q_dim];
        let mut scores = Vec::new();
        let mut r = 0;
        for (s, seq) in seqs.iter().enumerate() {
            for i in 0..seq.new_ids.len() {
                self.attend(
                    l,
                    seq.past,
                    &out_kv[s],
                    i,
                    &q[r * q_dim..(r + 1) * q_dim],
                    &mut attn[r * q_dim..(r + 1) * q_dim],
                    &mut scores,
                );
                r += 1;
            }
        }
        let mut o = apply(&layer.wo, &attn, n, q_dim)?;
        if let Some(w) = &layer.post_attn_norm {
            rms_norm_in_place(&mut o, w, c.eps);
        }
        add(x, &o);
        Ok(())
    }

    /// The gated feed-forward block of a layer over `n` rows, added to `x`.
    fn ffn_block(&self, layer: &Layer, n: usize, x: &mut [f32]) -> candle_core::Result<()> {
        let c = &self.config;
        let (dim, f) = (c.dim, c.ffn_dim);
        let mut h = vec![0.0_f32; n * dim];
        rms_norm(x, &layer.ffn_norm, c.eps, &mut h);
        let gu = apply(&layer.w_gate_up, &h, n, dim)?;
        let mut act = vec![0.0_f32; n * f];
        gated(c.activation, &gu, f, &mut act);
        let mut d = apply(&layer.w_down, &act, n, f)?;
        if let Some(w) = &layer.post_ffn_norm {
            rms_norm_in_place(&mut d, w, c.eps);
        }
        add(x, &d);
        Ok(())
    }

    /// The logits of the rows asked for, in order: only those go through
    /// the output projection, the costliest matmul (`n_vocab` rows).
    fn logits(&self, seqs: &[SeqInput<'_>], x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let dim = self.config.dim;
        let mut wanted = Vec::new();
        let mut r = 0;
        for seq in seqs {
            for i in seq.logits_from..seq.new_ids.len() {
                wanted.extend_from_slice(&x[(r + i) * dim..(r + i + 1) * dim]);
            }
            r += seq.new_ids.len();
        }
        let m = wanted.len() / dim;
        if m == 0 {
            return Ok(Vec::new());
        }
        let mut normed = vec![0.0_f32; wanted.len()];
        rms_norm(&wanted, &self.output_norm, self.config.eps, &mut normed);
        apply(&self.output, &normed, m, dim)
    }

    /// Attention of new token `i` of a sequence (all heads) over the cached
    /// positions and the new positions up to itself (the last `window` of
    /// them in a sliding-window layer); writes `out`.
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
        let start = c.window(layer).map_or(0, |w| len.saturating_sub(w));
        for head in 0..c.n_head {
            let kv_off = (head / group) * hd;
            let qh = &q[head * hd..(head + 1) * hd];
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for p in start..len {
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
            for (p, &w) in (start..len).zip(scores.iter()) {
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
