//! The `Llm` potential: genlm-control's `PromptedLLM` over a GGUF model.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use potential_core::{
    AutoBatched, LogWeights, Method, NativeBatch, Potential, PotentialError, PotentialExt,
    Registered, Result, Vocab, non_empty,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{KvChunk, KvRef, Model, SeqInput, read_content};
use crate::tokens::Tokens;

/// How an [`Llm`] runs: its prompt, temperature and cache budget.
///
/// ```
/// use potential_llm::LlmOptions;
/// let o = LlmOptions { prompt: "Once upon a time".into(), ..LlmOptions::default() };
/// assert_eq!(o.temperature, 1.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmOptions {
    /// The text whose tokens precede every context. Special tokens written
    /// in it (`<|im_start|>`) are encoded as such; see
    /// [`chat_prompt`](crate::chat_prompt). An empty prompt stands for the
    /// model's beginning-of-sequence token (a model without one needs a
    /// prompt).
    pub prompt: String,
    /// The logits are divided by it before the softmax; must be positive
    /// and finite. Default 1.
    pub temperature: f64,
    /// The most bytes of key-value caches and next-token weights kept
    /// between calls (least recently used out). Default 512 MiB; 0 keeps
    /// nothing.
    pub cache_bytes: usize,
    /// How the weight matrices multiply: [`Precision::Blocks32`] (the
    /// default), [`Precision::Blocks256`] or [`Precision::Exact`]. The
    /// crate docs give each one's measured distance from the file's own
    /// model.
    pub precision: Precision,
}

/// How an [`Llm`] multiplies by its weight matrices.
///
/// All use the file's weights; they differ in what they round on the way
/// (see the crate docs for the measured KL divergence of each from a
/// float32 reference on the same file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Quantized matmuls whose inputs are rounded to 8 bits in blocks of
    /// 32 values (Q8_0), as llama.cpp rounds them for these formats: the
    /// same kernel, and so the same numbers, on every x86 CPU with AVX2.
    #[default]
    Blocks32,
    /// Where the CPU has VNNI (AVX-512 VNNI or AVX-VNNI), rows padded for
    /// candle's repacked Q8_0 kernel, which rounds each input to 8 bits in
    /// blocks of 256 values (Q8_K): batches up to three times faster there,
    /// for a distance from the model about ten times that of
    /// [`Precision::Blocks32`]. Elsewhere it is `Blocks32`.
    Blocks256,
    /// Every weight matrix dequantized to `f32` once, at load, and `f32`
    /// matmuls: the file's model as a float32 reference computes it, for
    /// about four times the memory and a slower batch.
    Exact,
}

impl Default for LlmOptions {
    fn default() -> Self {
        LlmOptions {
            prompt: String::new(),
            temperature: 1.0,
            cache_bytes: 512 << 20,
            precision: Precision::Blocks32,
        }
    }
}

/// The counters of an [`Llm`]'s cache, as [`Llm::cache_stats`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Contexts answered from the cache.
    pub hits: u64,
    /// Contexts that needed a forward pass.
    pub misses: u64,
    /// Contexts held.
    pub entries: usize,
    /// Bytes held: keys, values and next-token weights.
    pub bytes: usize,
    /// The budget ([`LlmOptions::cache_bytes`]).
    pub budget: usize,
}

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

/// The keys and values of a run of positions, after those of its parent.
struct Node {
    parent: Option<Arc<Node>>,
    chunk: KvChunk,
}

impl Node {
    /// The cached positions up to and including this node's, in order.
    fn positions(self: &Arc<Self>) -> Vec<KvRef<'_>> {
        let mut chain = Vec::new();
        let mut at = Some(self);
        while let Some(node) = at {
            chain.push(node);
            at = node.parent.as_ref();
        }
        chain
            .iter()
            .rev()
            .flat_map(|&node| {
                (0..node.chunk.len).map(move |index| KvRef {
                    chunk: &node.chunk,
                    index,
                })
            })
            .collect()
    }
}

impl Drop for Node {
    /// Frees a long chain of nodes in a loop rather than by recursion, which
    /// could overflow the stack for contexts of thousands of tokens.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            match Arc::try_unwrap(parent) {
                Ok(mut node) => next = node.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// A context's state: what the forward pass left and what it answered.
#[derive(Clone)]
struct State {
    node: Arc<Node>,
    /// `prefix` of the context.
    prefix: f64,
    /// Next-token log probabilities, vocabulary order, EOS last.
    next: Arc<[f32]>,
}

struct Entry {
    state: State,
    bytes: usize,
    stamp: u64,
}

/// The cache: contexts (their model ids, after the prompt) to states.
struct Store {
    map: HashMap<Vec<u32>, Entry>,
    bytes: usize,
    budget: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl Store {
    /// Marks `key` and its cached prefixes as used now.
    fn touch(&mut self, key: &[u32]) {
        for j in 0..=key.len() {
            if let Some(e) = self.map.get_mut(&key[..j]) {
                e.stamp = self.clock;
            }
        }
    }

    fn insert(&mut self, key: Vec<u32>, state: State) {
        let bytes = state.node.chunk.bytes()
            + state.next.len() * std::mem::size_of::<f32>()
            + key.len() * std::mem::size_of::<u32>()
            + std::mem::size_of::<Entry>();
        let entry = Entry {
            state,
            bytes,
            stamp: self.clock,
        };
        if let Some(old) = self.map.insert(key.clone(), entry) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
        self.touch(&key);
    }

    /// Drops the least recently used entries until the budget holds, down
    /// to seven eighths of it so that the sort is paid once per many
    /// insertions. Among entries used at the same time, longer contexts go
    /// first, so that a prefix outlives the contexts that build on it.
    fn evict(&mut self) {
        if self.bytes <= self.budget {
            return;
        }
        let target = self.budget - self.budget / 8;
        let mut order: Vec<(u64, usize, Vec<u32>)> = self
            .map
            .iter()
            .map(|(k, e)| (e.stamp, usize::MAX - k.len(), k.clone()))
            .collect();
        order.sort_unstable();
        for (_, _, key) in order {
            if self.bytes <= target {
                break;
            }
            if let Some(e) = self.map.remove(&key) {
                self.bytes -= e.bytes;
            }
        }
    }
}

/// A forward pass to run: a context past its longest cached prefix.
struct Job {
    key: Vec<u32>,
    /// The cached prefix: its length in context tokens and its state.
    base_len: usize,
    base: State,
}

fn invalid(message: String) -> PotentialError {
    PotentialError::InvalidInput(message)
}

impl Llm {
    /// Opens a llama-architecture GGUF model, autobatched: concurrent
    /// single calls are served by the native batch forms, one forward pass
    /// for all of them (see [`potential_core::autobatch`]).
    /// [`Llm::open_plain`] gives it without the wrapper.
    pub fn open(path: impl AsRef<Path>, options: LlmOptions) -> Result<AutoBatched<Llm>> {
        Ok(Self::open_plain(path, options)?.to_autobatched())
    }

    /// Opens a llama-architecture GGUF model without autobatching.
    ///
    /// A missing, truncated or corrupt file, another architecture, a
    /// missing tensor, a tokenizer other than byte-level BPE, a bad
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
        let store = Store {
            map: HashMap::new(),
            bytes: 0,
            budget: options.cache_bytes,
            clock: 0,
            hits: 0,
            misses: 0,
        };
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
            entries: s.map.len(),
            bytes: s.bytes,
            budget: s.budget,
        }
    }

    /// Empties the cache (the counters stay).
    pub fn clear_cache(&self) {
        let mut s = self.store();
        s.map.clear();
        s.bytes = 0;
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock was held cannot leave the map half
        // updated (inserts and removals are single calls), so a poisoned
        // lock is still usable.
        self.run.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model ids of a context; a token outside the vocabulary or a
    /// context past the context length is an error.
    fn ids(&self, context: &[Vec<u8>]) -> Result<Vec<u32>> {
        let t = &self.model.tokens;
        let room = self.context_length() - self.run.prompt_ids.len();
        if context.len() > room {
            return Err(invalid(format!(
                "a context of {} tokens does not fit: the model takes {} after the prompt",
                context.len(),
                room
            )));
        }
        context
            .iter()
            .map(|token| {
                t.vocab
                    .index_of(token)
                    .map(|p| t.vocab_ids[p])
                    .ok_or_else(|| {
                        invalid(format!(
                            "token {:?} is not in the vocabulary of the model",
                            String::from_utf8_lossy(token)
                        ))
                    })
            })
            .collect()
    }

    /// The state of every context, from the cache or from one forward
    /// pass over the new tokens of all of them.
    fn states(&self, contexts: &[&[Vec<u8>]]) -> Result<Vec<State>> {
        let keys = contexts
            .iter()
            .map(|c| self.ids(c))
            .collect::<Result<Vec<_>>>()?;
        let mut found: Vec<Option<State>> = Vec::with_capacity(keys.len());
        let mut pending: Vec<Vec<u32>> = Vec::new();
        let mut root = None;
        {
            let mut s = self.store();
            s.clock += 1;
            for key in &keys {
                match s.map.get(key) {
                    Some(e) => {
                        found.push(Some(e.state.clone()));
                        s.hits += 1;
                        s.touch(key);
                    }
                    None => {
                        found.push(None);
                        s.misses += 1;
                        if !pending.contains(key) {
                            pending.push(key.clone());
                        }
                    }
                }
            }
            if !pending.is_empty() {
                root = s.map.get(&[][..]).map(|e| e.state.clone());
            }
        }
        if pending.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        let root = match root {
            Some(r) => r,
            None => self.compute_root()?,
        };
        let jobs: Vec<Job> = {
            let s = self.store();
            pending
                .into_iter()
                .filter(|key| !key.is_empty())
                .map(|key| {
                    let (base_len, base) = (1..key.len())
                        .rev()
                        .find_map(|j| s.map.get(&key[..j]).map(|e| (j, e.state.clone())))
                        .unwrap_or((0, root.clone()));
                    Job {
                        key,
                        base_len,
                        base,
                    }
                })
                .collect()
        };
        let computed = self.run_jobs(&jobs)?;
        let mut done: HashMap<&[u32], State> = HashMap::from([(&[][..], root)]);
        {
            let mut s = self.store();
            for (job, state) in jobs.iter().zip(computed) {
                s.insert(job.key.clone(), state.clone());
                done.insert(&job.key, state);
            }
            s.evict();
        }
        found
            .into_iter()
            .zip(&keys)
            .map(|(f, key)| match f {
                Some(state) => Ok(state),
                None => done
                    .get(key.as_slice())
                    .cloned()
                    .ok_or_else(|| forward_error("a context was left out of the pass")),
            })
            .collect()
    }

    /// Runs the prompt through the model and caches its state.
    fn compute_root(&self) -> Result<State> {
        let prompt = &self.run.prompt_ids;
        let model = &self.model.model;
        let input = SeqInput {
            past: &[],
            new_ids: prompt,
            logits_from: prompt.len() - 1,
        };
        let mut out = model.forward(&[input]).map_err(forward_error)?;
        let out = out.pop().ok_or_else(|| forward_error("no output"))?;
        let next = self.next_weights(&out.logits);
        let state = State {
            node: Arc::new(Node {
                parent: None,
                chunk: out.kv,
            }),
            prefix: 0.0,
            next: next.into(),
        };
        let mut s = self.store();
        s.insert(Vec::new(), state.clone());
        s.evict();
        Ok(state)
    }

    /// One forward pass for the new tokens of every job.
    fn run_jobs(&self, jobs: &[Job]) -> Result<Vec<State>> {
        let model = &self.model.model;
        let n_vocab = model.config.n_vocab;
        let pasts: Vec<Vec<KvRef<'_>>> = jobs.iter().map(|j| j.base.node.positions()).collect();
        let inputs: Vec<SeqInput<'_>> = jobs
            .iter()
            .zip(&pasts)
            .map(|(job, past)| SeqInput {
                past,
                new_ids: &job.key[job.base_len..],
                logits_from: 0,
            })
            .collect();
        let outputs = model.forward(&inputs).map_err(forward_error)?;
        let positions = &self.model.tokens.positions;
        let at = |id: u32| positions[id as usize].map(|p| p as usize);
        let mut states = Vec::with_capacity(jobs.len());
        for (job, out) in jobs.iter().zip(outputs) {
            let new = &job.key[job.base_len..];
            let rows: Vec<&[f32]> = out.logits.chunks_exact(n_vocab).collect();
            // The first new token is scored by the base's next-token
            // weights, each later one by the row of the token before it.
            let mut prefix = job.base.prefix;
            for (i, &id) in new.iter().enumerate() {
                let p = at(id).ok_or_else(|| forward_error("a special token in a context"))?;
                prefix += if i == 0 {
                    f64::from(job.base.next[p])
                } else {
                    self.log_prob(rows[i - 1], id)
                };
            }
            let last = rows
                .last()
                .ok_or_else(|| forward_error("no logits for the last token"))?;
            states.push(State {
                node: Arc::new(Node {
                    parent: Some(Arc::clone(&job.base.node)),
                    chunk: out.kv,
                }),
                prefix,
                next: self.next_weights(last).into(),
            });
        }
        Ok(states)
    }

    /// `log Z` of a logits row: the log-sum-exp of the tempered logits of
    /// the vocabulary and EOS, in `f64`.
    fn log_normalizer(&self, row: &[f32]) -> f64 {
        let t = &self.model.tokens;
        let inv_t = 1.0 / self.run.options.temperature;
        let ids = t.vocab_ids.iter().chain(std::iter::once(&t.eos_id));
        let max = ids
            .clone()
            .map(|&id| f64::from(row[id as usize]) * inv_t)
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = ids
            .map(|&id| (f64::from(row[id as usize]) * inv_t - max).exp())
            .sum();
        max + sum.ln()
    }

    fn log_prob(&self, row: &[f32], id: u32) -> f64 {
        f64::from(row[id as usize]) / self.run.options.temperature - self.log_normalizer(row)
    }

    /// The next-token log probabilities of a logits row, vocabulary order,
    /// EOS last.
    fn next_weights(&self, row: &[f32]) -> Vec<f32> {
        let t = &self.model.tokens;
        let z = self.log_normalizer(row);
        let inv_t = 1.0 / self.run.options.temperature;
        t.vocab_ids
            .iter()
            .chain(std::iter::once(&t.eos_id))
            .map(|&id| (f64::from(row[id as usize]) * inv_t - z) as f32)
            .collect()
    }

    fn weights(&self, state: &State) -> Result<LogWeights<Vec<u8>>> {
        LogWeights::new(
            self.model.tokens.vocab.clone(),
            state.next.iter().map(|&v| f64::from(v)).collect(),
        )
    }
}

fn forward_error(e: impl fmt::Display) -> PotentialError {
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

/// The serde form, which is the spawn recipe: the model's path and the
/// options (the prompt among them). A worker opens the file itself; the
/// weights never cross a socket.
#[derive(Serialize)]
struct RecipeRef<'a> {
    path: &'a Path,
    options: &'a LlmOptions,
}

#[derive(Deserialize)]
struct RecipeOwned {
    path: PathBuf,
    options: LlmOptions,
}

impl Serialize for Llm {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        RecipeRef {
            path: &self.model.path,
            options: &self.run.options,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Llm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let recipe = RecipeOwned::deserialize(deserializer)?;
        Llm::open_plain(&recipe.path, recipe.options).map_err(serde::de::Error::custom)
    }
}

impl Registered for Llm {}
potential_core::register!(Llm);
