//! Byte-level BPE (`tokenizer.ggml.model = gpt2`, SmolLM2's): tokens
//! written in GPT-2's byte-to-unicode alphabet, merges, GPT-2's
//! pre-tokenizer; the `tokenizers` crate encodes.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Content;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::{Listed, NORMAL, meta_array};
use crate::error::LoadError;

/// The `tokenizer.ggml.pre` values whose pre-tokenizer splits digits one by
/// one before GPT-2's rule (llama.cpp groups these; SmolLM2 says `smollm`).
const DIGIT_SPLITTING: &[&str] = &["smollm", "starcoder", "refact", "codeshell", "exaone"];

/// The bytes each token stands for: the ordinary tokens' (written in the
/// byte-level alphabet), `None` for the special ones.
pub(super) fn token_bytes_all(listed: &Listed) -> Result<Vec<Option<Vec<u8>>>, LoadError> {
    let decoder = byte_decoder();
    listed
        .texts
        .iter()
        .zip(&listed.types)
        .enumerate()
        .map(|(id, (text, &ty))| {
            if ty != NORMAL {
                return Ok(None);
            }
            text.chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .map(Some)
                .ok_or_else(|| {
                    LoadError::Invalid(format!(
                        "token {id} ({text:?}) is not written in the byte-level alphabet"
                    ))
                })
        })
        .collect()
}

/// The byte-level BPE tokenizer of the metadata: its merges, GPT-2's
/// pre-tokenizer (digits split first for the `pre` values that want it),
/// the special tokens matched in the text.
pub(super) fn byte_level_tokenizer(
    content: &Content,
    listed: &Listed,
) -> Result<Tokenizer, LoadError> {
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
pub(super) fn byte_decoder() -> HashMap<char, u8> {
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
