//! Worker tests: a test target whose tests start worker processes.
//!
//! Workers are the test binary started again, so its `main` must call
//! [`init`](crate::init) before any test runs, and libtest's own `main`
//! does not. [`worker_tests!`](crate::worker_tests) writes that `main`: it
//! calls `init()`, then runs the listed `async fn` tests with libtest's
//! command line and output (filters, `--exact`, `--list`,
//! `--test-threads` or else `RUST_TEST_THREADS`, `--nocapture`), through
//! `libtest-mimic`. Each test runs on a fresh multi-thread tokio runtime
//! with I/O and time enabled.
//!
//! Tests run on parallel threads, as libtest's do, so the workers of
//! other tests run beside a test's own. Two markers change that for one
//! test:
//!
//! - `#[alone]`: no other test runs while it does (a test that counts
//!   this process's children, or measures its memory);
//! - `#[current_thread]`: it runs on a current-thread runtime (to show
//!   that a pool works there too).
//!
//! ```rust,ignore
//! potential_runtime::worker_tests!(
//!     answers_like_the_original,
//!     #[alone] no_child_is_left_after_shutdown,
//!     #[current_thread] #[alone] works_on_one_thread,
//! );
//! ```
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
use std::sync::RwLock;

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

/// One test: its name, a function that starts its body, and how it runs.
/// [`worker_tests!`](crate::worker_tests) builds them; each marker of the
/// macro (`#[alone]`, `#[current_thread]`) is the method of that name.
#[derive(Debug, Clone, Copy)]
pub struct WorkerTest {
    name: &'static str,
    body: fn() -> TestFuture,
    alone: bool,
    current_thread: bool,
}

impl WorkerTest {
    /// A test that runs beside the others, on a multi-thread runtime.
    pub const fn new(name: &'static str, body: fn() -> TestFuture) -> Self {
        WorkerTest {
            name,
            body,
            alone: false,
            current_thread: false,
        }
    }

    /// No other test runs while this one does.
    pub const fn alone(self) -> Self {
        WorkerTest {
            alone: true,
            ..self
        }
    }

    /// The test runs on a current-thread runtime.
    pub const fn current_thread(self) -> Self {
        WorkerTest {
            current_thread: true,
            ..self
        }
    }
}

/// Held for reading by every running test, for writing by an `#[alone]`
/// one: so an `#[alone]` test waits until the others have finished, and
/// the others wait for it.
static ALONE: RwLock<()> = RwLock::new(());

/// The `main` of a worker-test target: serves and exits in a worker
/// process, otherwise runs `tests` as libtest would. Call it through
/// [`worker_tests!`](crate::worker_tests).
pub fn run(tests: &[WorkerTest]) -> ExitCode {
    crate::init();
    let mut arguments = Arguments::from_args();
    // libtest reads `RUST_TEST_THREADS` when `--test-threads` is absent;
    // libtest-mimic reads only the flag.
    if arguments.test_threads.is_none() {
        match test_threads(std::env::var("RUST_TEST_THREADS")) {
            Ok(threads) => arguments.test_threads = threads,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
        }
    }
    let trials = tests
        .iter()
        .map(|&test| Trial::test(test.name, move || run_one(test)))
        .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// `RUST_TEST_THREADS`, as libtest reads it: unset is `None`, and
/// anything but a positive number is an error.
fn test_threads(variable: Result<String, std::env::VarError>) -> Result<Option<usize>, String> {
    match variable {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(value) => match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "RUST_TEST_THREADS is {value:?}; it must be a positive number of threads"
            )),
        },
        Err(e) => Err(format!("RUST_TEST_THREADS cannot be read: {e}")),
    }
}

fn run_one(test: WorkerTest) -> Result<(), Failed> {
    // A test that failed while holding the lock poisons it; the others
    // still run (the failure is already reported).
    let (_alone, _beside) = if test.alone {
        (Some(ALONE.write().unwrap_or_else(|e| e.into_inner())), None)
    } else {
        (None, Some(ALONE.read().unwrap_or_else(|e| e.into_inner())))
    };
    let mut builder = if test.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    runtime.block_on((test.body)()).map_err(Failed::from)
}

/// Writes the `main` of a test target (with `harness = false`) whose tests
/// start worker processes: `init()` first, then the listed tests, each an
/// `async fn` returning `()` or `Result<(), E: Debug>`, with libtest's
/// command line and output. A test may be marked `#[alone]` (no other
/// test runs beside it) or `#[current_thread]` (a current-thread
/// runtime). Needs the `harness` feature; see the
/// [`harness`](crate::harness) module.
///
/// ```rust,ignore
/// potential_runtime::worker_tests!(
///     answers_like_the_original,
///     #[alone] no_child_is_left_after_shutdown,
/// );
/// ```
#[macro_export]
macro_rules! worker_tests {
    ($($(#[$marker:ident])* $test:ident),+ $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness::run(&[$(
                $crate::harness::WorkerTest::new(
                    ::std::stringify!($test),
                    || -> $crate::harness::TestFuture {
                        ::std::boxed::Box::pin(async {
                            $crate::harness::TestOutcome::into_outcome($test().await)
                        })
                    },
                )$(.$marker())*
            ),+])
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    #[test]
    fn rust_test_threads_is_read_as_libtest_reads_it() {
        assert_eq!(test_threads(Err(VarError::NotPresent)), Ok(None));
        assert_eq!(test_threads(Ok("1".into())), Ok(Some(1)));
        assert_eq!(test_threads(Ok("8".into())), Ok(Some(8)));
        for bad in ["0", "", "two", "-1"] {
            let err = test_threads(Ok(bad.into())).unwrap_err();
            assert!(err.contains("positive number"), "{err}");
        }
    }

    #[test]
    fn markers_set_their_flags() {
        fn body() -> TestFuture {
            Box::pin(async { Ok(()) })
        }
        let plain = WorkerTest::new("t", body);
        assert!(!plain.alone && !plain.current_thread);
        let marked = plain.alone().current_thread();
        assert!(marked.alone && marked.current_thread);
        run_one(marked).unwrap();
    }
}
