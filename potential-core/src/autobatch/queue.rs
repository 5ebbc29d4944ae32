//! The request queue that callers push into and the loop takes windows
//! from, with the state the wrapper and its loop share.
//!
//! Callers push requests into a mutex-guarded `Vec` and wait on a
//! `futures` oneshot receiver. Neither side uses a tokio primitive that
//! takes part in tokio's cooperative budget: when thousands of calls are
//! awaited by one `join_all`, a budgeted receiver turns every poll of the
//! joining task into a pass over all of them (quadratic in the number of
//! calls), so the reply channel is chosen here, not left to the caller.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use futures::channel::oneshot;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::{AutoBatchOptions, AutoBatchStats};
use crate::error::Result;
use crate::vocab::Symbol;
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

impl<T> Shared<T> {
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

    /// Queues a request. `Ok(Some(handle))` means that no loop ran: the
    /// caller starts one on `handle` (the queue is marked running already,
    /// so that concurrent callers do not start a second one).
    pub(super) fn push(
        &self,
        request: Request<T>,
    ) -> std::result::Result<Option<Handle>, Rejected> {
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
        Ok(start)
    }

    /// Marks the queue running if a runtime is current; returns its handle
    /// then, for the caller to start the loop on.
    pub(super) fn claim_start(&self) -> Option<Handle> {
        let handle = Handle::try_current().ok()?;
        lock(&self.queue).running = true;
        Some(handle)
    }

    /// Marks the loop ended: callers still queued get the closed error,
    /// and the next call starts a new loop unless the wrapper is closed.
    pub(super) fn stop(&self) {
        let orphans = {
            let mut queue = lock(&self.queue);
            queue.running = false;
            queue.waker = None;
            std::mem::take(&mut queue.requests)
        };
        // Dropping their senders answers them with the closed error.
        drop(orphans);
        self.stopped.notify_waiters();
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
    pub(super) fn take(&self, batch: &mut Vec<Request<T>>, limit: usize) -> (usize, bool) {
        let mut queue = lock(&self.queue);
        (queue.take(batch, limit), queue.closed)
    }

    /// Waits for the first requests of a window; `false` once the wrapper is
    /// closed and nothing is left.
    pub(super) async fn first(&self, batch: &mut Vec<Request<T>>, limit: usize) -> bool {
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

    /// Records one batch; called before its callers are answered, so that
    /// a caller that has its answer sees its batch counted.
    pub(super) fn record(&self, size: usize, failed: bool, split: bool) {
        let mut stats = lock(&self.stats);
        stats.record_batch(size, failed);
        stats.split_batches += u64::from(split);
    }

    /// Counts calls whose caller had gone before their batch ran.
    pub(super) fn record_cancelled(&self, n: u64) {
        lock(&self.stats).cancelled += n;
    }
}
