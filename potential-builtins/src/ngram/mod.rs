//! An n-gram language model over multi-byte tokens.

mod corpus;
mod model;
mod tokenizer;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use potential_core::{
    AutoBatched, LogWeights, Method, NativeBatch, Potential, PotentialError, PotentialExt,
    Registered, Result, Vocab, non_empty,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use model::{Counts, MAX_ORDER, Model, history_key};
use tokenizer::Tokenizer;

/// How to train an [`NgramLm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramConfig {
    /// The order `n`: each token is predicted from the `n - 1` before it
    /// (2 to 5).
    pub order: usize,
    /// The most byte-pair merges the tokenizer learns; the vocabulary is
    /// the 256 single bytes plus at most this many byte strings.
    pub merges: usize,
}

impl Default for NgramConfig {
    /// Order 4 and 4,000 merges: on the bundled corpus a vocabulary of
    /// 4,256 tokens (it supports up to 11,740).
    fn default() -> Self {
        NgramConfig {
            order: 4,
            merges: 4000,
        }
    }
}

/// An interpolated Kneser-Ney n-gram language model over a vocabulary of
/// byte strings learned from its training text.
///
/// - Training (see [`NgramLm::train`]): the text is split into paragraphs
///   (one training sequence each, ended by EOS), a tokenizer learns a
///   vocabulary by byte-pair encoding, and the model counts n-grams of
///   token ids. The vocabulary holds all 256 single bytes, so every byte
///   string has a tokenization and a positive probability.
/// - `prefix(ctx)` is `log P(ctx as a prefix)`, the sum of
///   `log P(token | history)`; `complete(ctx)` adds `log P(EOS | ctx)`.
/// - `logw_next(ctx)` computes the whole next-token distribution over the
///   vocabulary and EOS (it sums to one): one dense pass over the
///   vocabulary per order, then one logarithm per outcome. Its cost grows
///   with the vocabulary size and the order: about 23 µs at the default
///   settings (4,256 tokens, order 4) and 40 µs with 8,000 merges, on the
///   2-core machine this project is built on.
/// - `batch_logw_next` is native and shares work: contexts with the same
///   history (the last `n - 1` tokens, as after a sampler resamples its
///   particles) get one distribution, and the lower-order distributions of
///   histories that end alike are computed once for all of them. With 64
///   contexts over 16 histories it is about 3.5 times faster than 64 single
///   calls; with 64 different histories it only breaks even.
///
/// The spawn recipe is the trained model: the vocabulary and the integer
/// n-gram counts (about 2.9 MB with postcard at the default settings),
/// from which a worker rebuilds the probability tables bit for bit in
/// about 30 ms. Retraining from the corpus in each worker would ship a few
/// bytes instead but cost each worker about 0.35 s.
///
/// ```
/// use potential_builtins::{NgramConfig, NgramLm};
/// use potential_core::Potential;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let lm = NgramLm::train_plain(b"a cat.\n\na cat sat.\n", &NgramConfig { order: 3, merges: 10 })?;
/// let ctx = lm.tokenize(b"a cat");
/// let next = lm.logw_next(&ctx).await?;
/// assert!((next.logsumexp()).abs() < 1e-9); // a distribution over tokens + EOS
/// let here = lm.prefix(&ctx).await?;
/// let ended = lm.complete(&ctx).await?;
/// assert!((ended - here - next.eos()).abs() < 1e-9);
/// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct NgramLm {
    vocab: Vocab<Vec<u8>>,
    inner: Arc<Inner>,
}

struct Inner {
    tokenizer: Tokenizer,
    model: Model,
}

impl NgramLm {
    /// The bundled training texts, all public domain (see `data/README.md`
    /// in this crate): Lewis Carroll's *Alice's Adventures in Wonderland*,
    /// Shakespeare's *As You Like It* and Milton's *Paradise Lost*, 740 KB
    /// in all.
    pub const BUNDLED_CORPUS: &'static [&'static [u8]] = &[
        include_bytes!("../../data/alice29.txt"),
        include_bytes!("../../data/asyoulik.txt"),
        include_bytes!("../../data/plrabn12.txt"),
    ];

    /// Trains a model on `text` (see the type's docs), autobatched: the
    /// model's native `batch_logw_next` shares work between contexts, so
    /// concurrent calls are gathered by default (see
    /// [`potential_core::autobatch`]). [`NgramLm::train_plain`] gives the
    /// model without the wrapper.
    pub fn train(text: &[u8], config: &NgramConfig) -> Result<AutoBatched<Self>> {
        Ok(Self::train_plain(text, config)?.to_autobatched())
    }

    /// Trains a model on the texts of [`NgramLm::BUNDLED_CORPUS`], autobatched
    /// (see [`NgramLm::train`]).
    pub fn from_bundled_corpus(config: &NgramConfig) -> Result<AutoBatched<Self>> {
        Ok(Self::from_bundled_corpus_plain(config)?.to_autobatched())
    }

    /// Trains a model on `text` (see the type's docs), without autobatching.
    ///
    /// Errors: an order outside `2..=5`, more merges than token ids can
    /// hold, or a text without any non-blank line.
    pub fn train_plain(text: &[u8], config: &NgramConfig) -> Result<Self> {
        if !(2..=MAX_ORDER).contains(&config.order) {
            return Err(PotentialError::InvalidInput(format!(
                "n-gram order {} is not in 2..={MAX_ORDER}",
                config.order
            )));
        }
        // Ids 0..V are tokens, V is EOS, V + 1 is BOS: all fit in 16 bits.
        if config.merges > usize::from(u16::MAX) - 256 - 1 {
            return Err(PotentialError::InvalidInput(format!(
                "{} merges would give more tokens than the model can index",
                config.merges
            )));
        }
        let paragraphs = corpus::paragraphs(text);
        if paragraphs.is_empty() {
            return Err(PotentialError::InvalidInput(
                "the training text has no non-blank line".into(),
            ));
        }
        let tokenizer = Tokenizer::learn(&paragraphs, config.merges);
        let sequences: Vec<Vec<u32>> = paragraphs.iter().map(|p| tokenizer.encode(p)).collect();
        let model = Model::train(&sequences, config.order, tokenizer.tokens().len())
            .map_err(PotentialError::InvalidInput)?;
        Self::assemble(tokenizer, model)
    }

    /// Trains a model on the texts of [`NgramLm::BUNDLED_CORPUS`], without autobatching.
    pub fn from_bundled_corpus_plain(config: &NgramConfig) -> Result<Self> {
        Self::train_plain(&Self::BUNDLED_CORPUS.join(&b"\n\n"[..]), config)
    }

    fn assemble(tokenizer: Tokenizer, model: Model) -> Result<Self> {
        let vocab = Vocab::new(tokenizer.tokens().iter().cloned())?;
        Ok(NgramLm {
            vocab,
            inner: Arc::new(Inner { tokenizer, model }),
        })
    }

    /// The order `n` of the model.
    pub fn order(&self) -> usize {
        self.inner.model.order()
    }

    /// The tokens of `text` by greedy longest match against the vocabulary,
    /// the way the training text was tokenized (after its whitespace was
    /// collapsed, which this does not do).
    pub fn tokenize(&self, text: &[u8]) -> Vec<Vec<u8>> {
        self.inner
            .tokenizer
            .encode(text)
            .into_iter()
            .map(|id| self.inner.tokenizer.tokens()[id as usize].clone())
            .collect()
    }

    fn eos(&self) -> u32 {
        self.vocab.len() as u32
    }

    fn bos(&self) -> u32 {
        self.eos() + 1
    }

    /// The token ids of a context; a token outside the vocabulary is an error.
    fn ids(&self, context: &[Vec<u8>]) -> Result<Vec<u32>> {
        context
            .iter()
            .map(|t| {
                self.inner.tokenizer.id(t).ok_or_else(|| {
                    PotentialError::InvalidInput(format!(
                        "token {:?} is not in the n-gram model's vocabulary",
                        potential_core::Shown(t)
                    ))
                })
            })
            .collect()
    }

    fn history(&self, ids: &[u32]) -> u64 {
        history_key(ids, self.order(), self.bos())
    }

    /// `log P(ids as a prefix)`.
    fn log_prefix(&self, ids: &[u32]) -> f64 {
        (0..ids.len())
            .map(|i| {
                let p = self
                    .inner
                    .model
                    .probability(self.history(&ids[..i]), ids[i]);
                p.ln()
            })
            .sum()
    }

    fn weights(&self, mut dist: Vec<f64>) -> Result<LogWeights<Vec<u8>>> {
        for p in &mut dist {
            *p = p.ln();
        }
        LogWeights::new(self.vocab.clone(), dist)
    }
}

impl fmt::Debug for NgramLm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NgramLm")
            .field("order", &self.order())
            .field("vocab_len", &self.vocab.len())
            .finish()
    }
}

impl Potential for NgramLm {
    type Token = Vec<u8>;

    fn vocab(&self) -> &Vocab<Vec<u8>> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch {
            logw_next: true,
            ..NativeBatch::NONE
        }
    }

    async fn complete(&self, context: &[Vec<u8>]) -> Result<f64> {
        let ids = self.ids(context)?;
        let eos = self.inner.model.probability(self.history(&ids), self.eos());
        Ok(self.log_prefix(&ids) + eos.ln())
    }

    async fn prefix(&self, context: &[Vec<u8>]) -> Result<f64> {
        Ok(self.log_prefix(&self.ids(context)?))
    }

    async fn logw_next(&self, context: &[Vec<u8>]) -> Result<LogWeights<Vec<u8>>> {
        let history = self.history(&self.ids(context)?);
        let mut dist = Vec::with_capacity(self.vocab.len() + 1);
        self.inner.model.distribution(history, &mut dist);
        self.weights(dist)
    }

    async fn batch_logw_next(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<LogWeights<Vec<u8>>>> {
        non_empty(Method::BatchLogwNext, contexts)?;
        let histories = contexts
            .iter()
            .map(|c| Ok(self.history(&self.ids(c)?)))
            .collect::<Result<Vec<u64>>>()?;
        let mut distinct = histories.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut logs = self.inner.model.log_distributions(&distinct);
        // Contexts with one history share its result: clones for all but
        // the last of them, which takes it.
        let slot: HashMap<u64, usize> = distinct.iter().enumerate().map(|(j, &h)| (h, j)).collect();
        let slots: Vec<usize> = histories.iter().map(|h| slot[h]).collect();
        let mut uses = vec![0usize; distinct.len()];
        for &j in &slots {
            uses[j] += 1;
        }
        slots
            .into_iter()
            .map(|j| {
                uses[j] -= 1;
                let values = if uses[j] == 0 {
                    std::mem::take(&mut logs[j])
                } else {
                    logs[j].clone()
                };
                LogWeights::new(self.vocab.clone(), values)
            })
            .collect()
    }
}

/// The serde form and spawn recipe: the vocabulary and the trained tables.
#[derive(Serialize)]
struct StoredRef<'a> {
    vocab: &'a Vocab<Vec<u8>>,
    counts: &'a Counts,
}

#[derive(Deserialize)]
struct Stored {
    vocab: Vocab<Vec<u8>>,
    counts: Counts,
}

impl Serialize for NgramLm {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        StoredRef {
            vocab: &self.vocab,
            counts: self.inner.model.counts(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NgramLm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let Stored { vocab, counts } = Stored::deserialize(deserializer)?;
        if vocab.len() > usize::from(u16::MAX) - 1 {
            return Err(serde::de::Error::custom(
                "vocabulary too large for an n-gram model",
            ));
        }
        let model = Model::from_counts(counts, vocab.len())
            .map_err(|e| serde::de::Error::custom(format!("inconsistent n-gram model: {e}")))?;
        let tokenizer = Tokenizer::from_tokens(vocab.tokens().to_vec());
        Ok(NgramLm {
            vocab,
            inner: Arc::new(Inner { tokenizer, model }),
        })
    }
}

impl Registered for NgramLm {}
potential_core::register!(NgramLm);

#[cfg(test)]
mod tests {
    use super::*;
    use potential_core::checks::block_on;
    use potential_core::checks::{
        Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
        assert_respawns,
    };
    use potential_core::{Recipe, Spawnable};
    use std::sync::OnceLock;

    /// A smaller model than the default (one book, fewer merges), so that
    /// debug-build tests train it quickly; trained once per test binary.
    fn lm() -> &'static NgramLm {
        static LM: OnceLock<NgramLm> = OnceLock::new();
        LM.get_or_init(|| {
            NgramLm::train_plain(
                NgramLm::BUNDLED_CORPUS[0],
                &NgramConfig {
                    order: 4,
                    merges: 600,
                },
            )
            .unwrap()
        })
    }

    /// Contexts cut from the corpus, plus the empty one and an odd one.
    fn contexts(lm: &NgramLm, n: usize) -> Vec<Vec<Vec<u8>>> {
        let text = corpus::paragraphs(NgramLm::BUNDLED_CORPUS[0]);
        let mut out = vec![vec![], lm.tokenize(b"\xffzq")];
        for (i, p) in text.iter().step_by(37).take(n).enumerate() {
            let tokens = lm.tokenize(p);
            out.push(tokens[..(i % 7).min(tokens.len())].to_vec());
        }
        out
    }

    #[test]
    fn logw_next_is_a_distribution_over_tokens_and_eos() {
        block_on(async {
            let lm = lm();
            assert!(lm.vocab().len() > 700, "{}", lm.vocab().len());
            for ctx in contexts(lm, 20) {
                let next = lm.logw_next(&ctx).await.unwrap();
                assert!(
                    next.logsumexp().abs() < 1e-9,
                    "{ctx:?}: {}",
                    next.logsumexp()
                );
                assert!(next.as_slice().iter().all(|v| v.is_finite()));
            }
        });
    }

    #[test]
    fn the_model_has_learned_the_book() {
        block_on(async {
            let lm = lm();
            let next = lm.logw_next(&lm.tokenize(b"said the Mock")).await.unwrap();
            let (best, _) = next.top_k(1)[0];
            assert_eq!(
                best.token().copied(),
                Some(&b" Turtle".to_vec()),
                "{:?}",
                next.top_k(5)
            );
            let seen = lm
                .prefix(&lm.tokenize(b"Alice was beginning"))
                .await
                .unwrap();
            let unseen = lm
                .prefix(&lm.tokenize(b"Alice was chromosome"))
                .await
                .unwrap();
            assert!(seen > unseen + 5.0, "{seen} vs {unseen}");
        });
    }

    #[test]
    fn property_checks_pass_on_many_contexts() {
        block_on(async {
            let lm = lm();
            let tol = Tolerance {
                rtol: 1e-9,
                atol: 1e-9,
            };
            let cs = contexts(lm, 8);
            assert_logw_next_consistency(lm, &cs, tol).await.unwrap();
            let cs = contexts(lm, 40);
            assert_autoreg_fact(lm, &cs, tol).await.unwrap();
            assert_batch_consistency(lm, &cs, tol).await.unwrap();
        });
    }

    #[test]
    fn the_batch_form_equals_the_single_form_exactly() {
        block_on(async {
            let lm = lm();
            let mut cs = contexts(lm, 30);
            // Duplicates and contexts that end alike, as particles do.
            cs.extend(cs.clone().into_iter().take(10));
            cs.push(lm.tokenize(b"said the"));
            cs.push(lm.tokenize(b"Alice said the"));
            let batch = lm.batch_logw_next(&cs).await.unwrap();
            assert_eq!(batch.len(), cs.len());
            for (c, b) in cs.iter().zip(&batch) {
                assert_eq!(lm.logw_next(c).await.unwrap().as_slice(), b.as_slice());
            }
        });
    }

    #[test]
    fn complete_is_prefix_plus_eos() {
        block_on(async {
            let lm = lm();
            for ctx in contexts(lm, 10) {
                let p = lm.prefix(&ctx).await.unwrap();
                let c = lm.complete(&ctx).await.unwrap();
                let eos = lm.logw_next(&ctx).await.unwrap().eos();
                assert!((c - p - eos).abs() < 1e-9);
            }
            assert_eq!(lm.prefix(&[]).await.unwrap(), 0.0);
        });
    }

    #[test]
    fn bad_inputs_are_errors() {
        block_on(async {
            let lm = lm();
            let outside = vec![b"not a token at all".to_vec()];
            for err in [
                lm.prefix(&outside).await.unwrap_err(),
                lm.complete(&outside).await.unwrap_err(),
                lm.logw_next(&outside).await.unwrap_err(),
                lm.batch_logw_next(&[vec![], outside]).await.unwrap_err(),
            ] {
                assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
                assert!(err.to_string().contains("not a token at all"), "{err}");
            }
            let empty = lm.batch_logw_next(&[]).await.unwrap_err();
            assert!(matches!(empty, PotentialError::EmptyBatch { .. }));
        });
        let config = |order, merges| NgramConfig { order, merges };
        for (text, config) in [
            (&b"a b"[..], config(1, 10)),
            (b"a b", config(6, 10)),
            (b"a b", config(3, 70_000)),
            (b" \n\t\n", config(3, 10)),
            (b"", config(3, 10)),
        ] {
            let err = NgramLm::train_plain(text, &config).unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        }
    }

    #[test]
    fn recipes_rebuild_the_same_model_and_reject_garbage() {
        block_on(async {
            let lm = NgramLm::train_plain(
                b"the cat sat on the mat.\n\nthe dog sat on the log.\n",
                &NgramConfig {
                    order: 3,
                    merges: 30,
                },
            )
            .unwrap();
            assert_respawns(&lm, &[vec![], lm.tokenize(b"the dog sat")])
                .await
                .unwrap();
            let recipe = lm.recipe().unwrap();
            let Recipe::Registered { tag, state } = recipe else {
                panic!("a registered type's recipe")
            };
            for bad in [state[..state.len() / 2].to_vec(), vec![0xff; 40]] {
                let recipe = Recipe::Registered {
                    tag: tag.clone(),
                    state: bad,
                };
                assert!(matches!(
                    recipe.build(),
                    Err(PotentialError::InvalidInput(_))
                ));
            }
            // A token id out of range in the tables is caught by validation.
            let mut stored: Stored = postcard::from_bytes(&state).unwrap();
            stored.counts.corrupt_an_outcome();
            let state = postcard::to_stdvec(&StoredRef {
                vocab: &stored.vocab,
                counts: &stored.counts,
            })
            .unwrap();
            let err = Recipe::Registered { tag, state }.build().unwrap_err();
            assert!(err.to_string().contains("cannot rebuild"), "{err}");
        });
    }
}
