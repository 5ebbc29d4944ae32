//! Starting, watching, restarting and reaping workers.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures::channel::oneshot;
use potential_core::{PotentialError, Result, Wrapper, wire};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::conn::Conn;
use crate::protocol::env::WorkerEnv;
use crate::protocol::frame::{FrameDecoder, encode_frame};
use crate::protocol::message::INIT_ID;
use crate::state::Pool;
use crate::sync::lock;
use crate::transport::{Half, Outbox, read_loop, read_one};
use crate::tuning::EXIT_CHECK;

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
    command.args(&pool.options().args).stdin(Stdio::null());
    WorkerEnv {
        socket: pool.address().clone(),
        secret: pool.secret().clone(),
        ticket,
        parent: std::process::id(),
    }
    .apply(&mut command);
    Ok(command)
}

fn failure(what: impl std::fmt::Display) -> PotentialError {
    PotentialError::WorkerFailure(what.to_string())
}

/// Starts the worker of slot `slot` and puts it to work; returns its
/// description of the potential (a `wire` reply).
pub(crate) async fn start_worker(pool: &Arc<Pool>, slot: usize, restart: bool) -> Result<Vec<u8>> {
    let (ticket, rx) = pool.add_ticket();
    let spawned = match worker_command(pool, ticket) {
        Ok(command) => spawn_process(command).await,
        Err(e) => Err(e),
    };
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            pool.take_ticket(ticket);
            return Err(failure(format!("cannot start a worker process: {e}")));
        }
    };
    let pid = child.id();
    pool.adopt_child(ticket, slot, child);
    let span = tracing::info_span!("potential_worker", slot, pid);
    let started = connect_worker(pool, ticket, rx)
        .instrument(span.clone())
        .await;
    let (half, decoder, description) = match started {
        Ok(x) => x,
        Err(e) => {
            pool.take_ticket(ticket);
            let status = reap(pool, ticket).await;
            span.in_scope(|| tracing::warn!(error = %e, ?status, "worker failed to start"));
            return Err(e);
        }
    };
    let conn = Arc::new(Conn::new(pid, ticket, Outbox::new()));
    let writer = tokio::spawn({
        let (outbox, half) = (conn.outbox.clone(), half.clone());
        async move {
            let _ = outbox.write_loop(half).await;
        }
    });
    pool.track(writer.abort_handle());
    let reader = tokio::spawn(
        watch(pool.clone(), slot, conn.clone(), half, decoder).instrument(span.clone()),
    );
    pool.track(reader.abort_handle());
    // If the pool stopped while this worker started, its reader reaps it.
    pool.worker_up(slot, conn, reader, restart);
    span.in_scope(|| tracing::info!("worker started"));
    Ok(description)
}

/// Waits for the worker's connection (or its early exit, or the deadline),
/// sends the recipe and reads the description.
async fn connect_worker(
    pool: &Arc<Pool>,
    ticket: u64,
    mut arrival: oneshot::Receiver<(Half, FrameDecoder)>,
) -> Result<(Half, FrameDecoder, Vec<u8>)> {
    let deadline = Instant::now() + pool.options().startup_timeout;
    let (mut half, mut decoder) = loop {
        tokio::select! {
            arrived = &mut arrival => break arrived.map_err(|_| Wrapper::WorkerPool.closed())?,
            () = tokio::time::sleep(EXIT_CHECK) => {
                if let Some(status) = pool.child_exited(ticket) {
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
    let recipe = encode_frame(INIT_ID, pool.recipe());
    let exchange = async {
        half.write_all(&recipe)
            .await
            .map_err(|e| failure(format!("cannot send the recipe: {e}")))?;
        read_one(&mut half, &mut decoder)
            .await
            .map_err(|e| failure(format!("no answer to the recipe: {e}")))
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let (id, payload) = tokio::time::timeout(remaining, exchange)
        .await
        .map_err(|_| failure("the worker did not rebuild its potential in time"))??;
    if id != INIT_ID {
        return Err(failure(format!(
            "expected the answer to the recipe, got frame {id}"
        )));
    }
    // An error reply (an unregistered type, a bad state) is the worker's error.
    wire::decode_reply(&payload)?;
    Ok((half, decoder, payload))
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

/// Delivers a worker's replies until it goes away; then fails its calls,
/// reaps it, and restarts it or gives it up.
///
/// The slot's state changes before the calls in flight fail, so a caller
/// that sees the failure and calls again finds the slot restarting (or
/// given up), never the dead connection.
async fn watch(
    pool: Arc<Pool>,
    slot: usize,
    conn: Arc<Conn>,
    half: Half,
    mut decoder: FrameDecoder,
) {
    let mut wakers = Vec::new();
    let end = read_loop(half, &mut decoder, |frames| {
        let (served, outcome) = conn.deliver_all(frames, &mut wakers);
        pool.add_served(slot, served);
        outcome
    })
    .await;
    let closing = pool.is_closing();
    let give_up = !closing && pool.record_death(slot);
    pool.worker_down(slot, give_up);
    let error = if closing {
        Wrapper::WorkerPool.closed()
    } else {
        failure(format!("worker {} died ({end})", conn.pid))
    };
    conn.fail_all(&error);
    conn.outbox.close();
    let status = reap(&pool, conn.ticket).await;
    if let Some(status) = status {
        pool.set_last_exit(slot, status);
    }
    if closing {
        tracing::info!(?status, "worker exited");
        return;
    }
    tracing::warn!(?status, reason = %end, "worker exited");
    if give_up {
        tracing::error!(policy = ?pool.options().restart, "worker given up: it died too often");
        return;
    }
    restart(pool, slot).await;
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
    loop {
        if pool.is_closing() {
            return;
        }
        match start_worker(&pool, slot, true).await {
            Ok(_) => {
                tracing::info!("worker restarted");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "worker restart failed"),
        }
        if pool.record_death(slot) {
            pool.worker_down(slot, true);
            tracing::error!(policy = ?pool.options().restart, "worker given up: it keeps failing to start");
            return;
        }
    }
}
