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
//! - A batch method that fails fails every caller of that batch with (a
//!   clone of) its error; one that returns the wrong number of results
//!   gives every caller [`PotentialError::BatchSizeMismatch`]; one that
//!   panics gives every caller [`PotentialError::Panicked`]. The loop lives
//!   on in all three cases.
//! - A caller that goes away (its future dropped) before its batch runs is
//!   left out of it; one that goes away later is skipped when the answers
//!   go out. Neither disturbs the other callers.
//! - The batch methods of the wrapper go straight to the inner potential,
//!   unchanged, as do [`vocab`](Potential::vocab) and
//!   [`native_batch`](Potential::native_batch).
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
mod options;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use futures::channel::oneshot;

pub use options::AutoBatchOptions;
pub use stats::AutoBatchStats;

use self::batch_loop::{Rejected, Request, Shared};
use crate::error::{PotentialError, Result, Wrapper};
use crate::potential::{NativeBatch, Potential};
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
        match self.submit(|reply| Request::Complete(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.complete(context)).await,
        }
    }

    async fn prefix(&self, context: &[P::Token]) -> Result<f64> {
        match self.submit(|reply| Request::Prefix(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.prefix(context)).await,
        }
    }

    async fn score(&self, context: &[Symbol<P::Token>]) -> Result<f64> {
        match self.submit(|reply| Request::Score(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.score(context)).await,
        }
    }

    async fn logw_next(&self, context: &[P::Token]) -> Result<LogWeights<P::Token>> {
        match self.submit(|reply| Request::LogwNext(context.to_vec(), reply)) {
            Submitted::Queued(answer) => received(answer.await),
            Submitted::Closed => Err(closed()),
            Submitted::NoRuntime => Box::pin(self.inner.logw_next(context)).await,
        }
    }

    async fn batch_complete(&self, contexts: &[Vec<P::Token>]) -> Result<Vec<f64>> {
        self.inner.batch_complete(contexts).await
    }

    async fn batch_prefix(&self, contexts: &[Vec<P::Token>]) -> Result<Vec<f64>> {
        self.inner.batch_prefix(contexts).await
    }

    async fn batch_score(&self, contexts: &[Vec<Symbol<P::Token>>]) -> Result<Vec<f64>> {
        self.inner.batch_score(contexts).await
    }

    async fn batch_logw_next(
        &self,
        contexts: &[Vec<P::Token>],
    ) -> Result<Vec<LogWeights<P::Token>>> {
        self.inner.batch_logw_next(contexts).await
    }
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
