//! # potential-runtime
//!
//! Runs a potential in worker processes: `p.to_multiprocess(n).await?`
//! starts `n` copies of the current executable in worker mode, each
//! rebuilds `p` from its spawn recipe, and the returned [`Multiprocess`]
//! is a [`Potential`] over the same tokens that answers through them.
//!
//! ```rust,standalone_crate
//! use potential_core::{Potential, PotentialError, Registered, Vocab};
//! use potential_runtime::MultiprocessExt;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Length { vocab: Vocab<char> }
//!
//! impl Potential for Length {
//!     type Token = char;
//!     fn vocab(&self) -> &Vocab<char> { &self.vocab }
//!     async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64)) }
//!     async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-0.5 * c.len() as f64) }
//! }
//!
//! // Hand-written potentials become spawnable with these two lines;
//! // `#[derive(Potential)]` writes them for you.
//! impl Registered for Length {}
//! potential_core::register!(Length);
//!
//! fn main() -> Result<(), PotentialError> {
//!     potential_runtime::init(); // first: in a worker, this serves and exits
//!     let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//!     rt.block_on(async {
//!         // Shared, so that this process keeps the plain potential too.
//!         let p = std::sync::Arc::new(Length { vocab: Vocab::new(['a', 'b'])? });
//!         let workers = p.clone().to_multiprocess(2).await?;
//!         assert_eq!(workers.batch_complete(&[vec!['a'], vec!['a', 'b']]).await?, [-1.0, -2.0]);
//!         assert_eq!(workers.logw_next(&['a']).await?, p.logw_next(&['a']).await?);
//!         workers.shutdown().await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # The one line: [`init`]
//!
//! Workers are the same executable, started again with two environment
//! variables (the pool's socket and the parent's pid; the pool's secret
//! and the worker's ticket come through its standard input, never the
//! environment). [`init`] must be the **first line of `main`**: in a worker it
//! serves and exits, so no code of yours runs twice; elsewhere it returns
//! at once. A process started as a worker that skips it would run your
//! `main` again, so starting a pool refuses to run in such a process
//! and the parent reports that `init` is missing.
//!
//! - **Tests**: a `#[test]` or `#[tokio::test]` cannot start workers, as
//!   libtest owns `main` and each worker would run the whole test binary
//!   again. Write the tests as `async fn`s in a target with
//!   `harness = false` and end the file with
//!   `potential_runtime::worker_tests!(test_a, test_b);` (the `harness`
//!   feature; see the `harness` module), which writes a `main`
//!   that calls `init()` first and keeps libtest's command line and
//!   output. Or point [`MultiprocessOptions::program`] at a binary built
//!   for the purpose (`env!("CARGO_BIN_EXE_<name>")`) whose `main` is
//!   [`worker_main`].
//! - **Doctests**: write a `fn main` that calls `init()` first, and mark the
//!   block `standalone_crate` so that rustdoc does not merge it with other
//!   doctests into one executable (as in the example above).
//!
//! The runtime that awaits `to_multiprocess` must have I/O and time
//! enabled (`enable_all`, as `#[tokio::main]` does); the pool's tasks run
//! on it.
//!
//! # What the workers can rebuild
//!
//! A potential is sent as a [`Recipe`](potential_core::Recipe): registered
//! types (`#[derive(Potential)]`, or a hand-written potential with an empty
//! `impl Registered` and [`potential_core::register!`], as above) and the
//! library's wrappers over them. The recipe is rebuilt through the registry
//! of the worker, which is the same program, so both sides agree on the
//! types. A potential that is not [`Spawnable`]
//! is refused at compile time, and so is a [`Multiprocess`] itself (its
//! workers belong to this process; genlm refuses the same at run time):
//!
//! ```compile_fail
//! # use potential_runtime::{Multiprocess, MultiprocessExt};
//! async fn twice(p: Multiprocess<char>) {
//!     let _ = p.to_multiprocess(2).await; // `Multiprocess<char>` cannot be sent to a worker process
//! }
//! ```
//!
//! # Protocol and faults
//!
//! See [`protocol`] for the frames, the handshake and the codec. A panic in
//! a worker's potential becomes [`PotentialError::Panicked`](potential_core::PotentialError::Panicked) for that call;
//! a worker that dies is restarted in the background, and its calls in
//! flight are sent again to a live worker
//! ([`MultiprocessOptions::retry`]; a call that two workers died of fails
//! alone with [`PotentialError::WorkerFailure`](potential_core::PotentialError::WorkerFailure)).
//! A worker that died too often ([`RestartPolicy`]) is given up until its
//! window has passed or [`Multiprocess::revive`]; one that misses the
//! request timeout is killed and restarted. Workers exit when the
//! parent dies, even by `SIGKILL` (`PR_SET_PDEATHSIG` on Linux, and the end
//! of their socket everywhere). [`Multiprocess::shutdown`] and `Drop` stop,
//! reap and clean up everything. Worker starts, restarts, exits and refused
//! connections are `tracing` events; [`Multiprocess::stats`] has counters.
//!
//! # Memory
//!
//! On glibc, worker processes keep the memory they free (`mallopt` of the
//! mmap and trim thresholds) instead of handing it back after every call:
//! weight vectors and batch replies of megabytes would otherwise fault
//! their pages in again at each batch. The calling process is yours to
//! tune: a program that moves many large weight vectors gains the same by
//! starting with, for example,
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=134217728:glibc.malloc.mmap_threshold=33554432`.

mod accept;
mod affinity;
mod call;
mod conn;
#[cfg(feature = "harness")]
pub mod harness;
mod log_throttle;
mod options;
mod pool;
pub mod protocol;
pub mod shared;
mod socket;
mod state;
mod supervise;
mod sync;
mod sys;
mod transport;
mod tuning;
mod worker;

use futures::future::BoxFuture;

pub use options::{MultiprocessOptions, RestartPolicy};
pub use pool::Multiprocess;
pub use potential_core;
use potential_core::{Potential, Result, Spawnable};
pub use socket::{SocketAddress, SocketLocation};
pub use state::{WorkerState, WorkerStats};

/// Enters worker mode when this process was started as a worker: serves
/// the pool that started it, then exits the process. Returns at once in
/// any other process.
///
/// Call it as the first line of `main`, before anything else runs (see
/// the [crate docs](crate)).
pub fn init() {
    worker::enter_if_worker();
}

/// The `main` of a dedicated worker executable (see
/// [`MultiprocessOptions::program`]): serves and exits, or exits with an
/// error when the process was not started by a pool.
pub fn worker_main() -> ! {
    worker::enter_if_worker();
    eprintln!("this program runs potential workers; it is started by a worker pool, not by hand");
    std::process::exit(2)
}

/// Sends a potential to worker processes.
///
/// Implemented for every potential; the methods require
/// [`Spawnable`], so a potential that cannot travel is refused at compile
/// time with an explanation.
pub trait MultiprocessExt: Potential {
    /// Starts `workers` worker processes that each rebuild this potential,
    /// and returns the potential that answers through them.
    ///
    /// Takes the potential by value, as
    /// [`to_autobatched`](potential_core::PotentialExt::to_autobatched)
    /// does: the workers hold its copies from now on. To keep the plain
    /// potential too, share it (`Arc<P>` is spawnable when `P` is):
    /// `shared.clone().to_multiprocess(n)`.
    ///
    /// The future is boxed (once per pool) rather than an `impl Future`:
    /// an opaque return type would carry the `Spawnable` bound with it, and
    /// a potential that cannot travel would get three errors instead of
    /// one.
    fn to_multiprocess(
        self,
        workers: usize,
    ) -> BoxFuture<'static, Result<Multiprocess<Self::Token>>>
    where
        Self: Spawnable,
    {
        self.to_multiprocess_with(MultiprocessOptions::new().workers(workers))
    }

    /// [`to_multiprocess`](Self::to_multiprocess) with other options (the
    /// worker count among them), as
    /// [`to_autobatched_with`](potential_core::PotentialExt::to_autobatched_with)
    /// is to `to_autobatched`. Zero workers is an error.
    ///
    /// ```rust,no_run
    /// # use potential_core::Spawnable;
    /// # use potential_runtime::{MultiprocessExt, MultiprocessOptions, RestartPolicy};
    /// # async fn f<P: Spawnable>(p: P) -> potential_core::Result<()> {
    /// let options = MultiprocessOptions::new().workers(4).restart(RestartPolicy::NEVER);
    /// let workers = p.to_multiprocess_with(options).await?;
    /// # Ok(()) }
    /// ```
    fn to_multiprocess_with(
        self,
        options: MultiprocessOptions,
    ) -> BoxFuture<'static, Result<Multiprocess<Self::Token>>>
    where
        Self: Spawnable,
    {
        // The recipe and the vocabulary are taken now: the future owns no
        // borrow of the potential (which is dropped here).
        let recipe = self.recipe();
        let vocab = self.vocab().clone();
        Box::pin(async move { Multiprocess::from_recipe(recipe?, vocab, options).await })
    }
}

impl<P: Potential> MultiprocessExt for P {}
