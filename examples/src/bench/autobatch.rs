//! The autobatching rows of §7: per-call overhead under 10,000 concurrent
//! calls, the cost of a lone call, the gain on a CPU-bound potential on
//! both runtime flavours, and how well bursts hold together on a loaded
//! machine. Each figure is measured against its reference in the same run,
//! interleaved repetition by repetition; the first repetition is a warm-up
//! and is thrown away.
//!
//! The loaded row starts competing processes: this program started again
//! with [`ENV_SPIN`] set, so the bench's `main` calls [`spin_if_asked`]
//! first.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join_all, try_join_all};
use potential_core::{
    AutoBatched, Method, Potential, PotentialError, PotentialExt, Vocab, non_empty,
};
use tokio::runtime::{Builder, Runtime};

use super::stats::median;
use super::{Row, wanted};

/// A potential whose every call returns at once: what is left is the
/// wrapper's own cost.
pub struct Trivial {
    vocab: Vocab<u8>,
}

impl Trivial {
    /// A trivial potential over the bytes 0..4.
    pub fn new() -> Self {
        Trivial {
            vocab: Vocab::new(0..4).expect("four distinct tokens"),
        }
    }
}

impl Default for Trivial {
    fn default() -> Self {
        Self::new()
    }
}

impl Potential for Trivial {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(black_box(context.len() as f64))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(black_box(context.len() as f64))
    }
    async fn batch_complete(&self, contexts: &[Vec<u8>]) -> Result<Vec<f64>, PotentialError> {
        non_empty(Method::BatchComplete, contexts)?;
        Ok(contexts.iter().map(|c| black_box(c.len() as f64)).collect())
    }
}

/// A potential whose calls cost busy CPU: 1 ms per call plus 10 µs per
/// context, so a single call takes 1.01 ms and a batch of 64 1.64 ms.
pub struct Busy {
    vocab: Vocab<u8>,
}

impl Busy {
    /// A busy potential over the bytes 0..4.
    pub fn new() -> Self {
        Busy {
            vocab: Vocab::new(0..4).expect("four distinct tokens"),
        }
    }
}

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

impl Default for Busy {
    fn default() -> Self {
        Self::new()
    }
}

impl Potential for Busy {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
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
        non_empty(Method::BatchComplete, contexts)?;
        spin(contexts.len());
        Ok(contexts.iter().map(|c| c.len() as f64).collect())
    }
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Runs `f` as a task, so that on a multi-thread runtime the caller sits on
/// a worker thread as a user's code does.
fn in_task<F, Fut, R>(rt: &Runtime, f: F) -> R
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    rt.block_on(async { tokio::spawn(f()).await.expect("the bench task panicked") })
}

/// Seconds taken by `n` concurrent `complete` calls awaited by one `join_all`.
async fn join_all_calls<P: Potential<Token = u8>>(p: &P, n: usize) -> f64 {
    let context = [1, 2, 3];
    let start = Instant::now();
    let results = join_all((0..n).map(|_| p.complete(&context))).await;
    let elapsed = start.elapsed().as_secs_f64();
    assert!(results.iter().all(Result::is_ok));
    elapsed
}

/// Seconds per call of `n` calls made one after another.
async fn one_at_a_time<P: Potential<Token = u8>>(p: &P, n: usize) -> f64 {
    let context = [1, 2, 3];
    let start = Instant::now();
    for _ in 0..n {
        black_box(p.complete(black_box(&context)).await.is_ok());
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// Seconds taken by 64 calls spawned as tasks, each its own context.
async fn spawned_calls<P: Potential<Token = u8> + 'static>(p: &Arc<P>) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..64u8)
        .map(|i| {
            let p = Arc::clone(p);
            tokio::spawn(async move { p.complete(&[i % 4]).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("a caller panicked")
            .expect("a call failed");
    }
    start.elapsed().as_secs_f64()
}

const CALLS: usize = 10_000;
const REPS: usize = 15;

fn overhead_row() -> Row {
    let rt = multi_thread(2);
    let (direct, batched) = in_task(&rt, || async {
        let direct = Trivial::new();
        let batched = Trivial::new().to_autobatched();
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for rep in 0..=REPS {
            let td = join_all_calls(&direct, CALLS).await;
            let tb = join_all_calls(&batched, CALLS).await;
            if rep > 0 {
                d.push(td / CALLS as f64 * 1e6);
                b.push(tb / CALLS as f64 * 1e6);
            }
        }
        (d, b)
    });
    let over = median(&b_minus_d(&batched, &direct));
    Row {
        id: "autobatch_overhead",
        figure: format!(
            "autobatching, µs per call: 10,000 concurrent calls of a trivial potential awaited with join_all, multi-thread runtime (2 workers); reference: direct calls; median of {REPS}, +{over:.3} µs per call"
        ),
        value: median(&batched),
        unit: "µs",
        reference: Some(median(&direct)),
        target: "under 0.3 µs per call more than the reference".into(),
        met: over < 0.3,
    }
}

fn b_minus_d(batched: &[f64], direct: &[f64]) -> Vec<f64> {
    batched.iter().zip(direct).map(|(b, d)| b - d).collect()
}

const SINGLE_CALLS: usize = 2_000;

/// The cost of one call at a time, on the runtime given.
fn single(rt: &Runtime) -> (Vec<f64>, Vec<f64>) {
    in_task(rt, || async {
        let direct = Trivial::new();
        let batched = Trivial::new().to_autobatched();
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for rep in 0..=REPS {
            let td = one_at_a_time(&direct, SINGLE_CALLS).await;
            let tb = one_at_a_time(&batched, SINGLE_CALLS).await;
            if rep > 0 {
                d.push(td * 1e6);
                b.push(tb * 1e6);
            }
        }
        assert_eq!(batched.stats().largest_batch, 1);
        (d, b)
    })
}

fn single_row() -> Row {
    // Both flavours are measured; the row reports the costlier one.
    let (d_ct, b_ct) = single(&current_thread());
    let (d_mt, b_mt) = single(&multi_thread(2));
    let over_ct = median(&b_minus_d(&b_ct, &d_ct));
    let over_mt = median(&b_minus_d(&b_mt, &d_mt));
    let (flavour, direct, batched, over) = if over_mt >= over_ct {
        ("multi-thread (2 workers)", d_mt, b_mt, over_mt)
    } else {
        ("current-thread", d_ct, b_ct, over_ct)
    };
    Row {
        id: "autobatch_single",
        figure: format!(
            "autobatching, one call at a time (µs per call, mean of {SINGLE_CALLS}), {flavour} runtime, the costlier flavour; reference: a direct call; +{over:.3} µs (current-thread +{over_ct:.3}, multi-thread +{over_mt:.3}); median of {REPS}"
        ),
        value: median(&batched),
        unit: "µs",
        reference: Some(median(&direct)),
        target: "under 1 µs more than the reference".into(),
        met: over < 1.0,
    }
}

const GAIN_REPS: usize = 9;

/// Speedups of 64 autobatched calls over 64 direct calls spawned as tasks,
/// the direct and batched times (ms), and the batches each repetition made.
fn gain(rt: &Runtime) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<u64>) {
    in_task(rt, || async {
        let direct = Arc::new(Busy::new());
        let batched: Arc<AutoBatched<Busy>> = Arc::new(Busy::new().to_autobatched());
        let (mut speedup, mut d, mut b, mut batches) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rep in 0..=GAIN_REPS {
            let td = spawned_calls(&direct).await;
            let before = batched.stats().batches;
            let tb = spawned_calls(&batched).await;
            if rep > 0 {
                speedup.push(td / tb);
                d.push(td * 1e3);
                b.push(tb * 1e3);
                batches.push(batched.stats().batches - before);
            }
        }
        (speedup, d, b, batches)
    })
}

fn gain_row(id: &'static str, rt: &Runtime, flavour: &str, target: f64, ideal: f64) -> Row {
    let (speedup, direct, batched, batches) = gain(rt);
    let single = batches.iter().filter(|&&n| n == 1).count();
    let value = median(&speedup);
    Row {
        id,
        figure: format!(
            "autobatching gain (x): 64 concurrent calls of 1 ms + 10 µs per context of busy CPU, {flavour} runtime, over the 64 direct calls spawned as tasks; direct {:.2} ms, autobatched {:.2} ms; one batch in {single} of {GAIN_REPS} repetitions; median of {GAIN_REPS}",
            median(&direct),
            median(&batched)
        ),
        value,
        unit: "x",
        reference: None,
        target: format!("at least {target}x (ideal {ideal}x)"),
        met: value >= target,
    }
}

/// Set in the environment of a competing process of the loaded row.
pub const ENV_SPIN: &str = "POTENTIAL_BENCH_SPIN";

/// In a process started by the loaded row, spins on the CPU until the
/// bench that started it goes away, then exits; elsewhere returns at once.
pub fn spin_if_asked() {
    if std::env::var_os(ENV_SPIN).is_none() {
        return;
    }
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    // The bench kills this process; checking the parent as well means that
    // a bench that died some other way leaves no spinner behind.
    loop {
        let until = Instant::now() + Duration::from_millis(10);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            std::process::exit(0);
        }
    }
}

/// Competing processes spinning on the CPU, killed and reaped on drop.
struct Spinners(Vec<std::process::Child>);

impl Spinners {
    fn start(n: usize) -> Self {
        let exe = std::env::current_exe().expect("the path of the bench program");
        Spinners(
            (0..n)
                .map(|_| {
                    std::process::Command::new(&exe)
                        .env(ENV_SPIN, "1")
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .expect("a spinning process")
                })
                .collect(),
        )
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // One that has already exited is reaped all the same.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const BURSTS: usize = 100;
const BURST: usize = 32;
const FRESH_EVERY: usize = 10;
const SPINNERS: usize = 4;

/// Batches per burst of [`BURST`] concurrent `logw_next` calls awaited with
/// `try_join_all` from `block_on`, a new wrapper every [`FRESH_EVERY`]
/// bursts, as a new user would write it.
fn loaded_bursts(rt: &Runtime) -> Vec<u64> {
    let contexts: Vec<Vec<u8>> = (0..BURST).map(|i| vec![(i % 4) as u8; i % 5]).collect();
    let mut batches = Vec::with_capacity(BURSTS);
    let mut wrapper = None;
    for burst in 0..BURSTS {
        if burst % FRESH_EVERY == 0 {
            // Built outside the runtime: the loop starts at the first call.
            wrapper = Some(Trivial::new().to_autobatched());
        }
        let p = wrapper.as_ref().expect("a wrapper");
        let before = p.stats().batches;
        let got = rt
            .block_on(try_join_all(contexts.iter().map(|c| p.logw_next(c))))
            .expect("every call succeeds");
        assert_eq!(got.len(), BURST);
        batches.push(p.stats().batches - before);
    }
    batches
}

fn loaded_row() -> Row {
    let rt = multi_thread(2);
    let spinners = Spinners::start(SPINNERS);
    let batches = loaded_bursts(&rt);
    drop(spinners);
    let mean = batches.iter().sum::<u64>() as f64 / batches.len() as f64;
    let worst = batches.iter().copied().max().unwrap_or(0);
    let firsts: Vec<u64> = batches.iter().step_by(FRESH_EVERY).copied().collect();
    Row {
        id: "autobatch_loaded",
        figure: format!(
            "autobatching under load, batches per burst: {BURSTS} bursts of {BURST} concurrent logw_next calls awaited with try_join_all from block_on, multi-thread runtime (2 workers), a fresh wrapper every {FRESH_EVERY} bursts, {SPINNERS} competing processes spinning; worst {worst}, first bursts of fresh wrappers {firsts:?}"
        ),
        value: mean,
        unit: "batches",
        reference: None,
        target: "mean at most 1.2, none over 3".into(),
        met: mean <= 1.2 && worst <= 3,
    }
}

/// The five autobatching rows (those that [`wanted`] selects).
pub fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    if wanted("autobatch_overhead") {
        rows.push(overhead_row());
    }
    if wanted("autobatch_single") {
        rows.push(single_row());
    }
    if wanted("autobatch_gain") {
        rows.push(gain_row(
            "autobatch_gain",
            &current_thread(),
            "current-thread",
            37.0,
            39.4,
        ));
    }
    if wanted("autobatch_gain_mt") {
        rows.push(gain_row(
            "autobatch_gain_mt",
            &multi_thread(2),
            "multi-thread (2 workers)",
            18.0,
            19.8,
        ));
    }
    if wanted("autobatch_loaded") {
        rows.push(loaded_row());
    }
    rows
}
