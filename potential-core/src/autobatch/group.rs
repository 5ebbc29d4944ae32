//! One method's share of a window: its calls gathered into one batch of
//! the inner potential, the batch run under the options' rules, and each
//! caller answered, with the failed batches searched for the calls that
//! fail on their own ([`isolation`](super::isolation)).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;

use super::isolation::{FailureRate, Search};
use super::queue::{Reply, Shared};
use crate::error::{Method, PotentialError, Result};
use crate::potential::{Potential, check_len, check_weight, check_weights};
use crate::vocab::Symbol;
use crate::weights::LogWeights;

/// The requests of one method in a window, in arrival order.
pub(super) struct Group<C, R> {
    contexts: Vec<C>,
    /// Taken as each caller is answered.
    replies: Vec<Option<Reply<R>>>,
    /// How often this method's calls have failed on their own.
    failures: FailureRate,
}

impl<C, R> Group<C, R> {
    fn new() -> Self {
        Group {
            contexts: Vec::new(),
            replies: Vec::new(),
            failures: FailureRate::default(),
        }
    }

    /// Adds a request, unless its caller has gone; returns whether it did.
    pub(super) fn push(&mut self, context: C, reply: Reply<R>) -> bool {
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
pub(super) struct Groups<T> {
    pub(super) complete: Group<Vec<T>, f64>,
    pub(super) prefix: Group<Vec<T>, f64>,
    pub(super) score: Group<Vec<Symbol<T>>, f64>,
    pub(super) logw_next: Group<Vec<T>, LogWeights<T>>,
}

impl<T> Groups<T> {
    pub(super) fn new() -> Self {
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
        // A mask's weights are 0 and -inf by construction: nothing to read.
        match self.as_mask() {
            Some(_) => Ok(()),
            None => check_weights(method, self.as_slice()),
        }
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
pub(super) trait BatchCall<P: Potential> {
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
        pub(super) struct $marker;
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
/// wrong number of results, a panic), it is split and the parts run again,
/// down to single calls, so that only the calls that fail on their own get
/// an error (the search is [`isolation`](super::isolation)'s). The parts
/// run left to right, so the callers are answered in order.
pub(super) async fn run_group<P: Potential, M: BatchCall<P>>(
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
    let mut search = Search::new(n, group.failures.rate());
    while let Some(range) = search.next() {
        let size = range.len();
        let outcome = run_batch(
            method,
            M::call(inner, &group.contexts[range.clone()]),
            limit,
            size,
        )
        .await;
        let callers = group.replies[range.clone()]
            .iter_mut()
            .filter_map(Option::take);
        match outcome {
            Ok(values) => {
                shared.record(size, false, false);
                for (reply, value) in callers.zip(values) {
                    // A caller that has gone meanwhile does not matter.
                    let _ = reply.send(value.check(method).map(|()| value));
                }
            }
            Err(error) => {
                let isolate = shared.options.isolate_failures && isolatable(&error);
                let split = search.failed(range, isolate);
                shared.record(size, true, split);
                if !split {
                    for reply in callers {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
    group.failures.learn(n, search.failed_alone());
    group.contexts.clear();
    group.replies.clear();
}
