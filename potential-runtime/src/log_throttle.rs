//! One log line per kind of event per interval, with a count of the rest:
//! any local user can connect to a pool's socket, and a line per refused
//! connection let one flood the log (715,687 lines in 15 s).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Decides which events of each kind get a log line.
#[derive(Debug)]
pub(crate) struct LogThrottle<K> {
    interval: Duration,
    /// Per kind: when its last line was written, and the events since.
    kinds: HashMap<K, (Instant, u64)>,
}

impl<K: Eq + Hash> LogThrottle<K> {
    /// At most one line per kind every `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            kinds: HashMap::new(),
        }
    }

    /// Whether an event of `kind` at `now` gets a line: `Some(n)` with the
    /// `n` events of that kind that got none since its last line, or
    /// `None` to stay silent (it is counted for the next line).
    pub(crate) fn admit(&mut self, kind: K, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(&kind) {
            Some((last, silenced)) if now.saturating_duration_since(*last) < self.interval => {
                *silenced += 1;
                None
            }
            Some((last, silenced)) => {
                *last = now;
                Some(std::mem::take(silenced))
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_of_the_rest() {
        let mut throttle = LogThrottle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(throttle.admit("busy", at(0)), Some(0));
        for ms in 1..1000 {
            assert_eq!(throttle.admit("busy", at(ms)), None);
        }
        // Another kind is not silenced by the first.
        assert_eq!(throttle.admit("secret", at(500)), Some(0));
        assert_eq!(throttle.admit("busy", at(1000)), Some(999));
        assert_eq!(throttle.admit("busy", at(1001)), None);
        assert_eq!(throttle.admit("busy", at(5000)), Some(1));
    }
}
