//! The worker-process rows of §7: each figure through a [`Multiprocess`](potential_runtime::Multiprocess)
//! pool, against a raw local-socket exchange of the same size with a child
//! process of this same executable, measured interleaved in one run (and
//! for `worker_logw_next_50k`, the same weights through raw shared memory:
//! `raw_shared`).
//!
//! The executable's `main` must call [`potential_runtime::init`] and then
//! [`serve_reference_if_asked`] before anything else: the workers and the
//! raw reference server are both this program, started again.

use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use potential_core::{LogWeights, Potential, PotentialError, Registered, Result, Vocab};
use potential_runtime::{Multiprocess, MultiprocessExt};
use serde::{Deserialize, Serialize};

use super::stats::median;
use super::{Row, wanted};
use crate::busy::{calibrate, spin};

// The runtime's shared memory: Linux, unless its portable path is asked for.
#[cfg(all(target_os = "linux", not(potential_portable)))]
mod raw_shared;

mod cpu;

/// A potential that costs nothing: the transport is all that is measured.
#[derive(Serialize, Deserialize)]
pub struct Trivial {
    vocab: Vocab<u32>,
    /// What `logw_next` answers (vocabulary + EOS), so that it costs a copy.
    weights: Vec<f64>,
}

impl Trivial {
    /// Over `0..n`.
    pub fn new(n: u32) -> Trivial {
        Trivial {
            vocab: Vocab::new(0..n).expect("a non-empty vocabulary"),
            weights: (0..=n).map(|i| -f64::from(i % 7)).collect(),
        }
    }
}

impl Potential for Trivial {
    type Token = u32;
    fn vocab(&self) -> &Vocab<u32> {
        &self.vocab
    }
    async fn complete(&self, context: &[u32]) -> Result<f64> {
        Ok(context.len() as f64)
    }
    async fn prefix(&self, context: &[u32]) -> Result<f64> {
        Ok(context.len() as f64)
    }
    async fn logw_next(&self, _: &[u32]) -> Result<LogWeights<u32>> {
        LogWeights::new(self.vocab.clone(), self.weights.clone())
    }
}

impl Registered for Trivial {}
potential_core::register!(Trivial);

/// A potential whose `complete` does `iters` rounds of floating-point work
/// (calibrated to about 1 ms).
#[derive(Serialize, Deserialize)]
pub struct Busy {
    vocab: Vocab<u32>,
    iters: u64,
}

impl Potential for Busy {
    type Token = u32;
    fn vocab(&self) -> &Vocab<u32> {
        &self.vocab
    }
    async fn complete(&self, _: &[u32]) -> Result<f64> {
        Ok(spin(self.iters))
    }
    async fn prefix(&self, _: &[u32]) -> Result<f64> {
        Ok(0.0)
    }
}

impl Registered for Busy {}
potential_core::register!(Busy);

const ENV_REFERENCE: &str = "POTENTIAL_BENCH_REFERENCE_SOCKET";

/// The size of a small reply of the raw reference server.
const SMALL_REPLY: usize = 24;

/// In the raw reference server's process: serves and exits. Returns at
/// once in any other process. Call it second in `main`, after
/// [`potential_runtime::init`].
pub fn serve_reference_if_asked() {
    let Some(path) = std::env::var_os(ENV_REFERENCE) else {
        return;
    };
    let code = match UnixStream::connect(&path).and_then(serve_reference) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reference server: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Requests are `[len: u32 LE][kind: u8][padding]`; kind 0 is answered
/// with `SMALL_REPLY` bytes, kind 1 with the f64 LE weights of a
/// vocabulary of 50,000 (400 KB), each after its own `u32` length; kind 2
/// places those weights in the shared region (see `raw_shared`) and is
/// answered as kind 0. Replies are flushed when no request is left in the
/// read buffer, so that pipelined requests cost few writes, as the pool's
/// do.
fn serve_reference(stream: UnixStream) -> std::io::Result<()> {
    // The same send buffer as the pool's sockets, so that the 400 KB
    // reply costs the same number of writes on both sides.
    #[cfg(target_os = "linux")]
    rustix::net::sockopt::set_socket_send_buffer_size(&stream, 4 << 20)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(1 << 16, stream);
    let values: Vec<f64> = (0..50_001u32).map(|i| -f64::from(i % 7)).collect();
    let big: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    #[cfg(all(target_os = "linux", not(potential_portable)))]
    let region = raw_shared::open_from_env()?;
    let small = [7u8; SMALL_REPLY];
    let mut body = Vec::new();
    loop {
        let mut len = [0; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        body.resize(u32::from_le_bytes(len) as usize, 0);
        reader.read_exact(&mut body)?;
        let reply: &[u8] = match body.first() {
            Some(1) => &big,
            #[cfg(all(target_os = "linux", not(potential_portable)))]
            Some(2) => {
                let region = region.as_ref().ok_or_else(|| {
                    std::io::Error::other("asked for shared memory it was not given")
                })?;
                raw_shared::place(region, &values)?;
                &small
            }
            _ => &small,
        };
        writer.write_all(&(reply.len() as u32).to_le_bytes())?;
        writer.write_all(reply)?;
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// A raw reference server (a child process) and the client's end.
struct Reference {
    child: Child,
    stream: UnixStream,
    dir: std::path::PathBuf,
    buf: Vec<u8>,
    #[cfg(all(target_os = "linux", not(potential_portable)))]
    shared: raw_shared::Shared,
}

impl Reference {
    fn start() -> std::io::Result<Reference> {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(std::io::Error::other)?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("potential-bench-{tag}"));
        std::fs::create_dir(&dir)?;
        let path = dir.join("raw.sock");
        let listener = UnixListener::bind(&path)?;
        let mut command = Command::new(std::env::current_exe()?);
        command.env(ENV_REFERENCE, &path).stdin(Stdio::null());
        // Room for one reply of 50,000 weights.
        #[cfg(all(target_os = "linux", not(potential_portable)))]
        let shared = {
            let (shared, (name, value)) = raw_shared::Shared::create(1 << 20)?;
            command.env(name, value);
            shared
        };
        let child = command.spawn()?;
        let (stream, _) = listener.accept()?;
        let _ = std::fs::remove_file(&path);
        Ok(Reference {
            child,
            stream,
            dir,
            buf: Vec::new(),
            #[cfg(all(target_os = "linux", not(potential_portable)))]
            shared,
        })
    }

    fn request(kind: u8) -> [u8; 20] {
        let mut r = [0u8; 20];
        r[..4].copy_from_slice(&16u32.to_le_bytes());
        r[4] = kind;
        r
    }

    fn read_reply(stream: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let mut len = [0; 4];
        stream.read_exact(&mut len)?;
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        stream.read_exact(buf)
    }

    /// One small request and its reply.
    fn ping(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&Self::request(0))?;
        Self::read_reply(&mut self.stream, &mut self.buf)
    }

    /// One request for 400 KB of weights, decoded into a vector.
    fn weights(&mut self) -> std::io::Result<Vec<f64>> {
        self.stream.write_all(&Self::request(1))?;
        Self::read_reply(&mut self.stream, &mut self.buf)?;
        Ok(self
            .buf
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// One request for 400 KB of weights through the shared region: the
    /// weights copied out of it into a vector. `None` where the runtime
    /// has no shared memory.
    fn weights_shared(&mut self) -> std::io::Result<Option<Vec<f64>>> {
        #[cfg(all(target_os = "linux", not(potential_portable)))]
        {
            self.stream.write_all(&Self::request(2))?;
            Self::read_reply(&mut self.stream, &mut self.buf)?;
            self.shared.read(50_001).map(Some)
        }
        #[cfg(not(all(target_os = "linux", not(potential_portable))))]
        Ok(None)
    }

    /// `n` small requests in flight: one thread writes, this one reads.
    fn stream(&mut self, n: usize) -> std::io::Result<()> {
        let mut out = BufWriter::new(self.stream.try_clone()?);
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            for _ in 0..n {
                out.write_all(&Self::request(0))?;
            }
            out.flush()
        });
        let mut input = BufReader::new(&self.stream);
        for _ in 0..n {
            Self::read_reply(&mut input, &mut self.buf)?;
        }
        writer
            .join()
            .map_err(|_| std::io::Error::other("writer panicked"))?
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Repetitions of each interleaved measurement (the first is a warm-up).
const REPS: usize = 8;

fn per_call(start: Instant, calls: usize) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn ratio_row(
    id: &'static str,
    figure: String,
    unit: &'static str,
    (value, reference): (f64, f64),
    factor: f64,
) -> Row {
    Row {
        id,
        figure,
        value,
        unit,
        reference: Some(reference),
        target: format!("within {factor}x of the reference"),
        met: value <= factor * reference,
    }
}

/// Medians of interleaved (figure, reference) repetitions, warm-up dropped.
fn medians(samples: &[(f64, f64)]) -> (f64, f64) {
    let kept = &samples[1.min(samples.len())..];
    let (a, b): (Vec<f64>, Vec<f64>) = kept.iter().copied().unzip();
    (median(&a), median(&b))
}

/// One block of `calls` exchanges with the raw reference, then one block of
/// `calls` calls through the pool, each timed alone: the per-call medians
/// of both (medians, so that a stray slow round trip does not weigh).
async fn one_at_a_time<Fut>(
    calls: usize,
    raw: impl FnMut() -> std::io::Result<()>,
    mut through: impl FnMut() -> Fut,
) -> Result<(f64, f64)>
where
    Fut: Future<Output = Result<()>>,
{
    let raw = each_raw(calls, raw)?;
    let mut through_times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        through().await?;
        through_times.push(per_call(t, 1));
    }
    Ok((median(&through_times), raw))
}

/// `calls` raw exchanges, each timed alone (blocking I/O, off the
/// runtime's threads): their per-call median (µs).
fn each_raw(calls: usize, mut raw: impl FnMut() -> std::io::Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(calls);
    tokio::task::block_in_place(|| -> std::io::Result<()> {
        for _ in 0..calls {
            let t = Instant::now();
            raw()?;
            times.push(per_call(t, 1));
        }
        Ok(())
    })
    .map_err(PotentialError::custom)?;
    Ok(median(&times))
}

async fn roundtrip(reference: &mut Reference) -> Result<Row> {
    let pool = Trivial::new(4).to_multiprocess(1).await?;
    let ctx = [1u32];
    let calls = 250;
    let mut samples = Vec::new();
    for _ in 0..REPS {
        samples.push(
            one_at_a_time(
                calls,
                || reference.ping(),
                || async { pool.complete(&ctx).await.map(|_| ()) },
            )
            .await?,
        );
    }
    pool.shutdown().await;
    Ok(ratio_row(
        "worker_roundtrip",
        format!(
            "one trivial call at a time through a worker (µs, median of {} calls); reference: raw blocking local-socket ping-pong",
            calls * (REPS - 1)
        ),
        "µs",
        medians(&samples),
        2.0,
    ))
}

async fn throughput(reference: &mut Reference) -> Result<Row> {
    let pool = Trivial::new(4).to_multiprocess(2).await?;
    let n = 2000;
    let contexts: Vec<Vec<u32>> = (0..n).map(|i| vec![i as u32 % 4]).collect();
    let mut samples = Vec::new();
    for _ in 0..REPS {
        let t = Instant::now();
        tokio::task::block_in_place(|| reference.stream(n)).map_err(PotentialError::custom)?;
        let raw = per_call(t, n);
        let t = Instant::now();
        // Concurrent calls as users write them. The pool's replies wait in
        // its own table, outside tokio's cooperative budget, so a join_all
        // over thousands of calls stays linear.
        let all = futures::future::join_all(contexts.iter().map(|c| pool.complete(c))).await;
        for r in all {
            black_box(r?);
        }
        samples.push((per_call(t, n), raw));
    }
    pool.shutdown().await;
    Ok(ratio_row(
        "worker_throughput",
        format!(
            "{n} concurrent trivial calls through 2 workers, per call (µs); reference: raw local-socket stream with {n} requests in flight"
        ),
        "µs",
        medians(&samples),
        6.0,
    ))
}

/// The vocabulary of the transfer rows: SmolLM2's order of size, whose
/// `logw_next` is a 400 KB reply.
const LARGE_VOCAB: u32 = 50_000;

/// A copy of `src` into `dst`, as the decoding of a reply at the
/// bandwidth of memory would cost: the floor of any transport.
fn copy_into(dst: &mut [f64], src: &[f64]) {
    dst.copy_from_slice(src);
    black_box(dst);
}

async fn logw_next_50k(reference: &mut Reference) -> Result<Row> {
    let pool = Trivial::new(LARGE_VOCAB).to_multiprocess(1).await?;
    let width = LARGE_VOCAB as usize + 1;
    let (src, mut dst) = (vec![0.5f64; width], vec![0.0f64; width]);
    let ctx = [1u32];
    let calls = 40;
    let mut samples = Vec::new();
    let mut socket = Vec::new();
    let mut shared_raw = Vec::new();
    for _ in 0..REPS {
        // The floor: a 64-byte round trip and one copy of the payload.
        let (through, floor) = one_at_a_time(
            calls,
            || {
                reference.ping()?;
                copy_into(&mut dst, &src);
                Ok(())
            },
            || async { pool.logw_next(&ctx).await.map(|w| drop(black_box(w))) },
        )
        .await?;
        // The second reference: the whole payload through a raw socket.
        let raw = each_raw(calls, || reference.weights().map(|w| drop(black_box(w))))?;
        // The third: the same through raw shared memory, where there is some.
        let mut available = true;
        let raw_shared = each_raw(calls, || {
            let weights = reference.weights_shared()?;
            available = weights.is_some();
            drop(black_box(weights));
            Ok(())
        })?;
        samples.push((through, floor));
        socket.push(raw);
        shared_raw.extend(available.then_some(raw_shared));
    }
    let (shared, fallbacks) = (pool.stats()[0].shared, pool.stats()[0].fallbacks);
    pool.shutdown().await;
    let raw = median(&socket[1..]);
    let raw_shared = match shared_raw.get(1..) {
        Some(kept) if !kept.is_empty() => format!(
            "; the raw exchange through shared memory (the server's fresh copy of its weights, its copy into the region, this process's copy out, a 64-byte round trip: the floor of this transport): {:.1} µs",
            median(kept)
        ),
        _ => String::new(),
    };
    Ok(ratio_row(
        "worker_logw_next_50k",
        format!(
            "logw_next through a worker with a vocabulary of 50,000 (µs; {shared} replies through shared memory, {fallbacks} through the socket for want of room); reference: a raw 64-byte local-socket round trip plus one copy of the 400 KB; the raw local-socket exchange of the 400 KB: {raw:.1} µs{raw_shared}"
        ),
        "µs",
        medians(&samples),
        1.5,
    ))
}

/// Contexts per batch: what the main job's autobatcher gathers.
const BATCH_CONTEXTS: usize = 64;

async fn batch_logw_next() -> Result<Row> {
    // Shared: the reference calls the same potential in this process.
    let local = Arc::new(Trivial::new(LARGE_VOCAB));
    let pool = local.clone().to_multiprocess(2).await?;
    let contexts: Vec<Vec<u32>> = (0..BATCH_CONTEXTS).map(|i| vec![i as u32]).collect();
    let width = LARGE_VOCAB as usize + 1;
    let (src, mut dst) = (
        vec![0.5f64; width * BATCH_CONTEXTS],
        vec![0.0f64; width * BATCH_CONTEXTS],
    );
    let calls = 10;
    let mut samples = Vec::new();
    for _ in 0..REPS {
        // The reference: the same batch in this process, then one copy of
        // all its bytes.
        let mut floor = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            black_box(local.batch_logw_next(&contexts).await?);
            copy_into(&mut dst, &src);
            floor.push(per_call(t, 1));
        }
        let mut through = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            black_box(pool.batch_logw_next(&contexts).await?);
            through.push(per_call(t, 1));
        }
        samples.push((median(&through), median(&floor)));
    }
    pool.shutdown().await;
    Ok(ratio_row(
        "worker_batch_logw_next_50k",
        format!(
            "batch_logw_next of {BATCH_CONTEXTS} contexts, vocabulary of {LARGE_VOCAB}, through 2 workers (µs); reference: the batch in this process plus one copy of its {:.1} MB",
            (8 * width * BATCH_CONTEXTS) as f64 / 1e6
        ),
        "µs",
        medians(&samples),
        1.5,
    ))
}

async fn scaling(workers: usize, iters: u64) -> Result<Row> {
    let busy = Arc::new(Busy {
        vocab: Vocab::new([0u32])?,
        iters,
    });
    let pool = Arc::new(busy.clone().to_multiprocess(workers).await?);
    let calls = 32 * workers;
    let (mut samples, mut threaded, mut shares) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPS.min(6) {
        let t = Instant::now();
        for _ in 0..calls {
            black_box(busy.complete(&[0]).await?);
        }
        let direct = t.elapsed().as_secs_f64();
        // The raw reference: as many threads of this process as workers,
        // each spinning through its share of the calls' work, with no
        // communication at all: what the cores give this work here (other
        // tenants' load included).
        let t = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    for _ in 0..calls / workers {
                        black_box(spin(iters));
                    }
                });
            }
        });
        threaded.push(direct / t.elapsed().as_secs_f64());
        let cpu = cpu_split(&pool);
        let t = Instant::now();
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.complete(&[0]).await })
            })
            .collect();
        for task in tasks {
            black_box(task.await.map_err(PotentialError::custom)??);
        }
        let wall = t.elapsed();
        samples.push((direct / wall.as_secs_f64(), workers as f64));
        if let (Some(before), Some(after)) = (cpu, cpu_split(&pool)) {
            let cores = wall.as_secs_f64() * workers as f64;
            shares.push((
                after.0.since(&before.0).as_secs_f64() / cores,
                after.1.since(&before.1).as_secs_f64() / cores,
            ));
        }
    }
    pool.shutdown().await;
    let (speedup, n) = medians(&samples);
    let threads = median(&threaded[1.min(threaded.len())..]);
    // Where the cores went while the pool worked: what is not the
    // workers' is this process's dispatch and replies, other tenants, or
    // idle (a worker done before the other).
    let shares = if shares.is_empty() {
        String::new()
    } else {
        let (parent, pool) = medians(&shares);
        format!(
            "; while the pool worked, its workers ran {:.1}% of the {workers} core(s)' time and this process {:.1}%",
            100.0 * pool,
            100.0 * parent
        )
    };
    Ok(Row {
        id: if workers == 1 {
            "worker_scaling_1"
        } else {
            "worker_scaling"
        },
        figure: format!(
            "{calls} CPU-bound calls of about 1 ms, speedup (x) with {workers} worker(s) over direct calls in this process; reference: {workers}; raw reference: {workers} thread(s) of this process doing the same work, {threads:.3}x{shares}"
        ),
        value: speedup,
        unit: "x",
        reference: Some(n),
        target: format!("at least {:.2}x", 0.95 * n),
        met: speedup >= 0.95 * n,
    })
}

/// The CPU time of the threads of this process and of `pool`'s workers,
/// where it can be read (Linux).
fn cpu_split(pool: &Multiprocess<u32>) -> Option<(cpu::Threads, cpu::Threads)> {
    Some((
        cpu::Threads::read(&[std::process::id()])?,
        cpu::Threads::read(&pool.worker_pids())?,
    ))
}

/// Calls of about 1 ms queued at once on one worker, for
/// `worker_first_answer`.
const FIRST_ANSWER_CALLS: usize = 1_000;

async fn first_answer(iters: u64) -> Result<Row> {
    use futures::StreamExt;
    let busy = Busy {
        vocab: Vocab::new([0u32])?,
        iters,
    };
    let pool = busy.to_multiprocess(1).await?;
    let mut samples = Vec::new();
    for _ in 0..4 {
        let mut alone = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            black_box(pool.complete(&[0]).await?);
            alone.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let one = median(&alone);
        let t = Instant::now();
        let mut all: futures::stream::FuturesUnordered<_> = (0..FIRST_ANSWER_CALLS)
            .map(|_| pool.complete(&[0]))
            .collect();
        if let Some(first) = all.next().await {
            black_box(first?);
        }
        let first = t.elapsed().as_secs_f64() * 1e3;
        while let Some(answer) = all.next().await {
            black_box(answer?);
        }
        samples.push((first, one));
    }
    pool.shutdown().await;
    Ok(ratio_row(
        "worker_first_answer",
        format!(
            "{FIRST_ANSWER_CALLS} concurrent calls of about 1 ms on one worker: time to the first answer (ms); reference: one call alone (median of 10)"
        ),
        "ms",
        medians(&samples),
        3.0,
    ))
}

/// Calls of about 1 ms in flight on two workers, for `worker_kill_lost`.
const KILL_CALLS: usize = 2_000;

/// `KILL_CALLS` concurrent calls through 2 workers; with `kill`, the first
/// worker is killed once a quarter of them are answered. Gives the wall
/// time (ms) and the calls that failed.
#[cfg(target_os = "linux")]
async fn kill_run(pool: &potential_runtime::Multiprocess<u32>, kill: bool) -> (f64, usize) {
    use futures::StreamExt;
    let t = Instant::now();
    let mut all: futures::stream::FuturesUnordered<_> =
        (0..KILL_CALLS).map(|_| pool.complete(&[0])).collect();
    let (mut answered, mut failed) = (0, 0);
    while let Some(answer) = all.next().await {
        answered += 1;
        failed += usize::from(answer.is_err());
        if kill && answered == KILL_CALLS / 4 {
            let pid = pool.stats()[0].pid.expect("the first worker runs");
            let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    (t.elapsed().as_secs_f64() * 1e3, failed)
}

#[cfg(target_os = "linux")]
async fn kill_lost(iters: u64) -> Result<Row> {
    let busy = Busy {
        vocab: Vocab::new([0u32])?,
        iters,
    };
    let pool = busy.to_multiprocess(2).await?;
    let (calm, calm_failed) = kill_run(&pool, false).await;
    let (killed, failed) = kill_run(&pool, true).await;
    let retried: u64 = pool.stats().iter().map(|s| s.retried).sum();
    pool.shutdown().await;
    // The calls the dead worker held are computed again by the other
    // worker: that work is lost, whatever the runtime does.
    let per_call = calm / (KILL_CALLS as f64 / 2.0);
    let lost = retried as f64 * per_call;
    let extra = killed - calm;
    let failed = failed + calm_failed;
    Ok(Row {
        id: "worker_kill_lost",
        figure: format!(
            "{KILL_CALLS} concurrent calls of about 1 ms on 2 workers, one SIGKILLed mid-run: calls failed; \
             extra wall time {extra:.1} ms over the same run without the kill ({calm:.1} ms), \
             for {retried} calls re-sent ({lost:.1} ms of lost work)"
        ),
        value: failed as f64,
        unit: "calls",
        reference: None,
        target: "0 failed; extra wall time under 50 ms plus the lost work".into(),
        met: failed == 0 && extra - lost < 50.0,
    })
}

/// Concurrent callers in `worker_timeout_burst`.
const BURST_CALLERS: usize = 400;

/// `BURST_CALLERS` concurrent callers of 1 ms calls on 2 workers with a
/// 100 ms request timeout: the calls queue for about 200 ms per worker,
/// and a timeout that timed the queue killed busy workers and failed
/// thousands of calls.
async fn timeout_burst(iters: u64) -> Result<Row> {
    let busy = Busy {
        vocab: Vocab::new([0u32])?,
        iters,
    };
    let options = potential_runtime::MultiprocessOptions::new()
        .workers(2)
        .request_timeout(Duration::from_millis(100));
    let pool = busy.to_multiprocess_with(options).await?;
    let t = Instant::now();
    let answers = futures::future::join_all((0..BURST_CALLERS).map(|_| pool.complete(&[0]))).await;
    let wall = t.elapsed().as_secs_f64() * 1e3;
    let failed = answers.iter().filter(|a| a.is_err()).count();
    let restarts: u32 = pool.stats().iter().map(|s| s.restarts).sum();
    pool.shutdown().await;
    Ok(Row {
        id: "worker_timeout_burst",
        figure: format!(
            "{BURST_CALLERS} concurrent callers of 1 ms calls on 2 workers with a 100 ms request timeout: \
             calls failed ({wall:.0} ms in all, {restarts} workers restarted)"
        ),
        value: failed as f64,
        unit: "calls",
        reference: None,
        target: "0".into(),
        met: failed == 0,
    })
}

async fn startup() -> Result<Row> {
    let mut times = Vec::new();
    for _ in 0..REPS + 2 {
        let p = Trivial::new(4);
        let t = Instant::now();
        let pool = p.to_multiprocess(2).await?;
        black_box(pool.complete(&[1]).await?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        pool.shutdown().await;
    }
    let value = median(&times[1..]);
    Ok(Row {
        id: "worker_startup",
        figure: format!(
            "to_multiprocess(2) until the first answer (ms, median of {})",
            times.len() - 1
        ),
        value,
        unit: "ms",
        reference: None,
        target: "under 20 ms".into(),
        met: value < 20.0,
    })
}

/// Measures every worker row. Needs `main` to have called
/// [`potential_runtime::init`] and [`serve_reference_if_asked`] first.
pub fn rows() -> Vec<Row> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let iters = calibrate(Duration::from_millis(1));
    let measured = runtime.block_on(async {
        tokio::spawn(async move {
            let mut reference = Reference::start().map_err(PotentialError::custom)?;
            let mut rows = Vec::new();
            if wanted("worker_roundtrip") {
                rows.push(roundtrip(&mut reference).await?);
            }
            if wanted("worker_throughput") {
                rows.push(throughput(&mut reference).await?);
            }
            if wanted("worker_scaling") {
                rows.push(scaling(1, iters).await?);
                if cores > 1 {
                    rows.push(scaling(cores, iters).await?);
                }
            }
            if wanted("worker_logw_next_50k") {
                rows.push(logw_next_50k(&mut reference).await?);
            }
            if wanted("worker_batch_logw_next_50k") {
                rows.push(batch_logw_next().await?);
            }
            if wanted("worker_startup") {
                rows.push(startup().await?);
            }
            if wanted("worker_first_answer") {
                rows.push(first_answer(iters).await?);
            }
            #[cfg(target_os = "linux")]
            if wanted("worker_kill_lost") {
                rows.push(kill_lost(iters).await?);
            }
            if wanted("worker_timeout_burst") {
                rows.push(timeout_burst(iters).await?);
            }
            Ok::<_, PotentialError>(rows)
        })
        .await
    });
    match measured {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => panic!("worker benchmarks failed: {e}"),
        Err(e) => panic!("worker benchmarks panicked: {e}"),
    }
}
