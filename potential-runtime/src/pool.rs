//! The multiprocess potential: the public facade, and the dispatch of its
//! calls to workers.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;

use futures::future::try_join_all;
use potential_core::wire::{self, Answer, CallRef};
use potential_core::{
    LogWeights, Method, NativeBatch, Potential, PotentialError, Recipe, Result, Symbol, TokenType,
    Vocab, check_symbols, check_tokens, non_empty,
};

use crate::affinity::Hashes;
use crate::conn::{AwaitReply, Conn, Death, Outcome, Sent, Shape};
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
/// Single calls go to the least-loaded worker; a batch is split into one
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

    /// A call answered by one value.
    async fn scalar(&self, call: CallRef<'_, T>, method: Method) -> Result<f64> {
        match self.call(call, Shape::flat(method, 1)).await? {
            Answer::One(value) => Ok(value),
            // Not produced for a shape of one value; read it all the same.
            other => other
                .into_rows()
                .into_iter()
                .flatten()
                .next()
                .ok_or_else(|| {
                    PotentialError::WorkerFailure("an empty reply from a worker".into())
                }),
        }
    }

    /// Sends a call to the least-loaded worker (on a tie, the one that
    /// served the call's parent context: see `affinity`) and waits for its answer;
    /// sends it again to a live worker if its worker dies meanwhile.
    ///
    /// A call that two workers died of is a poison pill and fails. When
    /// the second death held several calls that had each died once (a
    /// poison pill's innocent companions, retried with it), it cannot tell
    /// which: each of them is then sent once more alone (one such call in
    /// flight in the whole pool at a time), and only the one whose worker
    /// dies again fails.
    ///
    /// Thousands of these futures may be in flight, each moved into its
    /// task or `join_all`, so the waits that are rare (no worker running,
    /// a request timeout) are boxed and the sending is not async at all.
    async fn call(&self, call: CallRef<'_, T>, shape: Shape) -> Result<Answer> {
        let mut died: Option<Arc<Death>> = None;
        let mut alone = None;
        let hashes = Hashes::of(&call);
        loop {
            let prefer = self.pool.preferred(hashes);
            let (slot, conn) = match self.pool.least_loaded(prefer) {
                (Some(best), _) => best,
                _ => Box::pin(self.pool.pick()).await?,
            };
            // The waker goes into the call's entry as it is sent; no
            // `.await` may come between the send and the reply's first
            // poll (see `AwaitReply`).
            let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
            let id = match conn.send(&call, shape, waker, died.clone()) {
                Sent::Waiting(id) => id,
                Sent::Failed(e) => return Err(e),
                // The worker died before the call was sent: its slot is no
                // longer running, so the next pick finds another (or waits).
                Sent::Gone => continue,
            };
            match self.wait(id, &conn).await {
                Outcome::Answered(answer) => {
                    if answer.is_ok() {
                        self.pool.served_context(hashes, slot);
                    }
                    return answer;
                }
                Outcome::Died(death) if !self.pool.options().retry => return Err(death.error()),
                // Killed for another call's timeout: not this call's fault.
                Outcome::Died(death) if !death.crash => self.pool.add_retried(death.slot),
                Outcome::Died(death) => match &died {
                    None => {
                        self.pool.add_retried(death.slot);
                        died = Some(death);
                    }
                    Some(first) if alone.is_some() || death.suspects <= 1 => {
                        return Err(Death::poison_pill(first, &death));
                    }
                    Some(_) => {
                        self.pool.add_retried(death.slot);
                        alone = Some(Box::pin(self.pool.isolate()).await);
                    }
                },
            }
        }
    }

    /// Waits for the reply to call `id`, up to the request timeout.
    async fn wait(&self, id: u64, conn: &Conn) -> Outcome {
        let reply = conn.reply(id);
        match self.pool.options().request_timeout {
            None => reply.await,
            Some(limit) => Box::pin(self.wait_timed(id, conn, reply, limit)).await,
        }
    }

    /// Waits for a reply under a request timeout that times the work, not
    /// the queue: the clock of a call runs from when it was sent or from
    /// when its worker was last heard from, whichever is later, so that a
    /// worker that keeps answering other calls is busy, not stuck (400
    /// callers of 1 ms calls on 2 workers queue for 200 ms, and none of
    /// them is late). A worker silent for the whole limit is killed (stuck,
    /// it would look idle and win the next calls) and restarts; the call it
    /// was stuck in (its oldest unanswered call) fails with the timeout,
    /// and its other calls are retried. Such a kill is not a crash: it
    /// does not count towards giving the worker up.
    async fn wait_timed(
        &self,
        id: u64,
        conn: &Conn,
        mut reply: AwaitReply<'_>,
        limit: std::time::Duration,
    ) -> Outcome {
        let sent = tokio::time::Instant::now();
        loop {
            let quiet_since = tokio::time::Instant::from_std(conn.last_heard()).max(sent);
            let deadline = quiet_since + limit;
            if let Ok(outcome) = tokio::time::timeout_at(deadline, &mut reply).await {
                return outcome;
            }
            if tokio::time::Instant::from_std(conn.last_heard()) + limit
                > tokio::time::Instant::now()
            {
                continue; // heard from meanwhile: busy, not stuck
            }
            let why = format!("killed: it answered nothing for {limit:?}");
            conn.kill_for(why, false);
            self.pool.kill(conn.ticket);
            if conn.is_oldest_unanswered(id) {
                // Dropping `reply` marks the call abandoned: a reply that
                // comes after all is dropped.
                return Outcome::Answered(Err(PotentialError::WorkerFailure(format!(
                    "worker {} did not answer within {limit:?}; it was killed and is restarted",
                    conn.pid
                ))));
            }
            // Another call holds the worker up: this one learns of the
            // death and is retried.
            return reply.await;
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

    async fn complete(&self, context: &[T]) -> Result<f64> {
        check_tokens(&self.vocab, context)?;
        self.scalar(CallRef::Complete(context), Method::Complete)
            .await
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        check_tokens(&self.vocab, context)?;
        self.scalar(CallRef::Prefix(context), Method::Prefix).await
    }

    async fn score(&self, context: &[Symbol<T>]) -> Result<f64> {
        check_symbols(&self.vocab, context)?;
        self.scalar(CallRef::Score(context), Method::Score).await
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
