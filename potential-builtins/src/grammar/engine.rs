//! The glue to llguidance: a token environment built from the vocabulary,
//! the compiled grammar's initial parser, and the few parser operations the
//! potential needs. llguidance reports failures as `anyhow` errors and may
//! panic in odd cases; everything here comes back as a `PotentialError`,
//! and a panic is caught before it can unwind into a caller.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use llguidance::api::StopReason;
use llguidance::earley::SlicedBiasComputer;
use llguidance::panic_utils::catch_unwind;
use llguidance::toktrie::{ApproximateTokEnv, InferenceCapabilities, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use potential_core::{Mask, PotentialError, Result, Vocab};

use super::GrammarSource;

/// The bytes of the end-of-sequence token given to toktrie. A leading
/// `0xff` makes it a special token, which no grammar text can spell; the
/// suffix only has to differ from every token of the vocabulary.
fn eos_marker(vocab: &Vocab<Vec<u8>>) -> Vec<u8> {
    let mut marker = b"\xff<|potential-rs eos|>".to_vec();
    while vocab.contains(&marker) {
        marker.push(b'~');
    }
    marker
}

/// Compiles `source` for `vocab` into a parser at the start of the output.
///
/// The vocabulary's token `i` is llguidance's token `i`, and one more
/// token, `vocab.len()`, is its end of sequence. The token environment says
/// that its tokenization is not canonical, so that llguidance never forces
/// one way of cutting bytes into tokens (it would otherwise allow only the
/// canonical token over forced bytes, and the answers would depend on how
/// the context was cut).
pub(super) fn compile(source: &GrammarSource, vocab: &Vocab<Vec<u8>>) -> Result<Matcher> {
    if let Some(i) = vocab.tokens().iter().position(Vec::is_empty) {
        return Err(PotentialError::InvalidInput(format!(
            "token {i} of the vocabulary is empty; a grammar's tokens need at least one byte"
        )));
    }
    let eos = u32::try_from(vocab.len())
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or_else(|| {
            PotentialError::InvalidInput(format!(
                "a grammar's vocabulary holds at most {} tokens, not {}",
                u32::MAX - 1,
                vocab.len()
            ))
        })?;
    // Building the grammar value already parses the schema text and
    // rewrites a regular expression; neither may unwind into the caller.
    let grammar = catch_unwind(AssertUnwindSafe(|| Ok(source.to_llguidance())))
        .map_err(|e| invalid(source, &format!("{e:#}")))??;
    let mut words: Vec<Vec<u8>> = Vec::with_capacity(vocab.len() + 1);
    words.extend(vocab.tokens().iter().cloned());
    words.push(eos_marker(vocab));
    let matcher = catch_unwind(AssertUnwindSafe(|| {
        let trie = TokTrie::from(&TokRxInfo::new(eos + 1, eos), &words);
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new(
            &env,
            InferenceCapabilities::default(),
            &SlicedBiasComputer::general_slices(),
        )?;
        // Warnings go nowhere: a potential does not write to stderr.
        factory.quiet();
        let parser = factory.create_parser(grammar)?;
        Ok(Matcher::new(Ok(parser)))
    }))
    .map_err(|e| invalid(source, &format!("{e:#}")))?;
    match matcher.get_error() {
        Some(e) => Err(invalid(source, &e)),
        None => Ok(matcher),
    }
}

fn invalid(source: &GrammarSource, message: &str) -> PotentialError {
    PotentialError::InvalidInput(format!("invalid {}: {message}", source.kind()))
}

/// An error of llguidance during a call: the parser gave up (a limit of its
/// own, an internal error) rather than rejecting the bytes.
fn engine_error(what: &str, error: impl std::fmt::Display) -> PotentialError {
    PotentialError::msg(format!("llguidance failed to {what}: {error:#}"))
}

/// Advances `matcher` over `tokens`; `Ok(false)` as soon as one of them
/// takes the bytes out of the language (the matcher is then spent).
pub(super) fn advance(matcher: &mut Matcher, tokens: &[u32]) -> Result<bool> {
    for &token in tokens {
        // Validating first makes a rejected token a clean `0`, where
        // consuming it would put the matcher in its error state.
        match matcher.try_consume_tokens(&[token]) {
            Ok(1) => {}
            Ok(_) => return Ok(false),
            Err(e) => return Err(engine_error("advance the parser", e)),
        }
    }
    Ok(true)
}

/// Advances `matcher` over `token`, which its mask allows: no check first
/// (the mask is that check), so a failure is llguidance's error.
pub(super) fn advance_allowed(matcher: &mut Matcher, token: u32) -> Result<()> {
    matcher
        .consume_token(token)
        .map_err(|e| engine_error("advance the parser over an allowed token", e))
}

/// Whether the bytes consumed so far are a sentence of the language.
pub(super) fn is_accepting(matcher: &mut Matcher) -> Result<bool> {
    matcher
        .is_accepting()
        .map_err(|e| engine_error("check acceptance", e))
}

/// The next-token mask, `len + 1` positions with EOS last: llguidance's
/// token mask, whose bits are ours (the end-of-sequence token is `len`, so
/// the mask's bit for it is the EOS weight). Its words are copied, never
/// written out as weights.
pub(super) fn next_mask(matcher: &mut Matcher, len: usize) -> Result<Mask> {
    let positions = len + 1;
    let words = match matcher.compute_mask_or_eos() {
        // llguidance's words hold 32 bits each, least significant first:
        // two make one of ours.
        Ok(vob) => {
            let halves = vob.as_slice();
            (0..positions.div_ceil(64))
                .map(|w| {
                    let half = |i: usize| u64::from(halves.get(i).copied().unwrap_or(0));
                    half(2 * w) | half(2 * w + 1) << 32
                })
                .collect()
        }
        // A live prefix that no token of this vocabulary continues (and
        // that is not a sentence): every weight is zero. The matcher keeps
        // only the message, which starts with the stop reason.
        Err(e)
            if e.to_string()
                .starts_with(&StopReason::NoExtensionBias.to_string()) =>
        {
            vec![0; positions.div_ceil(64)]
        }
        Err(e) => return Err(engine_error("compute the token mask", e)),
    };
    Mask::from_words(positions, words)
}
