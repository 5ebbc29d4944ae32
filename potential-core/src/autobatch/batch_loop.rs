//! The background task: the request queue, the gathering window, and one
//! call of the inner batch method per method present in a window.
//!
//! Callers push requests into a mutex-guarded `Vec` and wait on a
//! `futures` oneshot receiver. Neither side uses a tokio primitive that
//! takes part in tokio's cooperative budget: when thousands of calls are
//! awaited by one `join_all`, a budgeted receiver turns every poll of the
//! joining task into a pass over all of them (quadratic in the number of
//! calls), so the reply channel is chosen here, not left to the caller.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::oneshot;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;

use super::{AutoBatchOptions, AutoBatchStats};
use crate::error::{Method, PotentialError, Result};
use crate::potential::{Potential, check_len, check_weight, check_weights};
use crate::vocab::{Symbol, TokenType};
use crate::weights::LogWeights;

/// Where the loop answers one caller.
pub(crate) type Reply<R> = oneshot::Sender<Result<R>>;

/// One single call waiting for its batch.
pub(crate) enum Request<T> {
    Complete(Vec<T>, Reply<f64>),
    Prefix(Vec<T>, Reply<f64>),
    Score(Vec<Symbol<T>>, Reply<f64>),
    LogwNext(Vec<T>, Reply<LogWeights<T>>),
}

/// Why a request was not queued.
pub(crate) enum Rejected {
    /// The wrapper was shut down.
    Closed,
    /// No loop runs and no tokio runtime is current to start one.
    NoRuntime,
}

/// What the wrapper and its loop share.
pub(crate) struct Shared<T> {
    queue: Mutex<Queue<T>>,
    stats: Mutex<AutoBatchStats>,
    /// Signalled when the loop ends.
    stopped: Notify,
    pub(crate) options: AutoBatchOptions,
}

struct Queue<T> {
    requests: Vec<Request<T>>,
    /// The loop's waker while it waits for a first request.
    waker: Option<Waker>,
    /// A loop task exists (spawned, and not yet ended or dropped).
    running: bool,
    /// Shut down: no request is accepted any more.
    closed: bool,
}

impl<T> Queue<T> {
    /// Moves queued requests into `batch`, up to `limit` in all; returns how
    /// many it moved.
    fn take(&mut self, batch: &mut Vec<Request<T>>, limit: usize) -> usize {
        let room = limit.saturating_sub(batch.len());
        let n = self.requests.len().min(room);
        if batch.is_empty() && n == self.requests.len() {
            // Swapping keeps both buffers' capacity for the next windows.
            std::mem::swap(batch, &mut self.requests);
        } else {
            batch.extend(self.requests.drain(..n));
        }
        n
    }
}

/// Locks a mutex; the data stays consistent even if a holder panicked,
/// because no code here panics while holding a lock.
fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: TokenType> Shared<T> {
    pub(crate) fn new(options: AutoBatchOptions) -> Arc<Self> {
        Arc::new(Shared {
            queue: Mutex::new(Queue {
                requests: Vec::new(),
                waker: None,
                running: false,
                closed: false,
            }),
            stats: Mutex::new(AutoBatchStats::default()),
            stopped: Notify::new(),
            options,
        })
    }

    /// Starts the loop on the current runtime, if there is one.
    pub(crate) fn start<P: Potential<Token = T> + 'static>(self: &Arc<Self>, inner: &Arc<P>) {
        if let Ok(handle) = Handle::try_current() {
            lock(&self.queue).running = true;
            spawn_loop(&handle, inner, self);
        }
    }

    /// Queues a request, starting the loop first if none runs.
    pub(crate) fn enqueue<P: Potential<Token = T> + 'static>(
        self: &Arc<Self>,
        inner: &Arc<P>,
        request: Request<T>,
    ) -> std::result::Result<(), Rejected> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return Err(Rejected::Closed);
        }
        let start = if queue.running {
            None
        } else {
            let handle = Handle::try_current().map_err(|_| Rejected::NoRuntime)?;
            queue.running = true;
            Some(handle)
        };
        queue.requests.push(request);
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(handle) = start {
            spawn_loop(&handle, inner, self);
        }
        Ok(())
    }

    /// Refuses new requests and wakes the loop so that it answers what it
    /// holds and ends; returns whether a loop runs.
    pub(crate) fn close(&self) -> bool {
        let (running, waker) = {
            let mut queue = lock(&self.queue);
            queue.closed = true;
            (queue.running, queue.waker.take())
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        running
    }

    /// Closes, then waits until the loop has ended.
    pub(crate) async fn shutdown(&self) {
        // Created before the loop can see the close, so that its end cannot
        // slip between the check and the wait.
        let stopped = self.stopped.notified();
        if self.close() {
            stopped.await;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    pub(crate) fn is_running(&self) -> bool {
        lock(&self.queue).running
    }

    pub(crate) fn stats(&self) -> AutoBatchStats {
        lock(&self.stats).clone()
    }

    /// How many requests wait in the queue, not yet taken by the loop.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).requests.len()
    }

    /// Takes queued requests into `batch`, up to `limit` in all; returns how
    /// many it took and whether the wrapper is closed.
    fn take(&self, batch: &mut Vec<Request<T>>, limit: usize) -> (usize, bool) {
        let mut queue = lock(&self.queue);
        (queue.take(batch, limit), queue.closed)
    }

    /// Waits for the first requests of a window; `false` once the wrapper is
    /// closed and nothing is left.
    async fn first(&self, batch: &mut Vec<Request<T>>, limit: usize) -> bool {
        std::future::poll_fn(|cx| {
            let mut queue = lock(&self.queue);
            if queue.take(batch, limit) > 0 {
                return Poll::Ready(true);
            }
            if queue.closed {
                return Poll::Ready(false);
            }
            match &mut queue.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Gathers more requests after the first ones (the rules are in
    /// [`AutoBatchOptions`]): `learned` is what the loop has learned of
    /// the calls so far.
    async fn gather(
        &self,
        batch: &mut Vec<Request<T>>,
        limit: usize,
        multi_thread: bool,
        learned: &Learned,
    ) {
        let expected = learned.burst;
        let options = &self.options;
        let lingers = !options.linger.is_zero();
        // The clock is read only while a rule that needs it could keep the
        // window open: a lone call's window never reads it.
        let mut start = None;
        let mut last_arrival = None;
        // The first pass is skipped for a wrapper whose calls come alone.
        let mut fresh = learned.lone < LONE_STREAK;
        while batch.len() < limit {
            // A burst on a multi-threaded runtime settles for a quiet spell.
            let bursting = multi_thread && batch.len() >= 2;
            // A burst smaller than the ones before is missing callers whose
            // thread has not run yet.
            let expecting = multi_thread && batch.len() < expected;
            if !(fresh || bursting || expecting || lingers) {
                break;
            }
            let now = Instant::now();
            if fresh || last_arrival.is_none() {
                last_arrival = Some(now);
            }
            let elapsed = now - *start.get_or_insert(now);
            let lingering = elapsed < options.linger;
            let in_window = elapsed < options.max_window;
            let settling = bursting && last_arrival.is_some_and(|t| now - t < options.burst_settle);
            if !(lingering || in_window && (fresh || settling || expecting)) {
                break;
            }
            if expecting && !fresh && !settling {
                // The missing callers' thread may be waiting for this CPU
                // (two cores, other processes): give it up for a moment.
                std::thread::yield_now();
            }
            tokio::task::yield_now().await;
            let (n, closed) = self.take(batch, limit);
            if closed {
                break;
            }
            fresh = n > 0;
        }
    }

    /// Records one batch; called before its callers are answered, so that
    /// a caller that has its answer sees its batch counted.
    fn record(&self, size: usize, failed: bool, split: bool) {
        let mut stats = lock(&self.stats);
        stats.record_batch(size, failed);
        stats.split_batches += u64::from(split);
    }
}

/// What the loop task owns. The fields drop in order: the potential first,
/// then the stopper, so that whoever sees the loop stopped knows that it
/// no longer holds the potential.
struct LoopHandles<P: Potential> {
    inner: Arc<P>,
    stopper: Stopper<P::Token>,
}

/// Marks the loop ended when the loop task ends or is dropped (its runtime
/// shut down): callers still queued then get the closed error, and the next
/// call starts a new loop unless the wrapper is closed.
struct Stopper<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for Stopper<T> {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = lock(&self.shared.queue);
            queue.running = false;
            queue.waker = None;
            std::mem::take(&mut queue.requests)
        };
        // Dropping their senders answers them with the closed error.
        drop(orphans);
        self.shared.stopped.notify_waiters();
    }
}

fn spawn_loop<P: Potential + 'static>(
    handle: &Handle,
    inner: &Arc<P>,
    shared: &Arc<Shared<P::Token>>,
) {
    // Built outside the task: if the runtime drops the task unpolled, the
    // stopper still runs.
    let handles = LoopHandles {
        inner: Arc::clone(inner),
        stopper: Stopper {
            shared: Arc::clone(shared),
        },
    };
    drop(handle.spawn(batch_loop(handles)));
}

/// The loop: wait for requests, gather a window, run one batch per method.
async fn batch_loop<P: Potential + 'static>(handles: LoopHandles<P>) {
    let shared = &*handles.stopper.shared;
    let inner = &*handles.inner;
    let multi_thread = Handle::current().runtime_flavor() != RuntimeFlavor::CurrentThread;
    let limit = shared.options.batch_limit();
    let time_limit = time_limit(&shared.options);
    let mut batch = Vec::new();
    let mut groups = Groups::new();
    let mut learned = Learned { burst: 1, lone: 0 };
    while shared.first(&mut batch, limit).await {
        shared
            .gather(&mut batch, limit, multi_thread, &learned)
            .await;
        learned.window(batch.len(), limit);
        run_window(inner, shared, &time_limit, &mut batch, &mut groups).await;
    }
}

/// After this many windows of one call in a row, the loop no longer makes
/// the one pass through the scheduler that lets other callers of the same
/// thread join (it costs a lone call a trip through the runtime, about a
/// third of its overhead); a window of several calls turns it on again.
const LONE_STREAK: u32 = 4;

/// What the loop has learned of the calls it serves.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Learned {
    /// The burst size expected: a larger window raises it at once; a
    /// smaller one halves it (not below its own size), so that after a run
    /// of bursts, lone calls stop waiting for company within a few calls.
    burst: usize,
    /// Windows of one call in a row.
    lone: u32,
}

impl Learned {
    /// Learns from a window of `n` requests that `limit` cut off if `n` is
    /// `limit`: such a window says nothing of the burst's size (the rest
    /// comes in the next windows anyway), so the last, smaller window of a
    /// burst larger than the limit does not wait for company either.
    fn window(&mut self, n: usize, limit: usize) {
        if n < limit {
            self.burst = if n >= self.burst {
                n
            } else {
                n.max(self.burst / 2)
            };
        }
        self.lone = if n == 1 {
            self.lone.saturating_add(1)
        } else {
            0
        };
    }
}

/// The time limit of one batch, or the error every call gets when a limit
/// is set but the runtime has no timer.
fn time_limit(options: &AutoBatchOptions) -> Result<Option<Duration>> {
    let Some(after) = options.call_timeout else {
        return Ok(None);
    };
    // tokio has no way to ask whether its timer is enabled but to try:
    // creating a sleep panics without one (once per loop, not per batch).
    match std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))) {
        Ok(()) => Ok(Some(after)),
        Err(_) => Err(PotentialError::InvalidInput(
            "the autobatching call_timeout needs a tokio runtime with its timer enabled \
             (enable_time or enable_all on the runtime builder)"
                .into(),
        )),
    }
}

/// The requests of one method in a window, in arrival order.
struct Group<C, R> {
    contexts: Vec<C>,
    /// Taken as each caller is answered.
    replies: Vec<Option<Reply<R>>>,
}

impl<C, R> Group<C, R> {
    fn new() -> Self {
        Group {
            contexts: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Adds a request, unless its caller has gone; returns whether it did.
    fn push(&mut self, context: C, reply: Reply<R>) -> bool {
        if reply.is_canceled() {
            return false;
        }
        self.contexts.push(context);
        self.replies.push(Some(reply));
        true
    }
}

/// A window split by method. The loop keeps one for its whole life so that
/// the buffers of a large window are reused rather than freed and faulted
/// in again for the next one.
struct Groups<T> {
    complete: Group<Vec<T>, f64>,
    prefix: Group<Vec<T>, f64>,
    score: Group<Vec<Symbol<T>>, f64>,
    logw_next: Group<Vec<T>, LogWeights<T>>,
}

impl<T> Groups<T> {
    fn new() -> Self {
        Groups {
            complete: Group::new(),
            prefix: Group::new(),
            score: Group::new(),
            logw_next: Group::new(),
        }
    }
}

/// What a batch method gives each caller; checked before it is handed out.
pub(crate) trait Answer {
    /// `Ok` if it is a valid answer of `method`: no NaN and no `+inf`.
    fn check(&self, method: Method) -> Result<()>;
}

impl Answer for f64 {
    fn check(&self, method: Method) -> Result<()> {
        check_weight(method, *self).map(drop)
    }
}

impl<T> Answer for LogWeights<T> {
    fn check(&self, method: Method) -> Result<()> {
        check_weights(method, self.as_slice())
    }
}

/// Whether a batch that failed with `error` is worth splitting to find the
/// calls that caused it: not when the wrapper closed, nor after a timeout
/// (each half could hang as long again).
fn isolatable(error: &PotentialError) -> bool {
    !matches!(
        error,
        PotentialError::Closed(_) | PotentialError::Timeout { .. }
    )
}

/// One call of a batch method, with panics caught and the time limit of
/// the options applied.
async fn run_batch<R, Fut>(
    method: Method,
    batch: Fut,
    limit: Option<Duration>,
    expected: usize,
) -> Result<Vec<R>>
where
    Fut: Future<Output = Result<Vec<R>>>,
{
    let guarded = AssertUnwindSafe(batch).catch_unwind();
    let outcome = match limit {
        None => guarded.await,
        Some(after) => match tokio::time::timeout(after, guarded).await {
            Ok(outcome) => outcome,
            // Dropping the batch's future cancels it.
            Err(_) => return Err(PotentialError::Timeout { method, after }),
        },
    };
    let values = outcome.unwrap_or_else(|payload| Err(PotentialError::from_panic(payload)))?;
    check_len(method, expected, values.len())?;
    Ok(values)
}

/// One batch method of the inner potential, as the loop calls it. (A
/// trait rather than a closure: the future of a closure that borrows its
/// argument cannot be proven `Send` for every lifetime, which spawning the
/// loop needs.)
trait BatchCall<P: Potential> {
    /// The context type of its calls.
    type Context;
    /// What it gives each caller.
    type Answer: Answer;
    /// The method it calls, for errors.
    const METHOD: Method;
    /// Calls it.
    fn call<'a>(
        inner: &'a P,
        contexts: &'a [Self::Context],
    ) -> impl Future<Output = Result<Vec<Self::Answer>>> + Send + 'a;
}

/// Implements [`BatchCall`] for a marker type named as the [`Method`]
/// it calls.
macro_rules! batch_call {
    ($marker:ident, $name:ident, $context:ty, $answer:ty) => {
        struct $marker;
        impl<P: Potential> BatchCall<P> for $marker {
            type Context = $context;
            type Answer = $answer;
            const METHOD: Method = Method::$marker;
            fn call<'a>(
                inner: &'a P,
                contexts: &'a [Self::Context],
            ) -> impl Future<Output = Result<Vec<Self::Answer>>> + Send + 'a {
                inner.$name(contexts)
            }
        }
    };
}

batch_call!(BatchComplete, batch_complete, Vec<P::Token>, f64);
batch_call!(BatchPrefix, batch_prefix, Vec<P::Token>, f64);
batch_call!(BatchScore, batch_score, Vec<Symbol<P::Token>>, f64);
batch_call!(
    BatchLogwNext,
    batch_logw_next,
    Vec<P::Token>,
    LogWeights<P::Token>
);

/// Runs the batches of one group and answers its callers.
///
/// The group runs as one batch. If that batch fails as a whole (an error, a
/// wrong number of results, a panic), it is split in halves and each half
/// runs again, down to single calls, so that only the calls that fail on
/// their own get an error. The halves run left to right, so the callers are
/// answered in order.
async fn run_group<P: Potential, M: BatchCall<P>>(
    inner: &P,
    shared: &Shared<P::Token>,
    time_limit: &Result<Option<Duration>>,
    group: &mut Group<M::Context, M::Answer>,
) {
    let method = M::METHOD;
    let n = group.contexts.len();
    if n == 0 {
        return;
    }
    let limit = match time_limit {
        Ok(limit) => *limit,
        Err(error) => {
            for reply in group.replies.drain(..).flatten() {
                let _ = reply.send(Err(error.clone()));
            }
            group.contexts.clear();
            return;
        }
    };
    let isolate = shared.options.isolate_failures;
    // Ranges still to run, the leftmost last; allocated only when a batch
    // has failed and is split.
    let mut pending = Vec::new();
    let mut next = Some((0, n));
    while let Some((lo, hi)) = next.take().or_else(|| pending.pop()) {
        let outcome = run_batch(
            method,
            M::call(inner, &group.contexts[lo..hi]),
            limit,
            hi - lo,
        )
        .await;
        let callers = group.replies[lo..hi].iter_mut().filter_map(Option::take);
        match outcome {
            Ok(values) => {
                shared.record(hi - lo, false, false);
                for (reply, value) in callers.zip(values) {
                    // A caller that has gone meanwhile does not matter.
                    let _ = reply.send(value.check(method).map(|()| value));
                }
            }
            Err(error) if hi - lo > 1 && isolate && isolatable(&error) => {
                shared.record(hi - lo, true, true);
                let mid = lo + (hi - lo) / 2;
                pending.push((mid, hi));
                next = Some((lo, mid));
            }
            Err(error) => {
                shared.record(hi - lo, true, false);
                for reply in callers {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
    group.contexts.clear();
    group.replies.clear();
}

/// Splits a window by method and runs one batch per method present.
async fn run_window<P: Potential>(
    inner: &P,
    shared: &Shared<P::Token>,
    time_limit: &Result<Option<Duration>>,
    batch: &mut Vec<Request<P::Token>>,
    groups: &mut Groups<P::Token>,
) {
    let mut cancelled = 0;
    for request in batch.drain(..) {
        let kept = match request {
            Request::Complete(c, r) => groups.complete.push(c, r),
            Request::Prefix(c, r) => groups.prefix.push(c, r),
            Request::Score(c, r) => groups.score.push(c, r),
            Request::LogwNext(c, r) => groups.logw_next.push(c, r),
        };
        cancelled += u64::from(!kept);
    }
    if cancelled > 0 {
        lock(&shared.stats).cancelled += cancelled;
    }
    run_group::<P, BatchComplete>(inner, shared, time_limit, &mut groups.complete).await;
    run_group::<P, BatchPrefix>(inner, shared, time_limit, &mut groups.prefix).await;
    run_group::<P, BatchScore>(inner, shared, time_limit, &mut groups.score).await;
    run_group::<P, BatchLogwNext>(inner, shared, time_limit, &mut groups.logw_next).await;
}

#[cfg(test)]
mod tests {
    use super::{LONE_STREAK, Learned};

    #[test]
    fn bursts_are_learned_at_once_and_forgotten_by_halves() {
        let mut learned = Learned { burst: 1, lone: 0 };
        learned.window(32, usize::MAX);
        assert_eq!(learned.burst, 32);
        learned.window(30, usize::MAX);
        assert_eq!(learned.burst, 30);
        let mut lone = Vec::new();
        for _ in 0..6 {
            learned.window(1, usize::MAX);
            lone.push(learned.burst);
        }
        assert_eq!(lone, [15, 7, 3, 1, 1, 1]);
        assert!(learned.lone >= LONE_STREAK);
        learned.window(20, usize::MAX);
        assert_eq!(learned, Learned { burst: 20, lone: 0 });
        // Windows cut off by the size limit teach nothing of the burst.
        let mut learned = Learned { burst: 1, lone: 0 };
        for n in [4, 4, 2, 4, 4, 2] {
            learned.window(n, 4);
        }
        assert_eq!(learned.burst, 2);
    }
}
