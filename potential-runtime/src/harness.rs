//! Worker tests: a test target whose tests start worker processes.
//!
//! Workers are the test binary started again, so its `main` must call
//! [`init`](crate::init) before any test runs, and libtest's own `main`
//! does not. [`worker_tests!`](crate::worker_tests) writes that `main`: it
//! calls `init()`, then runs the listed `async fn` tests with libtest's
//! command line and output (filters, `--exact`, `--list`,
//! `--test-threads`, `--nocapture`), through `libtest-mimic`. Each test
//! runs on a fresh multi-thread tokio runtime with I/O and time enabled.
//!
//! Enable the `harness` feature in your dev-dependencies, give the test
//! target `harness = false`, and end the file with the macro:
//!
//! ```toml
//! [dev-dependencies]
//! potential-runtime = { git = "…", features = ["harness"] }
//!
//! [[test]]
//! name = "workers"
//! harness = false
//! ```
//!
//! ```rust,ignore
//! // tests/workers.rs
//! async fn answers_like_the_original() -> Result<(), PotentialError> {
//!     let p = Arc::new(MyPotential::new());
//!     let workers = p.clone().to_multiprocess(2).await?;
//!     assert_eq!(workers.logw_next(&[]).await?, p.logw_next(&[]).await?);
//!     workers.shutdown().await;
//!     Ok(())
//! }
//!
//! potential_runtime::worker_tests!(answers_like_the_original);
//! ```
//!
//! (`tests/tests/worker_tests.rs` in the repository is such a target.)

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// What a worker test may return: `()`, or a `Result` whose error fails
/// the test (shown with `Debug`, as libtest does).
pub trait TestOutcome {
    /// `Ok` when the test passed, else the message to show.
    fn into_outcome(self) -> Result<(), String>;
}

impl TestOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("the test returned an error: {e:?}"))
    }
}

/// A test's body, as [`worker_tests!`](crate::worker_tests) boxes it.
pub type TestFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One test: its name and a function that starts its body.
pub type WorkerTest = (&'static str, fn() -> TestFuture);

/// The `main` of a worker-test target: serves and exits in a worker
/// process, otherwise runs `tests` as libtest would. Call it through
/// [`worker_tests!`](crate::worker_tests).
pub fn run(tests: &[WorkerTest]) -> ExitCode {
    crate::init();
    let trials = tests
        .iter()
        .map(|&(name, test)| Trial::test(name, move || run_one(test)))
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

fn run_one(test: fn() -> TestFuture) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    runtime.block_on(test()).map_err(Failed::from)
}

/// Writes the `main` of a test target (with `harness = false`) whose tests
/// start worker processes: `init()` first, then the listed tests, each an
/// `async fn` returning `()` or `Result<(), E: Debug>`, with libtest's
/// command line and output. Needs the `harness` feature; see the
/// [`harness`](crate::harness) module.
///
/// ```rust,ignore
/// potential_runtime::worker_tests!(answers_like_the_original, survives_a_panic);
/// ```
#[macro_export]
macro_rules! worker_tests {
    ($($test:ident),+ $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness::run(&[$((
                ::std::stringify!($test),
                || -> $crate::harness::TestFuture {
                    ::std::boxed::Box::pin(async {
                        $crate::harness::TestOutcome::into_outcome($test().await)
                    })
                },
            )),+])
        }
    };
}
