//! What the batching loop has done so far.

use std::ops::RangeInclusive;

/// The number of buckets of the batch-size histogram: bucket `i` counts the
/// batches of `2^i` to `2^(i+1) - 1` contexts, and the last one every
/// larger batch.
const BUCKETS: usize = 24;

/// A snapshot of an autobatching wrapper's statistics, read with
/// [`AutoBatched::stats`](crate::AutoBatched::stats) at any time.
///
/// A batch is one call of an inner batch method; a window that holds calls
/// of several methods makes one batch per method.
///
/// ```
/// use potential_core::AutoBatchStats;
///
/// let stats = AutoBatchStats::default();
/// assert_eq!(stats.batches, 0);
/// assert_eq!(stats.mean_batch_size(), 0.0);
/// assert_eq!(stats.histogram().count(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoBatchStats {
    /// Calls of the inner potential's batch methods.
    pub batches: u64,
    /// Single calls answered through a batch (successfully or not).
    pub requests: u64,
    /// Calls whose caller had gone (its future dropped) before its batch
    /// ran; they were left out of the batch.
    pub cancelled: u64,
    /// Batches that failed: the batch method's error, a wrong number of
    /// results, a panic, or a timeout (the parts of a split batch count
    /// as batches of their own).
    pub failed_batches: u64,
    /// Failed batches of several calls that the loop split into parts and
    /// ran again, to find the calls that fail on their own.
    pub split_batches: u64,
    /// The most contexts in one batch.
    pub largest_batch: usize,
    buckets: [u64; BUCKETS],
}

impl AutoBatchStats {
    /// The mean number of contexts per batch; zero before the first batch.
    pub fn mean_batch_size(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.requests as f64 / self.batches as f64
        }
    }

    /// The batch-size histogram: for each non-empty bucket, the range of
    /// sizes it covers (powers of two) and how many batches fell in it.
    ///
    /// ```
    /// # use potential_core::AutoBatchStats;
    /// # fn show(stats: &AutoBatchStats) {
    /// for (sizes, count) in stats.histogram() {
    ///     println!("{sizes:?}: {count} batches");
    /// }
    /// # }
    /// ```
    pub fn histogram(&self) -> impl Iterator<Item = (RangeInclusive<usize>, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(i, count)| {
                let high = if i + 1 == BUCKETS {
                    usize::MAX
                } else {
                    (1 << (i + 1)) - 1
                };
                (1 << i..=high, *count)
            })
    }

    /// Records one batch of `size` contexts (at least one).
    pub(crate) fn record_batch(&mut self, size: usize, failed: bool) {
        self.batches += 1;
        self.requests = self.requests.saturating_add(size as u64);
        self.failed_batches += u64::from(failed);
        self.largest_batch = self.largest_batch.max(size);
        let bucket = (size.max(1).ilog2() as usize).min(BUCKETS - 1);
        self.buckets[bucket] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_land_in_power_of_two_buckets() {
        let mut stats = AutoBatchStats::default();
        for size in [1, 2, 3, 4, 64, 64, usize::MAX] {
            stats.record_batch(size, size == 3);
        }
        let histogram: Vec<_> = stats.histogram().collect();
        assert_eq!(
            histogram,
            vec![
                (1..=1, 1),
                (2..=3, 2),
                (4..=7, 1),
                (64..=127, 2),
                (1 << 23..=usize::MAX, 1)
            ]
        );
        assert_eq!(stats.batches, 7);
        assert_eq!(stats.failed_batches, 1);
        assert_eq!(stats.largest_batch, usize::MAX);
    }

    #[test]
    fn the_mean_is_requests_per_batch() {
        let mut stats = AutoBatchStats::default();
        stats.record_batch(2, false);
        stats.record_batch(4, false);
        assert_eq!(stats.mean_batch_size(), 3.0);
    }
}
