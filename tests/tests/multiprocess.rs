//! Worker processes: genlm-control's multiprocess tests in Rust, plus faults,
//! refused connections and cleanup.
//!
//! This target has `harness = false`: the workers re-execute this binary,
//! so `main` calls `potential_runtime::init()` before anything else, then
//! runs each test in turn on a fresh runtime. `cargo test -p potential-tests
//! --test multiprocess -- NAME` runs the tests whose name contains NAME.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::Duration;

use potential_core::ops::Product;
use potential_core::{Method, Potential, PotentialError, PotentialExt, Symbol};
use potential_runtime::protocol::handshake::{Hello, Refusal, Secret};
use potential_runtime::{
    Multiprocess, MultiprocessExt, MultiprocessOptions, RestartPolicy, SocketLocation, WorkerState,
};
use potential_tests::worker_potentials::{CountB, Faulty, Length, Paced, Unlisted};
use potential_tests::{children, parent_of};

const ROLE: &str = "POTENTIAL_TESTS_ROLE";

type Test = fn() -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), || Box::pin($name()) as Pin<Box<dyn Future<Output = ()>>>)),*]
    };
}

fn main() {
    potential_runtime::init();
    if std::env::var(ROLE).as_deref() == Ok("parent") {
        return orphaning_parent();
    }
    let all: &[(&str, Test)] = tests![
        genlm_results_are_equal_through_workers,
        autobatching_inside_each_worker_gives_the_same_answers,
        autobatching_in_front_of_workers_gives_the_same_answers,
        a_product_of_registered_potentials_runs_in_workers,
        debug_names_the_potential_and_the_workers,
        a_panic_is_an_error_and_the_worker_lives,
        a_killed_worker_fails_its_call_and_the_pool_recovers,
        a_crash_loop_is_given_up_and_calls_fail_fast,
        bad_connections_are_refused_while_the_pool_serves,
        a_killed_parent_leaves_no_worker_behind,
        drop_and_shutdown_leave_no_process_and_no_socket,
        an_unregistered_potential_is_refused_at_start,
        errors_keep_their_variants,
        a_request_timeout_fails_the_call,
        replies_leave_a_worker_as_they_are_computed,
        a_stuck_worker_is_killed_and_ties_go_round_robin,
        a_dead_workers_call_is_retried_on_a_live_worker,
        a_poison_pill_fails_alone_and_gives_no_worker_up,
        a_given_up_worker_comes_back_after_its_window,
        connections_waiting_for_their_hello_are_capped,
        no_secret_is_in_a_workers_environment,
        a_busy_worker_is_not_killed_by_the_request_timeout,
        timeout_kills_do_not_give_a_worker_up,
        an_abandoned_call_counts_as_load_until_answered,
        bad_tokens_and_nan_are_the_same_errors_as_in_process,
        a_flood_of_connections_does_not_keep_a_restart_out,
        pools_opened_and_closed_leave_the_heap_flat,
        innocent_calls_retried_with_a_poison_pill_succeed,
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in all {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let outcome = std::panic::catch_unwind(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(test());
        });
        let leftover = children();
        let ok = outcome.is_ok() && leftover.is_empty();
        if outcome.is_ok() && !leftover.is_empty() {
            eprintln!("{name}: child processes left behind: {leftover:?}");
        }
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// Waits (without polling) until `pid` has exited, up to `limit`.
fn exits_within(pid: u32, limit: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return true;
    };
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return true,
        Err(e) => panic!("pidfd_open: {e}"),
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: limit.as_secs() as i64,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&timeout)).expect("poll") == 1
}

fn length_contexts() -> Vec<Vec<char>> {
    vec![
        vec![],
        vec!['a'],
        vec!['a', 'b'],
        vec!['c', 'c', 'a', 'b'],
        vec!['b'],
    ]
}

async fn genlm_results_are_equal_through_workers() {
    // Shared: the plain potential stays here while the workers rebuild it.
    let local = std::sync::Arc::new(Length::abc());
    let workers = local
        .clone()
        .to_multiprocess(2)
        .await
        .expect("workers start");
    assert_same_answers(&*local, &workers).await;
    // A batch is split across both workers.
    let stats = workers.stats();
    assert!(
        stats
            .iter()
            .all(|s| s.served > 0 && s.state == WorkerState::Running),
        "{stats:?}"
    );
    workers.shutdown().await;
}

/// genlm's checks: every method, single and batch, with and without EOS,
/// answers through `remote` what `local` answers in this process; and the
/// single methods also when called concurrently (as an autobatcher
/// gathers them).
async fn assert_same_answers(
    local: &impl Potential<Token = char>,
    remote: &impl Potential<Token = char>,
) {
    let workers = remote;
    assert_eq!(workers.vocab(), local.vocab());
    // A context with a token outside the vocabulary (a product's is the
    // intersection) has no next-token weights, here or in a worker.
    let (contexts, outside): (Vec<_>, Vec<_>) = length_contexts()
        .into_iter()
        .partition(|c| c.iter().all(|t| local.vocab().contains(t)));
    for c in &outside {
        for err in [
            local.logw_next(c).await.unwrap_err(),
            workers.logw_next(c).await.unwrap_err(),
        ] {
            assert!(matches!(err, PotentialError::UnknownToken { .. }), "{err}");
        }
    }
    for c in &contexts {
        assert_eq!(
            workers.complete(c).await.unwrap(),
            local.complete(c).await.unwrap()
        );
        assert_eq!(
            workers.prefix(c).await.unwrap(),
            local.prefix(c).await.unwrap()
        );
        assert_eq!(
            workers.logw_next(c).await.unwrap(),
            local.logw_next(c).await.unwrap()
        );
        let mut with_eos: Vec<Symbol<char>> = c.iter().copied().map(Symbol::Token).collect();
        assert_eq!(
            workers.score(&with_eos).await.unwrap(),
            local.score(&with_eos).await.unwrap()
        );
        with_eos.push(Symbol::Eos);
        assert_eq!(
            workers.score(&with_eos).await.unwrap(),
            local.score(&with_eos).await.unwrap()
        );
    }
    assert_eq!(
        workers.batch_complete(&contexts).await.unwrap(),
        local.batch_complete(&contexts).await.unwrap()
    );
    assert_eq!(
        workers.batch_prefix(&contexts).await.unwrap(),
        local.batch_prefix(&contexts).await.unwrap()
    );
    assert_eq!(
        workers.batch_logw_next(&contexts).await.unwrap(),
        local.batch_logw_next(&contexts).await.unwrap()
    );
    let scored: Vec<Vec<Symbol<char>>> = contexts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut s: Vec<_> = c.iter().copied().map(Symbol::Token).collect();
            if i % 2 == 0 {
                s.push(Symbol::Eos);
            }
            s
        })
        .collect();
    assert_eq!(
        workers.batch_score(&scored).await.unwrap(),
        local.batch_score(&scored).await.unwrap()
    );
    let together = futures::future::join_all(contexts.iter().map(|c| async {
        (
            workers.complete(c).await.unwrap(),
            workers.prefix(c).await.unwrap(),
            workers.logw_next(c).await.unwrap(),
        )
    }))
    .await;
    for (c, (complete, prefix, logw_next)) in contexts.iter().zip(together) {
        assert_eq!(complete, local.complete(c).await.unwrap());
        assert_eq!(prefix, local.prefix(c).await.unwrap());
        assert_eq!(logw_next, local.logw_next(c).await.unwrap());
    }
    let scores = futures::future::join_all(scored.iter().map(|s| workers.score(s))).await;
    for (s, score) in scored.iter().zip(scores) {
        assert_eq!(score.unwrap(), local.score(s).await.unwrap());
    }
}

async fn autobatching_inside_each_worker_gives_the_same_answers() {
    let local = Length::abc();
    let batched = Length::abc().to_autobatched();
    // The recipe carries the wrapper: each worker rebuilds an autobatched
    // `Length` with a batching loop on its own runtime.
    let workers = batched.to_multiprocess(2).await.expect("workers start");
    let repr = format!("{workers:?}");
    assert!(
        repr.contains("AutoBatched(potential_tests::worker_potentials::Length)"),
        "{repr}"
    );
    assert_same_answers(&local, &workers).await;
    workers.shutdown().await;
}

async fn autobatching_in_front_of_workers_gives_the_same_answers() {
    let local = Length::abc();
    let workers = Length::abc()
        .to_multiprocess(2)
        .await
        .expect("workers start");
    // Batches are formed here and each is split across the workers.
    let batched = workers.to_autobatched();
    assert_same_answers(&local, &batched).await;
    let stats = batched.stats();
    assert!(stats.requests > 0 && stats.batches > 0, "{stats:?}");
    assert_eq!(stats.failed_batches, 0, "{stats:?}");
    batched.shutdown().await;
    let workers = batched.inner();
    assert!(
        workers.stats().iter().all(|s| s.served > 0),
        "{:?}",
        workers.stats()
    );
    workers.shutdown().await;
}

async fn a_product_of_registered_potentials_runs_in_workers() {
    let local = Product::new(Length::abc(), CountB::abx()).unwrap();
    let workers = Product::new(Length::abc(), CountB::abx())
        .unwrap()
        .to_multiprocess(2)
        .await
        .expect("workers start");
    let repr = format!("{workers:?}");
    assert!(
        repr.contains("Product(potential_tests::worker_potentials::Length, potential_tests::worker_potentials::CountB)"),
        "{repr}"
    );
    assert_same_answers(&local, &workers).await;
    workers.shutdown().await;
}

async fn debug_names_the_potential_and_the_workers() {
    let workers = Length::abc().to_multiprocess(1).await.unwrap();
    let repr = format!("{workers:?}");
    assert!(repr.starts_with("Multiprocess"), "{repr}");
    assert!(
        repr.contains("Length") && repr.contains("workers: 1"),
        "{repr}"
    );
}

async fn a_panic_is_an_error_and_the_worker_lives() {
    let workers = Faulty::new().to_multiprocess(1).await.unwrap();
    let pid = workers.worker_pids();
    let err = workers.complete(&[0]).await.unwrap_err();
    assert!(
        matches!(&err, PotentialError::Panicked(m) if m == "asked to panic"),
        "{err:?}"
    );
    assert_eq!(workers.complete(&[3, 3]).await.unwrap(), 2.0);
    assert_eq!(workers.worker_pids(), pid, "the same worker answers");
    assert_eq!(workers.stats()[0].restarts, 0);
}

/// Awaits a condition on the pool, yielding to the runtime between checks.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::task::yield_now().await;
    }
}

async fn a_killed_worker_fails_its_call_and_the_pool_recovers() {
    let workers = Faulty::new()
        .to_multiprocess_with(MultiprocessOptions::new().workers(1).retry(false))
        .await
        .unwrap();
    let workers = std::sync::Arc::new(workers);
    let pid = workers.worker_pids()[0];
    let stuck = tokio::spawn({
        let w = workers.clone();
        async move { w.prefix(&[2]).await }
    });
    until("the call is in flight", || {
        workers.stats()[0].in_flight == 1
    })
    .await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let err = stuck.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, PotentialError::WorkerFailure(m) if m.contains("died")),
        "{err:?}"
    );
    for i in 0..100u8 {
        let ctx = vec![3; usize::from(i % 5) + 2];
        assert_eq!(workers.complete(&ctx).await.unwrap(), ctx.len() as f64);
    }
    let stats = workers.stats();
    assert_eq!(stats[0].restarts, 1, "{stats:?}");
    assert_ne!(stats[0].pid, Some(pid));
}

/// One `Faulty` worker, given up after `max_deaths` deaths within
/// `window`, whose failed calls are not retried (so that each death is
/// counted, as a crash loop's are).
async fn one_faulty_worker_without_retry(max_deaths: u32, window: Duration) -> Multiprocess<u8> {
    let policy = RestartPolicy { max_deaths, window };
    let options = MultiprocessOptions::new()
        .workers(1)
        .restart(policy)
        .retry(false);
    Faulty::new().to_multiprocess_with(options).await.unwrap()
}

async fn a_crash_loop_is_given_up_and_calls_fail_fast() {
    let workers = one_faulty_worker_without_retry(3, Duration::from_secs(60)).await;
    for _ in 0..3 {
        let err = workers.complete(&[1]).await.unwrap_err();
        assert!(matches!(err, PotentialError::WorkerFailure(_)), "{err:?}");
    }
    assert_eq!(workers.stats()[0].state, WorkerState::GivenUp);
    assert_eq!(workers.stats()[0].restarts, 2);
    let err = workers.complete(&[3]).await.unwrap_err();
    // The error says why, with the last exit, and how the worker comes back.
    assert!(
        matches!(&err, PotentialError::WorkerFailure(m)
            if m.contains("given up") && m.contains("signal") && m.contains("revive")),
        "{err:?}"
    );
    assert_eq!(workers.revive().await, 1);
    assert_eq!(workers.stats()[0].state, WorkerState::Running);
    assert_eq!(workers.complete(&[3]).await.unwrap(), 1.0);
}

/// Connects to the pool's socket as a stranger, sends `bytes`, and waits
/// until the pool hangs up.
fn knock(workers: &Multiprocess<char>, bytes: &[u8]) {
    use interprocess::local_socket::{Stream, prelude::*};
    let mut stream = Stream::connect(workers.socket().to_name().unwrap()).unwrap();
    // A pool that refuses at once (too many waiting) may hang up before
    // the bytes are written: a broken pipe is that refusal too.
    if let Err(e) = stream.write_all(bytes) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        return;
    }
    let mut rest = Vec::new();
    // The pool closes the connection once it has refused it.
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a refused peer is told nothing");
}

async fn bad_connections_are_refused_while_the_pool_serves() {
    let workers = Length::abc().to_multiprocess(1).await.unwrap();
    let stranger = Secret::random().unwrap();
    let mut old = Hello::new(&stranger, 1);
    old.version = 99;
    let mut oversized = (1u32 << 30).to_le_bytes().to_vec();
    oversized.extend_from_slice(&[0; 64]);
    type Case = (Vec<u8>, fn(&Refusal) -> bool);
    let cases: [Case; 4] = [
        (Hello::new(&stranger, 1).to_frame(), |r| {
            *r == Refusal::WrongSecret
        }),
        (vec![0xa5; 100], |r| matches!(r, Refusal::BadFrame(_))),
        (
            oversized,
            |r| matches!(r, Refusal::BadFrame(m) if m.contains("exceeds")),
        ),
        (old.to_frame(), |r| *r == Refusal::WrongVersion { got: 99 }),
    ];
    for (i, (bytes, expected)) in cases.into_iter().enumerate() {
        let w = &workers;
        tokio::task::block_in_place(|| knock(w, &bytes));
        let refusals = workers.refusals();
        assert_eq!(refusals.len(), i + 1, "{refusals:?}");
        assert!(expected(&refusals[i]), "case {i}: {:?}", refusals[i]);
        assert_eq!(
            workers.complete(&['a', 'b']).await.unwrap(),
            -2.0,
            "the pool keeps serving"
        );
    }
}

/// The child role of `a_killed_parent_leaves_no_worker_behind`: starts
/// two workers, prints their pids, and waits to be killed.
fn orphaning_parent() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let workers = Length::abc().to_multiprocess(2).await.unwrap();
        let pids: Vec<String> = workers.worker_pids().iter().map(u32::to_string).collect();
        println!("{}", pids.join(" "));
        std::io::stdout().flush().unwrap();
        // Wait for the test to kill us (stdin never closes before that).
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    });
}

async fn a_killed_parent_leaves_no_worker_behind() {
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "parent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{line:?}");
    for pid in &pids {
        assert_eq!(parent_of(*pid), Some(parent.id()));
    }
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    for pid in pids {
        assert!(
            exits_within(pid, Duration::from_secs(10)),
            "worker {pid} outlived its parent"
        );
    }
}

async fn drop_and_shutdown_leave_no_process_and_no_socket() {
    let dir = std::env::temp_dir();
    for graceful in [false, true] {
        let options = MultiprocessOptions::new()
            .workers(2)
            .socket(SocketLocation::Directory(dir.clone()));
        let workers = Length::abc().to_multiprocess_with(options).await.unwrap();
        let private = workers.socket_dir().unwrap().to_path_buf();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&private).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
        assert!(
            std::fs::read_dir(&private).unwrap().count() == 1,
            "the socket file"
        );
        let pids = workers.worker_pids();
        assert_eq!(children().len(), 2);
        assert_eq!(workers.complete(&['a']).await.unwrap(), -1.0);
        if graceful {
            workers.shutdown().await;
            // Each worker saw its socket close and exited by itself: the
            // pool reaped it with a clean exit, without the fallback kill
            // that shutdown uses after its grace period.
            for s in workers.stats() {
                assert_eq!(s.state, WorkerState::Stopped);
                let exit = s.last_exit.expect("the worker was reaped");
                assert!(exit.success(), "slot {} ended with {exit}", s.slot);
            }
            let err = workers.complete(&['a']).await.unwrap_err();
            assert!(matches!(err, PotentialError::Closed(_)), "{err:?}");
        }
        drop(workers);
        assert!(children().is_empty(), "{:?}", children());
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "{pid} not reaped"
            );
        }
        assert!(!private.exists(), "{} left behind", private.display());
    }
}

async fn an_unregistered_potential_is_refused_at_start() {
    let p = Unlisted {
        vocab: potential_core::Vocab::new([1, 2]).unwrap(),
    };
    let err = p.to_multiprocess(1).await.unwrap_err();
    assert!(
        matches!(&err, PotentialError::InvalidInput(m) if m.contains("register")),
        "{err:?}"
    );
}

async fn errors_keep_their_variants() {
    let workers = Faulty::new().to_multiprocess(2).await.unwrap();
    let err = workers.batch_complete(&[]).await.unwrap_err();
    assert!(matches!(
        err,
        PotentialError::EmptyBatch {
            method: Method::BatchComplete
        }
    ));
    let err = workers.prefix(&[3]).await.unwrap_err();
    assert!(
        matches!(&err, PotentialError::Potential(e) if e.to_string() == "three is not a prefix")
    );
    let err = workers
        .score(&[Symbol::Eos, Symbol::Token(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, PotentialError::InvalidInput(_)), "{err:?}");
    let err = workers.batch_prefix(&[vec![1], vec![3]]).await.unwrap_err();
    assert!(matches!(err, PotentialError::Potential(_)), "{err:?}");
}

async fn a_request_timeout_fails_the_call() {
    let options = MultiprocessOptions::new()
        .workers(1)
        .request_timeout(Duration::from_millis(200));
    let workers = Faulty::new().to_multiprocess_with(options).await.unwrap();
    // `prefix([2])` never returns: the caller gets an error, not a hang.
    let err = workers.prefix(&[2]).await.unwrap_err();
    assert!(
        matches!(&err, PotentialError::WorkerFailure(m) if m.contains("did not answer")),
        "{err:?}"
    );
    // The stuck call counts as the worker's load until the killed worker
    // is gone.
    until("the killed worker's load is cleared", || {
        workers.stats()[0].in_flight == 0
    })
    .await;
    assert_eq!(workers.prefix(&[3, 3]).await.unwrap(), 2.0);
}

/// A path in the temporary directory for one test of this process.
fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("potential-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A FIFO at a fresh path, and a path for a marker file.
fn paced(name: &str) -> Paced {
    let gate = scratch(&format!("{name}-gate"));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &gate,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    Paced::new(gate, scratch(&format!("{name}-marker")))
}

fn clean(p: &Paced) {
    let _ = std::fs::remove_file(&p.gate);
    let _ = std::fs::remove_file(&p.marker);
}

async fn replies_leave_a_worker_as_they_are_computed() {
    let p = paced("replies");
    let workers = p.clone().to_multiprocess(1).await.unwrap();
    // Both calls leave in one write and reach the worker in one read. The
    // second waits for the gate, which opens only once the first answer is
    // here: the first answer must leave before the second call ends.
    let first = async {
        let answer = workers.complete(&[5]).await;
        let gate = p.gate.clone();
        tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(gate))
            .await
            .unwrap()
            .unwrap();
        answer
    };
    let both = futures::future::join(first, workers.prefix(&[0]));
    let (first, second) = tokio::time::timeout(Duration::from_secs(20), both)
        .await
        .expect("the first answer waited for the second call to end");
    assert_eq!(first.unwrap(), 5.0);
    assert_eq!(second.unwrap(), 0.0);
    clean(&p);
}

async fn a_stuck_worker_is_killed_and_ties_go_round_robin() {
    let workers = Faulty::new()
        .to_multiprocess_with(
            MultiprocessOptions::new()
                .workers(2)
                .request_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    let err = workers.prefix(&[2]).await.unwrap_err();
    assert!(
        matches!(&err, PotentialError::WorkerFailure(m) if m.contains("killed")),
        "{err:?}"
    );
    // The stuck worker does not win the next calls: it was killed and is
    // restarted, and the other answers meanwhile.
    for i in 0..20u8 {
        let ctx = vec![3; usize::from(i % 4) + 2];
        assert_eq!(workers.complete(&ctx).await.unwrap(), ctx.len() as f64);
    }
    until("the stuck worker is back", || {
        workers.stats().iter().map(|s| s.restarts).sum::<u32>() == 1
            && workers
                .stats()
                .iter()
                .all(|s| s.state == WorkerState::Running)
    })
    .await;
    let before: Vec<u64> = workers.stats().iter().map(|s| s.served).collect();
    for _ in 0..10 {
        workers.complete(&[3]).await.unwrap();
    }
    // One call at a time leaves both idle between calls: the ties go
    // round-robin, not always to the first slot.
    let stats = workers.stats();
    for (s, served) in stats.iter().zip(before) {
        assert!(s.served >= served + 4, "{stats:?}");
    }
    let exit = stats
        .iter()
        .find_map(|s| s.last_exit)
        .expect("one was reaped");
    assert!(!exit.success(), "{exit}");
}

async fn a_dead_workers_call_is_retried_on_a_live_worker() {
    let p = paced("retry");
    let workers = std::sync::Arc::new(p.clone().to_multiprocess(2).await.unwrap());
    // `prefix([1])` hangs in the first worker that serves it.
    let call = tokio::spawn({
        let w = workers.clone();
        async move { w.prefix(&[1]).await }
    });
    until("the call is in flight and its worker has it", || {
        p.marker.exists() && workers.stats().iter().any(|s| s.in_flight == 1)
    })
    .await;
    let stuck = workers
        .stats()
        .into_iter()
        .find(|s| s.in_flight == 1)
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(stuck.pid.unwrap() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // Sent again to the other worker, it answers there.
    assert_eq!(call.await.unwrap().unwrap(), 1.0);
    until("the killed worker is back", || {
        workers.stats()[stuck.slot].restarts == 1
            && workers.stats()[stuck.slot].state == WorkerState::Running
    })
    .await;
    assert_eq!(workers.stats()[stuck.slot].retried, 1);
    clean(&p);
}

async fn a_poison_pill_fails_alone_and_gives_no_worker_up() {
    // Two deaths in a minute would give the worker up, were they counted.
    let policy = RestartPolicy {
        max_deaths: 2,
        window: Duration::from_secs(60),
    };
    let workers = Faulty::new()
        .to_multiprocess_with(MultiprocessOptions::new().workers(1).restart(policy))
        .await
        .unwrap();
    for _ in 0..3 {
        // `complete([1])` aborts whichever worker runs it: it kills the
        // worker, then the one it is retried on, and fails alone.
        let err = workers.complete(&[1]).await.unwrap_err();
        assert!(
            matches!(&err, PotentialError::WorkerFailure(m)
                if m.contains("poison pill") && m.matches("signal").count() == 2),
            "{err:?}"
        );
        assert_eq!(workers.complete(&[3, 3]).await.unwrap(), 2.0);
    }
    let stats = workers.stats();
    assert_eq!(stats[0].state, WorkerState::Running, "{stats:?}");
    assert_eq!(stats[0].restarts, 6, "{stats:?}");
}

async fn a_given_up_worker_comes_back_after_its_window() {
    let workers = one_faulty_worker_without_retry(2, Duration::from_secs(2)).await;
    for _ in 0..2 {
        assert!(workers.complete(&[1]).await.is_err());
    }
    assert_eq!(workers.stats()[0].state, WorkerState::GivenUp);
    until("the worker is started again", || {
        workers.stats()[0].state == WorkerState::Running
    })
    .await;
    assert_eq!(workers.complete(&[3]).await.unwrap(), 1.0);
}

async fn connections_waiting_for_their_hello_are_capped() {
    use interprocess::local_socket::{Stream, prelude::*};
    let workers = Length::abc().to_multiprocess(1).await.unwrap();
    let name = workers.socket().to_name().unwrap();
    let busy = Refusal::Busy { pending: 32 };
    // Silent connections each wait for their hello, up to the cap, and
    // one more is refused at once. A silent one that waited out its hello
    // timeout before the last was accepted (a loaded machine) frees a
    // place: then the round is tried again, a few times at most.
    for _ in 0..5 {
        let silent: Vec<Stream> = tokio::task::block_in_place(|| {
            (0..32)
                .map(|_| Stream::connect(name.clone()).unwrap())
                .collect()
        });
        let w = &workers;
        tokio::task::block_in_place(|| knock(w, b"one too many"));
        drop(silent);
        if workers.refusals().contains(&busy) {
            break;
        }
    }
    let refusals = workers.refusals();
    assert!(refusals.contains(&busy), "{refusals:?}");
    assert_eq!(workers.complete(&['a']).await.unwrap(), -1.0);
}

async fn no_secret_is_in_a_workers_environment() {
    let workers = Length::abc().to_multiprocess(2).await.unwrap();
    for pid in workers.worker_pids() {
        // What the same user can read for the worker's whole life.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(environ.contains("POTENTIAL_RUNTIME_SOCKET="), "{environ}");
        assert!(
            !environ.contains("SECRET") && !environ.contains("TICKET"),
            "{environ}"
        );
    }
    assert_eq!(workers.complete(&['a']).await.unwrap(), -1.0);
}

/// 400 callers of 5 ms calls on 2 workers queue for about a second, five
/// times the 200 ms request timeout; every worker keeps answering, so no
/// call times out and no worker is killed (the timeout times the work,
/// not the queue).
async fn a_busy_worker_is_not_killed_by_the_request_timeout() {
    let p = paced("busy");
    let options = MultiprocessOptions::new()
        .workers(2)
        .request_timeout(Duration::from_millis(200));
    let workers = p.clone().to_multiprocess_with(options).await.unwrap();
    let pids = workers.worker_pids();
    let answers = futures::future::join_all((0..400).map(|_| workers.complete(&[5]))).await;
    let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(workers.worker_pids(), pids, "a busy worker was killed");
    clean(&p);
}

/// A worker killed for missing its timeout did not crash: five stuck calls
/// in a row (more than the policy's deaths) leave it running, and each
/// stuck call alone fails.
async fn timeout_kills_do_not_give_a_worker_up() {
    let policy = RestartPolicy {
        max_deaths: 2,
        window: Duration::from_secs(60),
    };
    let options = MultiprocessOptions::new()
        .workers(1)
        .restart(policy)
        .request_timeout(Duration::from_millis(200));
    let workers = Faulty::new().to_multiprocess_with(options).await.unwrap();
    for _ in 0..5 {
        let err = workers.prefix(&[2]).await.unwrap_err();
        assert!(
            matches!(&err, PotentialError::WorkerFailure(m) if m.contains("did not answer")),
            "{err:?}"
        );
    }
    assert_eq!(workers.complete(&[3, 3]).await.unwrap(), 2.0);
    let stats = workers.stats();
    assert_eq!(stats[0].state, WorkerState::Running, "{stats:?}");
    assert_eq!(stats[0].restarts, 5, "{stats:?}");
}

/// A call whose caller gave up still occupies its worker: new calls go to
/// the other worker until it answers.
async fn an_abandoned_call_counts_as_load_until_answered() {
    let p = paced("abandoned");
    let workers = p.clone().to_multiprocess(2).await.unwrap();
    // `prefix([0])` waits for the gate; its caller gives up at once.
    let mut call = Box::pin(workers.prefix(&[0]));
    assert!(futures::poll!(call.as_mut()).is_pending());
    drop(call);
    let busy = workers
        .stats()
        .iter()
        .position(|s| s.in_flight == 1)
        .expect("the abandoned call still counts");
    let before = workers.stats()[busy].served;
    for _ in 0..4 {
        assert_eq!(workers.complete(&[0]).await.unwrap(), 0.0);
    }
    let stats = workers.stats();
    assert_eq!(
        stats[busy].served, before,
        "a call went behind the abandoned one: {stats:?}"
    );
    let gate = p.gate.clone();
    tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(gate))
        .await
        .unwrap()
        .unwrap();
    until("the abandoned call is answered", || {
        workers.stats()[busy].in_flight == 0
    })
    .await;
    clean(&p);
}

/// A token outside the vocabulary and a NaN weight give the same errors
/// through workers as through `AutoBatched`, and the potential never sees
/// the bad token.
async fn bad_tokens_and_nan_are_the_same_errors_as_in_process() {
    let workers = Faulty::new().to_multiprocess(1).await.unwrap();
    let local = Faulty::new().to_autobatched();
    let unknown =
        |e: &PotentialError| matches!(e, PotentialError::UnknownToken { position: 1, .. });
    let there = workers.complete(&[3, 9]).await.unwrap_err();
    let here = local.complete(&[3, 9]).await.unwrap_err();
    assert!(unknown(&there) && unknown(&here), "{there:?} / {here:?}");
    assert_eq!(there.to_string(), here.to_string());
    let err = workers
        .batch_prefix(&[vec![0], vec![0, 7]])
        .await
        .unwrap_err();
    assert!(unknown(&err), "{err:?}");
    let nan = |e: &PotentialError| matches!(e, PotentialError::InvalidWeight { value, .. } if value.is_nan());
    let there = workers.prefix(&[1, 1]).await.unwrap_err();
    let here = local.prefix(&[1, 1]).await.unwrap_err();
    assert!(nan(&there) && nan(&here), "{there:?} / {here:?}");
    let err = workers
        .batch_prefix(&[vec![0], vec![1, 1]])
        .await
        .unwrap_err();
    assert!(nan(&err), "{err:?}");
    assert_eq!(workers.stats()[0].restarts, 0);
}

/// Silent connections fill every place for a hello, then the worker is
/// killed: its restart still gets in (the pool knows its own children),
/// and no connection of it is refused.
async fn a_flood_of_connections_does_not_keep_a_restart_out() {
    use interprocess::local_socket::{Stream, prelude::*};
    let workers = Length::abc().to_multiprocess(1).await.unwrap();
    let pid = workers.worker_pids()[0];
    let name = workers.socket().to_name().unwrap();
    let silent: Vec<Stream> = tokio::task::block_in_place(|| {
        (0..40)
            .map(|_| Stream::connect(name.clone()).unwrap())
            .collect()
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    until("the worker is restarted", || {
        workers.worker_pids().first().is_some_and(|&p| p != pid)
    })
    .await;
    assert_eq!(workers.complete(&['a']).await.unwrap(), -1.0);
    let refusals = workers.refusals();
    assert!(
        refusals.contains(&Refusal::Busy { pending: 32 }),
        "the flood filled the places: {refusals:?}"
    );
    assert_eq!(workers.stats()[0].restarts, 1, "{:?}", workers.stats());
    drop(silent);
}

/// Every pool gives its memory back when it closes: 20 pools whose recipe
/// is about 600 KB leave the heap within 4 MB of where it was (it grew by
/// the recipe's size and more per pool when the pool's state leaked).
async fn pools_opened_and_closed_leave_the_heap_flat() {
    use potential_tests::worker_potentials::Wide;
    let wide = Wide::new(200_000);
    // One round first, so that lazily made statics (the spawner thread,
    // the registry) are not counted.
    wide.clone()
        .to_multiprocess(1)
        .await
        .unwrap()
        .shutdown()
        .await;
    let before = heap::live();
    for _ in 0..20 {
        let workers = wide.clone().to_multiprocess(1).await.unwrap();
        assert_eq!(workers.complete(&[1, 2]).await.unwrap(), -2.0);
        workers.shutdown().await;
    }
    let grown = heap::live().saturating_sub(before);
    assert!(
        grown < 4 << 20,
        "the heap grew by {grown} bytes over 20 pools"
    );
}

/// Counts the bytes allocated and not yet freed in this process.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting;

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: every call is forwarded to the system allocator unchanged;
    // the counter only observes the sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: `ptr` came from `alloc` above with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: as for `dealloc`, and `new_size` is the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Bytes allocated and not freed.
    pub(super) fn live() -> usize {
        LIVE.load(Ordering::Relaxed)
    }
}

/// Ten innocent calls in flight with a poison pill die with it twice
/// (the worker, then its restart); each is then tried alone, and only
/// the poison pill fails.
async fn innocent_calls_retried_with_a_poison_pill_succeed() {
    let workers = Faulty::new().to_multiprocess(1).await.unwrap();
    let poison = workers.complete(&[1]);
    let innocent = (2..12usize).map(|n| {
        let context = vec![3; n];
        let workers = &workers;
        async move { (n, workers.complete(&context).await) }
    });
    let (poison, innocent) = futures::join!(poison, futures::future::join_all(innocent));
    let err = poison.unwrap_err();
    assert!(
        matches!(&err, PotentialError::WorkerFailure(m) if m.contains("poison pill")),
        "{err:?}"
    );
    for (n, answer) in innocent {
        assert_eq!(
            answer.unwrap(),
            n as f64,
            "an innocent call of length {n} failed"
        );
    }
    assert_eq!(workers.stats()[0].state, WorkerState::Running);
}
