//! A potential seen through a mapping to another vocabulary.

use std::fmt;
use std::marker::PhantomData;

use crate::error::{PotentialError, Result};
use crate::potential::{NativeBatch, Potential};
use crate::vocab::{TokenType, Vocab};

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
        crate::non_empty("batch_complete", contexts)?;
        let values = self.inner.batch_complete(&self.map_all(contexts)).await?;
        crate::check_len("batch_complete", contexts.len(), values.len())?;
        Ok(values)
    }

    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        crate::non_empty("batch_prefix", contexts)?;
        let values = self.inner.batch_prefix(&self.map_all(contexts)).await?;
        crate::check_len("batch_prefix", contexts.len(), values.len())?;
        Ok(values)
    }
}

impl<P: fmt::Debug, T, F> fmt::Debug for Coerce<P, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Coerce({:?})", self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::tests::{Length, block_on};

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
        fn vocab(&self) -> &Vocab<char> {
            &self.0.vocab
        }
        async fn complete(&self, context: &[char]) -> Result<f64> {
            self.0.complete(context).await
        }
        async fn prefix(&self, context: &[char]) -> Result<f64> {
            self.0.prefix(context).await
        }
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
}
