//! The vocabulary and the prompt tokenizer, both from a GGUF file's
//! metadata (`tokenizer.ggml.*`): byte-level BPE (`gpt2`, SmolLM2's, in
//! `bpe`) or SentencePiece (`llama`, Gemma's, in `spm`).

mod bpe;
mod spm;

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use potential_core::Vocab;
use tokenizers::Tokenizer;

pub(crate) use bpe::byte_level_text;

use crate::error::LoadError;

/// `tokenizer.ggml.token_type` of an ordinary text token (llama.cpp's
/// `LLAMA_TOKEN_TYPE_NORMAL`); the others are unknown, control,
/// user-defined, unused and byte tokens.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
/// Text the tokenizer matches before splitting (Gemma's runs of newlines,
/// spaces and tabs, some HTML tags): text tokens of a SentencePiece model.
const USER_DEFINED: i32 = 4;
/// `<0xNN>`: one byte (SentencePiece's byte fallback).
const BYTE: i32 = 6;

/// Control tokens that end a chat turn: where present (and not the file's
/// end-of-sequence token already) they are EOS too, so that a chat's
/// answer ends where the model ends its turn.
const END_OF_TURN: &[&str] = &["<end_of_turn>", "<|im_end|>", "<|eot_id|>"];

/// The model's tokens seen from the potential: which model ids are
/// vocabulary tokens, which are the end of sequence, and the tokenizer
/// for prompts.
pub(crate) struct Tokens {
    pub(crate) vocab: Vocab<Vec<u8>>,
    /// The model id of each vocabulary position.
    pub(crate) vocab_ids: Vec<u32>,
    /// The vocabulary position of each model id, `None` for the special
    /// tokens (EOS included).
    pub(crate) positions: Vec<Option<u32>>,
    /// Further ids that spell a vocabulary token already listed, and its
    /// position (a SentencePiece byte token `<0x41>` beside `A`): their
    /// probability is added to the token's.
    pub(crate) duplicates: Vec<(u32, u32)>,
    /// The ids whose probabilities together are EOS's: the file's
    /// end-of-sequence token first, then the end-of-turn tokens.
    pub(crate) eos_ids: Vec<u32>,
    pub(crate) bos_id: Option<u32>,
    /// Whether a prompt starts with the beginning-of-sequence token
    /// (`tokenizer.ggml.add_bos_token`; Gemma wants it).
    pub(crate) add_bos: bool,
    encoder: Encoder,
}

enum Encoder {
    Bpe(Box<Tokenizer>),
    Spm(Box<spm::Spm>),
}

fn meta<'a>(content: &'a Content, key: &str) -> Result<&'a Value, LoadError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| LoadError::Invalid(format!("metadata key `{key}` is missing")))
}

fn meta_array<'a>(content: &'a Content, key: &str) -> Result<&'a Vec<Value>, LoadError> {
    meta(content, key)?
        .to_vec()
        .map_err(|e| LoadError::Invalid(format!("metadata key `{key}`: {e}")))
}

fn meta_id(content: &Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// The tokens as the metadata lists them: text and type per id.
struct Listed {
    texts: Vec<String>,
    types: Vec<i32>,
}

impl Listed {
    fn read(content: &Content, n_vocab: usize) -> Result<Listed, LoadError> {
        let texts = meta_array(content, "tokenizer.ggml.tokens")?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<Vec<String>>>()
            .map_err(|e| LoadError::Invalid(format!("tokenizer.ggml.tokens: {e}")))?;
        if texts.len() != n_vocab {
            return Err(LoadError::Invalid(format!(
                "{} tokens in the metadata for an embedding of {n_vocab} rows",
                texts.len()
            )));
        }
        let types = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .and_then(|a| a.iter().map(Value::to_i32).collect())
                .map_err(|e| LoadError::Invalid(format!("tokenizer.ggml.token_type: {e}")))?,
            None => vec![NORMAL; texts.len()],
        };
        if types.len() != texts.len() {
            return Err(LoadError::Invalid(format!(
                "{} token types for {} tokens",
                types.len(),
                texts.len()
            )));
        }
        Ok(Listed { texts, types })
    }
}

impl Tokens {
    /// Reads the vocabulary and builds the tokenizer; `n_vocab` is the
    /// number of rows of the model's embedding.
    pub(crate) fn from_gguf(content: &Content, n_vocab: usize) -> Result<Self, LoadError> {
        let model = meta(content, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| LoadError::Invalid(format!("tokenizer.ggml.model: {e}")))?;
        let listed = Listed::read(content, n_vocab)?;
        let n = listed.texts.len();
        let eos_id = meta_id(content, "tokenizer.ggml.eos_token_id").ok_or_else(|| {
            LoadError::Invalid("metadata key `tokenizer.ggml.eos_token_id` is missing".into())
        })?;
        if eos_id as usize >= n {
            return Err(LoadError::Invalid(format!(
                "end-of-sequence id {eos_id} is past the {n} tokens"
            )));
        }
        let mut eos_ids = vec![eos_id];
        for (id, (text, &ty)) in listed.texts.iter().zip(&listed.types).enumerate() {
            if ty == CONTROL && END_OF_TURN.contains(&text.as_str()) && id != eos_id as usize {
                eos_ids.push(id as u32);
            }
        }
        let bos_id =
            meta_id(content, "tokenizer.ggml.bos_token_id").filter(|&id| (id as usize) < n);
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let (bytes, encoder) = match model.as_str() {
            "gpt2" => (
                bpe::token_bytes_all(&listed)?,
                Encoder::Bpe(Box::new(bpe::byte_level_tokenizer(content, &listed)?)),
            ),
            "llama" => (
                spm::token_bytes_all(&listed),
                Encoder::Spm(Box::new(spm::Spm::new(content, &listed)?)),
            ),
            other => {
                return Err(LoadError::Invalid(format!(
                    "tokenizer model `{other}` is not supported: only byte-level BPE (`gpt2`) and SentencePiece (`llama`) tokenizers are"
                )));
            }
        };
        let vocabulary = Vocabulary::build(&bytes, &listed.types, &eos_ids)?;
        Ok(Tokens {
            vocab: vocabulary.vocab,
            vocab_ids: vocabulary.vocab_ids,
            positions: vocabulary.positions,
            duplicates: vocabulary.duplicates,
            eos_ids,
            bos_id,
            add_bos,
            encoder,
        })
    }

    /// The model ids of a text, special tokens written in it (such as
    /// `<|im_start|>`) included.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.encoder {
            Encoder::Bpe(tokenizer) => tokenizer
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| format!("cannot tokenize {text:?}: {e}")),
            Encoder::Spm(spm) => Ok(spm.encode(text)),
        }
    }
}

/// The potential's vocabulary built from the bytes of each text token.
struct Vocabulary {
    vocab: Vocab<Vec<u8>>,
    vocab_ids: Vec<u32>,
    positions: Vec<Option<u32>>,
    duplicates: Vec<(u32, u32)>,
}

impl Vocabulary {
    /// `bytes[id]` is `None` for the special tokens. Byte tokens come after
    /// the others, so that `A` (not `<0x41>`) is the token a context's
    /// `A` runs as; an id whose bytes are already listed is a duplicate.
    fn build(
        bytes: &[Option<Vec<u8>>],
        types: &[i32],
        eos_ids: &[u32],
    ) -> Result<Vocabulary, LoadError> {
        let mut tokens = Vec::new();
        let mut vocab_ids = Vec::new();
        let mut positions = vec![None; bytes.len()];
        let mut duplicates = Vec::new();
        let mut seen: HashMap<&[u8], u32> = HashMap::new();
        for byte_pass in [false, true] {
            for (id, b) in bytes.iter().enumerate() {
                let Some(b) = b else { continue };
                if (types[id] == BYTE) != byte_pass || eos_ids.contains(&(id as u32)) {
                    continue;
                }
                match seen.get(b.as_slice()) {
                    Some(&p) => {
                        duplicates.push((id as u32, p));
                        positions[id] = Some(p);
                    }
                    None => {
                        let p = tokens.len() as u32;
                        seen.insert(b, p);
                        positions[id] = Some(p);
                        tokens.push(b.clone());
                        vocab_ids.push(id as u32);
                    }
                }
            }
        }
        let vocab = Vocab::new(tokens)
            .map_err(|e| LoadError::Invalid(format!("vocabulary of the model: {e}")))?;
        Ok(Vocabulary {
            vocab,
            vocab_ids,
            positions,
            duplicates,
        })
    }
}
