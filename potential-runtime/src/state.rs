//! The pool's state: its worker slots, its children, its spawn tickets and
//! its refusals. Supervision and dispatch call its methods; nothing else
//! reaches into it.

use std::collections::HashMap;
use std::mem::Discriminant;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use futures::channel::oneshot;
use potential_core::{PotentialError, Result, Wrapper};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

use crate::affinity::{Affinity, Hashes};
use crate::conn::{Conn, Delivered};
use crate::log_throttle::LogThrottle;
use crate::options::MultiprocessOptions;
use crate::protocol::frame::FrameDecoder;
use crate::protocol::handshake::{Refusal, Secret};
use crate::socket::{SocketAddress, remove_private_dir};
use crate::sync::{lock, read, write};
use crate::transport::Half;
use crate::tuning::{AFFINITY_SLACK, REFUSAL_LOG_INTERVAL, REFUSALS_KEPT};

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
    /// Of those, the answers whose values came through the memory the
    /// worker shares with this process rather than the socket (see
    /// [`MultiprocessOptions::shared_memory`](crate::MultiprocessOptions::shared_memory)).
    pub shared: u64,
    /// Large replies (over 32 KB of values) that took the socket although
    /// the worker shares memory with this process: the region had no room
    /// for them when they were placed.
    pub fallbacks: u64,
    /// Calls sent to the running process and not yet answered by it; a
    /// call whose caller gave up (a timeout, a dropped future) counts until
    /// the worker answers it, since the worker is still busy with it.
    pub in_flight: usize,
    /// Times a process of this slot was restarted after dying.
    pub restarts: u32,
    /// Calls sent again to another worker because this slot's process
    /// died with them in flight (see [`MultiprocessOptions::retry`](crate::MultiprocessOptions::retry)).
    pub retried: u64,
    /// How the slot's last process ended, once one has ended and been
    /// reaped. After [`Multiprocess::shutdown`](crate::Multiprocess::shutdown),
    /// a worker that exited by itself on seeing its socket close shows
    /// success; one that had to be killed shows the signal.
    pub last_exit: Option<ExitStatus>,
}

/// How a spawned worker's authenticated connection reaches its starter.
pub(crate) type Arrival = oneshot::Sender<(Half, FrameDecoder)>;

enum SlotState {
    Starting,
    Up(Arc<Conn>),
    GivenUp,
    Stopped,
}

/// One worker's place in the pool, over all the processes that fill it
/// (its state is in [`Pool`]'s table of states).
struct Slot {
    served: AtomicU64,
    shared: AtomicU64,
    fallbacks: AtomicU64,
    restarts: AtomicU32,
    retried: AtomicU64,
    deaths: Mutex<Vec<Instant>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    last_exit: Mutex<Option<ExitStatus>>,
    /// Why the slot's last process ended, or failed to start.
    last_reason: Mutex<Option<String>>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            served: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            restarts: AtomicU32::new(0),
            retried: AtomicU64::new(0),
            deaths: Mutex::new(Vec::new()),
            reader: Mutex::new(None),
            last_exit: Mutex::new(None),
            last_reason: Mutex::new(None),
        }
    }
}

/// What a pool is made of before it starts: its potential, its socket and
/// its secret.
pub(crate) struct Setup {
    pub(crate) name: String,
    pub(crate) recipe: Vec<u8>,
    pub(crate) options: MultiprocessOptions,
    pub(crate) address: SocketAddress,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) secret: Secret,
}

/// The shared state of a pool: its workers, its socket, its secret.
pub(crate) struct Pool {
    setup: Setup,
    slots: Vec<Slot>,
    /// Each slot's state, by slot: one lock for them all, so that a
    /// call's dispatch reads every slot under one read lock (it is on
    /// every call's path; a change of state is rare).
    states: RwLock<Vec<SlotState>>,
    /// Signalled whenever a slot changes state.
    changed: Notify,
    closing: AtomicBool,
    /// Spawned workers waiting for their connection, by ticket.
    tickets: Mutex<HashMap<u64, Arrival>>,
    /// Every child process not yet reaped, with its slot, by ticket.
    children: Mutex<HashMap<u64, (usize, Child)>>,
    tasks: Mutex<Vec<AbortHandle>>,
    refusals: Mutex<Vec<Refusal>>,
    /// Which refusals get a log line (a flood must not flood the log).
    refusal_log: Mutex<LogThrottle<Discriminant<Refusal>>>,
    /// Connections refused because too many waited for their hello.
    busy_refusals: AtomicU64,
    stopped: AtomicBool,
    /// Where the next scan for the least-loaded worker starts, so that ties
    /// go round-robin (always from slot 0, a stuck worker that looks idle
    /// would win every tie).
    next_start: AtomicUsize,
    /// Which worker served which context: ties go to the worker that
    /// served a call's parent context.
    affinity: Affinity,
    /// Held by a call sent alone to find out whether it is a poison pill.
    isolation: tokio::sync::Mutex<()>,
}

impl Pool {
    pub(crate) fn new(setup: Setup) -> Pool {
        Pool {
            slots: (0..setup.options.workers).map(|_| Slot::new()).collect(),
            states: RwLock::new(
                (0..setup.options.workers)
                    .map(|_| SlotState::Starting)
                    .collect(),
            ),
            setup,
            changed: Notify::new(),
            closing: AtomicBool::new(false),
            tickets: Mutex::new(HashMap::new()),
            children: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            refusals: Mutex::new(Vec::new()),
            refusal_log: Mutex::new(LogThrottle::new(REFUSAL_LOG_INTERVAL)),
            busy_refusals: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            next_start: AtomicUsize::new(0),
            affinity: Affinity::new(),
            isolation: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn options(&self) -> &MultiprocessOptions {
        &self.setup.options
    }

    /// The encoded spawn recipe.
    pub(crate) fn recipe(&self) -> &[u8] {
        &self.setup.recipe
    }

    /// A short name of the potential, for `Debug` and the log.
    pub(crate) fn name(&self) -> &str {
        &self.setup.name
    }

    pub(crate) fn address(&self) -> &SocketAddress {
        &self.setup.address
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.setup.dir.as_deref()
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.setup.secret
    }

    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether the pool is shutting down or stopped.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    // --- Spawn tickets and children ---

    /// Draws a random ticket for a worker about to be spawned (a peer
    /// cannot guess the next one); its connection arrives on the receiver
    /// once its hello is checked.
    pub(crate) fn add_ticket(
        &self,
    ) -> std::io::Result<(u64, oneshot::Receiver<(Half, FrameDecoder)>)> {
        let (tx, rx) = oneshot::channel();
        let mut tickets = lock(&self.tickets);
        loop {
            let mut bytes = [0; 8];
            getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
            let ticket = u64::from_le_bytes(bytes);
            if let std::collections::hash_map::Entry::Vacant(slot) = tickets.entry(ticket) {
                slot.insert(tx);
                return Ok((ticket, rx));
            }
        }
    }

    /// Takes a ticket out: each is good for one connection.
    pub(crate) fn take_ticket(&self, ticket: u64) -> Option<Arrival> {
        lock(&self.tickets).remove(&ticket)
    }

    /// Registers a spawned child, to be reaped by its reader or by
    /// [`stop_now`](Self::stop_now); one spawned after the pool stopped
    /// (a restart under way) is killed and reaped at once.
    pub(crate) fn adopt_child(&self, ticket: u64, slot: usize, mut child: Child) {
        let mut children = lock(&self.children);
        if self.stopped.load(Ordering::Acquire) {
            drop(children);
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        children.insert(ticket, (slot, child));
    }

    /// Whether `pid` is a child this pool spawned and has not reaped: a
    /// connection from it is one of its workers (before its hello proves
    /// it), so a flood of other connections cannot crowd it out.
    pub(crate) fn is_child(&self, pid: u32) -> bool {
        lock(&self.children).values().any(|(_, c)| c.id() == pid)
    }

    /// The exit status of a child that has exited, if it has.
    pub(crate) fn child_exited(&self, ticket: u64) -> Option<ExitStatus> {
        lock(&self.children)
            .get_mut(&ticket)
            .and_then(|(_, c)| c.try_wait().ok().flatten())
    }

    /// Kills the child of `ticket` (a worker stuck past the request
    /// timeout); its reader then sees the end of its stream and restarts it.
    pub(crate) fn kill(&self, ticket: u64) {
        if let Some((_, child)) = lock(&self.children).get_mut(&ticket) {
            let _ = child.kill();
        }
    }

    /// Takes a child out of the registry, to reap it.
    pub(crate) fn take_child(&self, ticket: u64) -> Option<Child> {
        lock(&self.children).remove(&ticket).map(|(_, c)| c)
    }

    // --- Slots ---

    /// Publishes a started worker in its slot (unless the pool stopped
    /// meanwhile: then its outbox closes and its reader reaps it).
    pub(crate) fn worker_up(
        &self,
        slot: usize,
        conn: Arc<Conn>,
        reader: JoinHandle<()>,
        restart: bool,
    ) {
        let s = &self.slots[slot];
        {
            let state = &mut write(&self.states)[slot];
            if matches!(*state, SlotState::Stopped) {
                conn.outbox.close();
            } else {
                if restart {
                    s.restarts.fetch_add(1, Ordering::Relaxed);
                }
                *state = SlotState::Up(conn);
            }
        }
        *lock(&s.reader) = Some(reader);
        self.changed.notify_waiters();
    }

    /// Marks a slot whose worker died as restarting, or as given up.
    pub(crate) fn worker_down(&self, slot: usize, give_up: bool) {
        {
            let state = &mut write(&self.states)[slot];
            if !matches!(*state, SlotState::Stopped) {
                *state = if give_up {
                    SlotState::GivenUp
                } else {
                    SlotState::Starting
                };
            }
        }
        self.changed.notify_waiters();
    }

    /// Records a death of the slot's worker at `at`; whether it has now
    /// died too often.
    pub(crate) fn record_death(&self, slot: usize, at: Instant) -> bool {
        let policy = self.setup.options.restart;
        let mut deaths = lock(&self.slots[slot].deaths);
        deaths.retain(|t| at.saturating_duration_since(*t) <= policy.window);
        deaths.push(at);
        deaths.len() >= policy.max_deaths as usize
    }

    /// Takes back the death recorded at `at`: it was a poison pill's, which
    /// does not count towards giving the worker up.
    pub(crate) fn forgive(&self, slot: usize, at: Instant) {
        lock(&self.slots[slot].deaths).retain(|t| *t != at);
    }

    /// Records how the slot's last process ended (its status, once reaped)
    /// and why.
    pub(crate) fn record_exit(&self, slot: usize, status: Option<ExitStatus>, reason: String) {
        let s = &self.slots[slot];
        if status.is_some() {
            *lock(&s.last_exit) = status;
        }
        *lock(&s.last_reason) = Some(reason);
    }

    /// Counts calls sent again after the slot's worker died with them.
    pub(crate) fn add_retried(&self, slot: usize) {
        self.slots[slot].retried.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes a given-up slot start again, its deaths forgotten; false when
    /// it was not given up (or the pool is closing).
    pub(crate) fn revive(&self, slot: usize) -> bool {
        if self.is_closing() {
            return false;
        }
        {
            let state = &mut write(&self.states)[slot];
            if !matches!(*state, SlotState::GivenUp) {
                return false;
            }
            *state = SlotState::Starting;
        }
        lock(&self.slots[slot].deaths).clear();
        self.changed.notify_waiters();
        true
    }

    /// Counts replies that a caller waited for.
    pub(crate) fn add_served(&self, slot: usize, delivered: Delivered) {
        let slot = &self.slots[slot];
        slot.served.fetch_add(delivered.served, Ordering::Relaxed);
        slot.shared.fetch_add(delivered.shared, Ordering::Relaxed);
        slot.fallbacks
            .fetch_add(delivered.fallbacks, Ordering::Relaxed);
    }

    // --- Tasks and refusals ---

    /// Keeps a task's handle so that stopping the pool aborts it.
    pub(crate) fn track(&self, handle: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Records a refused connection; logs it unless a line for its kind
    /// was written within the last [`REFUSAL_LOG_INTERVAL`].
    pub(crate) fn refuse(&self, refusal: Refusal) {
        if matches!(refusal, Refusal::Busy { .. }) {
            self.busy_refusals.fetch_add(1, Ordering::Relaxed);
        }
        let kind = std::mem::discriminant(&refusal);
        if let Some(silenced) = lock(&self.refusal_log).admit(kind, Instant::now()) {
            tracing::warn!(
                socket = %self.setup.address,
                reason = %refusal,
                more_since_last_line = silenced,
                "refused a connection"
            );
        }
        let mut kept = lock(&self.refusals);
        if kept.len() == REFUSALS_KEPT {
            kept.remove(0);
        }
        kept.push(refusal);
    }

    pub(crate) fn refusals(&self) -> Vec<Refusal> {
        lock(&self.refusals).clone()
    }

    /// How many connections were refused so far because too many waited
    /// for their hello (a flood of connections on the socket).
    pub(crate) fn busy_refusals(&self) -> u64 {
        self.busy_refusals.load(Ordering::Relaxed)
    }

    // --- Dispatch ---

    pub(crate) fn up_count(&self) -> usize {
        read(&self.states)
            .iter()
            .filter(|s| matches!(s, SlotState::Up(_)))
            .count()
    }

    /// The least-loaded running worker; waits while none runs but some
    /// are starting; fails fast when none is left.
    pub(crate) async fn pick(&self) -> Result<(usize, Arc<Conn>)> {
        // The common case, a worker running, registers no waiter.
        if let (Some(best), _) = self.least_loaded(None) {
            return Ok(best);
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (best, starting) = self.least_loaded(None);
            if let Some(best) = best {
                return Ok(best);
            }
            if self.is_closing() {
                return Err(Wrapper::WorkerPool.closed());
            }
            if !starting {
                return Err(self.all_given_up());
            }
            let startup = self.setup.options.startup_timeout;
            if tokio::time::timeout(startup, changed).await.is_err() {
                return Err(PotentialError::WorkerFailure(format!(
                    "no worker came up within {startup:?}"
                )));
            }
        }
    }

    /// The error of a call when every worker was given up: the last exit
    /// and reason of each, and how they come back.
    fn all_given_up(&self) -> PotentialError {
        let slots: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let exit = lock(&s.last_exit).map_or("not reaped".to_string(), |e| e.to_string());
                let reason = lock(&s.last_reason).clone().unwrap_or_default();
                format!("slot {i}: {exit}, {reason}")
            })
            .collect();
        let policy = self.setup.options.restart;
        let back = if Instant::now().checked_add(policy.window).is_some() {
            format!(
                "they start again {:?} after giving up, or on `revive()`",
                policy.window
            )
        } else {
            "they start again on `revive()`".to_string()
        };
        PotentialError::WorkerFailure(format!(
            "no worker is left: all {} were given up after dying {} times within {:?} ({}); {back}",
            self.slots.len(),
            policy.max_deaths,
            policy.window,
            slots.join("; ")
        ))
    }

    /// The running worker with the fewest calls in flight, and whether
    /// some worker is starting. `prefer` (the worker that served the
    /// call's parent context) wins while it holds at most
    /// [`AFFINITY_SLACK`] more calls than the least loaded, unless it is
    /// busy while another worker is idle: its caches likely hold the
    /// context's state, and a miss costs a re-parse or a prefill, but an
    /// idle core costs more. Other ties go round-robin.
    pub(crate) fn least_loaded(&self, prefer: Option<usize>) -> (Option<(usize, Arc<Conn>)>, bool) {
        let states = read(&self.states);
        let mut choice = Choice::new(prefer);
        let mut starting = false;
        let n = states.len();
        let first = self.next_start.fetch_add(1, Ordering::Relaxed) % n;
        for i in (first..n).chain(0..first) {
            match &states[i] {
                SlotState::Up(conn) => choice.offer(i, conn.load()),
                SlotState::Starting => starting = true,
                SlotState::GivenUp | SlotState::Stopped => {}
            }
        }
        let chosen = choice.chosen().and_then(|slot| match &states[slot] {
            SlotState::Up(conn) => Some((slot, conn.clone())),
            _ => None,
        });
        (chosen, starting)
    }

    /// Waits until no other suspect of a poison pill is in flight; the
    /// guard keeps others out until the call holding it is answered.
    pub(crate) async fn isolate(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.isolation.lock().await
    }

    /// The worker that served the parent of a call's context, if known.
    pub(crate) fn preferred(&self, hashes: Option<Hashes>) -> Option<usize> {
        self.affinity.served(hashes?.parent?)
    }

    /// Remembers that `slot` answered a call of this context.
    pub(crate) fn served_context(&self, hashes: Option<Hashes>, slot: usize) {
        if let Some(hashes) = hashes {
            self.affinity.record(hashes.own, slot);
        }
    }

    // --- Stopping ---

    /// Starts a shutdown: every slot stops (see `close_slots`); gives the
    /// readers, which end when their workers exit, and reap them.
    pub(crate) fn close(&self) -> Vec<JoinHandle<()>> {
        self.closing.store(true, Ordering::Release);
        self.close_slots();
        self.slots
            .iter()
            .filter_map(|s| lock(&s.reader).take())
            .collect()
    }

    /// Marks every slot stopped: its calls in flight fail with
    /// [`PotentialError::Closed`] and its outbox closes, which shuts the
    /// socket's write side so that the worker sees end of stream and exits.
    fn close_slots(&self) {
        let old: Vec<SlotState> = write(&self.states)
            .iter_mut()
            .map(|state| std::mem::replace(state, SlotState::Stopped))
            .collect();
        for state in old {
            if let SlotState::Up(conn) = state {
                conn.fail_all(&Wrapper::WorkerPool.closed());
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
        remove_private_dir(&self.setup.address, self.setup.dir.as_deref());
        tracing::info!(socket = %self.setup.address, "worker pool stopped");
    }

    /// The counters of every worker slot.
    pub(crate) fn stats(&self) -> Vec<WorkerStats> {
        let states = read(&self.states);
        self.slots
            .iter()
            .zip(states.iter())
            .enumerate()
            .map(|(i, (s, state))| {
                let (state, pid, in_flight) = match state {
                    SlotState::Starting => (WorkerState::Starting, None, 0),
                    SlotState::Up(c) => (WorkerState::Running, Some(c.pid), c.load()),
                    SlotState::GivenUp => (WorkerState::GivenUp, None, 0),
                    SlotState::Stopped => (WorkerState::Stopped, None, 0),
                };
                WorkerStats {
                    slot: i,
                    pid,
                    state,
                    served: s.served.load(Ordering::Relaxed),
                    shared: s.shared.load(Ordering::Relaxed),
                    fallbacks: s.fallbacks.load(Ordering::Relaxed),
                    in_flight,
                    restarts: s.restarts.load(Ordering::Relaxed),
                    retried: s.retried.load(Ordering::Relaxed),
                    last_exit: *lock(&s.last_exit),
                }
            })
            .collect()
    }
}

/// [`Pool::least_loaded`]'s choice among the running workers, offered
/// one by one with their loads: the least loaded (the first offered, on a
/// tie), unless the preferred one is within [`AFFINITY_SLACK`] of it and
/// no worker sits idle while it is busy.
struct Choice {
    prefer: Option<usize>,
    /// The least loaded so far: its slot and load.
    least: Option<(usize, usize)>,
    /// The preferred slot's load, once offered.
    preferred: Option<usize>,
}

impl Choice {
    fn new(prefer: Option<usize>) -> Self {
        Choice {
            prefer,
            least: None,
            preferred: None,
        }
    }

    /// Offers the worker of `slot`, with `load` calls in flight.
    fn offer(&mut self, slot: usize, load: usize) {
        if self.prefer == Some(slot) {
            self.preferred = Some(load);
        }
        if self.least.is_none_or(|(_, least)| load < least) {
            self.least = Some((slot, load));
        }
    }

    /// The slot chosen; `None` when nothing was offered.
    fn chosen(self) -> Option<usize> {
        match (self.least, self.preferred, self.prefer) {
            (Some((_, least)), Some(load), Some(prefer))
                if load <= least + AFFINITY_SLACK && (load == 0 || least > 0) =>
            {
                // `least > 0`: an idle worker beats a busy preferred one
                // (AWRS's lookahead sends two draws of one particle, one
                // parent, at once: both on one worker ran one after the
                // other, see `AFFINITY_SLACK`).
                Some(prefer)
            }
            (least, _, _) => least.map(|(slot, _)| slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot chosen among workers of these loads, offered in order.
    fn choose(loads: &[usize], prefer: Option<usize>) -> Option<usize> {
        let mut choice = Choice::new(prefer);
        for (slot, &load) in loads.iter().enumerate() {
            choice.offer(slot, load);
        }
        choice.chosen()
    }

    #[test]
    fn the_least_loaded_worker_is_chosen_first_offered_on_a_tie() {
        assert_eq!(choose(&[], None), None);
        assert_eq!(choose(&[3, 1, 1, 2], None), Some(1));
        // A preferred worker that is not running is not chosen.
        assert_eq!(choose(&[3, 1], Some(5)), Some(1));
    }

    #[test]
    fn the_preferred_worker_wins_within_the_slack_only() {
        assert_eq!(choose(&[2, 1], Some(0)), Some(0));
        assert_eq!(choose(&[3, 1], Some(0)), Some(0));
        assert_eq!(choose(&[4, 1], Some(0)), Some(1));
        assert_eq!(choose(&[34, 32], Some(0)), Some(0));
        assert_eq!(choose(&[35, 32], Some(0)), Some(1));
    }

    #[test]
    fn an_idle_worker_wins_over_a_busy_preferred_one() {
        assert_eq!(choose(&[1, 0], Some(0)), Some(1));
        assert_eq!(choose(&[0, 2, 1], Some(1)), Some(0));
        // An idle preferred worker keeps its call.
        assert_eq!(choose(&[0, 0], Some(1)), Some(1));
        assert_eq!(choose(&[0, 3], Some(0)), Some(0));
        // AWRS with a lookahead of 2 sends two draws of one particle, whose
        // parent (the particle's context) one worker served, to two idle
        // workers: they run side by side, not one after the other.
        assert_eq!(burst(&[0, 0]), (1, [1, 1]));
    }

    /// A burst of 64 calls whose parents were served half by each worker
    /// (alternating, in pairs, or shuffled as resampling leaves them),
    /// each call raising its worker's load: with ties alone, 0, 32 and 10
    /// of them went to the worker without their state (counted with the
    /// rule before); now 0, 1 and 2: the second call when it finds the
    /// other worker idle while its own is busy, and in the shuffled order
    /// one more past the slack. A burst sharing one parent still spreads,
    /// at most the slack apart.
    #[test]
    fn a_burst_spread_evenly_stays_with_its_states() {
        let mut shuffled = [0, 1].repeat(32);
        let mut seed = 7u64;
        for i in (1..shuffled.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        assert_eq!(burst(&[0, 1].repeat(32)).0, 0);
        assert_eq!(burst(&[0, 0, 1, 1].repeat(16)).0, 1);
        assert_eq!(burst(&shuffled).0, 2, "{shuffled:?}");
        let (_, loads) = burst(&[0; 64]);
        assert_eq!(loads, [33, 31]);
    }

    /// Sends calls preferring the workers of `order` to two workers whose
    /// loads only grow: how many went elsewhere, and the loads.
    fn burst(order: &[usize]) -> (usize, [usize; 2]) {
        let mut loads = [0, 0];
        let mut moved = 0;
        for &prefer in order {
            let slot = choose(&loads, Some(prefer)).expect("two workers");
            moved += usize::from(slot != prefer);
            loads[slot] += 1;
        }
        (moved, loads)
    }
}
