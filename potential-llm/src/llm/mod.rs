//! The `Llm` potential: genlm-control's `PromptedLLM` over a GGUF model.
//!
//! `options` (what a user sets), `cache` (states keyed by token prefix),
//! `scheduler` (answering contexts from the cache or one forward pass),
//! `recipe` (the serde form a worker opens); the potential itself here.

mod cache;
mod options;
mod recipe;
mod scheduler;
mod sum_exp;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use potential_core::{
    AutoBatched, LogWeights, Method, NativeBatch, Potential, PotentialError, PotentialExt, Result,
    Vocab, non_empty,
};

pub use crate::model::Precision;
pub use cache::CacheStats;
pub use options::LlmOptions;

use crate::model::{Model, read_content};
use crate::tokens::Tokens;
use cache::{State, Store};

/// A language model as a potential over byte-string tokens, with the
/// semantics of genlm-control's `PromptedLLM`.
///
/// - the prompt's tokens precede every context;
/// - `prefix(ctx)` is the sum of the log probabilities of the context's
///   tokens, each given the prompt and the tokens before it;
/// - `complete(ctx)` is `prefix(ctx)` plus the log probability of the
///   end of sequence after `ctx`;
/// - `logw_next(ctx)` is the next-token distribution: the log-softmax of
///   the logits (divided by the temperature) over the vocabulary, EOS
///   last.
///
/// The vocabulary holds the model's ordinary tokens as the bytes they
/// stand for; its special tokens (`<|im_start|>`, …) are left out and its
/// end-of-sequence token is EOS. The softmax runs over the vocabulary and
/// EOS only: the special tokens' share is renormalized away, which is the
/// model conditioned on emitting no special token but EOS. (genlm keeps
/// the special tokens as ordinary byte strings in its vocabulary, so its
/// distribution needs no renormalizing; here they are not text, and
/// leaving them out keeps `logw_next` normalized, as the property checks
/// want.)
///
/// # Cost
///
/// Every context is answered from a key-value cache keyed by its tokens:
/// a context already seen costs a lookup; `ctx + [t]` after `ctx` costs a
/// forward pass of one token; any other context runs its tokens past the
/// longest cached prefix. The batch forms run the new tokens of the whole
/// batch as one pass (see the crate docs for figures), and the main
/// constructor returns the potential autobatched so that concurrent
/// single calls become such batches. Calls are CPU-bound and run inline
/// on the calling task, as the other built-ins do.
///
/// ```no_run
/// use potential_core::Potential;
/// use potential_llm::{Llm, LlmOptions};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let path = potential_llm::smollm2_path()?;
/// let prompt = potential_llm::chat_prompt("You are terse.", "The capital of France?");
/// let llm = Llm::open(&path, LlmOptions { prompt, ..LlmOptions::default() })?;
/// let next = llm.logw_next(&[]).await?;
/// println!("{:?}", next.top_k(3));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Llm {
    model: Arc<Loaded>,
    run: Arc<Run>,
}

/// What a file gives: shared by every `Llm` over the same weights.
struct Loaded {
    path: PathBuf,
    model: Model,
    tokens: Tokens,
}

/// What a prompt and options give: the prompt's ids and the cache.
struct Run {
    options: LlmOptions,
    prompt_ids: Vec<u32>,
    store: Mutex<Store>,
}

pub(super) fn invalid(message: String) -> PotentialError {
    PotentialError::InvalidInput(message)
}

impl Llm {
    /// Opens a GGUF model (llama or Gemma 3 architecture), autobatched: concurrent
    /// single calls are served by the native batch forms, one forward pass
    /// for all of them (see [`potential_core::autobatch`]).
    /// [`Llm::open_plain`] gives it without the wrapper.
    pub fn open(path: impl AsRef<Path>, options: LlmOptions) -> Result<AutoBatched<Llm>> {
        Ok(Self::open_plain(path, options)?.to_autobatched())
    }

    /// Opens a GGUF model (llama or Gemma 3 architecture) without
    /// autobatching.
    ///
    /// A missing, truncated or corrupt file, another architecture, a
    /// missing tensor, a tokenizer other than byte-level BPE or SentencePiece, a bad
    /// temperature or a prompt the model cannot take are errors (a
    /// [`LoadError`](crate::LoadError) inside [`PotentialError::Potential`] for the file, an
    /// [`PotentialError::InvalidInput`] for the options).
    pub fn open_plain(path: impl AsRef<Path>, options: LlmOptions) -> Result<Llm> {
        let path = path.as_ref();
        let (content, mut reader) = read_content(path)?;
        let model = Model::load(&content, &mut reader, options.precision)?;
        let tokens = Tokens::from_gguf(&content, model.config.n_vocab)?;
        let loaded = Arc::new(Loaded {
            path: path.to_path_buf(),
            model,
            tokens,
        });
        Self::with_loaded(loaded, options)
    }

    /// The same weights with other options (another prompt, temperature or
    /// budget) and a cache of its own; the weights are shared, not copied.
    /// Another [`Precision`] needs other matrices, so the file is opened
    /// again for it.
    pub fn with_options(&self, options: LlmOptions) -> Result<Llm> {
        if options.precision != self.run.options.precision {
            return Self::open_plain(&self.model.path, options);
        }
        Self::with_loaded(Arc::clone(&self.model), options)
    }

    fn with_loaded(model: Arc<Loaded>, options: LlmOptions) -> Result<Llm> {
        if !(options.temperature > 0.0 && options.temperature.is_finite()) {
            return Err(invalid(format!(
                "temperature must be positive and finite, not {}",
                options.temperature
            )));
        }
        let mut prompt_ids = model.tokens.encode(&options.prompt).map_err(invalid)?;
        // A model that wants its beginning-of-sequence token (Gemma) gets
        // it before every prompt, unless the prompt spells it.
        if let Some(bos) = model.tokens.bos_id.filter(|_| model.tokens.add_bos)
            && prompt_ids.first() != Some(&bos)
        {
            prompt_ids.insert(0, bos);
        }
        if prompt_ids.is_empty() {
            match model.tokens.bos_id {
                Some(bos) => prompt_ids.push(bos),
                None => {
                    return Err(invalid(
                        "an empty prompt needs a beginning-of-sequence token, which this model has not"
                            .into(),
                    ));
                }
            }
        }
        if prompt_ids.len() >= model.model.config.context_length {
            return Err(invalid(format!(
                "the prompt's {} tokens fill the context length of {}",
                prompt_ids.len(),
                model.model.config.context_length
            )));
        }
        let store = Store::new(options.cache_bytes);
        Ok(Llm {
            model,
            run: Arc::new(Run {
                options,
                prompt_ids,
                store: Mutex::new(store),
            }),
        })
    }

    /// The path the model was opened from.
    pub fn path(&self) -> &Path {
        &self.model.path
    }

    /// The options it runs with.
    pub fn options(&self) -> &LlmOptions {
        &self.run.options
    }

    /// The model ids of the prompt (the beginning-of-sequence token for an
    /// empty prompt).
    pub fn prompt_ids(&self) -> &[u32] {
        &self.run.prompt_ids
    }

    /// The model id of each vocabulary token, in vocabulary order.
    pub fn vocab_model_ids(&self) -> &[u32] {
        &self.model.tokens.vocab_ids
    }

    /// The model ids whose probabilities together are EOS's: the file's
    /// end-of-sequence token, then its end-of-turn tokens (Gemma's
    /// `<end_of_turn>`).
    pub fn eos_model_ids(&self) -> &[u32] {
        &self.model.tokens.eos_ids
    }

    /// Model ids that spell a vocabulary token already listed (a
    /// SentencePiece byte token `<0x41>` beside `A`), with that token's
    /// vocabulary index: their probabilities are added to its.
    pub fn duplicate_model_ids(&self) -> &[(u32, u32)] {
        &self.model.tokens.duplicates
    }

    /// The model's context length in tokens, prompt included.
    pub fn context_length(&self) -> usize {
        self.model.model.config.context_length
    }

    /// The tokens of `text` in this vocabulary, as the model's tokenizer
    /// splits it; text that spells a special token is an error.
    pub fn tokenize(&self, text: &str) -> Result<Vec<Vec<u8>>> {
        let t = &self.model.tokens;
        t.encode(text)
            .map_err(invalid)?
            .into_iter()
            .map(|id| {
                t.positions
                    .get(id as usize)
                    .copied()
                    .flatten()
                    .and_then(|p| t.vocab.get(p as usize).cloned())
                    .ok_or_else(|| {
                        invalid(format!(
                            "{text:?} spells special token {id}, which is not in the vocabulary"
                        ))
                    })
            })
            .collect()
    }

    /// The bytes of a sequence of tokens.
    pub fn detokenize(&self, tokens: &[Vec<u8>]) -> Vec<u8> {
        tokens.concat()
    }

    /// The text of a sequence of tokens (invalid UTF-8, as a context cut
    /// inside a character has, shows as U+FFFD).
    pub fn text(&self, tokens: &[Vec<u8>]) -> String {
        String::from_utf8_lossy(&self.detokenize(tokens)).into_owned()
    }

    /// The counters of the cache.
    pub fn cache_stats(&self) -> CacheStats {
        let s = self.store();
        CacheStats {
            hits: s.hits,
            misses: s.misses,
            entries: s.states.len(),
            bytes: s.states.weight(),
            budget: s.states.budget(),
        }
    }

    /// Empties the cache (the counters stay).
    pub fn clear_cache(&self) {
        self.store().states.clear();
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock was held cannot leave the cache half
        // updated (its lookups, inserts and evictions are single calls on
        // a `PrefixCache`), so a poisoned lock is still usable.
        self.run.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn forward_error(e: impl fmt::Display) -> PotentialError {
    PotentialError::msg(format!("the forward pass failed: {e}"))
}

fn complete_of(state: &State) -> f64 {
    state.prefix + f64::from(state.next[state.next.len() - 1])
}

impl fmt::Debug for Llm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Llm")
            .field("path", &self.model.path)
            .field("vocab_len", &self.model.tokens.vocab.len())
            .field("prompt_tokens", &self.run.prompt_ids.len())
            .field("temperature", &self.run.options.temperature)
            .finish()
    }
}

impl Potential for Llm {
    type Token = Vec<u8>;

    fn vocab(&self) -> &Vocab<Vec<u8>> {
        &self.model.tokens.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch {
            complete: true,
            prefix: true,
            logw_next: true,
            score: false,
        }
    }

    async fn complete(&self, context: &[Vec<u8>]) -> Result<f64> {
        Ok(complete_of(&self.states(&[context])?[0]))
    }

    async fn prefix(&self, context: &[Vec<u8>]) -> Result<f64> {
        Ok(self.states(&[context])?[0].prefix)
    }

    async fn logw_next(&self, context: &[Vec<u8>]) -> Result<LogWeights<Vec<u8>>> {
        self.weights(&self.states(&[context])?[0])
    }

    async fn batch_complete(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<f64>> {
        non_empty(Method::BatchComplete, contexts)?;
        let refs: Vec<&[Vec<u8>]> = contexts.iter().map(Vec::as_slice).collect();
        Ok(self.states(&refs)?.iter().map(complete_of).collect())
    }

    async fn batch_prefix(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<f64>> {
        non_empty(Method::BatchPrefix, contexts)?;
        let refs: Vec<&[Vec<u8>]> = contexts.iter().map(Vec::as_slice).collect();
        Ok(self.states(&refs)?.iter().map(|s| s.prefix).collect())
    }

    async fn batch_logw_next(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<LogWeights<Vec<u8>>>> {
        non_empty(Method::BatchLogwNext, contexts)?;
        let refs: Vec<&[Vec<u8>]> = contexts.iter().map(Vec::as_slice).collect();
        self.states(&refs)?
            .iter()
            .map(|s| self.weights(s))
            .collect()
    }
}
