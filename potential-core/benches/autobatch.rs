//! Micro-benchmarks of the autobatching wrapper, each beside its direct
//! reference: `cargo bench -p potential-core --bench autobatch`.
//!
//! - `single`: 1,000 calls made one after another (each its own batch);
//! - `join_all_10k`: 10,000 concurrent calls awaited by one `join_all`;
//! - `gain_64`: 64 concurrent calls of a potential that costs 1 ms + 10 µs
//!   per context of busy CPU, spawned as tasks.
//!
//! Every case runs on the current-thread runtime and on the multi-thread
//! runtime with 2 workers, the calling code inside a spawned task.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use futures::future::join_all;
use potential_core::{Potential, PotentialError, PotentialExt, Vocab, non_empty};
use tokio::runtime::{Builder, Runtime};

fn main() {
    divan::main();
}

/// Returns at once from every method.
struct Trivial(Vocab<u8>);

impl Potential for Trivial {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.0
    }
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(black_box(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(black_box(context.len() as f64))
    }
    async fn batch_complete(&self, contexts: &[Vec<u8>]) -> Result<Vec<f64>, PotentialError> {
        non_empty("batch_complete", contexts)?;
        Ok(contexts.iter().map(|c| black_box(c.len() as f64)).collect())
    }
}

/// Costs 1 ms + 10 µs per context of busy CPU per call.
struct Busy(Vocab<u8>);

/// Busy-waits until this thread has used `1 ms + 10 µs × contexts` of CPU.
///
/// CPU time rather than wall time, so that a thread preempted by another
/// process on a shared machine does not count the time it did not run: the
/// work is the same in the reference and in the figure.
fn spin(contexts: usize) {
    let work = Duration::from_micros(1000 + 10 * contexts as u64);
    let until = thread_cpu_time() + work;
    while thread_cpu_time() < until {
        std::hint::spin_loop();
    }
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec, and the clock id is a
    // constant every Linux and macOS kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Potential for Busy {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.0
    }
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        spin(1);
        Ok(context.len() as f64)
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        spin(1);
        Ok(context.len() as f64)
    }
    async fn batch_complete(&self, contexts: &[Vec<u8>]) -> Result<Vec<f64>, PotentialError> {
        non_empty("batch_complete", contexts)?;
        spin(contexts.len());
        Ok(contexts.iter().map(|c| c.len() as f64).collect())
    }
}

fn vocab() -> Vocab<u8> {
    Vocab::new(0..4).unwrap()
}

const FLAVOURS: &[&str] = &["current_thread", "multi_thread_2"];

fn runtime(flavour: &str) -> Runtime {
    match flavour {
        "current_thread" => Builder::new_current_thread().enable_all().build().unwrap(),
        _ => Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    }
}

/// Times `run` inside a task of a runtime of the given flavour.
fn bench_in_task<P, F, Fut>(bencher: Bencher, flavour: &str, items: usize, potential: P, run: F)
where
    P: Send + Sync + 'static,
    F: Fn(Arc<P>) -> Fut + Sync,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = runtime(flavour);
    let potential = Arc::new(potential);
    bencher.counter(ItemsCount::new(items)).bench_local(|| {
        let work = run(Arc::clone(&potential));
        rt.block_on(async { tokio::spawn(work).await.unwrap() })
    });
}

const SEQUENTIAL: usize = 1_000;

async fn sequential<P: Potential<Token = u8>>(p: Arc<P>) {
    let context = [1, 2, 3];
    for _ in 0..SEQUENTIAL {
        black_box(p.complete(black_box(&context)).await.unwrap());
    }
}

#[divan::bench(args = FLAVOURS)]
fn single_direct(bencher: Bencher, flavour: &str) {
    bench_in_task(bencher, flavour, SEQUENTIAL, Trivial(vocab()), sequential);
}

#[divan::bench(args = FLAVOURS)]
fn single_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = rt.block_on(async { Trivial(vocab()).to_autobatched() });
    let p = Arc::new(p);
    bencher
        .counter(ItemsCount::new(SEQUENTIAL))
        .bench_local(|| {
            rt.block_on(async { tokio::spawn(sequential(Arc::clone(&p))).await.unwrap() })
        });
}

const CONCURRENT: usize = 10_000;

async fn concurrent<P: Potential<Token = u8>>(p: Arc<P>) {
    let context = [1, 2, 3];
    let got = join_all((0..CONCURRENT).map(|_| p.complete(&context))).await;
    black_box(got);
}

#[divan::bench(args = FLAVOURS, sample_count = 30)]
fn join_all_10k_direct(bencher: Bencher, flavour: &str) {
    bench_in_task(bencher, flavour, CONCURRENT, Trivial(vocab()), concurrent);
}

#[divan::bench(args = FLAVOURS, sample_count = 30)]
fn join_all_10k_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = Arc::new(rt.block_on(async { Trivial(vocab()).to_autobatched() }));
    bencher
        .counter(ItemsCount::new(CONCURRENT))
        .bench_local(|| {
            rt.block_on(async { tokio::spawn(concurrent(Arc::clone(&p))).await.unwrap() })
        });
}

async fn spawned_64<P: Potential<Token = u8> + 'static>(p: Arc<P>) {
    let tasks: Vec<_> = (0..64u8)
        .map(|i| {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.complete(&[i % 4]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

#[divan::bench(args = FLAVOURS, sample_count = 10, sample_size = 1)]
fn gain_64_direct(bencher: Bencher, flavour: &str) {
    bench_in_task(bencher, flavour, 64, Busy(vocab()), spawned_64);
}

#[divan::bench(args = FLAVOURS, sample_count = 30, sample_size = 1)]
fn gain_64_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = Arc::new(rt.block_on(async { Busy(vocab()).to_autobatched() }));
    bencher.counter(ItemsCount::new(64_usize)).bench_local(|| {
        rt.block_on(async { tokio::spawn(spawned_64(Arc::clone(&p))).await.unwrap() })
    });
}
