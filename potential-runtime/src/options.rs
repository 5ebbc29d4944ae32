//! The options of a worker pool.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::socket::SocketLocation;

/// When a worker that keeps dying is given up.
///
/// A worker that dies is restarted in the background; when it has died
/// `max_deaths` times within `window`, it is given up rather than restarted
/// forever, and calls go to the other workers (or fail fast, with the last
/// exits and the reason, when none is left).
///
/// Giving up is not forever: a given-up worker is started again once
/// `window` has passed (the deaths that gave it up no longer count), or at
/// once by [`Multiprocess::revive`](crate::Multiprocess::revive). With
/// [`RestartPolicy::NEVER`], only `revive` brings it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Deaths within `window` after which the worker is given up.
    pub max_deaths: u32,
    /// The window over which deaths are counted.
    pub window: Duration,
}

impl RestartPolicy {
    /// Never restart: a worker that dies is given up at once.
    pub const NEVER: RestartPolicy = RestartPolicy {
        max_deaths: 1,
        window: Duration::MAX,
    };
}

impl Default for RestartPolicy {
    /// Five deaths in a minute.
    fn default() -> Self {
        RestartPolicy {
            max_deaths: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// How to start a pool of workers; see [`MultiprocessExt::to_multiprocess_with`](crate::MultiprocessExt::to_multiprocess_with).
///
/// ```
/// use std::time::Duration;
/// use potential_runtime::{MultiprocessOptions, RestartPolicy};
///
/// let options = MultiprocessOptions::new()
///     .workers(4)
///     .restart(RestartPolicy { max_deaths: 3, window: Duration::from_secs(10) })
///     .request_timeout(Duration::from_secs(30));
/// assert_eq!(options.worker_count(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct MultiprocessOptions {
    pub(crate) workers: usize,
    pub(crate) restart: RestartPolicy,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) startup_timeout: Duration,
    pub(crate) socket: SocketLocation,
    pub(crate) program: Option<PathBuf>,
    pub(crate) args: Vec<OsString>,
    pub(crate) retry: bool,
    pub(crate) shared_memory: usize,
}

impl Default for MultiprocessOptions {
    fn default() -> Self {
        MultiprocessOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            restart: RestartPolicy::default(),
            request_timeout: None,
            startup_timeout: Duration::from_secs(20),
            socket: SocketLocation::default(),
            program: None,
            args: Vec::new(),
            retry: true,
            shared_memory: crate::tuning::SHARED_REGION,
        }
    }
}

impl MultiprocessOptions {
    /// One worker per available core, restarts per [`RestartPolicy::default`],
    /// no request timeout, the platform's socket namespace, the current executable.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of worker processes; starting a pool of zero is an
    /// error (rather than one worker the caller did not ask for).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// The number of worker processes.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// The error for options no pool can start with.
    pub(crate) fn check(&self) -> potential_core::Result<()> {
        if self.workers == 0 {
            return Err(potential_core::PotentialError::InvalidInput(
                "a worker pool needs at least one worker, and 0 were asked for".into(),
            ));
        }
        Ok(())
    }

    /// When a worker that keeps dying is given up.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Fails a call with [`PotentialError::WorkerFailure`](potential_core::PotentialError::WorkerFailure)
    /// when its worker has been silent for `timeout` while the call waited:
    /// the clock times the work, not the queue, so it runs from when the
    /// call was sent or from the worker's last answer to any call,
    /// whichever is later (a worker that keeps answering is busy, not
    /// stuck, however long the queue). A silent worker is killed and
    /// restarted; the call it was stuck in (its oldest unanswered one)
    /// fails, and its other calls in flight are retried (see
    /// [`retry`](Self::retry)). Such a kill does not count towards the
    /// [`RestartPolicy`]: a slow call is not a crash. None by default: a
    /// potential may be slow, and a worker that dies is noticed without a
    /// timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long a worker may take to start, connect and rebuild its
    /// potential (20 s by default).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Where the pool's socket lives.
    pub fn socket(mut self, location: SocketLocation) -> Self {
        self.socket = location;
        self
    }

    /// Runs workers from another executable (one whose `main` calls
    /// [`init`](crate::init) or [`worker_main`](crate::worker_main) and that
    /// registers the same potential types) instead of the current one.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Whether a call in flight on a worker that dies is sent again to a
    /// live worker instead of failing (on by default): potentials are pure
    /// functions of their inputs, so the answer is the same.
    ///
    /// A call that was in flight on two workers that both died is a
    /// *poison pill*: it fails alone with
    /// [`PotentialError::WorkerFailure`](potential_core::PotentialError::WorkerFailure),
    /// naming the two exits, and those deaths do not count towards giving
    /// a worker up ([`RestartPolicy`]). Off, every call in flight on a
    /// worker that dies fails with that error.
    pub fn retry(mut self, on: bool) -> Self {
        self.retry = on;
        self
    }

    /// The size in bytes of the memory each worker shares with this process
    /// for its large replies (64 MiB by default; 0 turns it off).
    ///
    /// A reply of more than 32 KB of values (a `logw_next` over a
    /// vocabulary of 4,000 or more) is copied by the worker into this
    /// region and read from it by the pool, instead of travelling through
    /// the socket; one that does not fit in the space free at that moment
    /// travels through the socket. The region is a sealed memfd on Linux;
    /// elsewhere every reply goes through the socket. Its pages cost
    /// memory only once a reply has used them.
    pub fn shared_memory(mut self, bytes: usize) -> Self {
        self.shared_memory = bytes;
        self
    }

    /// Arguments for the worker executable (none by default).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
}
