//! A user-written, expensive constraint, as a user of the library would
//! write one with `#[derive(Potential)]`: every word of the text comes
//! from a word list and none is longer than a limit. Its cost, about a
//! millisecond a call, is calibrated busy work ([`crate::busy`]): a
//! stand-in for a check that is expensive for real (a dictionary service,
//! a parser, a model of its own) and has no batch form. Sampled with AWRS
//! next to SmolLM2 ([`sample`]), it is the job of the `awrs_wordlist`
//! example and of the bench rows `awrs_worker_gain` and
//! `awrs_checks_per_token`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use potential_builtins::NgramLm;
use potential_core::{AutoBatched, Potential, PotentialError, Result, Vocab, batched};
use potential_llm::{Llm, LlmOptions, chat_prompt};
use potential_smc::{Awrs, Run, SamplerOptions, smc};
use serde::{Deserialize, Serialize};

/// The bytes that separate words; any byte that is neither one of these
/// nor an ASCII letter (a digit, a byte of a non-ASCII character) rules
/// the text out.
const SEPARATORS: &[u8] = b" \n.,;:!?'\"-";

/// A boolean constraint over byte-string tokens: log weight 0 when every
/// word of the text (a maximal run of ASCII letters, compared in lower
/// case) is in the word list and none is longer than `max_len` letters,
/// `-inf` otherwise. As a prefix, the last word may still be growing: it
/// need only begin some listed word. Each `prefix` and `complete` call
/// first does `work` rounds of [`spin`](crate::busy::spin), so that it
/// costs what an expensive check would, deterministically.
#[derive(Potential, Serialize, Deserialize)]
pub struct WordList {
    vocab: Vocab<Vec<u8>>,
    /// Lower-case words of at most `max_len` letters.
    words: BTreeSet<Vec<u8>>,
    max_len: usize,
    work: u64,
}

impl WordList {
    /// Over `vocab`, allowing the words of `text` (lower-cased) of at most
    /// `max_len` letters, each call doing `work` rounds of busy work
    /// (0 for none; [`calibrate`](crate::busy::calibrate) gives the rounds
    /// of a duration).
    pub fn from_text(vocab: Vocab<Vec<u8>>, text: &[u8], max_len: usize, work: u64) -> Self {
        let words = text
            .split(|b| !b.is_ascii_alphabetic())
            .filter(|w| !w.is_empty() && w.len() <= max_len)
            .map(|w| w.to_ascii_lowercase())
            .collect();
        WordList {
            vocab,
            words,
            max_len,
            work,
        }
    }

    /// The number of words allowed.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no word is allowed (then only texts without letters are).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether the text of `context` is allowed: finished when `complete`,
    /// else as the beginning of a text.
    fn allows(&self, context: &[Vec<u8>], complete: bool) -> bool {
        let mut word = Vec::new();
        for &b in context.iter().flatten() {
            if b.is_ascii_alphabetic() {
                word.push(b.to_ascii_lowercase());
                if word.len() > self.max_len {
                    return false;
                }
            } else if SEPARATORS.contains(&b) {
                if !word.is_empty() && !self.words.contains(&word) {
                    return false;
                }
                word.clear();
            } else {
                return false;
            }
        }
        word.is_empty() || self.words.contains(&word) || (!complete && self.begins_a_word(&word))
    }

    /// Whether some listed word begins with `start`: the first word not
    /// before it in order does, if any does.
    fn begins_a_word(&self, start: &[u8]) -> bool {
        self.words
            .range(start.to_vec()..)
            .next()
            .is_some_and(|w| w.starts_with(start))
    }

    /// A call's answer, after the call's cost.
    fn verdict(&self, context: &[Vec<u8>], complete: bool) -> f64 {
        crate::busy::spin(self.work);
        if self.allows(context, complete) {
            0.0
        } else {
            f64::NEG_INFINITY
        }
    }
}

#[batched]
impl WordList {
    async fn complete(&self, context: &[Vec<u8>]) -> Result<f64> {
        Ok(self.verdict(context, true))
    }

    async fn prefix(&self, context: &[Vec<u8>]) -> Result<f64> {
        Ok(self.verdict(context, false))
    }
}

/// The job's sampler: 8 particles of at most 30 tokens, in two groups (so
/// that one group's model step overlaps the other's checks).
pub fn sampler_options() -> SamplerOptions {
    SamplerOptions::new(8, 30, 2026)
}

/// The longest word allowed.
pub const MAX_WORD: usize = 8;

/// The cost of one constraint call.
pub const CHECK_COST: Duration = Duration::from_millis(1);

/// Opens SmolLM2 at `path` (autobatched), prompted for a story, and the
/// constraint over its vocabulary: the words of *Alice's Adventures in
/// Wonderland* (bundled with the n-gram model) of at most [`MAX_WORD`]
/// letters, each call costing about [`CHECK_COST`] (calibrated here, once).
pub fn build(path: &Path) -> Result<(AutoBatched<Llm>, WordList)> {
    let lm = Llm::open(
        path,
        LlmOptions {
            prompt: chat_prompt(
                "You are a storyteller. You write in plain, simple words.",
                "Tell a short story about a girl who follows a rabbit.",
            ),
            ..LlmOptions::default()
        },
    )?;
    let words = WordList::from_text(
        lm.vocab().clone(),
        NgramLm::BUNDLED_CORPUS[0],
        MAX_WORD,
        crate::busy::calibrate(CHECK_COST),
    );
    Ok((lm, words))
}

/// Runs AWRS over `lm` and `constraint` with [`sampler_options`], checking
/// `lookahead` draws of a particle at a time (see
/// [`Awrs::with_lookahead`]: the number of workers the constraint runs in,
/// 1 in this process): the run and its wall time. The model's cache is
/// emptied first, so that a run never reuses the steps of an earlier one
/// (the same seed draws the same particles) and each pays for its own
/// model calls.
pub async fn sample<C>(
    lm: &AutoBatched<Llm>,
    constraint: &C,
    lookahead: usize,
) -> Result<(Run<Vec<u8>>, Duration)>
where
    C: Potential<Token = Vec<u8>>,
{
    lm.inner().clear_cache();
    let awrs = Awrs::new(lm, constraint)?.with_lookahead(lookahead)?;
    let start = Instant::now();
    let run = smc(&awrs, sampler_options(), |_| {}).await?;
    Ok((run, start.elapsed()))
}

/// Whether a finished text is allowed by `words` (its own check, without
/// the cost), for the example to confirm what AWRS produced.
pub fn check_text(words: &WordList, tokens: &[Vec<u8>]) -> Result<()> {
    if words.allows(tokens, true) {
        Ok(())
    } else {
        Err(PotentialError::InvalidInput(
            "a text the word list does not allow".to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use potential_core::checks::{assert_respawns, block_on};

    fn tokens(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    /// The words "the", "cat", "sat", "category" (too long: left out) over
    /// a tiny vocabulary, without cost.
    fn words() -> WordList {
        let vocab = Vocab::new(tokens(&[
            "The", " cat", "eg", "ory", " sat", ".", "7", " ca",
        ]))
        .unwrap();
        WordList::from_text(vocab, b"the Cat, sat; category", 5, 0)
    }

    fn verdicts(p: &WordList, parts: &[&str]) -> (f64, f64) {
        let c = tokens(parts);
        block_on(async { (p.prefix(&c).await.unwrap(), p.complete(&c).await.unwrap()) })
    }

    #[test]
    fn listed_words_are_allowed_in_any_case_and_between_separators() {
        let p = words();
        assert_eq!(p.len(), 3);
        assert_eq!(verdicts(&p, &[]), (0.0, 0.0));
        assert_eq!(verdicts(&p, &["The", " cat", " sat", "."]), (0.0, 0.0));
    }

    #[test]
    fn a_growing_word_is_allowed_as_a_prefix_only() {
        let p = words();
        let ruled_out = f64::NEG_INFINITY;
        assert_eq!(verdicts(&p, &["The", " ca"]), (0.0, ruled_out));
        // "categ" begins no word of at most 5 letters.
        assert_eq!(verdicts(&p, &[" cat", "eg"]), (ruled_out, ruled_out));
    }

    #[test]
    fn unlisted_words_long_words_and_other_bytes_are_ruled_out() {
        let p = words();
        let out = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        assert_eq!(verdicts(&p, &[" cat", "eg", "ory"]), out);
        assert_eq!(verdicts(&p, &[" sat", "7"]), out);
        let long = WordList::from_text(words().vocab, b"category", 100, 0);
        assert_eq!(verdicts(&long, &[" cat", "eg", "ory"]), (0.0, 0.0));
        let short = WordList::from_text(words().vocab, b"category", 3, 0);
        assert_eq!(verdicts(&short, &[" cat", "eg"]), out);
    }

    #[test]
    fn the_recipe_rebuilds_the_same_constraint() {
        let p = words();
        let contexts = [vec![], tokens(&["The", " ca"]), tokens(&["The", " cat"])];
        block_on(assert_respawns(&p, &contexts)).unwrap();
        assert!(check_text(&p, &tokens(&["The", " cat"])).is_ok());
        assert!(check_text(&p, &tokens(&["The", " ca"])).is_err());
    }
}
