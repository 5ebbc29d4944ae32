//! The background task's life: started by the first call in a runtime,
//! it waits for requests, gathers a window ([`window`](super::window)),
//! runs one batch per method present ([`group`](super::group)), and ends
//! when the wrapper is shut down or its runtime drops it.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::AutoBatchOptions;
use super::group::{BatchComplete, BatchLogwNext, BatchPrefix, BatchScore, Groups, run_group};
use super::queue::{Rejected, Request, Shared};
use super::window::Learned;
use crate::error::{PotentialError, Result};
use crate::potential::Potential;
use crate::vocab::TokenType;

impl<T: TokenType> Shared<T> {
    /// Starts the loop on the current runtime, if there is one.
    pub(crate) fn start<P: Potential<Token = T> + 'static>(self: &Arc<Self>, inner: &Arc<P>) {
        if let Some(handle) = self.claim_start() {
            spawn_loop(&handle, inner, self);
        }
    }

    /// Queues a request, starting the loop first if none runs.
    pub(crate) fn enqueue<P: Potential<Token = T> + 'static>(
        self: &Arc<Self>,
        inner: &Arc<P>,
        request: Request<T>,
    ) -> std::result::Result<(), Rejected> {
        if let Some(handle) = self.push(request)? {
            spawn_loop(&handle, inner, self);
        }
        Ok(())
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
        self.shared.stop();
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
        shared.record_cancelled(cancelled);
    }
    run_group::<P, BatchComplete>(inner, shared, time_limit, &mut groups.complete).await;
    run_group::<P, BatchPrefix>(inner, shared, time_limit, &mut groups.prefix).await;
    run_group::<P, BatchScore>(inner, shared, time_limit, &mut groups.score).await;
    run_group::<P, BatchLogwNext>(inner, shared, time_limit, &mut groups.logw_next).await;
}
