//! The vocabulary and the prompt tokenizer, both from a GGUF file's
//! metadata (`tokenizer.ggml.*`).

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use potential_core::Vocab;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::LoadError;

/// `tokenizer.ggml.token_type` of an ordinary text token (llama.cpp's
/// `LLAMA_TOKEN_TYPE_NORMAL`); the others are unknown, control,
/// user-defined, unused and byte tokens.
const NORMAL: i32 = 1;

/// The `tokenizer.ggml.pre` values whose pre-tokenizer splits digits one by
/// one before GPT-2's rule (llama.cpp groups these; SmolLM2 says `smollm`).
const DIGIT_SPLITTING: &[&str] = &["smollm", "starcoder", "refact", "codeshell", "exaone"];

/// The model's tokens seen from the potential: which model ids are
/// vocabulary tokens, which id is the end of sequence, and the tokenizer
/// for prompts.
pub(crate) struct Tokens {
    pub(crate) vocab: Vocab<Vec<u8>>,
    /// The model id of each vocabulary position.
    pub(crate) vocab_ids: Vec<u32>,
    /// The vocabulary position of each model id, `None` for the special
    /// tokens (EOS included).
    pub(crate) positions: Vec<Option<u32>>,
    pub(crate) eos_id: u32,
    pub(crate) bos_id: Option<u32>,
    pub(crate) tokenizer: Tokenizer,
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
        if model != "gpt2" {
            return Err(LoadError::Invalid(format!(
                "tokenizer model `{model}` is not supported: only byte-level BPE (`gpt2`) tokenizers are"
            )));
        }
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
        let bos_id =
            meta_id(content, "tokenizer.ggml.bos_token_id").filter(|&id| (id as usize) < n);
        let (vocab, vocab_ids, positions) = byte_level_vocabulary(&listed, eos_id)?;
        let tokenizer = byte_level_tokenizer(content, &listed)?;
        Ok(Tokens {
            vocab,
            vocab_ids,
            positions,
            eos_id,
            bos_id,
            tokenizer,
        })
    }

    /// The model ids of a text, special tokens written in it (such as
    /// `<|im_start|>`) included.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("cannot tokenize {text:?}: {e}"))
    }
}

/// The vocabulary of a byte-level BPE: the ordinary tokens but EOS, as the
/// bytes they stand for; their model ids; each id's position.
type Vocabulary = (Vocab<Vec<u8>>, Vec<u32>, Vec<Option<u32>>);

fn byte_level_vocabulary(listed: &Listed, eos_id: u32) -> Result<Vocabulary, LoadError> {
    let decoder = byte_decoder();
    let mut tokens = Vec::new();
    let mut vocab_ids = Vec::new();
    let mut positions = vec![None; listed.texts.len()];
    for (id, (text, &ty)) in listed.texts.iter().zip(&listed.types).enumerate() {
        if ty != NORMAL || id == eos_id as usize {
            continue;
        }
        let bytes = text
            .chars()
            .map(|c| decoder.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                LoadError::Invalid(format!(
                    "token {id} ({text:?}) is not written in the byte-level alphabet"
                ))
            })?;
        positions[id] = Some(tokens.len() as u32);
        tokens.push(bytes);
        vocab_ids.push(id as u32);
    }
    let vocab = Vocab::new(tokens)
        .map_err(|e| LoadError::Invalid(format!("vocabulary of the model: {e}")))?;
    Ok((vocab, vocab_ids, positions))
}

/// The byte-level BPE tokenizer of the metadata: its merges, GPT-2's
/// pre-tokenizer (digits split first for the `pre` values that want it),
/// the special tokens matched in the text.
fn byte_level_tokenizer(content: &Content, listed: &Listed) -> Result<Tokenizer, LoadError> {
    let merges = meta_array(content, "tokenizer.ggml.merges")?
        .iter()
        .map(|v| {
            let s = v.to_string().map_err(|e| e.to_string())?;
            let (a, b) = s
                .split_once(' ')
                .ok_or_else(|| format!("merge {s:?} is not two tokens"))?;
            Ok((a.to_string(), b.to_string()))
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| LoadError::Invalid(format!("tokenizer.ggml.merges: {e}")))?;
    let mut bpe_vocab = tokenizers::models::bpe::Vocab::default();
    for (id, text) in listed.texts.iter().enumerate() {
        bpe_vocab.insert(text.clone(), id as u32);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(bpe_vocab, merges)
        .build()
        .map_err(|e| LoadError::Invalid(format!("byte-level BPE from the metadata: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("gpt2");
    let byte_level: PreTokenizerWrapper = ByteLevel::new(false, true, true).into();
    let pre_tokenizer: PreTokenizerWrapper = if DIGIT_SPLITTING.contains(&pre) {
        Sequence::new(vec![Digits::new(true).into(), byte_level]).into()
    } else {
        byte_level
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = listed
        .texts
        .iter()
        .zip(&listed.types)
        .filter(|&(_, &ty)| ty != NORMAL)
        .map(|(text, _)| AddedToken::from(text.clone(), true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| {
        LoadError::Invalid(format!("the tokenizer refused the special tokens: {e}"))
    })?;
    Ok(tokenizer)
}

/// GPT-2's byte-to-unicode alphabet, reversed: byte-level BPE vocabularies
/// write byte `b` as a printable character (`Ġ` for a space).
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0_u32;
    for b in 0..=255_u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        map.insert(c, b);
    }
    map
}

/// Writes bytes in GPT-2's byte-level alphabet (the inverse of the
/// decoder), as a GGUF file of a byte-level BPE stores its tokens.
pub(crate) fn byte_level_text(bytes: &[u8]) -> String {
    let encoder: HashMap<u8, char> = byte_decoder().into_iter().map(|(c, b)| (b, c)).collect();
    bytes.iter().map(|b| encoder[b]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_is_gpt2s() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'a'], b'a');
        assert_eq!(byte_level_text(b" hi\n"), "ĠhiĊ");
    }
}
