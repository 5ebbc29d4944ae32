//! The multiprocess potential: the public facade, and the dispatch of its
//! calls to workers.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{Either, try_join_all};
use potential_core::wire::{self, Answer, CallRef};
use potential_core::{
    LogWeights, Method, NativeBatch, Potential, PotentialError, Recipe, Result, Symbol, TokenType,
    Vocab, check_symbols, check_tokens, non_empty,
};

use crate::call::CallFuture;
use crate::conn::Shape;
use crate::options::MultiprocessOptions;
use crate::protocol::env::{INIT_HINT, started_as_worker};
use crate::protocol::handshake::{Refusal, Secret};
use crate::protocol::message::encode_recipe;
use crate::socket::{SocketAddress, fresh_address};
use crate::state::{Pool, Setup, WorkerStats};
use crate::tuning::SHUTDOWN_GRACE;
use crate::{accept, supervise};

/// A potential that answers through worker processes, each holding its
/// own copy of the original potential; made by
/// [`MultiprocessExt::to_multiprocess`](crate::MultiprocessExt::to_multiprocess).
///
/// Single calls go to the least-loaded worker, except that a call whose
/// context extends one a worker served (a particle's next step) stays
/// with that worker, whose caches may hold the context's state, while it
/// holds at most two calls more than the least loaded and no other worker
/// sits idle while it is busy. A batch is split into one
/// contiguous chunk per running worker, the chunks run in parallel and the
/// results come back in order. Every method answers what the original
/// potential answers in-process; the vocabulary is the original's (each
/// worker confirms that it rebuilt one of the same length over the same
/// token type). [`native_batch`](Potential::native_batch) is
/// [`NativeBatch::ALL`]: a batch is one message per worker, so batching
/// calls before they reach the pool pays.
///
/// It cannot be sent to workers itself (it is not
/// [`Spawnable`](potential_core::Spawnable)): its workers belong to this process.
///
/// Dropping it kills and reaps its workers and removes its socket;
/// [`shutdown`](Self::shutdown) lets them finish first.
pub struct Multiprocess<T: TokenType> {
    pool: Arc<Pool>,
    vocab: Vocab<T>,
}

/// Stops a pool that is dropped before it is handed out (an error, or a
/// cancelled start); [`defuse`](Self::defuse)d once the pool is handed out.
struct StopOnDrop(Option<Arc<Pool>>);

impl StopOnDrop {
    /// Lets the pool live on, and drops this guard's reference to it (a
    /// `mem::forget` of the guard would keep the pool's state, its recipe
    /// among it, alive for the rest of the process).
    fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pool) = &self.0 {
            pool.stop_now();
        }
    }
}

impl<T: TokenType> Multiprocess<T> {
    /// Starts `options.workers` workers that rebuild the potential from
    /// `recipe`, and waits until each has confirmed that it rebuilt a
    /// potential over `T` with a vocabulary of `vocab`'s length: a pool
    /// from a recipe, as genlm-control's `MultiProcPotential(factory,
    /// args, n)` is one from a factory.
    /// [`to_multiprocess`](crate::MultiprocessExt::to_multiprocess) calls
    /// it with the potential's own recipe and vocabulary.
    ///
    /// `vocab` is the rebuilt potential's vocabulary, which the pool
    /// answers [`vocab`](Potential::vocab) with: workers confirm only its
    /// token type and length, so pass the one the recipe's potential has
    /// (a recipe kept from earlier, with the vocabulary kept beside it).
    ///
    /// ```rust,no_run
    /// # use potential_core::{Potential, Spawnable};
    /// # use potential_runtime::{Multiprocess, MultiprocessOptions};
    /// # async fn f<P: Spawnable>(p: P) -> potential_core::Result<()> {
    /// let (recipe, vocab) = (p.recipe()?, p.vocab().clone());
    /// let workers =
    ///     Multiprocess::from_recipe(recipe, vocab, MultiprocessOptions::new().workers(2)).await?;
    /// workers.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn from_recipe(
        recipe: Recipe,
        vocab: Vocab<T>,
        options: MultiprocessOptions,
    ) -> Result<Self> {
        options.check()?;
        if started_as_worker() {
            return Err(PotentialError::InvalidInput(format!(
                "this process was started as a potential worker but did not call \
                 `potential_runtime::init()` first in `main`; {INIT_HINT}"
            )));
        }
        let io = |what: &str, e: std::io::Error| {
            PotentialError::WorkerFailure(format!("cannot {what}: {e}"))
        };
        let (address, dir) =
            fresh_address(&options.socket).map_err(|e| io("create the pool's socket name", e))?;
        let pool = Arc::new(Pool::new(Setup {
            name: describe(&recipe),
            recipe: encode_recipe(&recipe)?,
            secret: Secret::random().map_err(|e| io("draw a secret", e))?,
            options,
            address,
            dir,
        }));
        let guard = StopOnDrop(Some(pool.clone()));
        accept::listen(&pool).map_err(|e| io("listen on the pool's socket", e))?;
        let descriptions =
            try_join_all((0..pool.slot_count()).map(|i| supervise::start_worker(&pool, i, false)))
                .await?;
        for description in &descriptions {
            wire::check_description::<T>(description, vocab.len())?;
        }
        guard.defuse();
        Ok(Multiprocess { pool, vocab })
    }

    /// The counters of every worker slot.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.pool.stats()
    }

    /// The pids of the running workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.stats().into_iter().filter_map(|s| s.pid).collect()
    }

    /// The pool's socket.
    pub fn socket(&self) -> &SocketAddress {
        self.pool.address()
    }

    /// The pool's private directory, when its socket is a file.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.pool.dir()
    }

    /// Starts again every worker that was given up after dying too often
    /// (their deaths forgotten), and waits until each runs or is given up
    /// again; returns how many were given up. Given-up workers also come
    /// back by themselves once the [`RestartPolicy`](crate::RestartPolicy)'s
    /// window has passed.
    pub async fn revive(&self) -> usize {
        let revivals: Vec<_> = (0..self.pool.slot_count())
            .map(|slot| tokio::spawn(supervise::revive(self.pool.clone(), slot)))
            .collect();
        let mut revived = 0;
        for revival in revivals {
            revived += usize::from(matches!(revival.await, Ok(true)));
        }
        revived
    }

    /// The most recent connections refused (at most 64), oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.pool.refusals()
    }

    /// Stops the workers: calls in flight fail with
    /// [`PotentialError::Closed`], each worker is told to exit (its socket
    /// is closed) and given two seconds, then killed; all are reaped and
    /// the socket is removed. Later calls fail with `Closed`.
    pub async fn shutdown(&self) {
        let readers = self.pool.close();
        // A reader ends when its worker closes the socket, that is, exits;
        // it then reaps the worker.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(readers)).await;
        let pool = self.pool.clone();
        let _ = tokio::task::spawn_blocking(move || pool.stop_now()).await;
    }

    /// Sends a call to a worker and waits for its answer, sending it
    /// again if its worker dies meanwhile: see [`CallFuture`].
    fn call<'c>(&self, call: CallRef<'c, T>, shape: Shape) -> CallFuture<'_, 'c, T> {
        CallFuture::new(&self.pool, call, shape)
    }

    /// A call of one context answered by one value, unless its tokens
    /// failed their check (`checked`). Not an `async fn`: the future
    /// stays the call's own, with no layer around it (see [`CallFuture`]).
    fn scalar<'c>(
        &self,
        checked: Result<()>,
        call: CallRef<'c, T>,
        method: Method,
    ) -> impl Future<Output = Result<f64>> + Send {
        match checked {
            Ok(()) => Either::Left(self.call(call, Shape::flat(method, 1)).map(one_value)),
            Err(e) => Either::Right(std::future::ready(Err(e))),
        }
    }

    /// Splits `contexts` into one chunk per running worker; gives each
    /// chunk's answer, in order. `shape(chunk_len)` is a chunk's reply.
    async fn split<'a, C: Sync>(
        &'a self,
        contexts: &'a [C],
        method: Method,
        shape: impl Fn(usize) -> Shape,
        make: fn(&'a [C]) -> CallRef<'a, T>,
    ) -> Result<Vec<Answer>> {
        non_empty(method, contexts)?;
        let parts = self.pool.up_count().clamp(1, contexts.len());
        let chunk = contexts.len().div_ceil(parts);
        try_join_all(
            contexts
                .chunks(chunk)
                .map(|c| self.call(make(c), shape(c.len()))),
        )
        .await
    }

    /// A batch of scalars: one row per chunk, joined.
    async fn split_scalars<'a, C: Sync>(
        &'a self,
        contexts: &'a [C],
        method: Method,
        make: fn(&'a [C]) -> CallRef<'a, T>,
    ) -> Result<Vec<f64>> {
        let chunks = self
            .split(contexts, method, |n| Shape::flat(method, n), make)
            .await?;
        let mut rows = chunks.into_iter().flat_map(Answer::into_rows);
        let mut all = rows.next().unwrap_or_default();
        for row in rows {
            all.extend_from_slice(&row);
        }
        Ok(all)
    }
}

impl<T: TokenType> Drop for Multiprocess<T> {
    fn drop(&mut self) {
        self.pool.stop_now();
    }
}

/// The value of a call's answer of one value.
fn one_value(answer: Result<Answer>) -> Result<f64> {
    match answer? {
        Answer::One(value) => Ok(value),
        // Not produced for a shape of one value; read it all the same.
        other => other
            .into_rows()
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| PotentialError::WorkerFailure("an empty reply from a worker".into())),
    }
}

/// A short name for a recipe, for `Debug` and the log.
fn describe(recipe: &Recipe) -> String {
    match recipe {
        Recipe::Registered { tag, .. } => tag.clone(),
        Recipe::Product(a, b) => format!("Product({}, {})", describe(a), describe(b)),
        Recipe::AutoBatched { inner, .. } => format!("AutoBatched({})", describe(inner)),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

impl<T: TokenType> fmt::Debug for Multiprocess<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multiprocess")
            .field("potential", &self.pool.name())
            .field("workers", &self.pool.slot_count())
            .field("vocab_len", &self.vocab.len())
            .field("socket", &self.pool.address().to_string())
            .finish()
    }
}

impl<T: TokenType> Potential for Multiprocess<T> {
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch::ALL
    }

    // Tokens are checked against the vocabulary here, before a call is
    // sent, as `AutoBatched` checks them: the same error on every path,
    // and no out-of-vocabulary token reaches the potential's code.

    fn complete(&self, context: &[T]) -> impl Future<Output = Result<f64>> + Send {
        let checked = check_tokens(&self.vocab, context);
        self.scalar(checked, CallRef::Complete(context), Method::Complete)
    }

    fn prefix(&self, context: &[T]) -> impl Future<Output = Result<f64>> + Send {
        let checked = check_tokens(&self.vocab, context);
        self.scalar(checked, CallRef::Prefix(context), Method::Prefix)
    }

    fn score(&self, context: &[Symbol<T>]) -> impl Future<Output = Result<f64>> + Send {
        let checked = check_symbols(&self.vocab, context);
        self.scalar(checked, CallRef::Score(context), Method::Score)
    }

    async fn logw_next(&self, context: &[T]) -> Result<LogWeights<T>> {
        check_tokens(&self.vocab, context)?;
        let shape = Shape::flat(Method::LogwNext, self.vocab.len() + 1);
        let answer = self.call(CallRef::LogwNext(context), shape).await?;
        let mut weights = answer.into_weights(&self.vocab)?;
        Ok(weights.pop().expect("a reply of one row"))
    }

    async fn batch_complete(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        contexts
            .iter()
            .try_for_each(|c| check_tokens(&self.vocab, c))?;
        self.split_scalars(contexts, Method::BatchComplete, CallRef::BatchComplete)
            .await
    }

    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        contexts
            .iter()
            .try_for_each(|c| check_tokens(&self.vocab, c))?;
        self.split_scalars(contexts, Method::BatchPrefix, CallRef::BatchPrefix)
            .await
    }

    async fn batch_score(&self, contexts: &[Vec<Symbol<T>>]) -> Result<Vec<f64>> {
        contexts
            .iter()
            .try_for_each(|c| check_symbols(&self.vocab, c))?;
        self.split_scalars(contexts, Method::BatchScore, CallRef::BatchScore)
            .await
    }

    async fn batch_logw_next(&self, contexts: &[Vec<T>]) -> Result<Vec<LogWeights<T>>> {
        contexts
            .iter()
            .try_for_each(|c| check_tokens(&self.vocab, c))?;
        let method = Method::BatchLogwNext;
        let width = self.vocab.len() + 1;
        let shape = |rows| Shape {
            method,
            rows,
            width,
        };
        let chunks = self
            .split(contexts, method, shape, CallRef::BatchLogwNext)
            .await?;
        let mut all = Vec::with_capacity(contexts.len());
        for chunk in chunks {
            all.extend(chunk.into_weights(&self.vocab)?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future that `method` returns.
    fn future_size<'a, C: ?Sized + 'a, F>(_method: fn(&'a Multiprocess<u32>, &'a C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Thousands of call futures are in flight at once, each moved into
    /// its task a few times: as nested `async fn`s a scalar call's was
    /// 344 bytes, and its moves cost more than the pool's dispatch (see
    /// `call`'s module documentation).
    #[test]
    fn a_scalar_calls_future_stays_small() {
        let sizes = [
            future_size(<Multiprocess<u32> as Potential>::complete),
            future_size(<Multiprocess<u32> as Potential>::prefix),
            future_size(<Multiprocess<u32> as Potential>::score),
        ];
        assert!(sizes.iter().all(|&size| size <= 128), "{sizes:?} bytes");
    }
}
