//! The object-safe twin of [`Potential`], for `Arc<dyn DynPotential<T>>`.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::Result;
use crate::potential::{NativeBatch, Potential};
use crate::vocab::{Symbol, TokenType, Vocab};
use crate::weights::LogWeights;

/// [`Potential`] with boxed futures, so that potentials of different types
/// can sit behind one `Arc<dyn DynPotential<T>>`.
///
/// Every `Potential` implements it, and `dyn DynPotential<T>` (and so
/// `Arc<dyn DynPotential<T>>`) implements `Potential` again, so an erased
/// potential goes wherever a potential goes. Each call through it costs one
/// box. Its methods carry a `dyn_` prefix so that having both traits in
/// scope never makes a call ambiguous; call the `Potential` methods.
///
/// ```
/// use std::sync::Arc;
/// use potential_core::{DynPotential, Potential, PotentialError, Vocab};
///
/// struct Zero(Vocab<u8>);
/// impl Potential for Zero {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.0 }
///     async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
///     async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
/// }
///
/// let erased: Arc<dyn DynPotential<u8>> = Arc::new(Zero(Vocab::new([1, 2])?));
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(erased.complete(&[1, 2]).await?, 0.0);
/// # Ok::<(), PotentialError>(()) })?;
/// # Ok::<(), PotentialError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a potential over tokens of type `{T}`",
    label = "expected a potential over `{T}`"
)]
pub trait DynPotential<T>: Send + Sync {
    /// See [`Potential::vocab`].
    fn dyn_vocab(&self) -> &Vocab<T>;
    /// See [`Potential::native_batch`].
    fn dyn_native_batch(&self) -> NativeBatch;
    /// See [`Potential::complete`].
    fn dyn_complete<'a>(&'a self, context: &'a [T]) -> BoxFuture<'a, Result<f64>>;
    /// See [`Potential::prefix`].
    fn dyn_prefix<'a>(&'a self, context: &'a [T]) -> BoxFuture<'a, Result<f64>>;
    /// See [`Potential::score`].
    fn dyn_score<'a>(&'a self, context: &'a [Symbol<T>]) -> BoxFuture<'a, Result<f64>>;
    /// See [`Potential::logw_next`].
    fn dyn_logw_next<'a>(&'a self, context: &'a [T]) -> BoxFuture<'a, Result<LogWeights<T>>>;
    /// See [`Potential::batch_complete`].
    fn dyn_batch_complete<'a>(&'a self, contexts: &'a [Vec<T>]) -> BoxFuture<'a, Result<Vec<f64>>>;
    /// See [`Potential::batch_prefix`].
    fn dyn_batch_prefix<'a>(&'a self, contexts: &'a [Vec<T>]) -> BoxFuture<'a, Result<Vec<f64>>>;
    /// See [`Potential::batch_score`].
    fn dyn_batch_score<'a>(
        &'a self,
        contexts: &'a [Vec<Symbol<T>>],
    ) -> BoxFuture<'a, Result<Vec<f64>>>;
    /// See [`Potential::batch_logw_next`].
    fn dyn_batch_logw_next<'a>(
        &'a self,
        contexts: &'a [Vec<T>],
    ) -> BoxFuture<'a, Result<Vec<LogWeights<T>>>>;
}

#[diagnostic::do_not_recommend]
impl<P: Potential> DynPotential<P::Token> for P {
    fn dyn_vocab(&self) -> &Vocab<P::Token> {
        Potential::vocab(self)
    }
    fn dyn_native_batch(&self) -> NativeBatch {
        Potential::native_batch(self)
    }
    fn dyn_complete<'a>(&'a self, context: &'a [P::Token]) -> BoxFuture<'a, Result<f64>> {
        Box::pin(Potential::complete(self, context))
    }
    fn dyn_prefix<'a>(&'a self, context: &'a [P::Token]) -> BoxFuture<'a, Result<f64>> {
        Box::pin(Potential::prefix(self, context))
    }
    fn dyn_score<'a>(&'a self, context: &'a [Symbol<P::Token>]) -> BoxFuture<'a, Result<f64>> {
        Box::pin(Potential::score(self, context))
    }
    fn dyn_logw_next<'a>(
        &'a self,
        context: &'a [P::Token],
    ) -> BoxFuture<'a, Result<LogWeights<P::Token>>> {
        Box::pin(Potential::logw_next(self, context))
    }
    fn dyn_batch_complete<'a>(
        &'a self,
        contexts: &'a [Vec<P::Token>],
    ) -> BoxFuture<'a, Result<Vec<f64>>> {
        Box::pin(Potential::batch_complete(self, contexts))
    }
    fn dyn_batch_prefix<'a>(
        &'a self,
        contexts: &'a [Vec<P::Token>],
    ) -> BoxFuture<'a, Result<Vec<f64>>> {
        Box::pin(Potential::batch_prefix(self, contexts))
    }
    fn dyn_batch_score<'a>(
        &'a self,
        contexts: &'a [Vec<Symbol<P::Token>>],
    ) -> BoxFuture<'a, Result<Vec<f64>>> {
        Box::pin(Potential::batch_score(self, contexts))
    }
    fn dyn_batch_logw_next<'a>(
        &'a self,
        contexts: &'a [Vec<P::Token>],
    ) -> BoxFuture<'a, Result<Vec<LogWeights<P::Token>>>> {
        Box::pin(Potential::batch_logw_next(self, contexts))
    }
}

/// Forwards every method through `$via` (a trait path), so the erased form
/// keeps the native batch forms of the potential inside it.
macro_rules! forward_potential {
    ($token:ty, $via:path, |$s:ident| $inner:expr, [$vocab:ident, $native:ident, $complete:ident, $prefix:ident, $score:ident, $logw:ident, $bcomplete:ident, $bprefix:ident, $bscore:ident, $blogw:ident]) => {
        type Token = $token;
        fn vocab(&self) -> &Vocab<$token> {
            let $s = self;
            <_ as $via>::$vocab($inner)
        }
        fn native_batch(&self) -> NativeBatch {
            let $s = self;
            <_ as $via>::$native($inner)
        }
        async fn complete(&self, context: &[$token]) -> Result<f64> {
            let $s = self;
            <_ as $via>::$complete($inner, context).await
        }
        async fn prefix(&self, context: &[$token]) -> Result<f64> {
            let $s = self;
            <_ as $via>::$prefix($inner, context).await
        }
        async fn score(&self, context: &[Symbol<$token>]) -> Result<f64> {
            let $s = self;
            <_ as $via>::$score($inner, context).await
        }
        async fn logw_next(&self, context: &[$token]) -> Result<LogWeights<$token>> {
            let $s = self;
            <_ as $via>::$logw($inner, context).await
        }
        async fn batch_complete(&self, contexts: &[Vec<$token>]) -> Result<Vec<f64>> {
            let $s = self;
            <_ as $via>::$bcomplete($inner, contexts).await
        }
        async fn batch_prefix(&self, contexts: &[Vec<$token>]) -> Result<Vec<f64>> {
            let $s = self;
            <_ as $via>::$bprefix($inner, contexts).await
        }
        async fn batch_score(&self, contexts: &[Vec<Symbol<$token>>]) -> Result<Vec<f64>> {
            let $s = self;
            <_ as $via>::$bscore($inner, contexts).await
        }
        async fn batch_logw_next(
            &self,
            contexts: &[Vec<$token>],
        ) -> Result<Vec<LogWeights<$token>>> {
            let $s = self;
            <_ as $via>::$blogw($inner, contexts).await
        }
    };
}

impl<T: TokenType> Potential for dyn DynPotential<T> + '_ {
    forward_potential!(
        T,
        DynPotential<T>,
        |s| s,
        [
            dyn_vocab,
            dyn_native_batch,
            dyn_complete,
            dyn_prefix,
            dyn_score,
            dyn_logw_next,
            dyn_batch_complete,
            dyn_batch_prefix,
            dyn_batch_score,
            dyn_batch_logw_next
        ]
    );
}

impl<P: Potential + ?Sized> Potential for Arc<P> {
    forward_potential!(
        P::Token,
        Potential,
        |s| &**s,
        [
            vocab,
            native_batch,
            complete,
            prefix,
            score,
            logw_next,
            batch_complete,
            batch_prefix,
            batch_score,
            batch_logw_next
        ]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::block_on;
    use crate::testing::Length;

    #[test]
    fn erased_and_shared_potentials_answer_like_the_original() {
        block_on(async {
            let erased: Arc<dyn DynPotential<char>> = Arc::new(Length::abc());
            let shared = Arc::new(Length::abc());
            let direct = Length::abc();
            let ctxs = vec![vec!['a'], vec!['a', 'b']];
            let want = Potential::batch_prefix(&direct, &ctxs).await.unwrap();
            assert_eq!(Potential::batch_prefix(&erased, &ctxs).await.unwrap(), want);
            assert_eq!(Potential::batch_prefix(&shared, &ctxs).await.unwrap(), want);
            let w = Potential::logw_next(&erased, &['a']).await.unwrap();
            assert_eq!(w, Potential::logw_next(&direct, &['a']).await.unwrap());
            assert_eq!(Potential::vocab(&erased).len(), 3);
        });
    }
}
