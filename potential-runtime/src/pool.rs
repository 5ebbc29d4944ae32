//! The multiprocess potential: dispatch of calls to workers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::future::try_join_all;
use potential_core::wire::{self, CallRef};
use potential_core::{
    LogWeights, NativeBatch, Potential, PotentialError, Recipe, Result, Symbol, TokenType, Vocab,
    non_empty,
};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

use crate::options::MultiprocessOptions;
use crate::protocol::frame::{FrameDecoder, FrameError, MAX_FRAME_LEN, begin_frame, finish_frame};
use crate::protocol::handshake::{Refusal, Secret};
use crate::protocol::message::encode_recipe;
use crate::socket::{SocketAddress, fresh_address, remove_private_dir};
use crate::supervise;
use crate::transport::Outbox;

/// Locks a mutex; a panic elsewhere while it was held does not poison the pool.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A potential that answers through worker processes, each holding its
/// own copy of the original potential; made by
/// [`MultiprocessExt::to_multiprocess`](crate::MultiprocessExt::to_multiprocess).
///
/// Single calls go to the least-loaded worker; a batch is split into one
/// contiguous chunk per running worker, the chunks run in parallel and the
/// results come back in order. Every method answers what the original
/// potential answers in-process; the vocabulary is the one the workers
/// report. [`native_batch`](Potential::native_batch) is
/// [`NativeBatch::ALL`]: a batch is one message per worker, so batching
/// calls before they reach the pool pays.
///
/// It cannot be sent to workers itself (it is not
/// [`Spawnable`](potential_core::Spawnable)): its workers belong to this process.
///
/// Dropping it kills and reaps its workers and removes its socket;
/// [`shutdown`](Self::shutdown) lets them finish first.
pub struct Multiprocess<T: TokenType> {
    pool: Arc<Pool>,
    vocab: Vocab<T>,
    native: NativeBatch,
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// Starting or restarting; calls wait for it (up to the startup timeout)
    /// when no other worker runs.
    Starting,
    /// Serving calls.
    Running,
    /// Died too often and was not restarted.
    GivenUp,
    /// The pool was shut down.
    Stopped,
}

/// The counters of one worker slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    /// The slot's index.
    pub slot: usize,
    /// The pid of the running process, if one runs.
    pub pid: Option<u32>,
    /// What it is doing.
    pub state: WorkerState,
    /// Calls answered in this slot (over all its processes).
    pub served: u64,
    /// Calls sent and not yet answered.
    pub in_flight: usize,
    /// Times a process of this slot was restarted after dying.
    pub restarts: u32,
    /// How the slot's last process ended, once one has ended and been
    /// reaped. After [`Multiprocess::shutdown`], a worker that exited by
    /// itself on seeing its socket close shows success; one that had to be
    /// killed shows the signal.
    pub last_exit: Option<ExitStatus>,
}

pub(crate) enum SlotState {
    Starting,
    Up(Arc<Conn>),
    GivenUp,
    Stopped,
}

pub(crate) struct Slot {
    pub(crate) state: Mutex<SlotState>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) served: AtomicU64,
    pub(crate) restarts: AtomicU32,
    pub(crate) deaths: Mutex<Vec<Instant>>,
    pub(crate) reader: Mutex<Option<JoinHandle<()>>>,
    pub(crate) last_exit: Mutex<Option<ExitStatus>>,
}

/// A call sent to a worker, in its connection's table until its caller
/// takes the reply.
///
/// The table is the calls' only channel: no oneshot channel (an
/// allocation and its atomics) per call, and the reader takes the table's
/// lock once per read, for all the replies that read brought. Waiting in
/// it takes no part in tokio's cooperative budget, so a `join_all` over
/// thousands of calls stays linear (see the traps in the design brief).
enum Pending {
    /// No reply yet: the reply's shape, and the task to wake.
    Waiting(Shape, Waker),
    /// Decoded, waiting for its caller to take it.
    Done(Result<Answer>),
}

/// The calls a connection waits on.
struct Table {
    /// False once the worker is gone: no call may wait on it any more.
    open: bool,
    calls: HashMap<u64, Pending, BuildIdHasher>,
}

/// A reply larger than this is decoded outside the table's lock, so that
/// calls sent meanwhile do not wait for its copy.
const DECODE_UNLOCKED_ABOVE: usize = 16 * 1024;

/// What [`Multiprocess::send`] did with a call.
enum Sent {
    /// Queued: wait for the reply of this id.
    Waiting(u64),
    /// The call could not be encoded.
    Failed(PotentialError),
    /// The worker is gone; nothing was sent.
    Gone,
}

/// A decoded reply: a single call's one value needs no allocation.
#[derive(Debug, PartialEq)]
enum Answer {
    One(f64),
    Rows(Vec<Vec<f64>>),
}

impl Answer {
    fn into_rows(self) -> Vec<Vec<f64>> {
        match self {
            Answer::One(value) => vec![vec![value]],
            Answer::Rows(rows) => rows,
        }
    }
}

/// What a call answers: `rows` rows of `width` values each (one row for a
/// scalar or a batch of scalars, one per context for `batch_logw_next`).
///
/// The reply is decoded straight into the rows the caller keeps, one copy
/// out of the read buffer: no flat vector to concatenate and cut again,
/// whose megabytes would be fresh memory (page faults) at every batch.
#[derive(Debug, Clone, Copy)]
struct Shape {
    method: &'static str,
    rows: usize,
    width: usize,
}

impl Shape {
    /// One row of `count` values.
    fn flat(method: &'static str, count: usize) -> Shape {
        Shape {
            method,
            rows: 1,
            width: count,
        }
    }

    /// Decodes a reply of this shape.
    fn decode(self, payload: &[u8]) -> Result<Answer> {
        let raw = match wire::decode_reply(payload)? {
            wire::Reply::Values(raw) => raw,
            wire::Reply::Description(_) => {
                return Err(PotentialError::WorkerFailure(
                    "malformed reply from a worker: a description where values were expected"
                        .into(),
                ));
            }
        };
        let expected = self.rows * self.width;
        if raw.len() / 8 != expected || self.width == 0 {
            return Err(PotentialError::BatchSizeMismatch {
                method: self.method,
                expected,
                got: raw.len() / 8,
            });
        }
        if let (1, Ok(one)) = (expected, <[u8; 8]>::try_from(raw)) {
            return Ok(Answer::One(f64::from_le_bytes(one)));
        }
        Ok(Answer::Rows(
            raw.chunks_exact(8 * self.width)
                .map(|row| {
                    row.chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")))
                        .collect()
                })
                .collect(),
        ))
    }
}

/// Hashes call ids, which the pool draws in sequence: one multiplication
/// spreads them over the table (SipHash, the default, cost a visible share
/// of a trivial call).
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type BuildIdHasher = std::hash::BuildHasherDefault<IdHasher>;

/// One worker process's connection.
pub(crate) struct Conn {
    pub(crate) pid: u32,
    pub(crate) ticket: u64,
    pub(crate) outbox: Arc<Outbox>,
    pending: Mutex<Table>,
    next_id: AtomicU64,
}

impl Conn {
    pub(crate) fn new(pid: u32, ticket: u64, outbox: Arc<Outbox>) -> Conn {
        Conn {
            pid,
            ticket,
            outbox,
            pending: Mutex::new(Table {
                open: true,
                calls: HashMap::default(),
            }),
            next_id: AtomicU64::new(crate::protocol::message::FIRST_CALL_ID),
        }
    }

    /// Hands the replies of one read to their callers: one lock for all
    /// the small ones, the wakers woken once it is released.
    pub(crate) fn deliver_all(
        &self,
        decoder: &mut FrameDecoder,
        slot: &Slot,
        wakers: &mut Vec<Waker>,
    ) -> std::result::Result<(), FrameError> {
        let mut served = 0;
        let mut table = None;
        let outcome = loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if frame.payload.len() > DECODE_UNLOCKED_ABOVE {
                table = None;
                served += u64::from(self.deliver_large(frame.id, frame.payload, wakers));
                continue;
            }
            let locked = table.get_or_insert_with(|| lock(&self.pending));
            let Some(entry) = locked.calls.get_mut(&frame.id) else {
                tracing::debug!(id = frame.id, "reply to a call nobody waits for");
                continue;
            };
            if let Pending::Waiting(shape, _) = entry {
                let answer = shape.decode(frame.payload);
                if let Pending::Waiting(_, waker) = std::mem::replace(entry, Pending::Done(answer))
                {
                    wakers.push(waker);
                    served += 1;
                }
            }
        };
        drop(table);
        slot.served.fetch_add(served, Ordering::Relaxed);
        wakers.drain(..).for_each(Waker::wake);
        outcome
    }

    /// Delivers a large reply, decoding it with the table unlocked;
    /// returns whether a caller waited for it.
    fn deliver_large(&self, id: u64, payload: &[u8], wakers: &mut Vec<Waker>) -> bool {
        let shape = match lock(&self.pending).calls.get(&id) {
            Some(Pending::Waiting(shape, _)) => *shape,
            _ => {
                tracing::debug!(id, "reply to a call nobody waits for");
                return false;
            }
        };
        let answer = shape.decode(payload);
        // The caller may have given up meanwhile (a timeout): then its
        // entry is gone and the answer is dropped.
        let mut table = lock(&self.pending);
        let Some(entry @ Pending::Waiting(..)) = table.calls.get_mut(&id) else {
            return false;
        };
        if let Pending::Waiting(_, waker) = std::mem::replace(entry, Pending::Done(answer)) {
            wakers.push(waker);
        }
        true
    }

    /// Fails every call in flight and refuses new ones.
    pub(crate) fn fail_all(&self, error: &PotentialError) {
        let mut wakers = Vec::new();
        {
            let mut table = lock(&self.pending);
            table.open = false;
            for entry in table.calls.values_mut() {
                if let Pending::Waiting(_, waker) =
                    std::mem::replace(entry, Pending::Done(Err(error.clone())))
                {
                    wakers.push(waker);
                }
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Waits for the reply to one call; forgets the call if dropped first.
///
/// Its first poll, right after the call was sent with the task's waker,
/// only returns `Pending`: a reply that came meanwhile has woken the task
/// already.
struct Reply<'a> {
    conn: &'a Conn,
    id: u64,
    polled: bool,
    done: bool,
}

impl Future for Reply<'_> {
    type Output = Result<Answer>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Answer>> {
        if !std::mem::replace(&mut self.polled, true) {
            return Poll::Pending;
        }
        let mut table = lock(&self.conn.pending);
        let answer = match table.calls.entry(self.id) {
            Entry::Occupied(mut entry) => {
                if let Pending::Waiting(_, waker) = entry.get_mut() {
                    waker.clone_from(cx.waker());
                    return Poll::Pending;
                }
                match entry.remove() {
                    Pending::Done(answer) => answer,
                    Pending::Waiting(..) => Err(self.lost()),
                }
            }
            Entry::Vacant(_) => Err(self.lost()),
        };
        drop(table);
        self.done = true;
        Poll::Ready(answer)
    }
}

impl Reply<'_> {
    /// The error for a call whose entry is gone (not reached: only the
    /// call's own future removes it).
    fn lost(&self) -> PotentialError {
        PotentialError::WorkerFailure(format!("worker {} lost call {}", self.conn.pid, self.id))
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.conn.pending).calls.remove(&self.id);
        }
    }
}

/// The shared state of a pool: its workers, its socket, its secret.
pub(crate) struct Pool {
    pub(crate) options: MultiprocessOptions,
    pub(crate) recipe: Vec<u8>,
    pub(crate) name: String,
    pub(crate) address: SocketAddress,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) secret: Secret,
    pub(crate) slots: Vec<Slot>,
    /// Signalled whenever a slot changes state.
    pub(crate) changed: Notify,
    pub(crate) closing: AtomicBool,
    /// Spawned workers waiting for their connection, by ticket.
    pub(crate) tickets: Mutex<HashMap<u64, supervise::Arrival>>,
    pub(crate) next_ticket: AtomicU64,
    /// Every child process not yet reaped, with its slot, by ticket.
    pub(crate) children: Mutex<HashMap<u64, (usize, std::process::Child)>>,
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
    pub(crate) refusals: Mutex<Vec<Refusal>>,
    stopped: AtomicBool,
}

/// The most refusals kept for [`Multiprocess::refusals`].
const REFUSALS_KEPT: usize = 64;

impl Pool {
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    /// Keeps a task's handle so that stopping the pool aborts it.
    pub(crate) fn track(&self, handle: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub(crate) fn refuse(&self, refusal: Refusal) {
        tracing::warn!(socket = %self.address, reason = %refusal, "refused a connection");
        let mut kept = lock(&self.refusals);
        if kept.len() == REFUSALS_KEPT {
            kept.remove(0);
        }
        kept.push(refusal);
    }

    fn up_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(*lock(&s.state), SlotState::Up(_)))
            .count()
    }

    /// The least-loaded running worker; waits while none runs but some
    /// are starting; fails fast when none is left.
    async fn pick(&self) -> Result<(usize, Arc<Conn>)> {
        // The common case, a worker running, registers no waiter.
        if let (Some(best), _) = self.least_loaded() {
            return Ok(best);
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (best, starting) = self.least_loaded();
            if let Some(best) = best {
                return Ok(best);
            }
            if self.closing.load(Ordering::Acquire) {
                return Err(PotentialError::Closed("worker pool"));
            }
            if !starting {
                return Err(PotentialError::WorkerFailure(format!(
                    "no worker is left: all {} were given up after dying too often (see the log)",
                    self.slots.len()
                )));
            }
            if tokio::time::timeout(self.options.startup_timeout, changed)
                .await
                .is_err()
            {
                return Err(PotentialError::WorkerFailure(format!(
                    "no worker came up within {:?}",
                    self.options.startup_timeout
                )));
            }
        }
    }

    /// The running worker with the fewest calls in flight, and whether
    /// some worker is starting.
    fn least_loaded(&self) -> (Option<(usize, Arc<Conn>)>, bool) {
        let mut best: Option<(usize, usize, Arc<Conn>)> = None;
        let mut starting = false;
        for (i, slot) in self.slots.iter().enumerate() {
            match &*lock(&slot.state) {
                SlotState::Up(conn) => {
                    let load = slot.in_flight.load(Ordering::Relaxed);
                    if best.as_ref().is_none_or(|(_, l, _)| load < *l) {
                        best = Some((i, load, conn.clone()));
                    }
                }
                SlotState::Starting => starting = true,
                SlotState::GivenUp | SlotState::Stopped => {}
            }
        }
        (best.map(|(i, _, c)| (i, c)), starting)
    }

    /// Marks every slot stopped: its calls in flight fail with
    /// [`PotentialError::Closed`] and its outbox closes, which shuts the
    /// socket's write side so that the worker sees end of stream and exits.
    fn close_slots(&self) {
        for slot in &self.slots {
            let old = std::mem::replace(&mut *lock(&slot.state), SlotState::Stopped);
            if let SlotState::Up(conn) = old {
                conn.fail_all(&PotentialError::Closed("worker pool"));
                conn.outbox.close();
            }
        }
        self.changed.notify_waiters();
    }

    /// Stops at once: aborts tasks, kills and reaps every child, removes
    /// the socket. Synchronous, for `Drop`; idempotent.
    pub(crate) fn stop_now(&self) {
        self.closing.store(true, Ordering::Release);
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_slots();
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        lock(&self.tickets).clear();
        let children: Vec<_> = lock(&self.children).drain().collect();
        for (_, (slot, mut child)) in children {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                *lock(&self.slots[slot].last_exit) = Some(status);
            }
        }
        remove_private_dir(&self.address, self.dir.as_deref());
        tracing::info!(socket = %self.address, "worker pool stopped");
    }
}

impl<T: TokenType> Multiprocess<T> {
    /// Starts `options.workers` workers that rebuild the potential from
    /// `recipe`, and waits until each has described its potential.
    pub async fn start(recipe: Recipe, options: MultiprocessOptions) -> Result<Self> {
        if crate::worker::started_as_worker() {
            return Err(PotentialError::InvalidInput(
                "this process was started as a potential worker but did not call \
                 `potential_runtime::init()` first in `main`; add it as the first line"
                    .into(),
            ));
        }
        let io = |what: &str, e: std::io::Error| {
            PotentialError::WorkerFailure(format!("cannot {what}: {e}"))
        };
        let (address, dir) =
            fresh_address(&options.socket).map_err(|e| io("create the pool's socket name", e))?;
        let pool = Arc::new(Pool {
            name: describe(&recipe),
            recipe: encode_recipe(&recipe)?,
            secret: Secret::random().map_err(|e| io("draw a secret", e))?,
            slots: (0..options.workers)
                .map(|_| Slot {
                    state: Mutex::new(SlotState::Starting),
                    in_flight: AtomicUsize::new(0),
                    served: AtomicU64::new(0),
                    restarts: AtomicU32::new(0),
                    deaths: Mutex::new(Vec::new()),
                    reader: Mutex::new(None),
                    last_exit: Mutex::new(None),
                })
                .collect(),
            options,
            address,
            dir,
            changed: Notify::new(),
            closing: AtomicBool::new(false),
            tickets: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(1),
            children: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            refusals: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        // Until the pool is handed out, an error (or a cancelled start) stops it.
        let guard = StopOnDrop(pool.clone());
        supervise::listen(&pool).map_err(|e| io("listen on the pool's socket", e))?;
        let descriptions =
            try_join_all((0..pool.slots.len()).map(|i| supervise::start_worker(&pool, i, false)))
                .await?;
        let description = wire::decode_description::<T>(&descriptions[0])?;
        std::mem::forget(guard);
        Ok(Multiprocess {
            pool,
            vocab: description.vocab,
            native: description.native_batch,
        })
    }

    /// The counters of every worker slot.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.pool
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (state, pid) = match &*lock(&s.state) {
                    SlotState::Starting => (WorkerState::Starting, None),
                    SlotState::Up(c) => (WorkerState::Running, Some(c.pid)),
                    SlotState::GivenUp => (WorkerState::GivenUp, None),
                    SlotState::Stopped => (WorkerState::Stopped, None),
                };
                WorkerStats {
                    slot: i,
                    pid,
                    state,
                    served: s.served.load(Ordering::Relaxed),
                    in_flight: s.in_flight.load(Ordering::Relaxed),
                    restarts: s.restarts.load(Ordering::Relaxed),
                    last_exit: *lock(&s.last_exit),
                }
            })
            .collect()
    }

    /// The pids of the running workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.stats().into_iter().filter_map(|s| s.pid).collect()
    }

    /// The pool's socket.
    pub fn socket(&self) -> &SocketAddress {
        &self.pool.address
    }

    /// The pool's private directory, when its socket is a file.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.pool.dir.as_deref()
    }

    /// The most recent connections refused (at most 64), oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.pool.refusals).clone()
    }

    /// The native batch forms of the potential inside the workers.
    pub fn inner_native_batch(&self) -> NativeBatch {
        self.native
    }

    /// Stops the workers: calls in flight fail with
    /// [`PotentialError::Closed`], each worker is told to exit (its socket
    /// is closed) and given two seconds, then killed; all are reaped and
    /// the socket is removed. Later calls fail with `Closed`.
    pub async fn shutdown(&self) {
        let pool = &self.pool;
        pool.closing.store(true, Ordering::Release);
        pool.close_slots();
        let readers: Vec<_> = pool
            .slots
            .iter()
            .filter_map(|s| lock(&s.reader).take())
            .collect();
        // A reader ends when its worker closes the socket, that is, exits;
        // it then reaps the worker.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            futures::future::join_all(readers),
        )
        .await;
        let pool = pool.clone();
        let _ = tokio::task::spawn_blocking(move || pool.stop_now()).await;
    }

    /// A call answered by one value.
    async fn scalar(&self, call: CallRef<'_, T>, method: &'static str) -> Result<f64> {
        match self.call(call, Shape::flat(method, 1)).await? {
            Answer::One(value) => Ok(value),
            // Not produced for a shape of one value; read it all the same.
            Answer::Rows(rows) => rows.into_iter().flatten().next().ok_or_else(|| {
                PotentialError::WorkerFailure("an empty reply from a worker".into())
            }),
        }
    }

    /// A call answered by rows of values.
    async fn rows(&self, call: CallRef<'_, T>, shape: Shape) -> Result<Vec<Vec<f64>>> {
        Ok(self.call(call, shape).await?.into_rows())
    }

    /// Sends a call to the least-loaded worker and waits for its answer.
    ///
    /// Thousands of these futures may be in flight, each moved into its
    /// task or `join_all`, so the waits that are rare (no worker running,
    /// a request timeout) are boxed and the sending is not async at all
    /// (`complete`'s future: 360 bytes, from 464).
    async fn call(&self, call: CallRef<'_, T>, shape: Shape) -> Result<Answer> {
        loop {
            let (slot, conn) = match self.pool.least_loaded() {
                (Some(best), _) => best,
                _ => Box::pin(self.pool.pick()).await?,
            };
            let slot = self.pool.slot(slot);
            let _in_flight = InFlight::enter(slot);
            // The waker goes into the call's entry as it is sent.
            let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
            match self.send(&call, shape, &conn, waker) {
                Sent::Waiting(id) => return self.wait(id, &conn).await,
                Sent::Failed(e) => return Err(e),
                // The worker died before the call was sent: its slot is no
                // longer running, so the next pick finds another (or waits).
                Sent::Gone => {}
            }
        }
    }

    /// Registers a call's reply, then encodes its frame straight into the
    /// worker's outbox.
    fn send(&self, call: &CallRef<'_, T>, shape: Shape, conn: &Conn, waker: Waker) -> Sent {
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut table = lock(&conn.pending);
            if !table.open {
                return Sent::Gone;
            }
            table.calls.insert(id, Pending::Waiting(shape, waker));
        }
        let queued = conn.outbox.push_with(|out| {
            let start = begin_frame(out, id);
            wire::encode_call(call, out)?;
            finish_frame(out, start, MAX_FRAME_LEN)
                .map_err(|e| PotentialError::InvalidInput(format!("the call is too large: {e}")))
        });
        if let Err(e) = queued {
            lock(&conn.pending).calls.remove(&id);
            return Sent::Failed(e);
        }
        Sent::Waiting(id)
    }

    /// Waits for the reply to call `id`, up to the request timeout.
    async fn wait(&self, id: u64, conn: &Conn) -> Result<Answer> {
        let reply = Reply {
            conn,
            id,
            polled: false,
            done: false,
        };
        match self.pool.options.request_timeout {
            None => reply.await,
            // A reply that comes too late finds no entry and is dropped.
            Some(limit) => Box::pin(tokio::time::timeout(limit, reply))
                .await
                .unwrap_or_else(|_| {
                    Err(PotentialError::WorkerFailure(format!(
                        "worker {} did not answer within {limit:?}",
                        conn.pid
                    )))
                }),
        }
    }

    /// Splits `contexts` into one chunk per running worker; gives each
    /// chunk's rows, in order. `shape(chunk_len)` is a chunk's reply.
    async fn split<'a, C: Sync>(
        &'a self,
        contexts: &'a [C],
        method: &'static str,
        shape: impl Fn(usize) -> Shape,
        make: fn(&'a [C]) -> CallRef<'a, T>,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        non_empty(method, contexts)?;
        let parts = self.pool.up_count().clamp(1, contexts.len());
        let chunk = contexts.len().div_ceil(parts);
        try_join_all(
            contexts
                .chunks(chunk)
                .map(|c| self.rows(make(c), shape(c.len()))),
        )
        .await
    }

    /// A batch of scalars: one row per chunk, joined.
    async fn split_scalars<'a, C: Sync>(
        &'a self,
        contexts: &'a [C],
        method: &'static str,
        make: fn(&'a [C]) -> CallRef<'a, T>,
    ) -> Result<Vec<f64>> {
        let chunks = self
            .split(contexts, method, |n| Shape::flat(method, n), make)
            .await?;
        let mut rows = chunks.into_iter().flatten();
        let mut all = rows.next().unwrap_or_default();
        for row in rows {
            all.extend_from_slice(&row);
        }
        Ok(all)
    }

    fn weights(&self, values: Vec<f64>) -> Result<LogWeights<T>> {
        LogWeights::new(self.vocab.clone(), values)
    }
}

/// Counts a call in flight on a slot for as long as it lives.
struct InFlight<'a>(&'a Slot);

impl<'a> InFlight<'a> {
    fn enter(slot: &'a Slot) -> Self {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(slot)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct StopOnDrop(Arc<Pool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop_now();
    }
}

impl<T: TokenType> Drop for Multiprocess<T> {
    fn drop(&mut self) {
        self.pool.stop_now();
    }
}

/// A short name for a recipe, for `Debug` and the log.
fn describe(recipe: &Recipe) -> String {
    match recipe {
        Recipe::Registered { tag, .. } => tag.clone(),
        Recipe::Product(a, b) => format!("Product({}, {})", describe(a), describe(b)),
        Recipe::AutoBatched { inner, .. } => format!("AutoBatched({})", describe(inner)),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

impl<T: TokenType> fmt::Debug for Multiprocess<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multiprocess")
            .field("potential", &self.pool.name)
            .field("workers", &self.pool.slots.len())
            .field("vocab_len", &self.vocab.len())
            .field("socket", &self.pool.address.to_string())
            .finish()
    }
}

impl<T: TokenType> Potential for Multiprocess<T> {
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        NativeBatch::ALL
    }

    async fn complete(&self, context: &[T]) -> Result<f64> {
        self.scalar(CallRef::Complete(context), "complete").await
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        self.scalar(CallRef::Prefix(context), "prefix").await
    }

    async fn score(&self, context: &[Symbol<T>]) -> Result<f64> {
        self.scalar(CallRef::Score(context), "score").await
    }

    async fn logw_next(&self, context: &[T]) -> Result<LogWeights<T>> {
        let shape = Shape::flat("logw_next", self.vocab.len() + 1);
        let mut rows = self.rows(CallRef::LogwNext(context), shape).await?;
        self.weights(rows.pop().expect("one row"))
    }

    async fn batch_complete(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        self.split_scalars(contexts, "batch_complete", CallRef::BatchComplete)
            .await
    }

    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>> {
        self.split_scalars(contexts, "batch_prefix", CallRef::BatchPrefix)
            .await
    }

    async fn batch_score(&self, contexts: &[Vec<Symbol<T>>]) -> Result<Vec<f64>> {
        self.split_scalars(contexts, "batch_score", CallRef::BatchScore)
            .await
    }

    async fn batch_logw_next(&self, contexts: &[Vec<T>]) -> Result<Vec<LogWeights<T>>> {
        let method = "batch_logw_next";
        let width = self.vocab.len() + 1;
        let shape = |rows| Shape {
            method,
            rows,
            width,
        };
        let chunks = self
            .split(contexts, method, shape, CallRef::BatchLogwNext)
            .await?;
        chunks
            .into_iter()
            .flatten()
            .map(|row| self.weights(row))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(values: &[f64]) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode_values(values, &mut out);
        out
    }

    fn slot() -> Slot {
        Slot {
            state: Mutex::new(SlotState::Starting),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            restarts: AtomicU32::new(0),
            deaths: Mutex::new(Vec::new()),
            reader: Mutex::new(None),
            last_exit: Mutex::new(None),
        }
    }

    /// A call of one value waiting on `conn` with id `id`.
    fn waiting(conn: &Conn, id: u64) -> Reply<'_> {
        let shape = Shape::flat("complete", 1);
        lock(&conn.pending)
            .calls
            .insert(id, Pending::Waiting(shape, Waker::noop().clone()));
        Reply {
            conn,
            id,
            polled: false,
            done: false,
        }
    }

    fn poll(reply: &mut Reply<'_>) -> Poll<Result<Answer>> {
        Pin::new(reply).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn replies_of_one_read_reach_their_callers_and_leave_no_entry() {
        let conn = Conn::new(1, 1, Outbox::new());
        let slot = slot();
        let (mut first, mut second) = (waiting(&conn, 7), waiting(&conn, 8));
        // The first poll follows the send at once, with the waker the
        // entry holds: it waits without looking.
        assert!(poll(&mut first).is_pending());
        assert!(poll(&mut second).is_pending());
        assert!(poll(&mut first).is_pending());
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        for (id, value) in [(8, 2.0), (7, 1.0), (99, 3.0)] {
            decoder.push(&crate::protocol::frame::encode_frame(id, &reply(&[value])));
        }
        conn.deliver_all(&mut decoder, &slot, &mut Vec::new())
            .unwrap();
        assert!(matches!(
            poll(&mut first),
            Poll::Ready(Ok(Answer::One(1.0)))
        ));
        assert!(matches!(
            poll(&mut second),
            Poll::Ready(Ok(Answer::One(2.0)))
        ));
        // The reply nobody waited for is not counted.
        assert_eq!(slot.served.load(Ordering::Relaxed), 2);
        assert!(lock(&conn.pending).calls.is_empty());
    }

    #[test]
    fn a_call_dropped_before_its_reply_leaves_no_entry() {
        let conn = Conn::new(1, 1, Outbox::new());
        let mut gone = waiting(&conn, 3);
        assert!(poll(&mut gone).is_pending());
        drop(gone);
        assert!(lock(&conn.pending).calls.is_empty());
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&crate::protocol::frame::encode_frame(3, &reply(&[1.0])));
        conn.deliver_all(&mut decoder, &slot(), &mut Vec::new())
            .unwrap();
        assert!(lock(&conn.pending).calls.is_empty());
    }

    #[test]
    fn a_large_reply_is_decoded_into_its_rows() {
        let conn = Conn::new(1, 1, Outbox::new());
        let width = DECODE_UNLOCKED_ABOVE / 8;
        let shape = Shape {
            method: "batch_logw_next",
            rows: 2,
            width,
        };
        lock(&conn.pending)
            .calls
            .insert(5, Pending::Waiting(shape, Waker::noop().clone()));
        let mut call = Reply {
            conn: &conn,
            id: 5,
            polled: true,
            done: false,
        };
        let values: Vec<f64> = (0..2 * width).map(|i| i as f64).collect();
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&crate::protocol::frame::encode_frame(5, &reply(&values)));
        conn.deliver_all(&mut decoder, &slot(), &mut Vec::new())
            .unwrap();
        match poll(&mut call) {
            Poll::Ready(Ok(Answer::Rows(rows))) => {
                assert_eq!(rows.len(), 2);
                assert_eq!(rows.concat(), values);
            }
            other => panic!("expected two rows, got {other:?}"),
        }
    }

    #[test]
    fn a_dead_worker_fails_its_calls_and_takes_no_more() {
        let conn = Conn::new(1, 1, Outbox::new());
        let mut call = waiting(&conn, 4);
        assert!(poll(&mut call).is_pending());
        conn.fail_all(&PotentialError::WorkerFailure("died".into()));
        assert!(matches!(
            poll(&mut call),
            Poll::Ready(Err(PotentialError::WorkerFailure(m))) if m == "died"
        ));
        assert!(!lock(&conn.pending).open);
    }

    #[test]
    fn a_reply_is_cut_into_rows_of_its_shape() {
        let values: Vec<f64> = (0..6).map(f64::from).collect();
        let shape = Shape {
            method: "batch_logw_next",
            rows: 3,
            width: 2,
        };
        assert_eq!(
            shape.decode(&reply(&values)).unwrap().into_rows(),
            [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
        );
        assert_eq!(
            Shape::flat("complete", 1).decode(&reply(&[2.5])).unwrap(),
            Answer::One(2.5)
        );
        assert_eq!(
            Shape::flat("batch_complete", 6)
                .decode(&reply(&values))
                .unwrap()
                .into_rows(),
            [values]
        );
    }

    #[test]
    fn a_reply_of_another_shape_is_an_error() {
        let shape = Shape {
            method: "batch_logw_next",
            rows: 2,
            width: 4,
        };
        assert!(matches!(
            shape.decode(&reply(&[1.0; 6])),
            Err(PotentialError::BatchSizeMismatch {
                method: "batch_logw_next",
                expected: 8,
                got: 6
            })
        ));
        let mut error = Vec::new();
        wire::encode_error(&PotentialError::Panicked("boom".into()), &mut error);
        assert!(matches!(
            shape.decode(&error),
            Err(PotentialError::Panicked(m)) if m == "boom"
        ));
        assert!(matches!(
            shape.decode(&[]),
            Err(PotentialError::WorkerFailure(_))
        ));
    }
}
