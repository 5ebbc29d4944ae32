//! The search for the calls that fail on their own in a batch that failed
//! as a whole.
//!
//! A failed batch is split into parts and each part runs again, down to
//! single calls; only a single call's failure is its own. Plain halving
//! re-ran every good call of a window 6-8 times when 1 call in 100 made its
//! batch fail (windows of 1,000 calls: about ten bad calls each, so every
//! range of the first four halvings failed). Three rules keep that down:
//!
//! - **The number of parts follows the failure rate seen so far.** A
//!   failed range of `n` calls is expected to hold `max(1, n × rate)` bad
//!   ones ([`FailureRate`]) and is cut into twice as many parts, so that
//!   most parts hold none and succeed at their first run. With no history
//!   that is two parts: plain halving.
//! - **A last part known to fail is split without being run.** When every
//!   other part of a split has succeeded, the last one holds the failure
//!   of the range it came from. This is an inference, not a fact (a batch
//!   can fail for its size or by chance, not for one call): when it is
//!   wrong the smaller parts simply succeed, so it costs runs, never
//!   answers.
//! - **A failed range of at most [`SINGLES`] calls is split into single
//!   calls**, which re-runs no call more than once more, where halving
//!   would re-run half of them twice.
//!
//! The search knows nothing of batches or replies: the loop asks it for the
//! next range to run ([`Search::next`]) and tells it which ones failed
//! ([`Search::failed`]); the ranges come in order, left to right, so
//! callers are answered in order.

use std::ops::Range;

/// A failed range of at most this many calls is split into single calls.
pub(crate) const SINGLES: usize = 4;

/// After this many calls have been counted, the counts are halved: the
/// rate follows the last few thousand calls, so that a burst of bad calls
/// long ago does not cut every later failed batch into many parts.
const HORIZON: f64 = 4096.0;

/// How often a call has failed on its own, over the recent calls of one
/// method of one wrapper.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FailureRate {
    /// Calls that ran (each counted once, however often it was re-run).
    calls: f64,
    /// Of them, the ones that failed on their own.
    failed: f64,
}

impl FailureRate {
    /// The fraction of calls that failed on their own; zero before any.
    pub(crate) fn rate(&self) -> f64 {
        if self.calls == 0.0 {
            0.0
        } else {
            self.failed / self.calls
        }
    }

    /// Learns from a group of `calls` calls of which `failed` failed on
    /// their own.
    pub(crate) fn learn(&mut self, calls: usize, failed: usize) {
        self.calls += calls as f64;
        self.failed += failed as f64;
        if self.calls > HORIZON {
            self.calls /= 2.0;
            self.failed /= 2.0;
        }
    }
}

/// Into how many parts a failed range of `len` calls is split, given the
/// rate at which calls fail on their own.
fn parts(len: usize, rate: f64) -> usize {
    if len <= SINGLES {
        return len;
    }
    let expected_bad = (len as f64 * rate).max(1.0);
    // The float-to-int cast saturates; the clamp bounds it by `len`.
    ((2.0 * expected_bad).ceil() as usize).clamp(2, len)
}

/// A range still to run.
#[derive(Debug)]
struct Part {
    range: Range<usize>,
    /// The split it came from (an index into `Search::splits`).
    split: usize,
    /// Whether it is the last part of its split.
    last: bool,
}

/// The state of one search over a batch of calls `0..n` that is about to
/// run (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Search {
    rate: f64,
    /// The whole batch, until it is handed out. (Kept apart from `pending`
    /// so that a batch that succeeds, the common case, allocates nothing.)
    whole: Option<Range<usize>>,
    /// Ranges still to run, the leftmost last.
    pending: Vec<Part>,
    /// For each split made so far, whether one of its parts has failed.
    splits: Vec<bool>,
    /// The split of the range handed out last (`None`: the whole batch).
    current: Option<usize>,
    /// Single calls that failed.
    failed_alone: usize,
}

impl Search {
    /// A search over `n` calls (the whole batch runs first), splitting by
    /// `rate`, the fraction of calls that fail on their own.
    pub(crate) fn new(n: usize, rate: f64) -> Self {
        Search {
            rate,
            whole: (n > 0).then_some(0..n),
            pending: Vec::new(),
            splits: Vec::new(),
            current: None,
            failed_alone: 0,
        }
    }

    /// The next range to run, or `None` when the search is over.
    pub(crate) fn next(&mut self) -> Option<Range<usize>> {
        if let Some(whole) = self.whole.take() {
            self.current = None;
            return Some(whole);
        }
        loop {
            let part = self.pending.pop()?;
            let known_to_fail = part.last && !self.splits[part.split];
            if known_to_fail && part.range.len() > 1 {
                self.split(part.range);
                continue;
            }
            self.current = Some(part.split);
            return Some(part.range);
        }
    }

    /// Records that `range`, the one [`next`](Self::next) handed out last,
    /// failed; if `isolate` and it holds several calls, splits it and
    /// returns `true` (its callers wait for the parts' runs); otherwise
    /// returns `false` (its callers get its error).
    pub(crate) fn failed(&mut self, range: Range<usize>, isolate: bool) -> bool {
        if let Some(split) = self.current {
            self.splits[split] = true;
        }
        if range.len() == 1 {
            self.failed_alone += 1;
            return false;
        }
        if isolate {
            self.split(range);
        }
        isolate
    }

    /// How many single calls have failed so far.
    pub(crate) fn failed_alone(&self) -> usize {
        self.failed_alone
    }

    /// Queues the parts of `range`, the leftmost on top.
    fn split(&mut self, range: Range<usize>) {
        let len = range.len();
        let k = parts(len, self.rate);
        let split = self.splits.len();
        self.splits.push(false);
        // Part `i` is `lo + i·len/k .. lo + (i+1)·len/k`: sizes differ by at
        // most one.
        let bound = |i: usize| range.start + i * len / k;
        self.pending.extend((0..k).rev().map(|i| Part {
            range: bound(i)..bound(i + 1),
            split,
            last: i + 1 == k,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search over `n` calls where a batch fails when it holds a
    /// call of `bad`; returns the calls run (a call run twice counts
    /// twice), the failed singles, in order, and the number of runs.
    fn simulate(n: usize, bad: &[usize], rate: f64) -> (usize, Vec<usize>, usize) {
        let mut search = Search::new(n, rate);
        let (mut calls, mut failed, mut runs) = (0, Vec::new(), 0);
        let mut answered = 0;
        while let Some(range) = search.next() {
            runs += 1;
            calls += range.len();
            if bad.iter().any(|b| range.contains(b)) {
                if !search.failed(range.clone(), true) {
                    assert_eq!(range.len(), 1);
                    failed.push(range.start);
                    answered += 1;
                }
            } else {
                // Ranges come left to right: each starts where the
                // answered ones end.
                assert_eq!(range.start, answered, "answered out of order");
                answered += range.len();
            }
        }
        assert_eq!(answered, n, "every call is answered once");
        assert_eq!(search.failed_alone(), failed.len());
        (calls, failed, runs)
    }

    /// `count` distinct bad positions among `n`, from a fixed seed.
    fn scattered(n: usize, count: usize, seed: u64) -> Vec<usize> {
        let mut state = seed;
        let mut bad = Vec::new();
        while bad.len() < count {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % n;
            if !bad.contains(&at) {
                bad.push(at);
            }
        }
        bad.sort_unstable();
        bad
    }

    #[test]
    fn every_bad_call_and_only_those_fail_in_order() {
        for n in [1, 2, 3, 5, 8, 17, 100, 1000] {
            for count in [0, 1, 2, n / 10, n / 2, n] {
                let bad = scattered(n, count.min(n), n as u64 + count as u64);
                for rate in [0.0, 0.01, 0.3, 1.0] {
                    let (_, failed, _) = simulate(n, &bad, rate);
                    assert_eq!(failed, bad, "n {n}, rate {rate}");
                }
            }
        }
    }

    #[test]
    fn a_batch_that_succeeds_runs_once() {
        assert_eq!(simulate(1000, &[], 0.5), (1000, Vec::new(), 1));
    }

    #[test]
    fn one_bad_call_among_a_hundred_costs_fewer_runs_than_halving() {
        // Halving runs 296-301 calls (mean 298) wherever the bad call is
        // (100 + 100 + 50 + 26 + ...); the known-to-fail last parts and the
        // singles save the right halves' runs when the left ones succeed
        // (mean 248; a bad call at 0 still costs 296: each left part fails,
        // so each right part must run).
        let runs: Vec<usize> = (0..100).map(|at| simulate(100, &[at], 0.0).0).collect();
        let mean = runs.iter().sum::<usize>() as f64 / 100.0;
        let worst = runs.iter().max().copied().unwrap_or(0);
        assert!(mean < 255.0, "mean {mean} calls run");
        assert!(worst <= 300, "worst {worst} calls run");
    }

    #[test]
    fn with_one_call_in_a_hundred_bad_good_calls_are_rerun_about_once() {
        // Windows of 1,000 calls, 1% of them bad, the rate learned as the
        // loop learns it. Plain halving runs each call 5.8 times here.
        let mut rate = FailureRate::default();
        let mut total = 0;
        for window in 0..10 {
            let bad = scattered(1000, 10, window);
            let (calls, failed, _) = simulate(1000, &bad, rate.rate());
            rate.learn(1000, failed.len());
            if window > 0 {
                total += calls;
            }
        }
        let per_call = total as f64 / 9000.0;
        assert!(per_call < 3.0, "{per_call:.2} runs per call");
        assert!((rate.rate() - 0.01).abs() < 1e-9);
    }

    #[test]
    fn parts_follow_the_rate_and_small_ranges_go_single() {
        assert_eq!(parts(4, 0.0), 4);
        assert_eq!(parts(1000, 0.0), 2);
        assert_eq!(parts(1000, 0.01), 20);
        assert_eq!(parts(1000, 1.0), 1000);
        assert_eq!(parts(10, f64::INFINITY), 10);
    }

    #[test]
    fn the_rate_forgets_old_calls() {
        let mut rate = FailureRate::default();
        rate.learn(4000, 400);
        for _ in 0..10 {
            rate.learn(1000, 0);
        }
        assert!(rate.rate() < 0.01, "{}", rate.rate());
        assert!(rate.calls <= HORIZON);
    }
}
