//! # potential-builtins
//!
//! Ready-made, spawnable potentials over byte-string tokens:
//!
//! - [`Regex`]: a byte-level regular-expression constraint compiled to a
//!   DFA by `regex-automata`; weight one for the sequences that match;
//! - [`NgramLm`]: an interpolated Kneser-Ney n-gram language model over a
//!   vocabulary of a few thousand multi-byte tokens learned from text, with
//!   a native batch `logw_next` that shares work across contexts;
//! - [`Grammar`]: a grammar constraint on `llguidance` (an Earley parser
//!   with a lexer): Lark grammars, JSON schemas and regular expressions,
//!   with parser states kept by context.
//!
//! All have native batch forms, so their main constructors
//! ([`Regex::new`], [`NgramLm::train`], [`NgramLm::from_bundled_corpus`],
//! [`Grammar::new`], [`Grammar::lark`], [`Grammar::json_schema`],
//! [`Grammar::regex`]) return them autobatched, as genlm-control does for
//! its language-model potential; the `…_plain` constructors return them
//! unwrapped.
//!
//! A potential over single bytes (a `Regex<u8>`, a user's byte-level
//! constraint) is lifted to byte-string tokens by
//! [`potential_core::ops::CoerceConcat`].
//!
//! All implement [`potential_core::Registered`] by hand and register
//! themselves, so a worker process that links this crate rebuilds them from
//! their recipes. Reference the crate from the binary that runs workers
//! (`use potential_builtins as _;`) so that the linker keeps the
//! registrations.
//!
//! Their product is the main job of the examples: a language model steered
//! by a constraint.
//!
//! ```
//! use potential_builtins::{NgramConfig, NgramLm, Regex};
//! use potential_core::{ops::Product, Potential};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let text = b"the cat sat.\n\nthe dog sat.\n\nthe cat ran.\n";
//! let lm = NgramLm::train_plain(text, &NgramConfig { order: 3, merges: 20 })?;
//! let only_cats = Regex::new_plain("the cat.*", lm.vocab().clone())?;
//! let both = Product::new(lm.clone(), only_cats)?;
//! let next = both.logw_next(&lm.tokenize(b"the")).await?;
//! let (best, _) = next.top_k(1)[0];
//! assert_eq!(best.token().copied(), Some(&b" cat".to_vec()));
//! # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod grammar;
mod ngram;
mod regex;

pub use grammar::{CacheStats, DEFAULT_CACHE_CAPACITY, Grammar, GrammarSource, JsonWhitespace};
pub use ngram::{NgramConfig, NgramLm};
pub use regex::Regex;

/// A token made of bytes: what the byte-level built-ins accept.
///
/// Implemented for `u8` (one byte) and `Vec<u8>` (a byte string, as a
/// language model's tokens are).
pub trait ByteToken: potential_core::TokenType {
    /// The bytes of the token.
    fn as_bytes(&self) -> &[u8];
}

impl ByteToken for u8 {
    fn as_bytes(&self) -> &[u8] {
        std::slice::from_ref(self)
    }
}

impl ByteToken for Vec<u8> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use potential_core::checks::block_on;
    use potential_core::checks::{
        Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
        assert_respawns,
    };
    use potential_core::ops::{CoerceConcat, Product};
    use potential_core::{Potential, Vocab};
    use proptest::prelude::*;

    fn small_lm() -> NgramLm {
        NgramLm::train_plain(
            b"the cat sat on the mat.\n\nthe dog sat on the log.\n\na cat and a dog.\n",
            &NgramConfig {
                order: 3,
                merges: 40,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_product_of_the_two_passes_the_property_checks_and_respawns() {
        block_on(async {
            let lm = small_lm();
            let re = Regex::new_plain("the (cat|dog) sat\\.?", lm.vocab().clone()).unwrap();
            let product = Product::new(lm.clone(), re).unwrap();
            let contexts: Vec<Vec<Vec<u8>>> = ["", "the", "the cat", "the dog sat", "a cat"]
                .iter()
                .map(|t| lm.tokenize(t.as_bytes()))
                .collect();
            let tol = Tolerance::default();
            // "a cat" is dead under the regex: logw_next is undefined there.
            assert_logw_next_consistency(&product, &contexts[..4], tol)
                .await
                .unwrap();
            assert_autoreg_fact(&product, &contexts[..4], tol)
                .await
                .unwrap();
            assert!(
                assert_autoreg_fact(&product, &contexts[4..], tol)
                    .await
                    .is_err()
            );
            assert_batch_consistency(&product, &contexts[..4], tol)
                .await
                .unwrap();
            assert_respawns(&product, &contexts).await.unwrap();
        });
    }

    #[test]
    fn a_byte_level_regex_lifted_to_byte_strings_equals_the_byte_string_regex() {
        block_on(async {
            let lm = small_lm();
            let pattern = "the (cat|dog) sat( on the (mat|log))?\\.";
            let bytes = Regex::new_plain(pattern, Vocab::new(0..=255u8).unwrap()).unwrap();
            let lifted = CoerceConcat::new(bytes, lm.vocab().clone()).unwrap();
            let direct = Regex::new_plain(pattern, lm.vocab().clone()).unwrap();
            assert_eq!(lifted.vocab(), direct.vocab());
            let contexts: Vec<Vec<Vec<u8>>> = ["", "the", "the cat s", "the dog sat on the"]
                .iter()
                .map(|t| lm.tokenize(t.as_bytes()))
                .collect();
            let lifted_next = lifted.batch_logw_next(&contexts).await.unwrap();
            for (c, l) in contexts.iter().zip(&lifted_next) {
                assert_eq!(
                    l.as_slice(),
                    direct.logw_next(c).await.unwrap().as_slice(),
                    "{c:?}"
                );
                assert_eq!(
                    lifted.complete(c).await.unwrap(),
                    direct.complete(c).await.unwrap()
                );
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn ngram_next_weights_normalize_and_batches_match(
            texts in proptest::collection::vec("[a-z .]{0,12}", 1..6),
        ) {
            let lm = small_lm();
            let contexts: Vec<Vec<Vec<u8>>> = texts.iter().map(|t| lm.tokenize(t.as_bytes())).collect();
            let batch = block_on(lm.batch_logw_next(&contexts)).unwrap();
            for (c, b) in contexts.iter().zip(&batch) {
                let single = block_on(lm.logw_next(c)).unwrap();
                prop_assert!(single.logsumexp().abs() < 1e-9);
                prop_assert_eq!(single.as_slice(), b.as_slice());
            }
        }
    }
}
