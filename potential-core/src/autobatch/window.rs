//! The gathering window: after the first requests arrive, how long the
//! loop waits for more before it runs a batch, and what it learns of the
//! calls' bursts to decide that.

use std::time::Instant;

use super::queue::{Request, Shared};
use crate::vocab::TokenType;

impl<T: TokenType> Shared<T> {
    /// Gathers more requests after the first ones (the rules are in
    /// [`AutoBatchOptions`](super::AutoBatchOptions)): `learned` is what the loop has learned of
    /// the calls so far.
    pub(super) async fn gather(
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
}

/// After this many windows of one call in a row, the loop no longer makes
/// the one pass through the scheduler that lets other callers of the same
/// thread join (it costs a lone call a trip through the runtime, about a
/// third of its overhead); a window of several calls turns it on again.
pub(super) const LONE_STREAK: u32 = 4;

/// What the loop has learned of the calls it serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Learned {
    /// The burst size expected: a larger window raises it at once; a
    /// smaller one halves it (not below its own size), so that after a run
    /// of bursts, lone calls stop waiting for company within a few calls.
    pub(super) burst: usize,
    /// Windows of one call in a row.
    pub(super) lone: u32,
}

impl Learned {
    /// Learns from a window of `n` requests that `limit` cut off if `n` is
    /// `limit`: such a window says nothing of the burst's size (the rest
    /// comes in the next windows anyway), so the last, smaller window of a
    /// burst larger than the limit does not wait for company either.
    pub(super) fn window(&mut self, n: usize, limit: usize) {
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
