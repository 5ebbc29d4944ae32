//! A grammar constraint over byte-string tokens, on llguidance: Lark
//! grammars, JSON schemas and regular expressions.

mod cache;
mod engine;
mod json;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use llguidance::Matcher;
use llguidance::api::TopLevelGrammar;
use potential_core::{
    AutoBatched, LogWeights, Mask, Method, NativeBatch, Potential, PotentialError, PotentialExt,
    Registered, Result, Vocab, non_empty, zero_weight,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use cache::CacheStats;
use cache::StateCache;
pub use json::JsonWhitespace;

/// How many parser states a [`Grammar`] keeps by default: enough for the
/// particles of a sampler and their parents. A state holds llguidance's
/// parse of the whole context, so long contexts make large states, and
/// the next-token mask `logw_next` computed there (a bit per token: 6 KB
/// over 50,000 tokens), so that the token a sampler draws from it is fed
/// to the parser without being checked again.
pub const DEFAULT_CACHE_CAPACITY: usize = 256;

/// What a [`Grammar`] is compiled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrammarSource {
    /// Grammar text in llguidance's Lark syntax (`start: …`, rules,
    /// `/regex/` and `"string"` terminals, `%ignore`, `%json { … }`).
    Lark(String),
    /// A JSON schema, as JSON text (see [the JSON language
    /// accepted](Grammar#the-json-language-accepted)).
    JsonSchema(String),
    /// A regular expression (Rust `regex` syntax) that the whole output
    /// must match.
    Regex(String),
}

impl GrammarSource {
    /// A JSON schema, with the white space its documents may hold: the
    /// schema's text with the setting in its `x-guidance` object (where
    /// llguidance reads its options), so that the source alone rebuilds
    /// the grammar. [`GrammarSource::JsonSchema`] of a schema without the
    /// setting is [`JsonWhitespace::Free`].
    ///
    /// ```
    /// use potential_builtins::{Grammar, GrammarSource, JsonWhitespace};
    /// use potential_core::{Potential, Vocab};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vocab = Vocab::new(["[", "]", ",", " ", "1"].map(|t| t.as_bytes().to_vec()))?;
    /// let schema = serde_json::json!({"type": "array", "items": {"type": "integer"}});
    /// let source = GrammarSource::json_schema_with(&schema, JsonWhitespace::Compact);
    /// let compact = Grammar::new(source, vocab)?;
    /// let tokens = |ts: &[&str]| ts.iter().map(|t| t.as_bytes().to_vec()).collect::<Vec<_>>();
    /// assert_eq!(compact.complete(&tokens(&["[", "1", ",", "1", "]"])).await?, 0.0);
    /// assert_eq!(compact.prefix(&tokens(&["[", "1", ",", " "])).await?, f64::NEG_INFINITY);
    /// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
    /// ```
    pub fn json_schema_with(schema: &serde_json::Value, whitespace: JsonWhitespace) -> Self {
        GrammarSource::JsonSchema(json::with_whitespace(schema, whitespace))
    }

    /// What the source is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            GrammarSource::Lark(_) => "Lark grammar",
            GrammarSource::JsonSchema(_) => "JSON schema",
            GrammarSource::Regex(_) => "regular expression",
        }
    }

    fn to_llguidance(&self) -> Result<TopLevelGrammar> {
        Ok(match self {
            GrammarSource::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
            GrammarSource::JsonSchema(text) => {
                let invalid = |e: &dyn fmt::Display| {
                    PotentialError::InvalidInput(format!("invalid JSON schema: {e}"))
                };
                let schema = serde_json::from_str(text).map_err(|e| invalid(&e))?;
                TopLevelGrammar::from_json_schema(json::prepare(schema).map_err(|e| invalid(&e))?)
            }
            // llguidance turns the pattern into Lark (`start: /…/`); its
            // errors surface when the parser is built.
            GrammarSource::Regex(pattern) => TopLevelGrammar::from_regex(pattern),
        })
    }
}

/// Weight one for the byte strings of a grammar's language, zero for all
/// others, over a vocabulary of byte-string tokens (a language model's).
///
/// Built on [llguidance](https://docs.rs/llguidance) (an Earley parser with
/// a lexer, and token masks computed over a trie of the vocabulary), from
/// Lark grammar text ([`Grammar::lark`]), a JSON schema
/// ([`Grammar::json_schema`]) or a regular expression ([`Grammar::regex`]).
///
/// - `complete(ctx)` is `0` when the bytes of `ctx` are a sentence of the
///   language and `-inf` otherwise;
/// - `prefix(ctx)` is `0` while the bytes can still be extended to a
///   sentence and `-inf` otherwise;
/// - `logw_next(ctx)` is llguidance's token mask: `0` for the tokens that
///   keep the bytes a prefix, `-inf` for the others, and EOS `0` exactly
///   when `ctx` is complete.
///
/// The answers depend on the bytes of the context only, not on how they
/// were cut into tokens: llguidance lexes bytes, and it is told that the
/// vocabulary's tokenization is not canonical, so it never insists on one
/// way of cutting.
///
/// Parser states are kept by context (the least recently used go when
/// [`DEFAULT_CACHE_CAPACITY`] are kept; see [`Grammar::with_cache_capacity`]
/// and [`Grammar::cache_stats`]), so `logw_next(ctx + [t])` after a call on
/// `ctx` costs one token's advance and one mask. The batch forms are
/// native: one call answers many contexts, a context repeated in a batch
/// is answered once. Clones share the compiled grammar and the kept states.
///
/// The language is llguidance's: its lexer is greedy (a terminal takes the
/// longest match), as in Lark.
///
/// # The JSON language accepted
///
/// A grammar built from a JSON schema accepts the documents valid under
/// the schema, written in these forms only; a valid document written
/// otherwise is refused.
///
/// - **White space**: none before or after the document's value; between
///   two of its tokens any run of spaces, tabs, line feeds and carriage
///   returns ([`JsonWhitespace::Free`], the default), or none
///   ([`JsonWhitespace::Compact`], see [`GrammarSource::json_schema_with`]).
/// - **Key order**: the declared properties (those of `properties`, then
///   the names of `required` that `properties` lacks) come in the schema's
///   order, each at most once; additional and pattern properties come
///   after them, in any order among themselves.
/// - **Duplicate keys**: a declared name is never repeated, but the keys of
///   additional and pattern properties are not compared with one another:
///   `{"b":1,"b":2}` passes where additional properties are allowed, and
///   counts as two properties toward `minProperties` and `maxProperties`.
/// - **Strings and escapes**: characters are written as themselves (in
///   UTF-8) except `"`, `\` and the control characters; the only escapes
///   are `\"`, `\\`, `\b`, `\f`, `\n`, `\r` and `\t`, in values and keys
///   alike: no `\uXXXX`, no `\/`. So every string has one spelling and a
///   key is held to the schema of the property it names (llguidance would
///   otherwise take `"\u0061"` for a key other than `"a"`). Hence a string
///   holding another control character (U+0000 to U+001F but those five,
///   or U+007F) cannot be written, and the default output of Python's
///   `json.dumps` for non-ASCII text (`"\u00e9"`) is refused.
/// - **Numbers**: an `integer` has no fraction and no exponent (`1`, never
///   `1.0` or `1e2`); an unbounded `number` takes every JSON form
///   (`-0`, `2.5e-3`); a number or integer with a bound (`minimum`,
///   `maximum` or their exclusive forms) has no exponent and is never
///   written `-0`.
/// - **`format`** is enforced (draft 2020-12 makes it an annotation):
///   `date-time`, `date`, `time`, `duration`, `email`, `hostname`, `ipv4`,
///   `ipv6`, `uuid`, `uri`; another format is an error at construction.
/// - **Unsatisfiable schemas**: a schema that llguidance finds
///   unsatisfiable (`false`, `minimum` above `maximum`, a required
///   property whose schema is `false`) is a
///   [`PotentialError::InvalidInput`] at construction ("Unsatisfiable
///   schema: …"), not an empty language; an optional property that no
///   value satisfies is left out of the object.
/// - **`oneOf`** whose branches llguidance cannot prove disjoint (say
///   `integer` and `number`) is an error at construction; with
///   `"x-guidance": {"coerce_one_of": true}` it is read as `anyOf`, which
///   also accepts a document valid under several branches (`1` there).
///   Branches of different types are exact.
/// - **`minProperties` and `maxProperties`** are exact when every
///   property of `properties` is required, and an error at construction
///   otherwise; with `"x-guidance": {"lenient": true}` they count only the
///   additional properties, so that `{"a":1}` is refused under
///   `minProperties: 1` when `a` is declared but optional.
/// - **References**: a `$ref` resolves against the nearest `$id`, and
///   `$anchor`s and escaped pointers (`#/$defs/a~1b`) resolve; nothing is
///   fetched, so a `$ref` to another document is an error.
///
/// A schema may carry llguidance's own compile options in an `x-guidance`
/// object (separators, `lenient`, `coerce_one_of`, …); they are honored,
/// but escape settings that allow `\u` are an error. A `%json { … }` inside a
/// Lark grammar is compiled by llguidance without these settings: there a
/// key spelled with `\u` escapes its property's schema unless the embedded
/// schema's `x-guidance` sets `"json_allowed_escapes": "nrbtf\"\\"`.
///
/// ```
/// use potential_builtins::Grammar;
/// use potential_core::{Potential, Vocab};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vocab = Vocab::new([b"(".to_vec(), b")".to_vec(), b"()".to_vec(), b"x".to_vec()])?;
/// // Balanced parentheses: a context-free language, beyond a regular expression.
/// let parens = Grammar::lark_plain(r#"start: "" | "(" start ")" start"#, vocab)?;
/// let tokens = |ts: &[&[u8]]| ts.iter().map(|t| t.to_vec()).collect::<Vec<_>>();
/// assert_eq!(parens.complete(&tokens(&[b"(", b"()", b")"])).await?, 0.0);
/// assert_eq!(parens.prefix(&tokens(&[b"(", b"("])).await?, 0.0);
/// assert_eq!(parens.prefix(&tokens(&[b")"])).await?, f64::NEG_INFINITY);
/// let next = parens.logw_next(&tokens(&[b"("])).await?;
/// assert_eq!(next.get(&b")".to_vec()), 0.0);
/// assert_eq!(next.get(&b"x".to_vec()), f64::NEG_INFINITY);
/// assert_eq!(next.eos(), f64::NEG_INFINITY); // "(" is not balanced
/// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Grammar {
    vocab: Vocab<Vec<u8>>,
    source: Arc<GrammarSource>,
    cache: Arc<Mutex<StateCache>>,
}

impl Grammar {
    /// Compiles `source` for a vocabulary, autobatched: the native batch
    /// forms answer a batch in one call, which pays most across worker
    /// processes, so concurrent calls are gathered by default (see
    /// [`potential_core::autobatch`]). [`Grammar::new_plain`] gives the
    /// constraint without the wrapper.
    pub fn new(source: GrammarSource, vocab: Vocab<Vec<u8>>) -> Result<AutoBatched<Self>> {
        Ok(Self::new_plain(source, vocab)?.to_autobatched())
    }

    /// Compiles `source` for a vocabulary, without autobatching.
    ///
    /// A malformed grammar, schema or pattern is an
    /// [`PotentialError::InvalidInput`] that carries llguidance's (or
    /// serde_json's) message, which names the place; so is a vocabulary
    /// with an empty token.
    ///
    /// ```
    /// use potential_builtins::{Grammar, GrammarSource};
    /// use potential_core::{PotentialError, Vocab};
    ///
    /// let vocab = Vocab::new([b"a".to_vec()])?;
    /// let err = Grammar::new_plain(GrammarSource::JsonSchema("{\"type\": ".into()), vocab.clone())
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("line 1 column 9"), "{err}");
    /// let err = Grammar::new_plain(GrammarSource::Lark("start: foo".into()), vocab).unwrap_err();
    /// assert!(err.to_string().contains("foo"), "{err}");
    /// # Ok::<(), PotentialError>(())
    /// ```
    pub fn new_plain(source: GrammarSource, vocab: Vocab<Vec<u8>>) -> Result<Self> {
        let root = engine::compile(&source, &vocab)?;
        Ok(Grammar {
            vocab,
            source: Arc::new(source),
            cache: Arc::new(Mutex::new(StateCache::new(root, DEFAULT_CACHE_CAPACITY))),
        })
    }

    /// A grammar in llguidance's Lark syntax, autobatched.
    ///
    /// ```
    /// use potential_builtins::Grammar;
    /// use potential_core::{Potential, Vocab};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vocab = Vocab::new([b"1".to_vec(), b"+".to_vec(), b"2".to_vec(), b"+2".to_vec()])?;
    /// let sums = Grammar::lark(r#"start: NUM ("+" NUM)*
    ///                             NUM: /[0-9]+/"#, vocab)?;
    /// assert_eq!(sums.complete(&[b"1".to_vec(), b"+2".to_vec()]).await?, 0.0);
    /// assert_eq!(sums.complete(&[b"1".to_vec(), b"+".to_vec()]).await?, f64::NEG_INFINITY);
    /// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
    /// ```
    pub fn lark(grammar: &str, vocab: Vocab<Vec<u8>>) -> Result<AutoBatched<Self>> {
        Self::new(GrammarSource::Lark(grammar.to_string()), vocab)
    }

    /// [`Grammar::lark`] without autobatching.
    pub fn lark_plain(grammar: &str, vocab: Vocab<Vec<u8>>) -> Result<Self> {
        Self::new_plain(GrammarSource::Lark(grammar.to_string()), vocab)
    }

    /// The JSON documents valid under a JSON schema, autobatched, in the
    /// forms of [the JSON language accepted](Grammar#the-json-language-accepted).
    /// For schema text, use [`GrammarSource::JsonSchema`] with
    /// [`Grammar::new`]; for compact documents,
    /// [`GrammarSource::json_schema_with`].
    ///
    /// ```
    /// use potential_builtins::Grammar;
    /// use potential_core::{Potential, Vocab};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vocab = Vocab::new(["{", "}", "\"age\"", ":", " ", "4", "2", "\"", "x"].map(|t| t.as_bytes().to_vec()))?;
    /// let schema = serde_json::json!({
    ///     "type": "object",
    ///     "properties": {"age": {"type": "integer"}},
    ///     "required": ["age"],
    ///     "additionalProperties": false
    /// });
    /// let person = Grammar::json_schema(&schema, vocab)?;
    /// let tokens = |ts: &[&str]| ts.iter().map(|t| t.as_bytes().to_vec()).collect::<Vec<_>>();
    /// assert_eq!(person.complete(&tokens(&["{", "\"age\"", ":", " ", "4", "2", "}"])).await?, 0.0);
    /// let next = person.logw_next(&tokens(&["{", "\"age\"", ":"])).await?;
    /// assert_eq!(next.get(&b"4".to_vec()), 0.0);
    /// assert_eq!(next.get(&b"\"".to_vec()), f64::NEG_INFINITY); // an integer, not a string
    /// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
    /// ```
    pub fn json_schema(
        schema: &serde_json::Value,
        vocab: Vocab<Vec<u8>>,
    ) -> Result<AutoBatched<Self>> {
        Self::new(GrammarSource::JsonSchema(schema.to_string()), vocab)
    }

    /// [`Grammar::json_schema`] without autobatching.
    pub fn json_schema_plain(schema: &serde_json::Value, vocab: Vocab<Vec<u8>>) -> Result<Self> {
        Self::new_plain(GrammarSource::JsonSchema(schema.to_string()), vocab)
    }

    /// The byte strings that fully match a regular expression, autobatched.
    ///
    /// ```
    /// use potential_builtins::Grammar;
    /// use potential_core::{Potential, Vocab};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let vocab = Vocab::new([b"ab".to_vec(), b"a".to_vec(), b"c".to_vec()])?;
    /// let re = Grammar::regex("(ab)+c?", vocab)?;
    /// assert_eq!(re.complete(&[b"a".to_vec(), b"ab".to_vec()]).await?, f64::NEG_INFINITY);
    /// assert_eq!(re.prefix(&[b"ab".to_vec(), b"a".to_vec()]).await?, 0.0);
    /// assert_eq!(re.logw_next(&[b"ab".to_vec()]).await?.eos(), 0.0);
    /// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
    /// ```
    pub fn regex(pattern: &str, vocab: Vocab<Vec<u8>>) -> Result<AutoBatched<Self>> {
        Self::new(GrammarSource::Regex(pattern.to_string()), vocab)
    }

    /// [`Grammar::regex`] without autobatching.
    pub fn regex_plain(pattern: &str, vocab: Vocab<Vec<u8>>) -> Result<Self> {
        Self::new_plain(GrammarSource::Regex(pattern.to_string()), vocab)
    }

    /// What the grammar was compiled from.
    pub fn source(&self) -> &GrammarSource {
        &self.source
    }

    /// The same grammar with a cache of its own that keeps at most
    /// `capacity` parser states (`0`: none; every call then parses its
    /// context from the start), and lexer caches of its own.
    ///
    /// Clones of a grammar share its kept states and llguidance's lexer,
    /// which sits behind a lock: two threads answering through clones of
    /// one grammar wait for each other (on 2 cores they ran at 0.8x of one
    /// thread alone). Give each thread a grammar made by this method
    /// instead: two of them ran at 1.5-1.7x, about as two worker processes do
    /// (bench row `grammar_worker_gain`).
    ///
    /// ```
    /// use potential_builtins::Grammar;
    /// use potential_core::{Potential, Vocab};
    ///
    /// let vocab = Vocab::new([b"a".to_vec(), b"b".to_vec()])?;
    /// let grammar = Grammar::regex_plain("(ab)+", vocab)?;
    /// let answers = std::thread::scope(|s| {
    ///     let threads: Vec<_> = (0..2)
    ///         .map(|_| {
    ///             let own = grammar.clone().with_cache_capacity(64);
    ///             s.spawn(move || potential_core::checks::block_on(own.prefix(&[b"a".to_vec()])))
    ///         })
    ///         .collect();
    ///     threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
    /// });
    /// assert!(answers.iter().all(|a| *a.as_ref().unwrap() == 0.0));
    /// # Ok::<(), potential_core::PotentialError>(())
    /// ```
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        let root = self.lock().root().deep_clone();
        self.cache = Arc::new(Mutex::new(StateCache::new(root, capacity)));
        self
    }

    /// How the kept parser states have served the calls so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.lock().stats()
    }

    /// llguidance's parser after the bytes of `context` (a clone of the
    /// kept state), to drive with llguidance's own API, or `None` when they
    /// leave the language. Its token ids are the positions in the
    /// vocabulary, and its end-of-sequence token is `vocab().len()`.
    ///
    /// ```
    /// use potential_builtins::Grammar;
    /// use potential_core::Vocab;
    ///
    /// let g = Grammar::regex_plain("ab+", Vocab::new([b"a".to_vec(), b"b".to_vec()])?)?;
    /// let mut parser = g.matcher(&[b"a".to_vec()])?.expect("a live prefix");
    /// let mask = parser.compute_mask().expect("a mask");
    /// assert!(mask.is_allowed(1) && !mask.is_allowed(0)); // "b", not "a"
    /// assert!(g.matcher(&[b"b".to_vec()])?.is_none());
    /// # Ok::<(), potential_core::PotentialError>(())
    /// ```
    pub fn matcher(&self, context: &[Vec<u8>]) -> Result<Option<Matcher>> {
        self.with_state(&self.ids(context)?, |m| Ok(m.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, StateCache> {
        // Only this module's own code runs under the lock, and it leaves
        // the cache whole even if it panics midway.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token ids of a context: a token's position in the vocabulary.
    fn ids(&self, context: &[Vec<u8>]) -> Result<Vec<u32>> {
        context
            .iter()
            .map(|token| {
                // The vocabulary holds fewer than u32::MAX tokens (checked
                // when compiling), so an index fits.
                self.vocab.index_of(token).map(|i| i as u32).ok_or_else(|| {
                    PotentialError::InvalidInput(format!(
                        "token {token:?} is not in the vocabulary of the {}",
                        self.source.kind()
                    ))
                })
            })
            .collect()
    }

    /// Runs `f` on the parser state after `ids`, or answers `None` when
    /// they leave the language. The state comes from the longest kept
    /// prefix, advanced over the rest; the lock is not held meanwhile.
    fn with_state<R>(
        &self,
        ids: &[u32],
        f: impl FnOnce(&mut Matcher) -> Result<R>,
    ) -> Result<Option<R>> {
        self.with_state_keeping(ids, |m| Ok((f(m)?, None)))
    }

    /// [`Grammar::with_state`] whose `f` also gives the next-token mask
    /// to keep with the state, so that the token drawn from it next is fed
    /// without a check.
    fn with_state_keeping<R>(
        &self,
        ids: &[u32],
        f: impl FnOnce(&mut Matcher) -> Result<(R, Option<Mask>)>,
    ) -> Result<Option<R>> {
        let start = self.lock().start(ids);
        let Some(mut state) = start.state else {
            return Ok(None);
        };
        let mut rest = &ids[start.done..];
        if start.next_allowed
            && let Some((&first, after)) = rest.split_first()
        {
            engine::advance_allowed(&mut state, first)?;
            rest = after;
        }
        if !engine::advance(&mut state, rest)? {
            self.lock().insert(ids, None, None);
            return Ok(None);
        }
        let (answer, mask) = f(&mut state)?;
        // A parser that gave up while answering is not worth keeping; a
        // kept one that learned nothing new is kept already (with its mask).
        let learned = start.done < ids.len() || mask.is_some();
        if learned && !state.is_error() {
            self.lock().insert(ids, Some(state), mask);
        }
        Ok(Some(answer))
    }

    fn complete_now(&self, context: &[Vec<u8>]) -> Result<f64> {
        let accepting = self.with_state(&self.ids(context)?, engine::is_accepting)?;
        Ok(log_indicator(accepting == Some(true)))
    }

    fn prefix_now(&self, context: &[Vec<u8>]) -> Result<f64> {
        let live = self.with_state(&self.ids(context)?, |_| Ok(()))?;
        Ok(log_indicator(live.is_some()))
    }

    fn logw_next_now(&self, context: &[Vec<u8>]) -> Result<LogWeights<Vec<u8>>> {
        let len = self.vocab.len();
        let next = |m: &mut Matcher| {
            let mask = engine::next_mask(m, len)?;
            Ok((mask.clone(), Some(mask)))
        };
        match self.with_state_keeping(&self.ids(context)?, next)? {
            Some(mask) => LogWeights::from_mask(self.vocab.clone(), mask),
            None => Err(zero_weight(context)),
        }
    }

    /// Answers every context of a batch, a repeated context once.
    fn batch_now<R: Clone>(
        method: Method,
        contexts: &[Vec<Vec<u8>>],
        mut answer: impl FnMut(&[Vec<u8>]) -> Result<R>,
    ) -> Result<Vec<R>> {
        non_empty(method, contexts)?;
        let mut seen: HashMap<&[Vec<u8>], R> = HashMap::new();
        contexts
            .iter()
            .map(|c| match seen.get(c.as_slice()) {
                Some(r) => Ok(r.clone()),
                None => {
                    let r = answer(c)?;
                    seen.insert(c, r.clone());
                    Ok(r)
                }
            })
            .collect()
    }
}

fn log_indicator(yes: bool) -> f64 {
    if yes { 0.0 } else { f64::NEG_INFINITY }
}

impl fmt::Debug for Grammar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grammar")
            .field("source", &self.source)
            .field("vocab_len", &self.vocab.len())
            .finish()
    }
}

impl Potential for Grammar {
    type Token = Vec<u8>;

    fn vocab(&self) -> &Vocab<Vec<u8>> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch {
            complete: true,
            prefix: true,
            logw_next: true,
            ..NativeBatch::NONE
        }
    }

    async fn complete(&self, context: &[Vec<u8>]) -> Result<f64> {
        self.complete_now(context)
    }

    async fn prefix(&self, context: &[Vec<u8>]) -> Result<f64> {
        self.prefix_now(context)
    }

    async fn logw_next(&self, context: &[Vec<u8>]) -> Result<LogWeights<Vec<u8>>> {
        self.logw_next_now(context)
    }

    async fn batch_complete(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<f64>> {
        Self::batch_now(Method::BatchComplete, contexts, |c| self.complete_now(c))
    }

    async fn batch_prefix(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<f64>> {
        Self::batch_now(Method::BatchPrefix, contexts, |c| self.prefix_now(c))
    }

    async fn batch_logw_next(&self, contexts: &[Vec<Vec<u8>>]) -> Result<Vec<LogWeights<Vec<u8>>>> {
        Self::batch_now(Method::BatchLogwNext, contexts, |c| self.logw_next_now(c))
    }
}

/// The serde form, which is the spawn recipe: the source and the
/// vocabulary. The parser is rebuilt on deserialization.
#[derive(Serialize)]
struct RecipeRef<'a> {
    source: &'a GrammarSource,
    vocab: &'a Vocab<Vec<u8>>,
}

#[derive(Deserialize)]
struct RecipeOwned {
    source: GrammarSource,
    vocab: Vocab<Vec<u8>>,
}

impl Serialize for Grammar {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        RecipeRef {
            source: &self.source,
            vocab: &self.vocab,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Grammar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let recipe = RecipeOwned::deserialize(deserializer)?;
        Grammar::new_plain(recipe.source, recipe.vocab).map_err(serde::de::Error::custom)
    }
}

impl Registered for Grammar {}
potential_core::register!(Grammar);
