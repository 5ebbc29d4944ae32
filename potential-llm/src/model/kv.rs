//! The keys and values of a run of positions, and what the forward pass
//! takes and gives per sequence.

use super::Config;

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
    pub(super) fn key(self, layer: usize) -> &'a [f32] {
        self.chunk.key(layer, self.index)
    }

    pub(super) fn value(self, layer: usize) -> &'a [f32] {
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
    pub(super) fn new(config: &Config, len: usize) -> Self {
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

    pub(super) fn key_value_mut(&mut self, layer: usize, index: usize) -> (&mut [f32], &mut [f32]) {
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

/// Position `p` of a sequence: a cached one or one of the current pass.
pub(super) fn position<'a>(past: &[KvRef<'a>], new: &'a KvChunk, p: usize) -> KvRef<'a> {
    match past.get(p) {
        Some(&r) => r,
        None => KvRef {
            chunk: new,
            index: p - past.len(),
        },
    }
}

/// The result for one sequence: the keys and values of its new positions
/// and the logits asked for (`[n_rows][n_vocab]`, flattened).
pub(crate) struct SeqOutput {
    pub(crate) kv: KvChunk,
    pub(crate) logits: Vec<f32>,
}
