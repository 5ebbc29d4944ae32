//! Starting, watching, restarting and reaping workers.

use std::io;
use std::panic::AssertUnwindSafe;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use futures::FutureExt;
use futures::channel::oneshot;
use potential_core::{PotentialError, Result, Wrapper, wire};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::conn::{Conn, Death};
use crate::protocol::env::WorkerEnv;
use crate::protocol::frame::{FrameDecoder, encode_frame};
use crate::protocol::message::INIT_ID;
use crate::shared::{self, RingReader};
use crate::state::Pool;
use crate::sync::lock;
use crate::transport::{Half, Outbox, Took, guarded, panic_text, read_loop, read_one};
use crate::tuning::{EXIT_CHECK, RESTART_PAUSE_FIRST, RESTART_PAUSE_MAX};

type Job = Box<dyn FnOnce() + Send>;

/// Spawns processes from one long-lived thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process; forking from a runtime's worker or blocking thread
/// would kill workers when that thread is retired. This thread lives as
/// long as the process.
fn spawner() -> &'static Mutex<mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("potential-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("cannot start the worker spawner thread");
        Mutex::new(tx)
    })
}

async fn spawn_process(mut command: Command) -> io::Result<Child> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(command.spawn());
    });
    lock(spawner())
        .send(job)
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    rx.await
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn worker_command(pool: &Pool, ticket: u64) -> io::Result<Command> {
    let program = match &pool.options().program {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let mut command = Command::new(program);
    command.args(&pool.options().args).stdin(Stdio::piped());
    worker_env(pool, ticket).apply(&mut command);
    Ok(command)
}

/// What a worker of this pool with this ticket learns.
fn worker_env(pool: &Pool, ticket: u64) -> WorkerEnv {
    WorkerEnv {
        socket: pool.address().clone(),
        parent: std::process::id(),
        secret: pool.secret().clone(),
        ticket,
    }
}

/// Hands a spawned worker its credentials through its standard input, and
/// closes it: 40 bytes into an empty pipe, which never blocks.
fn send_credentials(pool: &Pool, ticket: u64, stdin: Option<ChildStdin>) -> io::Result<()> {
    let mut stdin = stdin.ok_or_else(|| io::Error::other("the worker has no standard input"))?;
    match worker_env(pool, ticket).write_credentials(&mut stdin) {
        // The child exited before it read them (a program whose `main`
        // does not call `init()` may exit at once): the exit check that
        // follows reports that, with what to do, better than a broken pipe.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}

fn failure(what: impl std::fmt::Display) -> PotentialError {
    PotentialError::WorkerFailure(what.to_string())
}

/// Starts the worker of slot `slot` and puts it to work; returns its
/// description of the potential (a `wire` reply).
pub(crate) async fn start_worker(pool: &Arc<Pool>, slot: usize, restart: bool) -> Result<Vec<u8>> {
    let (ticket, rx) = pool
        .add_ticket()
        .map_err(|e| failure(format!("cannot draw a spawn ticket: {e}")))?;
    let spawned = match worker_command(pool, ticket) {
        Ok(command) => spawn_process(command).await,
        Err(e) => Err(e),
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            pool.take_ticket(ticket);
            return Err(failure(format!("cannot start a worker process: {e}")));
        }
    };
    let pid = child.id();
    let stdin = child.stdin.take();
    // Adopted before it learns where to connect, so that the accept loop
    // knows its pid when it connects (see `Pool::is_child`).
    pool.adopt_child(ticket, slot, child);
    if let Err(e) = send_credentials(pool, ticket, stdin) {
        pool.take_ticket(ticket);
        reap(pool, ticket).await;
        return Err(failure(format!("cannot start a worker process: {e}")));
    }
    let span = tracing::info_span!("potential_worker", slot, pid);
    let started = connect_worker(pool, ticket, rx)
        .instrument(span.clone())
        .await;
    let (half, decoder, description, ring) = match started {
        Ok(x) => x,
        Err(e) => {
            pool.take_ticket(ticket);
            let status = reap(pool, ticket).await;
            span.in_scope(|| tracing::warn!(error = %e, ?status, "worker failed to start"));
            return Err(e);
        }
    };
    let conn = Arc::new(Conn::new(pid, ticket, Outbox::with_stream(half.clone())));
    let writer = tokio::spawn({
        let (pool, conn) = (pool.clone(), conn.clone());
        async move {
            // A panic in the writer would leave calls queued that nobody
            // sends: it is the worker's death (killed, so that its reader
            // sees the stream end and restarts it), with the message.
            if let Err(panic) = AssertUnwindSafe(conn.outbox.write_loop())
                .catch_unwind()
                .await
            {
                let why = format!("the pool's writer panicked: {}", panic_text(panic));
                conn.kill_for(why, true);
                pool.kill(conn.ticket);
            }
        }
    });
    pool.track(writer.abort_handle());
    let reader = tokio::spawn(
        watch(pool.clone(), slot, conn.clone(), half, decoder, ring).instrument(span.clone()),
    );
    pool.track(reader.abort_handle());
    // If the pool stopped while this worker started, its reader reaps it.
    pool.worker_up(slot, conn, reader, restart);
    span.in_scope(|| tracing::info!("worker started"));
    Ok(description)
}

/// Waits for the worker's connection (or its early exit, or the deadline),
/// sends the shared region (where there is one) and the recipe, and reads
/// the description.
async fn connect_worker(
    pool: &Arc<Pool>,
    ticket: u64,
    mut arrival: oneshot::Receiver<(Half, FrameDecoder)>,
) -> Result<(Half, FrameDecoder, Vec<u8>, Option<RingReader>)> {
    let deadline = Instant::now() + pool.options().startup_timeout;
    let busy_before = pool.busy_refusals();
    let (mut half, mut decoder) = loop {
        tokio::select! {
            arrived = &mut arrival => break arrived.map_err(|_| Wrapper::WorkerPool.closed())?,
            () = tokio::time::sleep(EXIT_CHECK) => {
                if let Some(status) = pool.child_exited(ticket) {
                    let busy = pool.busy_refusals() - busy_before;
                    if busy > 0 {
                        return Err(failure(format!(
                            "the worker process exited ({status}) before it connected, \
                             while the pool refused {busy} connections because too many \
                             waited to say hello (a flood of connections on its socket?)"
                        )));
                    }
                    return Err(failure(format!(
                        "the worker process exited ({status}) before it connected: \
                         a worker is this program started again, and its `main` must \
                         call `potential_runtime::init()` first; {}",
                        crate::protocol::env::INIT_HINT
                    )));
                }
                if Instant::now() > deadline {
                    return Err(failure(format!(
                        "the worker did not connect within {:?}",
                        pool.options().startup_timeout
                    )));
                }
            }
        }
    };
    let recipe = encode_frame(INIT_ID, pool.recipe())
        .map_err(|e| failure(format!("cannot send the recipe: {e}")))?;
    let exchange = async {
        let ring = shared::offer(&half, pool.options().shared_memory)
            .await
            .map_err(|e| failure(format!("cannot send the shared region: {e}")))?;
        half.write_all(&recipe)
            .await
            .map_err(|e| failure(format!("cannot send the recipe: {e}")))?;
        let answer = read_one(&mut half, &mut decoder)
            .await
            .map_err(|e| failure(format!("no answer to the recipe: {e}")))?;
        Ok::<_, PotentialError>((answer, ring))
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let ((id, payload), ring) = tokio::time::timeout(remaining, exchange)
        .await
        .map_err(|_| failure("the worker did not rebuild its potential in time"))??;
    if id != INIT_ID {
        return Err(failure(format!(
            "expected the answer to the recipe, got frame {id}"
        )));
    }
    // An error reply (an unregistered type, a bad state) is the worker's error.
    wire::decode_reply(&payload)?;
    Ok((half, decoder, payload, ring))
}

/// Kills (if still running) and reaps the child of `ticket`.
///
/// The child leaves the registry only on the blocking thread that waits
/// for it: if that never runs (the runtime shuts down first), the child is
/// still registered and the pool's `Drop` reaps it.
async fn reap(pool: &Arc<Pool>, ticket: u64) -> Option<ExitStatus> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut child = pool.take_child(ticket)?;
        let _ = child.kill();
        child.wait().ok()
    })
    .await
    .ok()
    .flatten()
}

/// Delivers a worker's replies until it goes away; then reaps it, tells
/// its calls in flight that it died (they are retried, or fail), and
/// restarts it or gives it up.
///
/// The slot's state changes before the calls in flight learn of the
/// death, so a caller that retries or calls again finds the slot
/// restarting (or given up), never the dead connection. A death that is
/// the second of a call in flight (a poison pill) does not count towards
/// giving up, and neither does that call's first.
async fn watch(
    pool: Arc<Pool>,
    slot: usize,
    conn: Arc<Conn>,
    half: Half,
    mut decoder: FrameDecoder,
    mut ring: Option<RingReader>,
) {
    let mut wakers = Vec::new();
    let reading = read_loop(half, &mut decoder, |frames| {
        let (delivered, outcome) = conn.deliver_all(frames, &mut wakers, ring.as_mut());
        pool.add_served(slot, delivered);
        wakers.drain(..).for_each(Waker::wake);
        outcome.map(|()| Took::All)
    });
    // A panic while reading must not leave the slot looking alive on a
    // connection nobody reads: it ends the connection like any other end,
    // so the worker is reaped and restarted and its calls retried. The
    // call table's lock does not poison (`sync::lock`), and a caller whose
    // reply was half delivered finds it either done or still waiting,
    // then failed by `bury` below.
    let end = guarded(reading).await;
    let at = Instant::now();
    let closing = pool.is_closing();
    let killed = conn.killed();
    // A worker killed for missing a request timeout did not crash: it
    // neither counts towards giving its slot up nor makes a poison pill.
    let crash = killed.as_ref().is_none_or(|k| k.counts);
    let (first, suspects) = conn.close();
    let poison = first.filter(|_| crash);
    if let Some(first) = &poison {
        pool.forgive(first.slot, first.at);
    }
    let give_up = !closing && crash && poison.is_none() && pool.record_death(slot, at);
    pool.worker_down(slot, give_up);
    conn.outbox.close();
    let status = reap(&pool, conn.ticket).await;
    let reason = killed.map_or_else(|| end.to_string(), |k| k.reason);
    pool.record_exit(slot, status, reason.clone());
    if closing {
        conn.fail_all(&Wrapper::WorkerPool.closed());
        tracing::info!(?status, "worker exited");
        return;
    }
    tracing::warn!(?status, %reason, "worker exited");
    conn.bury(&Arc::new(Death {
        pid: conn.pid,
        slot,
        crash,
        suspects,
        at,
        reason,
        status,
    }));
    if give_up {
        revive_later(&pool, slot, "it died too often");
        return;
    }
    restart(pool, slot).await;
}

/// Gives a slot up for now: it starts again once the restart policy's
/// window has passed (the deaths that gave it up no longer count), unless
/// that window is endless, or on [`Multiprocess::revive`](crate::Multiprocess::revive).
fn revive_later(pool: &Arc<Pool>, slot: usize, why: &str) {
    let window = pool.options().restart.window;
    tracing::error!(policy = ?pool.options().restart, "worker given up: {why}");
    if tokio::time::Instant::now().checked_add(window).is_none() {
        return;
    }
    let task = tokio::spawn({
        let pool = pool.clone();
        async move {
            tokio::time::sleep(window).await;
            revive(pool, slot).await;
        }
    });
    pool.track(task.abort_handle());
}

/// Starts a given-up slot again; returns whether it was given up.
pub(crate) async fn revive(pool: Arc<Pool>, slot: usize) -> bool {
    if !pool.revive(slot) {
        return false;
    }
    tracing::info!(slot, "given-up worker revived");
    restart(pool, slot).await;
    true
}

/// Restarts a slot's worker until it runs or has died too often.
///
/// Boxed with its `Send` bound spelled out: a restart starts a worker whose
/// watcher may restart it, and the compiler cannot infer `Send` around
/// that cycle.
fn restart(pool: Arc<Pool>, slot: usize) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(restart_loop(pool, slot))
}

async fn restart_loop(pool: Arc<Pool>, slot: usize) {
    let mut pause = RESTART_PAUSE_FIRST;
    loop {
        if pool.is_closing() {
            return;
        }
        match start_worker(&pool, slot, true).await {
            Ok(_) => {
                tracing::info!("worker restarted");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, ?pause, "worker restart failed; trying again after a pause");
                pool.record_exit(slot, None, format!("failed to start: {e}"));
            }
        }
        if pool.record_death(slot, Instant::now()) {
            pool.worker_down(slot, true);
            revive_later(&pool, slot, "it keeps failing to start");
            return;
        }
        // Failed starts in a row back off, so that a passing cause (a
        // flood of connections) does not use up the policy's deaths at once.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RESTART_PAUSE_MAX);
    }
}
