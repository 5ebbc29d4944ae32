//! A byte-level regular-expression constraint, compiled to a dense DFA by
//! [`regex_automata`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use potential_core::{
    AutoBatched, LogWeights, Mask, Method, NativeBatch, Potential, PotentialError, PotentialExt,
    Registered, Result, Vocab, non_empty, zero_weight,
};
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::util::syntax;
use regex_automata::{Anchored, MatchKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ByteToken;

/// The largest DFA a pattern may compile to; a larger one is an error
/// rather than an unbounded allocation.
const DFA_SIZE_LIMIT: usize = 64 << 20;

/// Weight one for the byte strings that fully match a regular expression,
/// zero for all others.
///
/// Tokens are byte strings (`Vec<u8>`, as a language model's tokens are) or
/// single bytes (`u8`); a context is the concatenation of its tokens' bytes.
///
/// - `complete(ctx)` is `0` when the bytes of `ctx` match the whole pattern
///   and `-inf` otherwise;
/// - `prefix(ctx)` is `0` while some extension of `ctx` can still match and
///   `-inf` otherwise;
/// - `logw_next(ctx)` walks the DFA over `ctx` once, then over each
///   vocabulary token from the state reached, so it costs the bytes of the
///   vocabulary rather than one `prefix` per token;
/// - `batch_logw_next` is native: contexts that reach the same DFA state
///   share one walk over the vocabulary.
///
/// The syntax is that of `regex::bytes::Regex` (Unicode classes by default,
/// `(?-u)` for raw bytes), matched anchored at both ends.
///
/// ```
/// use potential_builtins::Regex;
/// use potential_core::{Potential, Vocab};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let vocab = Vocab::new([b"ab".to_vec(), b"a".to_vec(), b"c".to_vec()])?;
/// let re = Regex::new_plain("(ab)+c?", vocab)?;
/// assert_eq!(re.complete(&[b"a".to_vec(), b"ab".to_vec()]).await?, f64::NEG_INFINITY);
/// assert_eq!(re.prefix(&[b"ab".to_vec(), b"a".to_vec()]).await?, 0.0);
/// let next = re.logw_next(&[b"ab".to_vec()]).await?;
/// assert_eq!(next.get(&b"c".to_vec()), 0.0);
/// assert_eq!(next.get(&b"ab".to_vec()), 0.0);
/// assert_eq!(next.eos(), 0.0); // "ab" matches as it is
/// # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Regex<T: ByteToken = Vec<u8>> {
    vocab: Vocab<T>,
    automaton: Arc<Compiled>,
}

/// The compiled pattern: the DFA and, for each of its states reachable from
/// the start, whether some continuation still leads to a full match.
struct Compiled {
    pattern: String,
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    /// Indexed by `state.as_usize() >> stride2`.
    live: Vec<bool>,
    stride2: usize,
}

impl Compiled {
    fn new(pattern: &str) -> Result<Self> {
        // MatchKind::All keeps the DFA running past the first match, so that
        // a state is dead only when no longer match is possible either;
        // leftmost-first semantics would stop `a|ab` after `a`.
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(MatchKind::All)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .syntax(syntax::Config::new().utf8(false))
            .thompson(thompson::Config::new().utf8(false))
            .build(pattern)
            .map_err(|e| {
                PotentialError::InvalidInput(format!(
                    "invalid regular expression {pattern:?}: {}",
                    with_sources(&e)
                ))
            })?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| {
                PotentialError::InvalidInput(format!("regular expression {pattern:?}: {e}"))
            })?;
        let stride2 = dfa.stride2();
        let live = live_states(&dfa, start, stride2);
        Ok(Compiled {
            pattern: pattern.to_string(),
            dfa,
            start,
            live,
            stride2,
        })
    }

    fn is_live(&self, state: StateID) -> bool {
        self.live
            .get(state.as_usize() >> self.stride2)
            .copied()
            .unwrap_or(false)
    }

    fn accepts(&self, state: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(state))
    }

    /// The state after `bytes` from `state`; stops early at the dead state.
    fn walk(&self, mut state: StateID, bytes: &[u8]) -> StateID {
        for &b in bytes {
            state = self.dfa.next_state(state, b);
            if self.dfa.is_dead_state(state) {
                break;
            }
        }
        state
    }

    /// The next-token log weights from `state`, which must be live.
    /// The tokens that keep the bytes live from `state`, and EOS when
    /// `state` accepts: a mask, never written out as weights.
    fn next_from<T: ByteToken>(&self, state: StateID, vocab: &Vocab<T>) -> Mask {
        let mut mask = Mask::none(vocab.len() + 1);
        for (i, t) in vocab.tokens().iter().enumerate() {
            if self.is_live(self.walk(state, t.as_bytes())) {
                mask.insert(i);
            }
        }
        if self.accepts(state) {
            mask.insert(vocab.len());
        }
        mask
    }
}

/// The states from which some byte string followed by the end of input
/// reaches a match: a backward search from the accepting states over the
/// states reachable from `start`.
fn live_states(dfa: &dense::DFA<Vec<u32>>, start: StateID, stride2: usize) -> Vec<bool> {
    let index = |s: StateID| s.as_usize() >> stride2;
    let mut seen: HashSet<StateID> = HashSet::from([start]);
    let mut order = vec![start];
    let mut predecessors: HashMap<StateID, Vec<StateID>> = HashMap::new();
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        i += 1;
        if dfa.is_dead_state(s) {
            continue;
        }
        // One byte per equivalence class: bytes of a class go to one state.
        for b in dfa
            .byte_classes()
            .representatives(..)
            .filter_map(|u| u.as_u8())
        {
            let t = dfa.next_state(s, b);
            predecessors.entry(t).or_default().push(s);
            if seen.insert(t) {
                order.push(t);
            }
        }
    }
    let len = order.iter().map(|&s| index(s)).max().unwrap_or(0) + 1;
    let mut live = vec![false; len];
    let mut stack: Vec<StateID> = order
        .iter()
        .copied()
        .filter(|&s| dfa.is_match_state(dfa.next_eoi_state(s)))
        .collect();
    for &s in &stack {
        live[index(s)] = true;
    }
    while let Some(s) = stack.pop() {
        for &p in predecessors.get(&s).map(Vec::as_slice).unwrap_or(&[]) {
            if !live[index(p)] {
                live[index(p)] = true;
                stack.push(p);
            }
        }
    }
    live
}

/// An error's message followed by those of its sources: regex-automata's
/// build errors say "error building NFA" and keep the parser's message
/// (with the position of the mistake) in their source.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn log_indicator(yes: bool) -> f64 {
    if yes { 0.0 } else { f64::NEG_INFINITY }
}

impl<T: ByteToken> Regex<T> {
    /// Compiles `pattern` for a vocabulary, autobatched: the constraint's
    /// native `batch_logw_next` walks the vocabulary once per automaton
    /// state for a whole batch, so concurrent calls are gathered by default
    /// (see [`potential_core::autobatch`]). [`Regex::new_plain`] gives the
    /// constraint without the wrapper.
    ///
    /// ```
    /// use potential_builtins::Regex;
    /// use potential_core::{Potential, PotentialError, Vocab};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let only_ab = Regex::new("(ab)+", Vocab::new([b"a".to_vec(), b"b".to_vec()])?)?;
    /// assert_eq!(only_ab.complete(&[b"a".to_vec(), b"b".to_vec()]).await?, 0.0);
    /// assert_eq!(only_ab.inner().pattern(), "(ab)+");
    /// # Ok::<(), PotentialError>(()) }).unwrap();
    /// ```
    pub fn new(pattern: &str, vocab: Vocab<T>) -> Result<AutoBatched<Self>> {
        Ok(Self::new_plain(pattern, vocab)?.to_autobatched())
    }

    /// Compiles `pattern` for a vocabulary, without autobatching; an
    /// invalid pattern (or one whose DFA would exceed 64 MiB) is an
    /// [`PotentialError::InvalidInput`] that carries `regex-automata`'s message.
    ///
    /// ```
    /// use potential_builtins::Regex;
    /// use potential_core::{PotentialError, Vocab};
    ///
    /// let err = Regex::new_plain("a(b", Vocab::new([b'a'])?).unwrap_err();
    /// assert!(matches!(err, PotentialError::InvalidInput(_)));
    /// assert!(err.to_string().contains("unclosed group"), "{err}");
    /// # Ok::<(), PotentialError>(())
    /// ```
    pub fn new_plain(pattern: &str, vocab: Vocab<T>) -> Result<Self> {
        Ok(Regex {
            vocab,
            automaton: Arc::new(Compiled::new(pattern)?),
        })
    }

    /// The pattern this constraint was compiled from.
    pub fn pattern(&self) -> &str {
        &self.automaton.pattern
    }

    /// Whether `bytes` match the whole pattern.
    pub fn is_match(&self, bytes: &[u8]) -> bool {
        let a = &self.automaton;
        a.accepts(a.walk(a.start, bytes))
    }

    /// Whether some extension of `bytes` (itself included) matches the whole pattern.
    pub fn is_live_prefix(&self, bytes: &[u8]) -> bool {
        let a = &self.automaton;
        a.is_live(a.walk(a.start, bytes))
    }

    /// The DFA state after the bytes of every token of `context`; a token
    /// outside the vocabulary is an error.
    fn state_after(&self, context: &[T]) -> Result<StateID> {
        let a = &self.automaton;
        let mut state = a.start;
        for token in context {
            if !self.vocab.contains(token) {
                return Err(PotentialError::InvalidInput(format!(
                    "token {:?} is not in the vocabulary of the regular expression {:?}",
                    potential_core::Shown(token),
                    a.pattern
                )));
            }
            state = a.walk(state, token.as_bytes());
        }
        Ok(state)
    }
}

impl<T: ByteToken> fmt::Debug for Regex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Regex")
            .field("pattern", &self.automaton.pattern)
            .field("vocab_len", &self.vocab.len())
            .finish()
    }
}

impl<T: ByteToken> Potential for Regex<T> {
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch {
            logw_next: true,
            ..NativeBatch::NONE
        }
    }

    async fn complete(&self, context: &[T]) -> Result<f64> {
        Ok(log_indicator(
            self.automaton.accepts(self.state_after(context)?),
        ))
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        Ok(log_indicator(
            self.automaton.is_live(self.state_after(context)?),
        ))
    }

    async fn logw_next(&self, context: &[T]) -> Result<LogWeights<T>> {
        let state = self.state_after(context)?;
        if !self.automaton.is_live(state) {
            return Err(zero_weight(context));
        }
        LogWeights::from_mask(
            self.vocab.clone(),
            self.automaton.next_from(state, &self.vocab),
        )
    }

    async fn batch_logw_next(&self, contexts: &[Vec<T>]) -> Result<Vec<LogWeights<T>>> {
        non_empty(Method::BatchLogwNext, contexts)?;
        // Particles of a sampler often sit in the same DFA state; each
        // distinct state walks the vocabulary once.
        let mut by_state: HashMap<StateID, LogWeights<T>> = HashMap::new();
        let mut out = Vec::with_capacity(contexts.len());
        for context in contexts {
            let state = self.state_after(context)?;
            if !self.automaton.is_live(state) {
                return Err(zero_weight(context));
            }
            let weights = match by_state.get(&state) {
                Some(w) => w.clone(),
                None => {
                    let w = LogWeights::from_mask(
                        self.vocab.clone(),
                        self.automaton.next_from(state, &self.vocab),
                    )?;
                    by_state.insert(state, w.clone());
                    w
                }
            };
            out.push(weights);
        }
        Ok(out)
    }
}

/// The serde form, which is the spawn recipe: the pattern and the
/// vocabulary. The DFA is rebuilt on deserialization rather than shipped,
/// since compiling is cheap next to starting a worker and the pattern is
/// far smaller than its DFA.
#[derive(Serialize)]
struct RecipeRef<'a, T> {
    pattern: &'a str,
    vocab: &'a Vocab<T>,
}

#[derive(Deserialize)]
#[serde(bound = "T: ByteToken")]
struct RecipeOwned<T> {
    pattern: String,
    vocab: Vocab<T>,
}

impl<T: ByteToken> Serialize for Regex<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        RecipeRef {
            pattern: &self.automaton.pattern,
            vocab: &self.vocab,
        }
        .serialize(serializer)
    }
}

impl<'de, T: ByteToken> Deserialize<'de> for Regex<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let recipe = RecipeOwned::<T>::deserialize(deserializer)?;
        Regex::new_plain(&recipe.pattern, recipe.vocab).map_err(serde::de::Error::custom)
    }
}

impl<T: ByteToken> Registered for Regex<T> {}
potential_core::register!(Regex<Vec<u8>>, Regex<u8>);

#[cfg(test)]
mod tests {
    use super::*;
    use potential_core::checks::block_on;
    use potential_core::checks::{
        Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
        assert_respawns,
    };
    use proptest::prelude::*;
    use regex_automata::meta;

    fn bytes_vocab(tokens: &[&[u8]]) -> Vocab<Vec<u8>> {
        Vocab::new(tokens.iter().map(|t| t.to_vec())).unwrap()
    }

    fn toks(tokens: &[&[u8]]) -> Vec<Vec<u8>> {
        tokens.iter().map(|t| t.to_vec()).collect()
    }

    /// regex-automata's own full match, by its meta engine.
    fn oracle(pattern: &str) -> meta::Regex {
        meta::Regex::builder()
            .syntax(syntax::Config::new().utf8(false))
            .build(&format!("^(?:{pattern})$"))
            .unwrap()
    }

    const PATTERNS: &[&str] = &[
        "a|ab",
        "(ab)+c?",
        "[a-c]*d",
        "(?-u:\\xff)a*",
        "a{2,3}b?",
        "(a|b)*abb",
        "[^a]+",
        "",
        "(?i)AbC",
        "é+",
        "(?-u:\\b)a",
    ];

    #[test]
    fn complete_prefix_and_next_on_multibyte_tokens() {
        block_on(async {
            let re = Regex::new_plain(
                "(ab)+c?",
                bytes_vocab(&[b"a", b"b", b"ab", b"abc", b"c", b"ca"]),
            )
            .unwrap();
            assert_eq!(re.complete(&toks(&[b"ab", b"ab"])).await.unwrap(), 0.0);
            assert_eq!(re.complete(&toks(&[b"a", b"b", b"c"])).await.unwrap(), 0.0);
            assert_eq!(
                re.complete(&toks(&[b"a"])).await.unwrap(),
                f64::NEG_INFINITY
            );
            assert_eq!(re.prefix(&toks(&[b"a"])).await.unwrap(), 0.0);
            assert_eq!(re.prefix(&toks(&[b"ca"])).await.unwrap(), f64::NEG_INFINITY);
            let next = re.logw_next(&toks(&[b"a"])).await.unwrap();
            let inf = f64::NEG_INFINITY;
            assert_eq!(next.as_slice(), &[inf, 0.0, inf, inf, inf, inf, inf]);
            let next = re.logw_next(&toks(&[b"ab"])).await.unwrap();
            assert_eq!(next.as_slice(), &[0.0, inf, 0.0, 0.0, 0.0, inf, 0.0]);
            // The weights are the constraint's bits, one batch or one call.
            let bits = |w: &LogWeights<Vec<u8>>| w.as_mask().map(|m| m.iter().collect::<Vec<_>>());
            assert_eq!(bits(&next), Some(vec![0, 2, 3, 4, 6]));
            let batch = re
                .batch_logw_next(&[toks(&[b"ab"]), toks(&[b"a"])])
                .await
                .unwrap();
            assert_eq!(bits(&batch[0]), Some(vec![0, 2, 3, 4, 6]));
            assert_eq!(bits(&batch[1]), Some(vec![1]));
        });
    }

    #[test]
    fn dead_but_not_yet_rejected_states_are_not_live() {
        // `a[^\x00-\xff]` can never match, although the DFA only dies one
        // byte later; liveness is computed over the whole automaton.
        let re = Regex::new_plain("a(?-u:[^\\x00-\\xff])|b", bytes_vocab(&[b"a"])).unwrap();
        assert!(!re.is_live_prefix(b"a"));
        assert!(re.is_live_prefix(b""));
        assert!(re.is_match(b"b"));
    }

    #[test]
    fn property_checks_pass_on_many_contexts() {
        block_on(async {
            let vocab = bytes_vocab(&[b"a", b"b", b"ab", b"ba", b"c", b"abb", b"\xff"]);
            let tol = Tolerance::default();
            for pattern in PATTERNS {
                let re = Regex::new_plain(pattern, vocab.clone()).unwrap();
                let mut contexts = vec![vec![]];
                for len in 1..=3 {
                    for i in 0..vocab.len().pow(len) {
                        let mut i = i;
                        let ctx: Vec<Vec<u8>> = (0..len)
                            .map(|_| {
                                let t = vocab.tokens()[i % vocab.len()].clone();
                                i /= vocab.len();
                                t
                            })
                            .collect();
                        contexts.push(ctx);
                    }
                }
                // logw_next is undefined on dead contexts: every check reports them.
                let live: Vec<Vec<Vec<u8>>> = contexts
                    .iter()
                    .filter(|c| re.is_live_prefix(&c.concat()))
                    .cloned()
                    .collect();
                assert!(!live.is_empty(), "{pattern}");
                assert_autoreg_fact(&re, &live, tol).await.unwrap();
                assert_logw_next_consistency(&re, &live, tol).await.unwrap();
                assert_batch_consistency(&re, &live, tol).await.unwrap();
            }
        });
    }

    #[test]
    fn byte_tokens_work_too() {
        block_on(async {
            let re = Regex::new_plain(
                "[0-9]+(?-u:\\.)[0-9]",
                Vocab::new(*b"0123456789.x").unwrap(),
            )
            .unwrap();
            assert_eq!(re.complete(b"12.5").await.unwrap(), 0.0);
            let next = re.logw_next(b"12.").await.unwrap();
            assert_eq!(next.get(&b'7'), 0.0);
            assert_eq!(next.get(&b'.'), f64::NEG_INFINITY);
            assert_eq!(next.eos(), f64::NEG_INFINITY);
        });
    }

    #[test]
    fn invalid_patterns_carry_the_automata_message() {
        let vocab = bytes_vocab(&[b"a"]);
        let err = Regex::new_plain("a(b", vocab.clone()).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)));
        assert!(err.to_string().contains("unclosed group"), "{err}");
        // A Unicode word boundary needs a lazy DFA; the dense one refuses it.
        let err = Regex::new_plain("\\bé", vocab.clone()).unwrap_err();
        assert!(err.to_string().contains("\\bé"), "{err}");
        let err = Regex::new_plain("[z-a]", vocab).unwrap_err();
        assert!(
            err.to_string().contains("invalid character class range"),
            "{err}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        block_on(async {
            let re = Regex::new_plain("ab", bytes_vocab(&[b"a", b"b"])).unwrap();
            let outside = re.prefix(&toks(&[b"ab"])).await.unwrap_err();
            assert!(
                matches!(outside, PotentialError::InvalidInput(_)),
                "{outside}"
            );
            assert!(re.logw_next(&toks(&[b"x"])).await.is_err());
            let dead = re.logw_next(&toks(&[b"b"])).await.unwrap_err();
            assert!(matches!(dead, PotentialError::ZeroWeightContext { .. }));
            let dead = re.batch_logw_next(&[toks(&[b"a"]), toks(&[b"b"])]).await;
            assert!(matches!(
                dead,
                Err(PotentialError::ZeroWeightContext { .. })
            ));
            let empty = re.batch_logw_next(&[]).await.unwrap_err();
            assert!(matches!(empty, PotentialError::EmptyBatch { .. }));
        });
    }

    #[test]
    fn batches_share_one_walk_per_state_and_agree_with_single_calls() {
        block_on(async {
            let re = Regex::new_plain("(ab)*", bytes_vocab(&[b"a", b"b", b"ab"])).unwrap();
            let contexts = vec![
                toks(&[b"ab"]),
                toks(&[]),
                toks(&[b"a", b"b", b"a"]),
                toks(&[b"a"]),
            ];
            let batch = re.batch_logw_next(&contexts).await.unwrap();
            for (c, b) in contexts.iter().zip(&batch) {
                assert_eq!(re.logw_next(c).await.unwrap().as_slice(), b.as_slice());
            }
        });
    }

    #[test]
    fn recipes_rebuild_the_same_constraint() {
        block_on(async {
            let re = Regex::new_plain("(ab)+c?", bytes_vocab(&[b"a", b"b", b"ab", b"c"])).unwrap();
            let contexts = [toks(&[]), toks(&[b"ab", b"a"]), toks(&[b"c"])];
            assert_respawns(&re, &contexts).await.unwrap();
            let bytes = Regex::new_plain("a+", Vocab::new(*b"ab").unwrap()).unwrap();
            assert_respawns(&bytes, &[b"aa".to_vec(), b"b".to_vec()])
                .await
                .unwrap();
            // A recipe whose pattern does not compile is an error, not a
            // panic (postcard keeps no message of a deserializer's own error).
            let state = postcard_like_state("a(", b"a");
            let recipe = potential_core::Recipe::Registered {
                tag: <Regex<u8> as Registered>::tag().to_string(),
                state,
            };
            let err = recipe.build().unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
            let good = potential_core::Recipe::Registered {
                tag: <Regex<u8> as Registered>::tag().to_string(),
                state: postcard_like_state("a+", b"ab"),
            };
            let good = good.build().unwrap().downcast::<u8>().unwrap();
            assert_eq!(good.complete(b"aa").await.unwrap(), 0.0);
        });
    }

    /// The serde form of a `Regex<u8>` as postcard writes it: a
    /// length-prefixed pattern, then the vocabulary as a sequence.
    fn postcard_like_state(pattern: &str, vocab: &[u8]) -> Vec<u8> {
        let mut out = vec![pattern.len() as u8];
        out.extend_from_slice(pattern.as_bytes());
        out.push(vocab.len() as u8);
        out.extend_from_slice(vocab);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn agrees_with_the_automata_crates_full_match(
            p in 0..PATTERNS.len(),
            input in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(b'd'), Just(0xff), Just(0xc3), Just(0xa9), any::<u8>()],
                0..8,
            ),
            tail in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(b'd')], 0..4),
        ) {
            let pattern = PATTERNS[p];
            let re = Regex::new_plain(pattern, bytes_vocab(&[b"a"])).unwrap();
            let oracle = oracle(pattern);
            prop_assert_eq!(re.is_match(&input), oracle.is_match(&input[..]));
            // A prefix of a match is live; a dead prefix has no matching extension.
            let mut extended = input.clone();
            extended.extend_from_slice(&tail);
            if oracle.is_match(&extended[..]) {
                prop_assert!(re.is_live_prefix(&input));
            }
            if !re.is_live_prefix(&input) {
                prop_assert!(!oracle.is_match(&extended[..]));
            }
            // The potential on byte tokens says the same.
            let bytes = Regex::new_plain(pattern, Vocab::new(0..=255u8).unwrap()).unwrap();
            let complete = block_on(bytes.complete(&input)).unwrap();
            prop_assert_eq!(complete == 0.0, oracle.is_match(&input[..]));
        }
    }
}
