//! Starting, watching, restarting and reaping workers; accepting their
//! connections.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use interprocess::local_socket::ListenerOptions;
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use potential_core::{PotentialError, Result, wire};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::pool::{Conn, Pool, SlotState, lock};
use crate::protocol::frame::{Frame, FrameDecoder, MAX_FRAME_LEN, encode_frame};
use crate::protocol::handshake::{HELLO_FRAME_LEN, Refusal, check_hello};
use crate::protocol::message::INIT_ID;
use crate::transport::{Half, Outbox, ReadEnd, read_loop, read_one};
use crate::worker::{ENV_PARENT, ENV_SECRET, ENV_SOCKET, ENV_TICKET};

/// How long a connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a starting worker is checked for an early exit.
const EXIT_CHECK: Duration = Duration::from_millis(5);

/// How a spawned worker's authenticated connection reaches its starter.
pub(crate) type Arrival = oneshot::Sender<(Half, FrameDecoder)>;

/// Binds the pool's socket and starts accepting connections.
pub(crate) fn listen(pool: &Arc<Pool>) -> io::Result<()> {
    let listener = ListenerOptions::new()
        .name(pool.address.to_name()?)
        .create_tokio()?;
    let task = tokio::spawn(accept_loop(pool.clone(), listener));
    pool.track(task.abort_handle());
    Ok(())
}

async fn accept_loop(pool: Arc<Pool>, listener: Listener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let task = tokio::spawn(handshake(pool.clone(), stream));
                pool.track(task.abort_handle());
            }
            Err(e) => {
                tracing::warn!(socket = %pool.address, error = %e, "accept failed");
                // A persistent error (out of descriptors) must not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads a connection's hello; hands an authenticated worker's connection
/// to whoever spawned it, and refuses (closes) anything else.
async fn handshake(pool: Arc<Pool>, stream: Stream) {
    crate::transport::tune(&stream);
    let mut half = Half(Arc::new(stream));
    let mut decoder = FrameDecoder::new(HELLO_FRAME_LEN);
    let ticket = match tokio::time::timeout(HELLO_TIMEOUT, read_one(&mut half, &mut decoder)).await
    {
        Err(_) => Err(Refusal::NoHello(format!(
            "nothing within {HELLO_TIMEOUT:?}"
        ))),
        Ok(Err(ReadEnd::Frame(e))) => Err(Refusal::BadFrame(e.to_string())),
        Ok(Err(e)) => Err(Refusal::NoHello(e.to_string())),
        Ok(Ok((id, payload))) => check_hello(
            Frame {
                id,
                payload: &payload,
            },
            &pool.secret,
        ),
    };
    let arrival = ticket.and_then(|ticket| {
        lock(&pool.tickets)
            .remove(&ticket)
            .ok_or(Refusal::UnknownTicket { ticket })
    });
    match arrival {
        Ok(arrival) => {
            decoder.set_max_len(MAX_FRAME_LEN);
            let _ = arrival.send((half, decoder));
        }
        Err(refusal) => pool.refuse(refusal),
    }
}

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
    let program = match &pool.options.program {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let mut command = Command::new(program);
    command
        .args(&pool.options.args)
        .env(ENV_SOCKET, pool.address.to_env())
        .env(ENV_SECRET, pool.secret.to_hex())
        .env(ENV_TICKET, ticket.to_string())
        .env(ENV_PARENT, std::process::id().to_string())
        .stdin(Stdio::null());
    Ok(command)
}

fn failure(what: impl std::fmt::Display) -> PotentialError {
    PotentialError::WorkerFailure(what.to_string())
}

/// Starts the worker of slot `slot` and puts it to work; returns its
/// description of the potential (a `wire` reply).
pub(crate) async fn start_worker(pool: &Arc<Pool>, slot: usize, restart: bool) -> Result<Vec<u8>> {
    let ticket = pool.next_ticket.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    lock(&pool.tickets).insert(ticket, tx);
    let spawned = match worker_command(pool, ticket) {
        Ok(command) => spawn_process(command).await,
        Err(e) => Err(e),
    };
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            lock(&pool.tickets).remove(&ticket);
            return Err(failure(format!("cannot start a worker process: {e}")));
        }
    };
    let pid = child.id();
    lock(&pool.children).insert(ticket, (slot, child));
    let span = tracing::info_span!("potential_worker", slot, pid);
    let started = connect_worker(pool, ticket, rx)
        .instrument(span.clone())
        .await;
    let (half, decoder, description) = match started {
        Ok(x) => x,
        Err(e) => {
            lock(&pool.tickets).remove(&ticket);
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
    {
        let mut state = lock(&pool.slot(slot).state);
        if matches!(*state, SlotState::Stopped) {
            // The pool stopped while this worker started: its reader reaps it.
            conn.outbox.close();
        } else {
            if restart {
                pool.slot(slot).restarts.fetch_add(1, Ordering::Relaxed);
            }
            *state = SlotState::Up(conn);
        }
    }
    *lock(&pool.slot(slot).reader) = Some(reader);
    pool.changed.notify_waiters();
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
    let deadline = Instant::now() + pool.options.startup_timeout;
    let (mut half, mut decoder) = loop {
        tokio::select! {
            arrived = &mut arrival => break arrived.map_err(|_| PotentialError::Closed("worker pool"))?,
            () = tokio::time::sleep(EXIT_CHECK) => {
                if let Some(status) = exited(pool, ticket) {
                    return Err(failure(format!(
                        "the worker process exited ({status}) before it connected; \
                         does `main` call `potential_runtime::init()` first?"
                    )));
                }
                if Instant::now() > deadline {
                    return Err(failure(format!(
                        "the worker did not connect within {:?}",
                        pool.options.startup_timeout
                    )));
                }
            }
        }
    };
    let recipe = encode_frame(INIT_ID, &pool.recipe);
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

/// The exit status of a child that has exited, if it has.
fn exited(pool: &Pool, ticket: u64) -> Option<ExitStatus> {
    lock(&pool.children)
        .get_mut(&ticket)
        .and_then(|(_, c)| c.try_wait().ok().flatten())
}

/// Kills (if still running) and reaps the child of `ticket`.
///
/// The child leaves the registry only on the blocking thread that waits
/// for it: if that never runs (the runtime shuts down first), the child is
/// still registered and the pool's `Drop` reaps it.
async fn reap(pool: &Arc<Pool>, ticket: u64) -> Option<ExitStatus> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let (_, mut child) = lock(&pool.children).remove(&ticket)?;
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
    let s = pool.slot(slot);
    let mut wakers = Vec::new();
    let end = read_loop(half, &mut decoder, |frames| {
        conn.deliver_all(frames, s, &mut wakers)
    })
    .await;
    let closing = pool.closing.load(Ordering::Acquire);
    let give_up = !closing && died_too_often(&pool, slot);
    {
        let mut state = lock(&s.state);
        if !matches!(*state, SlotState::Stopped) {
            *state = if give_up {
                SlotState::GivenUp
            } else {
                SlotState::Starting
            };
        }
    }
    pool.changed.notify_waiters();
    let error = if closing {
        PotentialError::Closed("worker pool")
    } else {
        failure(format!("worker {} died ({end})", conn.pid))
    };
    conn.fail_all(&error);
    conn.outbox.close();
    let status = reap(&pool, conn.ticket).await;
    if status.is_some() {
        *lock(&s.last_exit) = status;
    }
    if closing {
        tracing::info!(?status, "worker exited");
        return;
    }
    tracing::warn!(?status, reason = %end, "worker exited");
    if give_up {
        tracing::error!(policy = ?pool.options.restart, "worker given up: it died too often");
        return;
    }
    restart(pool, slot).await;
}

/// Records a death of the slot's worker; whether it has now died too often.
fn died_too_often(pool: &Pool, slot: usize) -> bool {
    let policy = pool.options.restart;
    let mut deaths = lock(&pool.slot(slot).deaths);
    let now = Instant::now();
    deaths.retain(|t| now.duration_since(*t) <= policy.window);
    deaths.push(now);
    deaths.len() >= policy.max_deaths as usize
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
        if pool.closing.load(Ordering::Acquire) {
            return;
        }
        match start_worker(&pool, slot, true).await {
            Ok(_) => {
                tracing::info!("worker restarted");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "worker restart failed"),
        }
        if died_too_often(&pool, slot) {
            let mut state = lock(&pool.slot(slot).state);
            if !matches!(*state, SlotState::Stopped) {
                *state = SlotState::GivenUp;
            }
            drop(state);
            pool.changed.notify_waiters();
            tracing::error!(policy = ?pool.options.restart, "worker given up: it keeps failing to start");
            return;
        }
    }
}
