//! Micro-benchmarks of the autobatching wrapper, each beside its direct
//! reference: `cargo bench -p potential-examples --bench autobatch`.
//!
//! - `single`: 1,000 calls made one after another (each its own batch);
//! - `join_all_10k`: 10,000 concurrent calls awaited by one `join_all`;
//! - `gain_64`: 64 concurrent calls of a potential that costs 1 ms + 10 µs
//!   per context of busy CPU, spawned as tasks.
//!
//! The potentials are those of the bench example's autobatching rows.
//! Every case runs on the current-thread runtime and on the multi-thread
//! runtime with 2 workers, the calling code inside a spawned task.

use std::hint::black_box;
use std::sync::Arc;

use divan::Bencher;
use divan::counter::ItemsCount;
use futures::future::join_all;
use potential_core::{Potential, PotentialExt};
use potential_examples::bench::autobatch::{Busy, Trivial};
use tokio::runtime::{Builder, Runtime};

fn main() {
    divan::main();
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
    bench_in_task(bencher, flavour, SEQUENTIAL, Trivial::new(), sequential);
}

#[divan::bench(args = FLAVOURS)]
fn single_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = rt.block_on(async { Trivial::new().to_autobatched() });
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
    bench_in_task(bencher, flavour, CONCURRENT, Trivial::new(), concurrent);
}

#[divan::bench(args = FLAVOURS, sample_count = 30)]
fn join_all_10k_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = Arc::new(rt.block_on(async { Trivial::new().to_autobatched() }));
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
    bench_in_task(bencher, flavour, 64, Busy::new(), spawned_64);
}

#[divan::bench(args = FLAVOURS, sample_count = 30, sample_size = 1)]
fn gain_64_autobatched(bencher: Bencher, flavour: &str) {
    let rt = runtime(flavour);
    let p = Arc::new(rt.block_on(async { Busy::new().to_autobatched() }));
    bencher.counter(ItemsCount::new(64_usize)).bench_local(|| {
        rt.block_on(async { tokio::spawn(spawned_64(Arc::clone(&p))).await.unwrap() })
    });
}
