//! A potential seen through a mapping to another vocabulary.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use crate::error::{Method, PotentialError, Result};
use crate::potential::{NativeBatch, Potential, check_len, non_empty, zero_weight};
use crate::vocab::{TokenType, Vocab};
use crate::weights::LogWeights;

/// Options of [`Coerce::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoerceOptions {
    /// Drop target tokens whose image is not made of source-vocabulary
    /// tokens (default `true`). Without pruning such tokens stay and the
    /// source potential decides what they weigh.
    pub prune: bool,
}

impl Default for CoerceOptions {
    fn default() -> Self {
        CoerceOptions { prune: true }
    }
}

/// A potential over target tokens `T`, defined by a potential `P` over
/// source tokens and a function `f` from target sequences to source
/// sequences: `complete(ctx) = P.complete(f(ctx))`, and the same for
/// `prefix` and the batch forms.
///
/// ```
/// use potential_core::{ops::{Coerce, CoerceOptions}, Potential, PotentialError, Vocab};
///
/// /// Byte-level: weight -1 per byte.
/// struct Bytes(Vocab<u8>);
/// impl Potential for Bytes {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.0 }
///     async fn complete(&self, c: &[u8]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64)) }
///     async fn prefix(&self, c: &[u8]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64)) }
/// }
///
/// // Seen over words: a word is its bytes.
/// let words = Vocab::new(["ab".to_string(), "c".to_string(), "zz".to_string()])?;
/// let concat = |ctx: &[String]| ctx.iter().flat_map(|w| w.bytes()).collect::<Vec<u8>>();
/// let p = Coerce::new(Bytes(Vocab::new(*b"abc")?), words, concat, CoerceOptions::default())?;
/// assert_eq!(p.vocab().len(), 2); // "zz" has bytes outside the source vocabulary
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(p.complete(&["ab".to_string(), "c".to_string()]).await?, -3.0);
/// # Ok::<(), PotentialError>(()) })?;
/// # Ok::<(), PotentialError>(())
/// ```
pub struct Coerce<P, T, F> {
    inner: P,
    vocab: Vocab<T>,
    map: F,
    _target: PhantomData<fn() -> T>,
}

impl<P, T, F> Coerce<P, T, F>
where
    P: Potential,
    T: TokenType,
    F: Fn(&[T]) -> Vec<P::Token> + Send + Sync,
{
    /// Coerces `inner` to the `target` vocabulary through `map`.
    ///
    /// With pruning, errors with [`PotentialError::EmptyIntersection`] when
    /// no target token maps into the source vocabulary.
    pub fn new(inner: P, target: Vocab<T>, map: F, options: CoerceOptions) -> Result<Self> {
        let vocab = if options.prune {
            let source = inner.vocab();
            let kept: Vec<T> = target
                .tokens()
                .iter()
                .filter(|t| {
                    map(std::slice::from_ref(*t))
                        .iter()
                        .all(|s| source.contains(s))
                })
                .cloned()
                .collect();
            if kept.is_empty() {
                return Err(PotentialError::EmptyIntersection);
            }
            if kept.len() == target.len() {
                target
            } else {
                Vocab::new(kept)?
            }
        } else {
            target
        };
        Ok(Coerce {
            inner,
            vocab,
            map,
            _target: PhantomData,
        })
    }

    /// The source potential.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn map_all(&self, contexts: &[Vec<T>]) -> Vec<Vec<P::Token>> {
        contexts.iter().map(|c| (self.map)(c)).collect()
    }
}

impl<P, T, F> Potential for Coerce<P, T, F>
where
    P: Potential,
    T: TokenType,
    F: Fn(&[T]) -> Vec<P::Token> + Send + Sync,
{
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        let inner = self.inner.native_batch();
        NativeBatch {
            complete: inner.complete,
            prefix: inner.prefix,
            ..NativeBatch::NONE
        }
    }

    async fn complete(&self, context: &[T]) -> Result<f64> {
        self.inner.complete(&(self.map)(context)).await
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        self.inner.prefix(&(self.map)(context)).await
    }

    async fn batch_complete(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        non_empty(Method::BatchComplete, contexts)?;
        let values = self.inner.batch_complete(&self.map_all(contexts)).await?;
        check_len(Method::BatchComplete, contexts.len(), values.len())?;
        Ok(values)
    }

    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        non_empty(Method::BatchPrefix, contexts)?;
        let values = self.inner.batch_prefix(&self.map_all(contexts)).await?;
        check_len(Method::BatchPrefix, contexts.len(), values.len())?;
        Ok(values)
    }
}

impl<P: fmt::Debug, T, F> fmt::Debug for Coerce<P, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Coerce({:?})", self.inner)
    }
}

/// The map of [`CoerceConcat`]: a context's image is the concatenation of
/// its tokens' images.
pub type ConcatMap<T, S> = fn(&[T]) -> Vec<S>;

fn concat_images<T: AsRef<[S]>, S: Clone>(context: &[T]) -> Vec<S> {
    context
        .iter()
        .flat_map(|t| t.as_ref().iter().cloned())
        .collect()
}

/// A [`Coerce`] whose map concatenates the tokens' images (a byte string
/// is its bytes), with a `logw_next` that walks a trie of the images
/// rather than asking the source potential about each target token.
///
/// This is how a potential over bytes (a byte-level regular expression, a
/// user's byte-level constraint or model) is lifted to a language model's
/// vocabulary of byte strings. `logw_next(ctx)` asks the source potential
/// for `logw_next` at every trie node on a live path below `map(ctx)`, one
/// batch call per depth of the trie (so at most the length of the longest
/// token in calls), and sums the log weights along each token's path:
/// `prefix(c + t) - prefix(c)` telescopes into the source's next-byte
/// weights. A branch whose weight is zero is not walked further, so a
/// constraint costs only its live part of the vocabulary. `batch_logw_next`
/// walks all its contexts together, level by level.
///
/// The walk relies on the source potential's `prefix` being zero for every
/// extension of a zero-weight prefix (true of constraints and of language
/// models); [`Coerce::new`] with the same map makes no such assumption.
/// Target tokens whose image leaves the source vocabulary are pruned.
///
/// ```
/// use potential_core::{ops::CoerceConcat, Potential, PotentialError, Vocab};
///
/// /// A user's byte-level constraint: no two equal bytes in a row.
/// struct NoRepeat(Vocab<u8>);
/// impl Potential for NoRepeat {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.0 }
///     async fn complete(&self, c: &[u8]) -> Result<f64, PotentialError> { self.prefix(c).await }
///     async fn prefix(&self, c: &[u8]) -> Result<f64, PotentialError> {
///         Ok(if c.windows(2).any(|w| w[0] == w[1]) { f64::NEG_INFINITY } else { 0.0 })
///     }
/// }
///
/// // Lifted to a vocabulary of byte strings, as a language model's.
/// let words = Vocab::new([b"ab".to_vec(), b"ba".to_vec(), b"aa".to_vec(), b"b".to_vec()])?;
/// let p = CoerceConcat::new(NoRepeat(Vocab::new(*b"ab")?), words)?;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let next = p.logw_next(&[b"ab".to_vec()]).await?;
/// assert_eq!(next.get(&b"ab".to_vec()), 0.0);  // "abab"
/// assert_eq!(next.get(&b"ba".to_vec()), f64::NEG_INFINITY); // "abba"
/// assert_eq!(next.get(&b"aa".to_vec()), f64::NEG_INFINITY);
/// assert_eq!(next.eos(), 0.0);
/// # Ok::<(), PotentialError>(()) })?;
/// # Ok::<(), PotentialError>(())
/// ```
pub struct CoerceConcat<P: Potential, T> {
    coerce: Coerce<P, T, ConcatMap<T, P::Token>>,
    trie: ImageTrie<P::Token>,
}

/// The target tokens' images, as paths of source-vocabulary indices.
struct ImageTrie<S> {
    /// `(source token index, child)` for each node; the root is node 0.
    children: Vec<Vec<(usize, usize)>>,
    /// The target tokens (by index) whose image ends at each node.
    ends: Vec<Vec<usize>>,
    /// The source tokens from the root to each node.
    paths: Vec<Vec<S>>,
}

impl<S: TokenType> ImageTrie<S> {
    fn new<T: AsRef<[S]>>(target: &Vocab<T>, source: &Vocab<S>) -> Self {
        let mut trie = ImageTrie {
            children: vec![Vec::new()],
            ends: vec![Vec::new()],
            paths: vec![Vec::new()],
        };
        let mut edges: HashMap<(usize, usize), usize> = HashMap::new();
        for (j, token) in target.tokens().iter().enumerate() {
            // Pruning kept only images inside the source vocabulary; a
            // token outside it would keep weight zero.
            let Some(indices) = token
                .as_ref()
                .iter()
                .map(|s| source.index_of(s))
                .collect::<Option<Vec<usize>>>()
            else {
                continue;
            };
            let mut node = 0;
            for (s, index) in token.as_ref().iter().zip(indices) {
                node = match edges.get(&(node, index)) {
                    Some(&child) => child,
                    None => {
                        let child = trie.children.len();
                        let mut path = trie.paths[node].clone();
                        path.push(s.clone());
                        trie.children.push(Vec::new());
                        trie.ends.push(Vec::new());
                        trie.paths.push(path);
                        trie.children[node].push((index, child));
                        edges.insert((node, index), child);
                        child
                    }
                };
            }
            trie.ends[node].push(j);
        }
        trie
    }
}

impl<P, T> CoerceConcat<P, T>
where
    P: Potential,
    T: TokenType + AsRef<[P::Token]>,
{
    /// Lifts `inner` to the `target` vocabulary, each target token standing
    /// for the source tokens of its image. Errors with
    /// [`PotentialError::EmptyIntersection`] when no target token's image
    /// lies in the source vocabulary.
    pub fn new(inner: P, target: Vocab<T>) -> Result<Self> {
        let coerce = Coerce::new(
            inner,
            target,
            concat_images::<T, P::Token> as ConcatMap<T, P::Token>,
            CoerceOptions { prune: true },
        )?;
        let trie = ImageTrie::new(coerce.vocab(), coerce.inner().vocab());
        Ok(CoerceConcat { coerce, trie })
    }

    /// The source potential.
    pub fn inner(&self) -> &P {
        self.coerce.inner()
    }

    /// The trie walk of `logw_next` for every context at once.
    async fn walk(&self, contexts: &[Vec<T>]) -> Result<Vec<LogWeights<T>>> {
        non_empty(Method::BatchLogwNext, contexts)?;
        let trie = &self.trie;
        let len = self.coerce.vocab().len();
        let images: Vec<Vec<P::Token>> = contexts.iter().map(|c| concat_images(c)).collect();
        let mut values = vec![vec![f64::NEG_INFINITY; len + 1]; contexts.len()];
        // (context, node, log weight of the path to the node)
        let mut frontier: Vec<(usize, usize, f64)> =
            (0..contexts.len()).map(|i| (i, 0, 0.0)).collect();
        let mut at_root = true;
        while !frontier.is_empty() {
            let queries: Vec<Vec<P::Token>> = frontier
                .iter()
                .map(|&(i, node, _)| [images[i].as_slice(), &trie.paths[node]].concat())
                .collect();
            let next = match self.coerce.inner().batch_logw_next(&queries).await {
                Ok(next) => next,
                Err(PotentialError::ZeroWeightContext { .. }) if at_root && contexts.len() == 1 => {
                    return Err(zero_weight(&contexts[0]));
                }
                Err(e) => return Err(e),
            };
            check_len(Method::BatchLogwNext, queries.len(), next.len())?;
            let mut deeper = Vec::new();
            for (&(i, node, weight), w) in frontier.iter().zip(&next) {
                if at_root {
                    values[i][len] = w.eos();
                    for &j in &trie.ends[0] {
                        values[i][j] = 0.0;
                    }
                }
                for &(s, child) in &trie.children[node] {
                    let w = weight + w.at(s);
                    if w == f64::NEG_INFINITY {
                        continue;
                    }
                    for &j in &trie.ends[child] {
                        values[i][j] = w;
                    }
                    if !trie.children[child].is_empty() {
                        deeper.push((i, child, w));
                    }
                }
            }
            frontier = deeper;
            at_root = false;
        }
        values
            .into_iter()
            .map(|v| LogWeights::new(self.coerce.vocab().clone(), v))
            .collect()
    }
}

impl<P, T> Potential for CoerceConcat<P, T>
where
    P: Potential,
    T: TokenType + AsRef<[P::Token]>,
{
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        self.coerce.vocab()
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch {
            logw_next: true,
            ..self.coerce.native_batch()
        }
    }

    async fn complete(&self, context: &[T]) -> Result<f64> {
        self.coerce.complete(context).await
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        self.coerce.prefix(context).await
    }

    async fn batch_complete(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        self.coerce.batch_complete(contexts).await
    }

    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        self.coerce.batch_prefix(contexts).await
    }

    async fn logw_next(&self, context: &[T]) -> Result<LogWeights<T>> {
        let mut all = self.walk(&[context.to_vec()]).await?;
        all.pop().ok_or(PotentialError::BatchSizeMismatch {
            method: Method::LogwNext,
            expected: 1,
            got: 0,
        })
    }

    async fn batch_logw_next(&self, contexts: &[Vec<T>]) -> Result<Vec<LogWeights<T>>> {
        self.walk(contexts).await
    }
}

impl<P: Potential + fmt::Debug, T> fmt::Debug for CoerceConcat<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoerceConcat({:?})", self.coerce.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::block_on;
    use crate::testing::{Length, keeps_length};

    fn chars(ctx: &[String]) -> Vec<char> {
        ctx.iter().flat_map(|w| w.chars()).collect()
    }

    fn words(ws: &[&str]) -> Vocab<String> {
        Vocab::new(ws.iter().map(|w| w.to_string())).unwrap()
    }

    #[test]
    fn maps_contexts_and_prunes() {
        block_on(async {
            let p = Coerce::new(
                Length::abc(),
                words(&["ab", "c", "dd"]),
                chars,
                CoerceOptions::default(),
            )
            .unwrap();
            assert_eq!(p.vocab().tokens(), ["ab".to_string(), "c".to_string()]);
            let ctx = vec!["ab".to_string(), "c".to_string()];
            // By hand: chars = a b c, complete = -3, prefix = -1.5
            assert_eq!(p.complete(&ctx).await.unwrap(), -3.0);
            assert_eq!(p.prefix(&ctx).await.unwrap(), -1.5);
            let w = p.logw_next(&ctx[..1]).await.unwrap();
            // prefix(ab ab) - prefix(ab) = -2 - -1 = -1; prefix(ab c) - prefix(ab) = -0.5
            assert_eq!(w.get(&"ab".to_string()), -1.0);
            assert_eq!(w.get(&"c".to_string()), -0.5);
            assert_eq!(w.eos(), -1.0);
            let batch = p.batch_complete(&[ctx.clone(), vec![]]).await.unwrap();
            assert_eq!(batch, vec![-3.0, 0.0]);
        });
    }

    #[test]
    fn without_pruning_keeps_every_target_token() {
        let p = Coerce::new(
            Length::abc(),
            words(&["ab", "dd"]),
            chars,
            CoerceOptions { prune: false },
        )
        .unwrap();
        assert_eq!(p.vocab().len(), 2);
    }

    /// Returns one result too few from its batch forms.
    struct Short(Length);

    impl Potential for Short {
        type Token = char;
        keeps_length!();
        async fn batch_complete(&self, contexts: &[Vec<char>]) -> Result<Vec<f64>> {
            Ok(vec![0.0; contexts.len().saturating_sub(1)])
        }
        async fn batch_prefix(&self, contexts: &[Vec<char>]) -> Result<Vec<f64>> {
            Ok(vec![0.0; contexts.len().saturating_sub(1)])
        }
    }

    #[test]
    fn an_inner_batch_of_the_wrong_length_is_a_mismatch() {
        block_on(async {
            let p = Coerce::new(
                Short(Length::abc()),
                words(&["ab", "c"]),
                chars,
                CoerceOptions::default(),
            )
            .unwrap();
            let cs = vec![vec!["ab".to_string()], vec![]];
            for err in [
                p.batch_complete(&cs).await.unwrap_err(),
                p.batch_prefix(&cs).await.unwrap_err(),
            ] {
                assert!(
                    matches!(
                        err,
                        PotentialError::BatchSizeMismatch {
                            expected: 2,
                            got: 1,
                            ..
                        }
                    ),
                    "{err}"
                );
            }
        });
    }

    #[test]
    fn nothing_maps_is_an_error() {
        let err = Coerce::new(
            Length::abc(),
            words(&["zz"]),
            chars,
            CoerceOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PotentialError::EmptyIntersection));
    }

    /// Bytes with weight -1 each, zero once a `c` appears; counts its
    /// `batch_logw_next` calls.
    struct Bytes {
        vocab: Vocab<u8>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Potential for Bytes {
        type Token = u8;
        fn vocab(&self) -> &Vocab<u8> {
            &self.vocab
        }
        async fn complete(&self, c: &[u8]) -> Result<f64> {
            Ok(self.prefix(c).await? - 0.5)
        }
        async fn prefix(&self, c: &[u8]) -> Result<f64> {
            Ok(if c.contains(&b'c') {
                f64::NEG_INFINITY
            } else {
                -(c.len() as f64)
            })
        }
        async fn batch_logw_next(&self, contexts: &[Vec<u8>]) -> Result<Vec<LogWeights<u8>>> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            futures::future::try_join_all(contexts.iter().map(|c| self.logw_next(c))).await
        }
    }

    fn bytes() -> Bytes {
        Bytes {
            vocab: Vocab::new(*b"abc").unwrap(),
            calls: Default::default(),
        }
    }

    #[test]
    fn the_trie_walk_agrees_with_one_call_per_token() {
        block_on(async {
            let words: Vec<Vec<u8>> = [
                "a", "ab", "abc", "ba", "bab", "c", "cab", "bbbb", "zz", "ax",
            ]
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .collect();
            let target = Vocab::new(words).unwrap();
            let walked = CoerceConcat::new(bytes(), target.clone()).unwrap();
            let plain = Coerce::new(
                bytes(),
                target,
                concat_images::<Vec<u8>, u8> as ConcatMap<Vec<u8>, u8>,
                CoerceOptions::default(),
            )
            .unwrap();
            assert_eq!(walked.vocab(), plain.vocab());
            assert_eq!(walked.vocab().len(), 8); // "zz" and "ax" leave the source vocabulary
            let contexts: Vec<Vec<Vec<u8>>> = vec![
                vec![],
                vec![b"ab".to_vec()],
                vec![b"a".to_vec(), b"bab".to_vec()],
            ];
            for c in &contexts {
                let fast = walked.logw_next(c).await.unwrap();
                let slow = plain.logw_next(c).await.unwrap();
                for (a, b) in fast.as_slice().iter().zip(slow.as_slice()) {
                    assert!(
                        a == b || (a - b).abs() < 1e-9,
                        "{c:?}: {fast:?} vs {slow:?}"
                    );
                }
            }
            // One source call per depth of the trie (the longest image has
            // four bytes), not one per token; a batch walks together.
            let before = walked
                .inner()
                .calls
                .load(std::sync::atomic::Ordering::Relaxed);
            let batch = walked.batch_logw_next(&contexts).await.unwrap();
            let calls = walked
                .inner()
                .calls
                .load(std::sync::atomic::Ordering::Relaxed)
                - before;
            assert!(calls <= 4, "{calls}");
            for (c, b) in contexts.iter().zip(&batch) {
                assert_eq!(walked.logw_next(c).await.unwrap().as_slice(), b.as_slice());
            }
            let dead = walked.logw_next(&[b"c".to_vec()]).await.unwrap_err();
            assert!(
                matches!(dead, PotentialError::ZeroWeightContext { .. }),
                "{dead}"
            );
            assert!(dead.to_string().contains(r#"["c"]"#), "{dead}");
        });
    }
}
