//! The `Potential` trait and the default forms of its methods.

use std::future::Future;

use futures::future::{try_join, try_join_all};

use crate::error::{Method, PotentialError, Result};
use crate::vocab::{Symbol, TokenType, Vocab, split_eos};
use crate::weights::LogWeights;

/// Which batch methods a potential implements natively (rather than by
/// running the single form once per context).
///
/// Autobatching pays off for potentials with native batch forms; the
/// `#[batched]` macro fills this in from the methods you wrote.
///
/// ```
/// use potential_core::NativeBatch;
/// let n = NativeBatch { prefix: true, ..NativeBatch::NONE };
/// assert!(n.any());
/// assert!(!NativeBatch::NONE.any());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NativeBatch {
    /// `batch_complete` is native.
    pub complete: bool,
    /// `batch_prefix` is native.
    pub prefix: bool,
    /// `batch_score` is native.
    pub score: bool,
    /// `batch_logw_next` is native.
    pub logw_next: bool,
}

impl NativeBatch {
    /// No native batch form.
    pub const NONE: NativeBatch = NativeBatch {
        complete: false,
        prefix: false,
        score: false,
        logw_next: false,
    };

    /// Every batch form is native.
    pub const ALL: NativeBatch = NativeBatch {
        complete: true,
        prefix: true,
        score: true,
        logw_next: true,
    };

    /// Whether at least one batch form is native.
    pub const fn any(self) -> bool {
        self.complete || self.prefix || self.score || self.logw_next
    }

    /// The forms native in either.
    pub const fn union(self, other: NativeBatch) -> NativeBatch {
        NativeBatch {
            complete: self.complete || other.complete,
            prefix: self.prefix || other.prefix,
            score: self.score || other.score,
            logw_next: self.logw_next || other.logw_next,
        }
    }
}

/// A function from token sequences to non-negative weights, kept in log space.
///
/// Only [`vocab`](Potential::vocab), [`complete`](Potential::complete) and
/// [`prefix`](Potential::prefix) are required. The other methods have the
/// semantics of genlm-control and default forms:
///
/// - [`score`](Potential::score) calls `complete` on an EOS-terminated
///   context and `prefix` otherwise;
/// - [`logw_next`](Potential::logw_next) is `score(ctx + x) - prefix(ctx)`
///   for every token `x` and EOS, and an error when `prefix(ctx)` is `-inf`;
/// - the batch forms run the single forms concurrently, and every batch
///   form errors on an empty batch.
///
/// # Why native async traits
///
/// The methods return `impl Future + Send` (return-position `impl Trait` in
/// traits) rather than going through `async-trait`: a call costs no box and
/// no dynamic dispatch, implementors may simply write `async fn`, and the
/// `+ Send` written here lets every future be spawned on a multi-threaded
/// runtime without return-type notation (unstable on 1.95). Such a trait is
/// not object-safe, so [`DynPotential`](crate::DynPotential) is its
/// object-safe twin, implemented for every `Potential`, for the places that
/// need `Arc<dyn …>`; `dyn DynPotential<T>` is itself a `Potential`.
///
/// # Example
///
/// The length potential of genlm-control's tests, written by hand:
///
/// ```
/// use potential_core::{Potential, PotentialError, Symbol, Vocab};
///
/// struct Length { vocab: Vocab<char> }
///
/// impl Potential for Length {
///     type Token = char;
///     fn vocab(&self) -> &Vocab<char> { &self.vocab }
///     async fn complete(&self, context: &[char]) -> Result<f64, PotentialError> {
///         Ok(-(context.len() as f64))
///     }
///     async fn prefix(&self, context: &[char]) -> Result<f64, PotentialError> {
///         Ok(-0.5 * context.len() as f64)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = Length { vocab: Vocab::new(['a', 'b', 'c'])? };
/// let ab_eos = [Symbol::Token('a'), Symbol::Token('b'), Symbol::Eos];
/// assert_eq!(p.score(&ab_eos).await?, -2.0);
/// let next = p.logw_next(&['a']).await?;
/// assert_eq!(next.get(&'b'), -0.5);   // prefix([a, b]) - prefix([a])
/// assert_eq!(next.eos(), -0.5);       // complete([a]) - prefix([a])
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub trait Potential: Send + Sync {
    /// The token type of the vocabulary.
    type Token: TokenType;

    /// The vocabulary (EOS is implicit).
    fn vocab(&self) -> &Vocab<Self::Token>;

    /// Which batch forms are native; autobatching is worth it when some are.
    fn native_batch(&self) -> NativeBatch {
        NativeBatch::NONE
    }

    /// The log weight of `context` as a finished sequence.
    fn complete(&self, context: &[Self::Token]) -> impl Future<Output = Result<f64>> + Send;

    /// The log weight of `context` as a prefix of some sequence.
    fn prefix(&self, context: &[Self::Token]) -> impl Future<Output = Result<f64>> + Send;

    /// `complete` of the tokens when the context ends with EOS, else `prefix`.
    fn score(&self, context: &[Symbol<Self::Token>]) -> impl Future<Output = Result<f64>> + Send {
        async move {
            let (tokens, ended) = split_eos(context)?;
            check_tokens(self.vocab(), &tokens)?;
            if ended {
                check_weight(Method::Complete, self.complete(&tokens).await?)
            } else {
                check_weight(Method::Prefix, self.prefix(&tokens).await?)
            }
        }
    }

    /// Log weights of every next token and EOS: `score(ctx + x) - prefix(ctx)`.
    ///
    /// Errors with [`PotentialError::ZeroWeightContext`] when `prefix(ctx)`
    /// is `-inf`, with [`PotentialError::UnknownToken`] for a context token
    /// outside the vocabulary, and with [`PotentialError::InvalidWeight`]
    /// when a weight it is computed from is NaN or `+inf`.
    ///
    /// The extensions go to one batch call: `batch_prefix` of `ctx + x`
    /// beside `complete(ctx)`, or, when `batch_score` is native and
    /// `batch_prefix` is not, one `batch_score` of every `ctx + x` and
    /// `ctx + EOS` (genlm-control's form), so that either native form
    /// batches the vocabulary.
    fn logw_next(
        &self,
        context: &[Self::Token],
    ) -> impl Future<Output = Result<LogWeights<Self::Token>>> + Send {
        async move {
            check_tokens(self.vocab(), context)?;
            let here = check_weight(Method::Prefix, self.prefix(context).await?)?;
            if here == f64::NEG_INFINITY {
                return Err(zero_weight(context));
            }
            let native = self.native_batch();
            let mut values = if native.score && !native.prefix {
                let extended: Vec<Vec<Symbol<Self::Token>>> = self
                    .vocab()
                    .symbols()
                    .map(|x| extend(context, x.cloned()))
                    .collect();
                let values = self.batch_score(&extended).await?;
                check_len(Method::BatchScore, extended.len(), values.len())?;
                check_weights(Method::BatchScore, &values)?;
                values
            } else {
                let extended: Vec<Vec<Self::Token>> = self
                    .vocab()
                    .tokens()
                    .iter()
                    .map(|t| extend(context, t.clone()))
                    .collect();
                let (mut values, eos) =
                    try_join(self.batch_prefix(&extended), self.complete(context)).await?;
                check_len(Method::BatchPrefix, extended.len(), values.len())?;
                check_weights(Method::BatchPrefix, &values)?;
                values.push(check_weight(Method::Complete, eos)?);
                values
            };
            for v in &mut values {
                *v -= here;
            }
            Ok(LogWeights::from_parts(self.vocab().clone(), values))
        }
    }

    /// `complete` of every context.
    fn batch_complete(
        &self,
        contexts: &[Vec<Self::Token>],
    ) -> impl Future<Output = Result<Vec<f64>>> + Send {
        async move {
            non_empty(Method::BatchComplete, contexts)?;
            try_join_all(contexts.iter().map(|c| self.complete(c))).await
        }
    }

    /// `prefix` of every context.
    fn batch_prefix(
        &self,
        contexts: &[Vec<Self::Token>],
    ) -> impl Future<Output = Result<Vec<f64>>> + Send {
        async move {
            non_empty(Method::BatchPrefix, contexts)?;
            try_join_all(contexts.iter().map(|c| self.prefix(c))).await
        }
    }

    /// `score` of every context: one `batch_complete` call for the
    /// EOS-terminated contexts and one `batch_prefix` call for the others.
    ///
    /// Like `score`, it checks the contexts (EOS placement, tokens in the
    /// vocabulary) and the weights it gets back.
    fn batch_score(
        &self,
        contexts: &[Vec<Symbol<Self::Token>>],
    ) -> impl Future<Output = Result<Vec<f64>>> + Send {
        async move {
            non_empty(Method::BatchScore, contexts)?;
            let mut ended = Vec::new();
            let mut open = Vec::new();
            let mut is_ended = Vec::with_capacity(contexts.len());
            for c in contexts {
                let (tokens, e) = split_eos(c)?;
                check_tokens(self.vocab(), &tokens)?;
                is_ended.push(e);
                if e {
                    ended.push(tokens)
                } else {
                    open.push(tokens)
                }
            }
            let complete = async {
                if ended.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.batch_complete(&ended).await
                }
            };
            let prefix = async {
                if open.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.batch_prefix(&open).await
                }
            };
            let (complete, prefix) = try_join(complete, prefix).await?;
            check_len(Method::BatchComplete, ended.len(), complete.len())?;
            check_len(Method::BatchPrefix, open.len(), prefix.len())?;
            check_weights(Method::BatchComplete, &complete)?;
            check_weights(Method::BatchPrefix, &prefix)?;
            let (mut complete, mut prefix) = (complete.into_iter(), prefix.into_iter());
            Ok(is_ended
                .into_iter()
                .map(|e| if e { complete.next() } else { prefix.next() })
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        }
    }

    /// `logw_next` of every context.
    fn batch_logw_next(
        &self,
        contexts: &[Vec<Self::Token>],
    ) -> impl Future<Output = Result<Vec<LogWeights<Self::Token>>>> + Send {
        async move {
            non_empty(Method::BatchLogwNext, contexts)?;
            try_join_all(contexts.iter().map(|c| self.logw_next(c))).await
        }
    }
}

/// `context` followed by `last`, as tokens or as symbols.
fn extend<T: Clone, U: From<T>>(context: &[T], last: U) -> Vec<U> {
    let mut c = Vec::with_capacity(context.len() + 1);
    c.extend(context.iter().cloned().map(U::from));
    c.push(last);
    c
}

/// The empty-batch error for `method`, or `Ok` for a non-empty batch.
///
/// Native batch forms call this first so that they reject empty batches
/// the way the default forms do.
pub fn non_empty<C>(method: Method, contexts: &[C]) -> Result<()> {
    if contexts.is_empty() {
        Err(PotentialError::EmptyBatch { method })
    } else {
        Ok(())
    }
}

/// The batch-size-mismatch error when a batch method returned `got`
/// results for `expected` contexts.
pub fn check_len(method: Method, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(PotentialError::BatchSizeMismatch {
            method,
            expected,
            got,
        })
    }
}

/// The unknown-token error for the first token of `context` that is not
/// in `vocab`, or `Ok` when every token is.
///
/// The default `score` and `logw_next` forms and the autobatching wrapper
/// check their contexts with it; `complete` and `prefix` are yours to check
/// (call it first, as the default forms do) when a token outside the
/// vocabulary could reach them.
///
/// ```
/// use potential_core::{check_tokens, PotentialError, Vocab};
/// let vocab = Vocab::new(*b"ab")?;
/// assert!(check_tokens(&vocab, b"abba").is_ok());
/// let err = check_tokens(&vocab, b"abz").unwrap_err();
/// assert_eq!(err.to_string(), "token 122 at position 2 of the context is not in the vocabulary");
/// # Ok::<(), PotentialError>(())
/// ```
pub fn check_tokens<T: TokenType>(vocab: &Vocab<T>, context: &[T]) -> Result<()> {
    match context.iter().position(|t| !vocab.contains(t)) {
        None => Ok(()),
        Some(position) => Err(PotentialError::UnknownToken {
            token: format!("{:?}", crate::vocab::Shown(&context[position])),
            position,
        }),
    }
}

/// [`check_tokens`] for a context of symbols, which also rejects an end of
/// sequence anywhere but last (as [`split_eos`] does).
pub fn check_symbols<T: TokenType>(vocab: &Vocab<T>, context: &[Symbol<T>]) -> Result<()> {
    let last = context.len().saturating_sub(1);
    for (position, symbol) in context.iter().enumerate() {
        match symbol {
            Symbol::Token(t) if !vocab.contains(t) => {
                return Err(PotentialError::UnknownToken {
                    token: format!("{:?}", crate::vocab::Shown(t)),
                    position,
                });
            }
            Symbol::Eos if position != last => {
                // The same words as `split_eos`.
                return split_eos(context).map(drop);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `value` is a log weight: finite or `-inf` (NaN and `+inf` are
/// not). What [`check_weight`] checks.
///
/// ```
/// use potential_core::is_log_weight;
/// assert!(is_log_weight(-1.5) && is_log_weight(f64::NEG_INFINITY));
/// assert!(!is_log_weight(f64::NAN) && !is_log_weight(f64::INFINITY));
/// ```
#[inline]
pub fn is_log_weight(value: f64) -> bool {
    // NaN and +inf are exactly the values not below +inf.
    value < f64::INFINITY
}

/// Whether every value is a log weight ([`is_log_weight`]), in one pass
/// that vectorizes: what [`check_weights`] checks, for code that needs
/// only the answer (the worker's shared memory, before it copies weights
/// there).
///
/// ```
/// use potential_core::all_log_weights;
/// assert!(all_log_weights(&[0.0, f64::NEG_INFINITY, f64::MAX, f64::MAX]));
/// assert!(!all_log_weights(&[f64::NEG_INFINITY, f64::INFINITY]));
/// assert!(!all_log_weights(&[-1.0, f64::NAN]));
/// ```
pub fn all_log_weights(values: &[f64]) -> bool {
    // Eight running sums (a comparison per value kept the loop scalar:
    // 0.2 ns a value, more than a copy of them). A sum is below +inf
    // exactly when none of its values is NaN or +inf (which a -inf turns
    // into NaN), unless large finite values overflowed it: those are
    // cleared by the exact check, which only such sums reach.
    let mut sums = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (sum, value) in sums.iter_mut().zip(chunk) {
            *sum += value;
        }
    }
    for (sum, value) in sums.iter_mut().zip(rest) {
        *sum += value;
    }
    sums.iter().all(|&sum| is_log_weight(sum)) || values.iter().all(|&v| is_log_weight(v))
}

/// `value` if it is a log weight (finite or `-inf`), else the
/// [`PotentialError::InvalidWeight`] error naming `method`.
///
/// ```
/// use potential_core::{Method, check_weight};
/// assert_eq!(check_weight(Method::Prefix, f64::NEG_INFINITY).unwrap(), f64::NEG_INFINITY);
/// let err = check_weight(Method::Prefix, f64::NAN).unwrap_err();
/// assert_eq!(err.to_string(), "`prefix` returned NaN, which is not a log weight");
/// assert!(check_weight(Method::Complete, f64::INFINITY).is_err());
/// ```
pub fn check_weight(method: Method, value: f64) -> Result<f64> {
    if is_log_weight(value) {
        Ok(value)
    } else {
        Err(PotentialError::InvalidWeight { method, value })
    }
}

/// [`check_weight`] for every value of a slice: the error for the first
/// value that is not a log weight.
pub fn check_weights(method: Method, values: &[f64]) -> Result<()> {
    // A pass that vectorizes first; the culprit is looked up only on failure.
    if all_log_weights(values) {
        Ok(())
    } else {
        let bad = values.iter().find(|v| v.is_nan() || **v == f64::INFINITY);
        Err(PotentialError::InvalidWeight {
            method,
            value: bad.copied().unwrap_or(f64::NAN),
        })
    }
}

/// The zero-weight error for a context (byte-string tokens shown as text,
/// see [`Shown`](crate::Shown)).
pub fn zero_weight<T: TokenType>(context: &[T]) -> PotentialError {
    PotentialError::ZeroWeightContext {
        context: format!("{:?}", crate::vocab::Shown(context)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::block_on;
    use crate::testing::{Length, NoC};
    use crate::vocab::Symbol::{Eos, Token};

    /// The sums' answer is each value's: at every length around the eight
    /// lanes, with each value that is not a log weight at each place,
    /// beside a `-inf` or not, and with finite values whose sums overflow.
    #[test]
    fn all_log_weights_is_every_values_answer() {
        for n in [0usize, 1, 7, 8, 9, 16, 17, 40] {
            let values: Vec<f64> = (0..n).map(|i| -(i as f64) / 3.0).collect();
            assert!(all_log_weights(&values));
            for bad in 0..n {
                for refused in [f64::NAN, -f64::NAN, f64::INFINITY] {
                    for minus_infinity in [None, Some((bad + 8) % n)] {
                        let mut v = values.clone();
                        if let Some(at) = minus_infinity.filter(|&at| at != bad) {
                            v[at] = f64::NEG_INFINITY;
                        }
                        v[bad] = refused;
                        assert!(!all_log_weights(&v), "{v:?}");
                        assert!(check_weights(Method::LogwNext, &v).is_err());
                    }
                }
            }
        }
        assert!(all_log_weights(&[f64::MAX; 33]));
        assert!(all_log_weights(&[f64::NEG_INFINITY; 33]));
        assert!(!all_log_weights(&[f64::MAX, f64::MAX, f64::INFINITY]));
    }

    #[test]
    fn score_matches_genlm() {
        block_on(async {
            let p = Length::abc();
            let contexts = vec![
                vec![Token('a')],
                vec![Token('a'), Token('b')],
                vec![Token('a'), Token('b'), Eos],
            ];
            let mut single = Vec::new();
            for c in &contexts {
                single.push(p.score(c).await.unwrap());
            }
            assert_eq!(single, vec![-0.5, -1.0, -2.0]);
            assert_eq!(p.batch_score(&contexts).await.unwrap(), single);
        });
    }

    #[test]
    fn logw_next_is_score_of_extension_minus_prefix() {
        block_on(async {
            let p = Length::abc();
            for ctx in [vec![], vec!['a'], vec!['b', 'c', 'a']] {
                let w = p.logw_next(&ctx).await.unwrap();
                let here = p.prefix(&ctx).await.unwrap();
                for (symbol, value) in w.iter() {
                    let mut ext: Vec<Symbol<char>> = ctx.iter().copied().map(Token).collect();
                    ext.push(symbol.cloned());
                    assert_eq!(value, p.score(&ext).await.unwrap() - here);
                }
            }
        });
    }

    #[test]
    fn logw_next_batches_through_a_native_batch_score() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

        /// Length whose only native batch form is `batch_score`; counts the
        /// single `prefix` calls and the batch calls.
        struct ScoreOnly {
            inner: Length,
            prefixes: AtomicUsize,
            batches: AtomicUsize,
        }
        impl Potential for ScoreOnly {
            type Token = char;
            fn vocab(&self) -> &Vocab<char> {
                &self.inner.vocab
            }
            fn native_batch(&self) -> NativeBatch {
                NativeBatch {
                    score: true,
                    ..NativeBatch::NONE
                }
            }
            async fn complete(&self, c: &[char]) -> Result<f64> {
                self.inner.complete(c).await
            }
            async fn prefix(&self, c: &[char]) -> Result<f64> {
                self.prefixes.fetch_add(1, Relaxed);
                self.inner.prefix(c).await
            }
            async fn batch_score(&self, cs: &[Vec<Symbol<char>>]) -> Result<Vec<f64>> {
                self.batches.fetch_add(1, Relaxed);
                let mut out = Vec::with_capacity(cs.len());
                for c in cs {
                    out.push(self.inner.score(c).await?);
                }
                Ok(out)
            }
        }
        block_on(async {
            let p = ScoreOnly {
                inner: Length::abc(),
                prefixes: AtomicUsize::new(0),
                batches: AtomicUsize::new(0),
            };
            let got = p.logw_next(&['a']).await.unwrap();
            let want = p.inner.logw_next(&['a']).await.unwrap();
            assert_eq!(got.as_slice(), want.as_slice());
            // One prefix (the context's own) and one batch for the rest.
            assert_eq!(p.prefixes.load(Relaxed), 1);
            assert_eq!(p.batches.load(Relaxed), 1);
        });
    }

    #[test]
    fn every_batch_form_rejects_an_empty_batch() {
        block_on(async {
            let p = Length::abc();
            let empty: &[Vec<char>] = &[];
            let is_empty = |e: PotentialError, m: Method| matches!(e, PotentialError::EmptyBatch { method } if method == m);
            assert!(is_empty(
                p.batch_complete(empty).await.unwrap_err(),
                Method::BatchComplete
            ));
            assert!(is_empty(
                p.batch_prefix(empty).await.unwrap_err(),
                Method::BatchPrefix
            ));
            assert!(is_empty(
                p.batch_score(&[]).await.unwrap_err(),
                Method::BatchScore
            ));
            assert!(is_empty(
                p.batch_logw_next(empty).await.unwrap_err(),
                Method::BatchLogwNext
            ));
        });
    }

    #[test]
    fn zero_weight_context_errors_in_logw_next() {
        block_on(async {
            let p = NoC(Length::abc());
            let err = p.logw_next(&['a', 'c']).await.unwrap_err();
            assert!(
                matches!(err, PotentialError::ZeroWeightContext { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("['a', 'c']"));
            let w = p.logw_next(&['a']).await.unwrap();
            assert_eq!(w.get(&'c'), f64::NEG_INFINITY);
            assert!(p.batch_logw_next(&[vec!['a'], vec!['c']]).await.is_err());
        });
    }

    /// NaN as a prefix weight once the context holds a `b`, `+inf` as a
    /// complete weight once it holds a `c`.
    struct Broken(Length);

    impl Potential for Broken {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0.vocab
        }
        async fn complete(&self, context: &[char]) -> Result<f64> {
            if context.contains(&'c') {
                Ok(f64::INFINITY)
            } else {
                self.0.complete(context).await
            }
        }
        async fn prefix(&self, context: &[char]) -> Result<f64> {
            if context.contains(&'b') {
                Ok(f64::NAN)
            } else {
                self.0.prefix(context).await
            }
        }
    }

    #[test]
    fn nan_and_infinite_weights_are_errors_naming_the_method() {
        block_on(async {
            let p = Broken(Length::abc());
            let invalid = |e: PotentialError, m: Method| matches!(e, PotentialError::InvalidWeight { method, .. } if method == m);
            // The context's own prefix weight is NaN.
            assert!(invalid(
                p.logw_next(&['b']).await.unwrap_err(),
                Method::Prefix
            ));
            // An extension's prefix weight is NaN (`b` follows).
            assert!(invalid(
                p.logw_next(&['a']).await.unwrap_err(),
                Method::BatchPrefix
            ));
            assert!(invalid(
                p.score(&[Token('a'), Token('c'), Eos]).await.unwrap_err(),
                Method::Complete
            ));
            assert!(invalid(
                p.batch_score(&[vec![Token('a')], vec![Token('c'), Eos]])
                    .await
                    .unwrap_err(),
                Method::BatchComplete
            ));
            assert_eq!(p.score(&[Token('a'), Eos]).await.unwrap(), -1.0);
        });
    }

    #[test]
    fn default_forms_name_a_token_outside_the_vocabulary() {
        block_on(async {
            let p = Length::abc();
            let message = "token 'z' at position 1 of the context is not in the vocabulary";
            assert_eq!(
                p.logw_next(&['a', 'z']).await.unwrap_err().to_string(),
                message
            );
            assert_eq!(
                p.score(&[Token('a'), Token('z')])
                    .await
                    .unwrap_err()
                    .to_string(),
                message
            );
            let err = p
                .batch_score(&[vec![Token('a')], vec![Token('b'), Token('z'), Eos]])
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), message);
            let err = check_symbols(p.vocab(), &[Token('a'), Eos, Token('z')]).unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        });
    }

    #[test]
    fn zero_weight_errors_show_byte_strings_as_text() {
        let err = zero_weight(&[b"the".to_vec(), b" cat".to_vec(), vec![0xff]]);
        assert_eq!(
            err.to_string(),
            r#"context ["the", " cat", "\xFF"] has zero weight as a prefix; its next-token weights are undefined"#
        );
    }

    #[test]
    fn eos_in_the_middle_is_invalid_input() {
        block_on(async {
            let p = Length::abc();
            let err = p.score(&[Eos, Token('a')]).await.unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)));
            assert!(p.batch_score(&[vec![Eos, Token('a')]]).await.is_err());
        });
    }

    #[test]
    fn futures_are_send_and_spawnable() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let p = std::sync::Arc::new(Length::abc());
        let got = rt
            .block_on(async move {
                tokio::spawn(async move { p.batch_logw_next(&[vec!['a'], vec![]]).await }).await
            })
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 2);
    }
}
