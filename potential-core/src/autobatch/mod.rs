//! Autobatching: concurrent single calls become batch calls.
//!
//! [`AutoBatched<P>`] wraps a potential behind a background tokio task.
//! Its `complete`, `prefix`, `score` and `logw_next` queue a request and
//! wait for the answer; the task takes what is queued, groups it by method,
//! calls the inner potential's batch method once per method present (in
//! batches of at most [`AutoBatchOptions::max_batch_size`]) and hands every
//! caller its own result. The wrapper is itself a [`Potential`], so it goes
//! wherever a potential goes; build it with
//! [`to_autobatched`](crate::PotentialExt::to_autobatched).
//!
//! ```
//! use potential_core::{Potential, PotentialError, PotentialExt, Vocab};
//!
//! struct Length(Vocab<u8>);
//!
//! impl Potential for Length {
//!     type Token = u8;
//!     fn vocab(&self) -> &Vocab<u8> { &self.0 }
//!     async fn complete(&self, ctx: &[u8]) -> Result<f64, PotentialError> {
//!         Ok(-(ctx.len() as f64))
//!     }
//!     async fn prefix(&self, ctx: &[u8]) -> Result<f64, PotentialError> {
//!         Ok(-0.5 * ctx.len() as f64)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let p = Length(Vocab::new(*b"ab")?).to_autobatched();
//! let contexts: Vec<Vec<u8>> = (0..64).map(|n| vec![b'a'; n]).collect();
//! // 64 concurrent calls ...
//! let got = futures::future::try_join_all(contexts.iter().map(|c| p.complete(c))).await?;
//! assert_eq!(got[3], -3.0);
//! // ... ran as one call of `batch_complete`.
//! assert_eq!(p.stats().batches, 1);
//! assert_eq!(p.stats().requests, 64);
//! p.shutdown().await;
//! assert!(matches!(p.complete(b"a").await, Err(PotentialError::Closed(_))));
//! # Ok::<(), PotentialError>(()) }).unwrap();
//! ```
//!
//! # What the wrapper guarantees
//!
//! - Each caller gets its own answer, equal to what the inner potential's
//!   batch method gave for its context, whatever the interleaving.
//! - **Per-call isolation**: one bad call fails alone.
//!   - A context is checked before it is queued: a token outside the
//!     vocabulary gets [`PotentialError::UnknownToken`] naming the token,
//!     and an end of sequence before the last position (in `score`)
//!     [`PotentialError::InvalidInput`], at once and without a batch.
//!   - A batch that fails as a whole (the batch method's error, a wrong
//!     number of results, a panic) is split into parts, and each part runs
//!     again, down to single calls: a zero-weight context among 99 good
//!     ones in a `batch_logw_next` fails alone, with its own error, after
//!     about 2 log2(100) ≈ 14 batch calls, and the 99 get their answers.
//!     The loop learns how often calls fail on their own and cuts a failed
//!     batch into more parts when that is often, so that good calls are
//!     not re-run many times (with 1 call in 100 failing, each call runs
//!     about 2.7 times in all, where halving ran it 6); how the search goes
//!     is in `autobatch/isolation.rs`.
//!     A batch method that fails every call (the model is gone) costs up to
//!     2n - 1 calls that way, each failing its part quickly; turn it off
//!     with [`AutoBatchOptions::isolate_failures`], and the whole batch
//!     shares the error (a clone of it: the batch method's own error,
//!     [`PotentialError::BatchSizeMismatch`], or [`PotentialError::Panicked`]).
//!   - An answer that is not a log weight (NaN or `+inf`, anywhere in a
//!     `logw_next` vector) gives its caller
//!     [`PotentialError::InvalidWeight`] naming the batch method; the other
//!     callers of the batch get theirs.
//!
//!   The loop lives on in every case.
//! - With [`AutoBatchOptions::call_timeout`] set, a batch that runs longer
//!   is cancelled and its callers get [`PotentialError::Timeout`]; the loop
//!   goes on with the calls queued behind it.
//! - A caller that goes away (its future dropped) before its batch runs is
//!   left out of it; one that goes away later is skipped when the answers
//!   go out. Neither disturbs the other callers.
//! - The batch methods of the wrapper go straight to the inner potential,
//!   as do [`vocab`](Potential::vocab) and
//!   [`native_batch`](Potential::native_batch); their contexts and results
//!   get the same checks as the single calls' (tokens, number of results,
//!   weights), but the batch is not split.
//! - Windows run one after another: the loop never runs two batches of one
//!   wrapper at once.
//!
//! # Life cycle and runtimes
//!
//! The loop is spawned with `tokio::spawn` on the runtime current when the
//! wrapper is built. Built outside any runtime, the wrapper starts its loop
//! at its first call made inside one. A call made outside any runtime (say,
//! under `futures::executor::block_on`) runs the inner potential's single
//! method directly, without batching; it never panics. Both runtime
//! flavours work; a current-thread runtime runs the loop only while it is
//! driven. If the loop's runtime shuts down, the calls it held get
//! [`PotentialError::Closed`] and the next call starts a new loop.
//!
//! [`AutoBatched::shutdown`] answers what the loop holds, ends the loop and
//! waits for its end; dropping the wrapper ends the loop too (without
//! waiting). Calls after a shutdown get [`PotentialError::Closed`]; the
//! batch methods still work, as they never used the loop.
//!
//! # Spawning
//!
//! `AutoBatched<P>` is [`Spawnable`](crate::Spawnable) when `P` is: its
//! recipe is [`Recipe::AutoBatched`](crate::Recipe::AutoBatched), the inner
//! recipe plus the options, and a worker that builds it gets a fresh
//! wrapper over its own copy of the inner potential, with a loop on the
//! worker's runtime. The recipe lives with the others in `spawn`, so
//! batching knows nothing of processes.
//!
//! # Autobatched by default: opting in and out
//!
//! Autobatching pays when the inner potential has native batch forms
//! ([`Potential::native_batch`]`().any()`), and costs a little (well under
//! a microsecond per call) when it has none. So:
//!
//! - **Your own potentials** are plain until you opt in with
//!   `p.to_autobatched()` (or
//!   [`to_autobatched_with`](crate::PotentialExt::to_autobatched_with) for
//!   other [`AutoBatchOptions`]).
//! - **Ready-to-use potentials that the library builds** (its built-ins,
//!   the language-model potential) whose type reports native batch forms
//!   come autobatched: their constructor returns `AutoBatched<P>`, as
//!   genlm-control autobatches its language-model potential. To opt out,
//!   use the constructor's plain form (named `…_plain`, or an option of its
//!   builder), which returns `P` itself; or call the potential through
//!   [`AutoBatched::inner`] for unbatched calls on an autobatched one.
//!
//! Share one wrapper (behind an `Arc`, which is a potential too) between
//! all the call sites that should batch together: each wrapper has its own
//! loop and batches only its own calls.

mod batch_loop;
mod group;
mod isolation;
mod options;
mod queue;
mod stats;
#[cfg(test)]
mod tests;
mod window;

use std::fmt;
use std::sync::Arc;

use futures::channel::oneshot;

pub use options::AutoBatchOptions;
pub use stats::AutoBatchStats;

use self::group::Answer;
use self::queue::{Rejected, Request, Shared};
use crate::error::{Method, PotentialError, Result, Wrapper};
use crate::potential::{NativeBatch, Potential, check_len, check_symbols, check_tokens};
use crate::vocab::{Symbol, Vocab};
use crate::weights::LogWeights;

/// A potential whose concurrent single calls are gathered into batch calls
/// of the inner potential by a background task (see the
/// [module docs](crate::autobatch)).
///
/// Build it with [`to_autobatched`](crate::PotentialExt::to_autobatched)
/// or [`AutoBatched::new`]. Its `Debug` form is `AutoBatched(<inner>)`.
pub struct AutoBatched<P: Potential> {
    inner: Arc<P>,
    shared: Arc<Shared<P::Token>>,
}

/// Where a single call went.
enum Submitted<R> {
    Queued(oneshot::Receiver<Result<R>>),
    Closed,
    NoRuntime,
}

fn closed() -> PotentialError {
    Wrapper::AutoBatched.closed()
}

impl<P: Potential + 'static> AutoBatched<P> {
    /// Wraps `inner` with the default options.
    pub fn new(inner: P) -> Self {
        Self::with_options(inner, AutoBatchOptions::default())
    }

    /// Wraps `inner` with `options`. The loop starts on the current tokio
    /// runtime, or at the first call made inside one.
    pub fn with_options(inner: P, options: AutoBatchOptions) -> Self {
        let inner = Arc::new(inner);
        let shared = Shared::new(options);
        shared.start(&inner);
        AutoBatched { inner, shared }
    }

    /// Ends the loop after it has answered every call it holds, and waits
    /// for its end. Later single calls get [`PotentialError::Closed`]; the
    /// batch methods keep working. Calling it again does nothing.
    pub async fn shutdown(&self) {
        self.shared.shutdown().await;
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_closed()
    }

    /// Whether a loop task runs now: from the wrapper's creation inside a
    /// runtime (or its first call inside one) until it ends.
    pub fn is_running(&self) -> bool {
        self.shared.is_running()
    }

    fn submit<R>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<R>>) -> Request<P::Token>,
    ) -> Submitted<R> {
        let (reply, answer) = oneshot::channel();
        match self.shared.enqueue(&self.inner, request(reply)) {
            Ok(()) => Submitted::Queued(answer),
            Err(Rejected::Closed) => Submitted::Closed,
            Err(Rejected::NoRuntime) => Submitted::NoRuntime,
        }
    }
}

impl<P: Potential> AutoBatched<P> {
    /// The wrapped potential; calls on it bypass the loop.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The options the loop runs with.
    pub fn options(&self) -> &AutoBatchOptions {
        &self.shared.options
    }

    /// What the loop has done so far.
    pub fn stats(&self) -> AutoBatchStats {
        self.shared.stats()
    }
}

/// The answer of a queued call; a loop that vanished without answering
/// (its runtime shut down) means the wrapper is closed.
fn received<R>(answer: std::result::Result<Result<R>, oneshot::Canceled>) -> Result<R> {
    answer.unwrap_or_else(|_| Err(closed()))
}

// The direct path taken outside any runtime is boxed so that its future,
// which can be large (a default `logw_next`), does not grow every call's.
impl<P: Potential + 'static> Potential for AutoBatched<P> {
    type Token = P::Token;

    fn vocab(&self) -> &Vocab<P::Token> {
        self.inner.vocab()
    }

    fn native_batch(&self) -> NativeBatch {
        self.inner.native_batch()
    }

    async fn complete(&self, context: &[P::Token]) -> Result<f64> {
        check_tokens(self.vocab(), context)?;
        match self.submit(|reply| Request::Complete(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.complete(context)).await,
        }
    }

    async fn prefix(&self, context: &[P::Token]) -> Result<f64> {
        check_tokens(self.vocab(), context)?;
        match self.submit(|reply| Request::Prefix(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.prefix(context)).await,
        }
    }

    async fn score(&self, context: &[Symbol<P::Token>]) -> Result<f64> {
        check_symbols(self.vocab(), context)?;
        match self.submit(|reply| Request::Score(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.score(context)).await,
        }
    }

    async fn logw_next(&self, context: &[P::Token]) -> Result<LogWeights<P::Token>> {
        check_tokens(self.vocab(), context)?;
        match self.submit(|reply| Request::LogwNext(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.logw_next(context)).await,
        }
    }

    async fn batch_complete(&self, contexts: &[Vec<P::Token>]) -> Result<Vec<f64>> {
        let vocab = self.vocab();
        contexts.iter().try_for_each(|c| check_tokens(vocab, c))?;
        checked(
            Method::BatchComplete,
            contexts.len(),
            self.inner.batch_complete(contexts).await,
        )
    }

    async fn batch_prefix(&self, contexts: &[Vec<P::Token>]) -> Result<Vec<f64>> {
        let vocab = self.vocab();
        contexts.iter().try_for_each(|c| check_tokens(vocab, c))?;
        checked(
            Method::BatchPrefix,
            contexts.len(),
            self.inner.batch_prefix(contexts).await,
        )
    }

    async fn batch_score(&self, contexts: &[Vec<Symbol<P::Token>>]) -> Result<Vec<f64>> {
        let vocab = self.vocab();
        contexts.iter().try_for_each(|c| check_symbols(vocab, c))?;
        checked(
            Method::BatchScore,
            contexts.len(),
            self.inner.batch_score(contexts).await,
        )
    }

    async fn batch_logw_next(
        &self,
        contexts: &[Vec<P::Token>],
    ) -> Result<Vec<LogWeights<P::Token>>> {
        let vocab = self.vocab();
        contexts.iter().try_for_each(|c| check_tokens(vocab, c))?;
        checked(
            Method::BatchLogwNext,
            contexts.len(),
            self.inner.batch_logw_next(contexts).await,
        )
    }
}

/// The result of a batch method called directly, with its length and its
/// weights checked as the loop checks them.
fn checked<R: Answer>(method: Method, expected: usize, got: Result<Vec<R>>) -> Result<Vec<R>> {
    let values = got?;
    check_len(method, expected, values.len())?;
    values.iter().try_for_each(|v| v.check(method))?;
    Ok(values)
}

impl<P: Potential + fmt::Debug> fmt::Debug for AutoBatched<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AutoBatched").field(&self.inner).finish()
    }
}

impl<P: Potential> Drop for AutoBatched<P> {
    /// Ends the loop once it has answered what it holds (nothing can be
    /// waiting on it any more: callers borrow the wrapper).
    fn drop(&mut self) {
        self.shared.close();
    }
}
