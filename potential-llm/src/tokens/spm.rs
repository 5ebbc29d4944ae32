//! SentencePiece (`tokenizer.ggml.model = llama`, Gemma's): tokens with
//! scores, spaces written `▁`, bytes as `<0xNN>` tokens, encoded as
//! llama.cpp's SPM tokenizer encodes: the special and user-defined tokens
//! matched in the text first (longest first), then in each piece between
//! them the adjacent pair whose concatenation is the best-scoring token is
//! merged until none is, and what stays unknown falls back to bytes.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use candle_core::quantized::gguf_file::Content;

use super::{BYTE, Listed, NORMAL, USER_DEFINED, meta_array};
use crate::error::LoadError;

/// SentencePiece's visible space.
const SPACE: char = '\u{2581}';

/// The bytes each token stands for: ordinary tokens with `▁` as a space,
/// user-defined tokens as written, byte tokens as their byte; `None` for
/// the special ones.
pub(super) fn token_bytes_all(listed: &Listed) -> Vec<Option<Vec<u8>>> {
    listed
        .texts
        .iter()
        .zip(&listed.types)
        .map(|(text, &ty)| match ty {
            NORMAL => Some(text.replace(SPACE, " ").into_bytes()),
            USER_DEFINED => Some(text.clone().into_bytes()),
            BYTE => byte_of(text).map(|b| vec![b]),
            _ => None,
        })
        .collect()
}

/// The byte of a `<0xNN>` token.
fn byte_of(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

pub(super) struct Spm {
    /// Ordinary tokens (in SentencePiece's alphabet) to id and score.
    pieces: HashMap<String, (u32, f32)>,
    /// The id of each byte's `<0xNN>` token.
    bytes: [Option<u32>; 256],
    /// Text matched before merging, longest first: every token that is
    /// neither ordinary nor a byte (control tokens as `<start_of_turn>`,
    /// user-defined ones as `\n\n`).
    specials: Vec<(String, u32)>,
    unknown: Option<u32>,
    add_space_prefix: bool,
}

impl Spm {
    pub(super) fn new(content: &Content, listed: &Listed) -> Result<Spm, LoadError> {
        let scores: Vec<f32> = match content.metadata.get("tokenizer.ggml.scores") {
            Some(_) => meta_array(content, "tokenizer.ggml.scores")?
                .iter()
                .map(|v| v.to_f32())
                .collect::<candle_core::Result<_>>()
                .map_err(|e| LoadError::Invalid(format!("tokenizer.ggml.scores: {e}")))?,
            None => vec![0.0; listed.texts.len()],
        };
        if scores.len() != listed.texts.len() {
            return Err(LoadError::Invalid(format!(
                "{} token scores for {} tokens",
                scores.len(),
                listed.texts.len()
            )));
        }
        let mut pieces = HashMap::new();
        let mut bytes = [None; 256];
        let mut specials = Vec::new();
        for (id, ((text, &ty), &score)) in listed
            .texts
            .iter()
            .zip(&listed.types)
            .zip(&scores)
            .enumerate()
        {
            let id = id as u32;
            match ty {
                NORMAL => {
                    pieces.entry(text.clone()).or_insert((id, score));
                }
                BYTE => {
                    if let Some(b) = byte_of(text) {
                        bytes[b as usize].get_or_insert(id);
                    }
                }
                _ if !text.is_empty() => specials.push((text.clone(), id)),
                _ => {}
            }
        }
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let unknown = content
            .metadata
            .get("tokenizer.ggml.unknown_token_id")
            .and_then(|v| v.to_u32().ok());
        let add_space_prefix = content
            .metadata
            .get("tokenizer.ggml.add_space_prefix")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(true);
        Ok(Spm {
            pieces,
            bytes,
            specials,
            unknown,
            add_space_prefix,
        })
    }

    /// The ids of `text`.
    pub(super) fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut first = true;
        let mut rest = text;
        while !rest.is_empty() {
            let (piece, special) = self.next_special(rest);
            if !piece.is_empty() {
                let mut s = String::with_capacity(piece.len() + 3);
                if first && self.add_space_prefix {
                    s.push(SPACE);
                }
                s.extend(piece.chars().map(|c| if c == ' ' { SPACE } else { c }));
                self.encode_piece(&s, &mut out);
            }
            first = false;
            rest = &rest[piece.len()..];
            if let Some((len, id)) = special {
                out.push(id);
                rest = &rest[len..];
            }
        }
        out
    }

    /// The text before the first special token in `text`, and that token's
    /// length and id.
    fn next_special<'a>(&self, text: &'a str) -> (&'a str, Option<(usize, u32)>) {
        for (at, _) in text.char_indices() {
            let tail = &text[at..];
            if let Some((s, id)) = self
                .specials
                .iter()
                .find(|(s, _)| tail.starts_with(s.as_str()))
            {
                return (&text[..at], Some((s.len(), *id)));
            }
        }
        (text, None)
    }

    /// Encodes one piece (spaces already `▁`) by best-score merges.
    fn encode_piece(&self, text: &str, out: &mut Vec<u32>) {
        // Symbols: byte ranges of `text`, linked left and right.
        let mut start: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let n = start.len();
        start.push(text.len());
        let mut end: Vec<usize> = start[1..].to_vec();
        start.truncate(n);
        let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
        let mut next: Vec<Option<usize>> = (0..n).map(|i| (i + 1 < n).then_some(i + 1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push =
            |heap: &mut BinaryHeap<Bigram>, l: usize, r: usize, start: &[usize], end: &[usize]| {
                if let Some(&(_, score)) = self.pieces.get(&text[start[l]..end[r]]) {
                    heap.push(Bigram {
                        score,
                        left: l,
                        right: r,
                        len: end[r] - start[l],
                    });
                }
            };
        for i in 1..n {
            push(&mut heap, i - 1, i, &start, &end);
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (b.left, b.right);
            // A bigram whose symbols have changed since it was pushed is
            // stale.
            if !alive[l] || !alive[r] || next[l] != Some(r) || end[r] - start[l] != b.len {
                continue;
            }
            end[l] = end[r];
            alive[r] = false;
            next[l] = next[r];
            if let Some(nr) = next[r] {
                prev[nr] = Some(l);
            }
            if let Some(p) = prev[l] {
                push(&mut heap, p, l, &start, &end);
            }
            if let Some(nx) = next[l] {
                push(&mut heap, l, nx, &start, &end);
            }
        }
        let mut at = (n > 0).then_some(0);
        while let Some(i) = at {
            let s = &text[start[i]..end[i]];
            match self.pieces.get(s) {
                Some(&(id, _)) => out.push(id),
                None => {
                    for b in s.bytes() {
                        if let Some(id) = self.bytes[b as usize].or(self.unknown) {
                            out.push(id);
                        }
                    }
                }
            }
            at = next[i];
        }
    }
}

/// A candidate merge: the best score first, then the leftmost.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}
