//! The CPU time of processes, from the scheduler's statistics of each of
//! their threads (`/proc/<pid>/task/<tid>/schedstat`, whose first field is
//! the nanoseconds the thread has run): where `worker_scaling`'s cores
//! went while the pool worked, the workers' share against this process's.
//! Where there is no such file (not Linux), nothing is read.

use std::collections::HashMap;
use std::time::Duration;

/// The CPU time each thread of some processes had run when read, by
/// process and thread id.
#[derive(Debug, Default)]
pub(super) struct Threads(HashMap<(u32, u32), u64>);

impl Threads {
    /// Reads the threads of `pids`; `None` where one cannot be read (no
    /// `/proc`, a process gone).
    pub(super) fn read(pids: &[u32]) -> Option<Threads> {
        let mut threads = HashMap::new();
        for &pid in pids {
            for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
                let task = task.ok()?;
                let tid = task.file_name().to_str()?.parse().ok()?;
                // A thread that ended between the listing and this read
                // has nothing left to count.
                let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
                    continue;
                };
                let nanos = stat.split_whitespace().next()?.parse().ok()?;
                threads.insert((pid, tid), nanos);
            }
        }
        Some(Threads(threads))
    }

    /// The CPU time the threads ran between `earlier` and this reading:
    /// a thread started since counts whole, one that ended since loses
    /// only what it ran after `earlier`.
    pub(super) fn since(&self, earlier: &Threads) -> Duration {
        let nanos = self
            .0
            .iter()
            .map(|(id, &now)| now.saturating_sub(earlier.0.get(id).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_counts_and_threads_that_come_and_go_are_accounted() {
        let me = [std::process::id()];
        let before = Threads::read(&me).expect("this process's threads");
        let work = || {
            let mut x = 0u64;
            for i in 0..10_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31) ^ i);
            }
        };
        work();
        // A thread that comes and goes between the readings: its time is lost, not negative.
        std::thread::spawn(work).join().expect("the worker thread");
        let after = Threads::read(&me).expect("this process's threads");
        let ran = after.since(&before);
        assert!(ran > Duration::ZERO, "{before:?} then {after:?}");
        assert!(Threads::read(&[std::process::id(), u32::MAX]).is_none());
    }

    /// Set readings, not this process's: the test harness's other threads
    /// come and go between two real readings.
    #[test]
    fn time_never_runs_back_and_new_threads_count_whole() {
        let reading = |threads: &[((u32, u32), u64)]| Threads(threads.iter().copied().collect());
        let before = reading(&[((1, 1), 100), ((1, 2), 50)]);
        // Thread 2 ended (its last 50 ns before the end are lost), thread
        // 3 started (all of its 20 ns count).
        let after = reading(&[((1, 1), 150), ((1, 3), 20)]);
        assert_eq!(after.since(&before), Duration::from_nanos(50 + 20));
        // Read the wrong way round, time does not run back: thread 1 adds
        // nothing, thread 2 (absent from `after`) counts whole.
        assert_eq!(before.since(&after), Duration::from_nanos(50));
        assert_eq!(after.since(&after), Duration::ZERO);
    }
}
