//! The knobs of the batching loop.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the autobatching loop gathers requests into batches.
///
/// The defaults take what is queued, as genlm-control does, and add the
/// refinements a multi-threaded runtime needs (the burst rules below); a
/// lone call waits for at most one pass of the scheduler, never for a
/// timer.
///
/// How one batch is gathered, after the first request arrives:
///
/// 1. Everything already queued is taken, up to
///    [`max_batch_size`](Self::max_batch_size).
/// 2. The loop yields to the runtime once and takes what arrived meanwhile;
///    it keeps doing so while each pass brings new requests (genlm-control's
///    "until an event-loop pass adds nothing"). A lone call costs one pass,
///    except on a wrapper whose last few windows each held one call: there
///    the first pass is skipped (a lone call then costs no wait at all),
///    until a window of several calls turns it on again.
/// 3. It keeps gathering, whatever arrives, until [`linger`](Self::linger)
///    has passed since the first request.
/// 4. On a multi-threaded runtime only, once a burst is seen (at least two
///    requests in the batch), it keeps gathering until no request has
///    arrived for [`burst_settle`](Self::burst_settle): the callers of a
///    burst spawned from another worker thread arrive spread out over a few
///    microseconds, and a drain-only loop would split them.
///
/// 5. On a multi-threaded runtime only, while the window holds fewer
///    requests than the bursts before it, it keeps waiting for the rest,
///    and gives its thread up to the operating system between looks: on a
///    busy machine the caller's thread may have been preempted in the
///    middle of a burst, or be waiting for this very CPU. The expected
///    burst size is learned: a larger window raises it at once, a smaller
///    one halves it, and one that `max_batch_size` cut off teaches
///    nothing. A wrapper that only ever sees lone calls never waits.
///
/// Steps 2, 4 and 5 end at [`max_window`](Self::max_window) after the
/// first request, so that a steady stream of arrivals cannot hold a batch
/// back, and a burst smaller than the ones before waits at most that long.
/// The loop waits by yielding to the runtime, not with a timer (tokio's
/// timer has millisecond granularity and may be disabled), so it keeps one
/// worker busy while it waits: keep `linger` short.
///
/// ```
/// use std::time::Duration;
/// use potential_core::AutoBatchOptions;
///
/// let options = AutoBatchOptions {
///     max_batch_size: 32,
///     linger: Duration::from_micros(50),
///     ..AutoBatchOptions::default()
/// };
/// assert_eq!(options.burst_settle, AutoBatchOptions::default().burst_settle);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoBatchOptions {
    /// The most contexts handed to one call of a batch method; more requests
    /// make more batches. Default: unbounded (`usize::MAX`), as genlm-control.
    /// Zero is read as one.
    pub max_batch_size: usize,
    /// How long to keep gathering after the first request of a batch.
    /// Default: zero (take what is queued now).
    pub linger: Duration,
    /// On a multi-threaded runtime, the quiet time that ends a burst.
    /// Default: 20 µs; zero turns the burst rule off.
    pub burst_settle: Duration,
    /// The longest the loop gathers one batch beyond `linger`.
    /// Default: 500 µs.
    pub max_window: Duration,
    /// The longest one call of an inner batch method may run. A batch that
    /// runs longer is dropped (which cancels it), its callers get
    /// [`PotentialError::Timeout`](crate::PotentialError::Timeout), and the
    /// loop goes on with the calls queued meanwhile: a hung batch delays
    /// later calls by at most this long, never forever. Default: none.
    ///
    /// It needs the runtime's timer (`enable_time` or `enable_all` on the
    /// runtime builder); without it, every call gets
    /// [`PotentialError::InvalidInput`](crate::PotentialError::InvalidInput)
    /// saying so. A batch method that blocks its thread without ever
    /// yielding cannot be cut off from inside the process: run such a
    /// potential in worker processes, whose pool has its own timeout.
    pub call_timeout: Option<Duration>,
    /// Whether a batch that fails as a whole is split to find the calls
    /// that fail on their own (see the [module docs](crate::autobatch)).
    /// Default: on.
    pub isolate_failures: bool,
}

impl Default for AutoBatchOptions {
    fn default() -> Self {
        AutoBatchOptions {
            max_batch_size: usize::MAX,
            linger: Duration::ZERO,
            burst_settle: Duration::from_micros(20),
            max_window: Duration::from_micros(500),
            call_timeout: None,
            isolate_failures: true,
        }
    }
}

impl AutoBatchOptions {
    /// `max_batch_size`, at least one.
    pub(crate) fn batch_limit(&self) -> usize {
        self.max_batch_size.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_zero_means_one() {
        let options = AutoBatchOptions {
            max_batch_size: 10,
            linger: Duration::from_micros(7),
            ..AutoBatchOptions::default()
        };
        let wire = postcard::to_stdvec(&options).unwrap();
        assert_eq!(
            postcard::from_bytes::<AutoBatchOptions>(&wire).unwrap(),
            options
        );
        let zero = AutoBatchOptions {
            max_batch_size: 0,
            ..AutoBatchOptions::default()
        };
        assert_eq!(zero.batch_limit(), 1);
    }
}
