//! One worker's connection: its outbox, and the table of the calls that
//! wait for its replies.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use potential_core::hash::BuildFastHasher;
use potential_core::wire::{self, Answer, CallRef, TakeValues};
use potential_core::{Method, PotentialError, Result, TokenType};

use crate::protocol::frame::{
    FrameDecoder, FrameError, HEADER_LEN, MAX_FRAME_LEN, begin_frame, finish_frame,
};
use crate::protocol::message::FIRST_CALL_ID;
use crate::shared::RingReader;
use crate::sync::lock;
use crate::transport::{Outbox, Send};
use crate::tuning::{COALESCE_BELOW, DECODE_UNLOCKED_ABOVE, SHARED_ABOVE};

/// What a call answers: `rows` rows of `width` values each (one row for a
/// scalar or a batch of scalars, one per context for `batch_logw_next`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) method: Method,
    pub(crate) rows: usize,
    pub(crate) width: usize,
}

impl Shape {
    /// One row of `count` values.
    pub(crate) fn flat(method: Method, count: usize) -> Shape {
        Shape {
            method,
            rows: 1,
            width: count,
        }
    }

    /// Decodes a reply of this shape; `take` reads the values of one
    /// whose values are in the shared region.
    fn decode(self, payload: &[u8], take: Option<&mut dyn TakeValues>) -> Result<Answer> {
        wire::decode_rows(payload, self.method, self.rows, self.width, take)
    }
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
    /// No reply yet: the reply's shape, the task to wake, and the death of
    /// the worker that held this call before, if it is a retry.
    Waiting(Shape, Waker, Option<Arc<Death>>),
    /// Decoded (or the worker died), waiting for its caller to take it.
    Done(Outcome),
    /// Its caller gave up (a timeout, a dropped future) before the reply:
    /// the worker still works on it, so it still counts as the worker's
    /// load until the reply comes and is dropped.
    Abandoned,
}

/// How a call sent to a worker ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The worker answered: values or its error.
    Answered(Result<Answer>),
    /// The worker died with the call in flight.
    Died(Arc<Death>),
}

/// How a worker ended, as the calls it held learn it.
#[derive(Debug)]
pub(crate) struct Death {
    pub(crate) pid: u32,
    pub(crate) slot: usize,
    /// Whether it counts as a crash: false when the pool killed a worker
    /// that missed a request timeout (stuck or too slow, not broken), so
    /// its calls are retried without counting it towards a poison pill.
    pub(crate) crash: bool,
    /// How many of the calls in flight at this death had died with a
    /// worker before: when only one had, it is the one both died of.
    pub(crate) suspects: usize,
    /// When the pool saw it end: the key of its record in the slot's deaths.
    pub(crate) at: Instant,
    /// Why its connection ended (end of stream, a read error, ...).
    pub(crate) reason: String,
    /// Its exit status, once reaped.
    pub(crate) status: Option<ExitStatus>,
}

impl Death {
    /// `worker PID (exit status; reason)`.
    pub(crate) fn describe(&self) -> String {
        match self.status {
            Some(status) => format!("worker {} ({status}; {})", self.pid, self.reason),
            None => format!("worker {} ({})", self.pid, self.reason),
        }
    }

    /// The error of a call that this death ends.
    pub(crate) fn error(&self) -> PotentialError {
        PotentialError::WorkerFailure(format!("{} died with the call in flight", self.describe()))
    }

    /// The error of a call that was in flight on two workers that both
    /// died: it fails alone, and is not sent a third time.
    pub(crate) fn poison_pill(first: &Death, second: &Death) -> PotentialError {
        PotentialError::WorkerFailure(format!(
            "poison pill: the call was in flight on two workers that both died, {} and {}; \
             it is not retried again, and these deaths do not count towards giving workers up",
            first.describe(),
            second.describe()
        ))
    }
}

/// The calls a connection waits on.
struct Table {
    /// False once the worker is gone: no call may wait on it any more.
    open: bool,
    calls: HashMap<u64, Pending, BuildFastHasher>,
}

/// The replies of one read that a caller waited for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// All of them.
    pub(crate) served: u64,
    /// Those whose values came through the shared region.
    pub(crate) shared: u64,
    /// Those large enough for the region that took the socket although
    /// the connection has one.
    pub(crate) fallbacks: u64,
}

/// What [`Conn::send`] did with a call.
pub(crate) enum Sent {
    /// Queued: wait for the reply of this id.
    Waiting(u64),
    /// The call could not be encoded.
    Failed(PotentialError),
    /// The worker is gone; nothing was sent.
    Gone,
}

/// Why the pool killed a worker.
#[derive(Debug, Clone)]
pub(crate) struct Killed {
    /// What the pool saw.
    pub(crate) reason: String,
    /// Whether the kill counts as a death towards giving the slot up: not
    /// for a worker that missed a request timeout (busy or stuck in one
    /// call is not a crash).
    pub(crate) counts: bool,
}

/// One worker process's connection.
pub(crate) struct Conn {
    pub(crate) pid: u32,
    pub(crate) ticket: u64,
    pub(crate) outbox: Arc<Outbox>,
    pending: Mutex<Table>,
    next_id: AtomicU64,
    /// Calls sent and not yet answered by the worker, abandoned ones
    /// included: the worker's load, for dispatch.
    load: AtomicUsize,
    /// When the connection was made: `heard` counts from it.
    born: Instant,
    /// When bytes last came from the worker (nanoseconds after `born`):
    /// a worker heard from within a request timeout is busy, not stuck.
    heard: AtomicU64,
    /// The frame limit of calls ([`MAX_FRAME_LEN`]; smaller in tests).
    max_frame: usize,
    /// Why the pool killed the worker, when it did.
    killed: Mutex<Option<Killed>>,
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
            next_id: AtomicU64::new(FIRST_CALL_ID),
            load: AtomicUsize::new(0),
            born: Instant::now(),
            heard: AtomicU64::new(0),
            max_frame: MAX_FRAME_LEN,
            killed: Mutex::new(None),
        }
    }

    /// Records why the pool is about to kill the worker (the first reason
    /// stays); `counts`: whether it counts as a death (see [`Killed`]).
    pub(crate) fn kill_for(&self, reason: String, counts: bool) {
        lock(&self.killed).get_or_insert(Killed { reason, counts });
    }

    /// Why the pool killed the worker, if it did.
    pub(crate) fn killed(&self) -> Option<Killed> {
        lock(&self.killed).clone()
    }

    /// Calls sent to the worker that it has not answered yet, including
    /// those whose callers gave up.
    pub(crate) fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    /// When bytes last came from the worker (or the connection was made).
    pub(crate) fn last_heard(&self) -> Instant {
        self.born + Duration::from_nanos(self.heard.load(Ordering::Relaxed))
    }

    /// Whether `id` is the oldest call the worker has not answered (its
    /// caller waiting or not): the one a worker that serves calls in order
    /// is stuck in.
    pub(crate) fn is_oldest_unanswered(&self, id: u64) -> bool {
        let table = lock(&self.pending);
        table
            .calls
            .iter()
            .filter(|(_, p)| !matches!(p, Pending::Done(_)))
            .map(|(&k, _)| k)
            .min()
            == Some(id)
    }

    /// Enters a call in the table; `None` when the worker is gone, else
    /// whether it is alone there (then it is written at once).
    fn register(&self, id: u64, pending: Pending) -> Option<Send> {
        let mut table = lock(&self.pending);
        if !table.open {
            return None;
        }
        table.calls.insert(id, pending);
        self.load.fetch_add(1, Ordering::Relaxed);
        Some(if table.calls.len() == 1 {
            Send::Now
        } else {
            Send::Queued
        })
    }

    /// Takes a call the worker answered out of the load (and, when its
    /// caller gave up, out of the table); gives the waiting entry, if a
    /// caller waits.
    fn answered<'t>(&self, table: &'t mut Table, id: u64) -> Option<&'t mut Pending> {
        let entry = match table.calls.entry(id) {
            Entry::Vacant(_) => return None,
            Entry::Occupied(entry) => entry,
        };
        match entry.get() {
            // A second reply to the same id is not the worker's work.
            Pending::Done(_) => return None,
            Pending::Abandoned => {
                entry.remove();
                self.load.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            Pending::Waiting(..) => {}
        }
        self.load.fetch_sub(1, Ordering::Relaxed);
        Some(entry.into_mut())
    }

    /// Registers a call's reply with the task's `waker` (and the death
    /// that sent it here again, for a retry), then encodes and queues its
    /// frame.
    ///
    /// A call that may be large (by [`CallRef::len_hint`]) is measured
    /// first, without writing it, so that one too large for a frame fails
    /// before a byte of it is encoded. A small call is encoded straight
    /// into the outbox's shared bytes (a bounded moment under its lock, no
    /// copy), and a small one is not measured: that pass cost 33 of the
    /// 483 instructions `send` spent on a trivial call (callgrind, the
    /// `worker_throughput` row: 450 without it). A
    /// large one is encoded into a buffer of its own, outside any lock the
    /// writer or other callers need. Either way the frame's length is
    /// checked once written.
    pub(crate) fn send<T: TokenType>(
        &self,
        call: &CallRef<'_, T>,
        shape: Shape,
        waker: Waker,
        after: Option<Arc<Death>>,
    ) -> Sent {
        let len = if call.len_hint() < COALESCE_BELOW.min(self.max_frame / 4) {
            None
        } else {
            let len = match wire::encoded_call_len(call) {
                Ok(len) => len,
                Err(e) => return Sent::Failed(e),
            };
            if len > self.max_frame - (HEADER_LEN - 4) {
                return Sent::Failed(PotentialError::InvalidInput(format!(
                    "the call is too large: {len} bytes encoded, over the frame limit of {} bytes",
                    self.max_frame
                )));
            }
            Some(len)
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // A lone call is written at once, by this task; calls that have
        // company are queued, so that the writer sends them together.
        let Some(send) = self.register(id, Pending::Waiting(shape, waker, after)) else {
            return Sent::Gone;
        };
        let encode = |out: &mut Vec<u8>| {
            let start = begin_frame(out, id);
            wire::encode_call(call, out)?;
            finish_frame(out, start, self.max_frame)
                .map_err(|e| PotentialError::InvalidInput(format!("the call is too large: {e}")))
        };
        let queued = match len {
            Some(len) if len >= COALESCE_BELOW => {
                let mut frame = Vec::with_capacity(HEADER_LEN + len);
                encode(&mut frame).map(|()| self.outbox.push(frame, Send::Queued))
            }
            _ => self.outbox.push_with(encode, send),
        };
        if let Err(e) = queued {
            if lock(&self.pending).calls.remove(&id).is_some() {
                self.load.fetch_sub(1, Ordering::Relaxed);
            }
            return Sent::Failed(e);
        }
        Sent::Waiting(id)
    }

    /// The reply to call `id`, sent by [`send`](Self::send) in the same
    /// poll of the caller's task.
    pub(crate) fn reply(&self, id: u64) -> AwaitReply<'_> {
        AwaitReply {
            conn: self,
            id,
            polled: false,
            done: false,
        }
    }

    /// Takes the reply to call `id` if it came (the entry leaves the
    /// table), else keeps `cx`'s waker in its entry: the body of every
    /// poll of a sent call but its first.
    pub(crate) fn poll_reply(&self, id: u64, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut table = lock(&self.pending);
        let outcome = match table.calls.entry(id) {
            Entry::Occupied(mut entry) => {
                if let Pending::Waiting(_, waker, _) = entry.get_mut() {
                    waker.clone_from(cx.waker());
                    return Poll::Pending;
                }
                match entry.remove() {
                    Pending::Done(outcome) => outcome,
                    Pending::Waiting(..) | Pending::Abandoned => {
                        Outcome::Answered(Err(self.lost(id)))
                    }
                }
            }
            Entry::Vacant(_) => Outcome::Answered(Err(self.lost(id))),
        };
        Poll::Ready(outcome)
    }

    /// The error for a call whose entry is gone (not reached: only the
    /// call's own future removes it).
    fn lost(&self, id: u64) -> PotentialError {
        PotentialError::WorkerFailure(format!("worker {} lost call {id}", self.pid))
    }

    /// Gives up waiting for call `id` (its caller's future is dropped
    /// before the reply): a call the worker still works on stays its
    /// load, abandoned, until the reply comes (see `answered`).
    pub(crate) fn abandon(&self, id: u64) {
        let mut table = lock(&self.pending);
        let open = table.open;
        if let Entry::Occupied(mut entry) = table.calls.entry(id) {
            match entry.get() {
                Pending::Waiting(..) if open => *entry.get_mut() = Pending::Abandoned,
                _ => {
                    entry.remove();
                }
            }
        }
    }

    /// Hands the replies of one read to their callers: one lock for all
    /// the small ones, their wakers pushed to `wakers` for the caller to
    /// wake once it has counted them (so that a caller who reads the
    /// pool's stats after its answer finds it counted). Gives the replies
    /// a caller waited for, and how the read ended.
    ///
    /// Replies whose values are in the shared region are read from `ring`,
    /// in the order they come, like large ones: outside the lock.
    pub(crate) fn deliver_all(
        &self,
        decoder: &mut FrameDecoder,
        wakers: &mut Vec<Waker>,
        mut ring: Option<&mut RingReader>,
    ) -> (Delivered, std::result::Result<(), FrameError>) {
        let mut delivered = Delivered::default();
        let mut table = None;
        // Bytes came: the worker is alive and working.
        let heard = self.born.elapsed().as_nanos();
        self.heard
            .store(u64::try_from(heard).unwrap_or(u64::MAX), Ordering::Relaxed);
        let outcome = loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let shared = wire::is_shared(frame.payload);
            if shared || frame.payload.len() > DECODE_UNLOCKED_ABOVE {
                table = None;
                let take = ring.as_deref_mut().map(|ring| ring as &mut dyn TakeValues);
                let taken = self.deliver_unlocked(frame.id, wakers, |shape| match shape {
                    Some(shape) => Some(shape.decode(frame.payload, take)),
                    None => {
                        wire::discard_reply(frame.payload, take);
                        None
                    }
                });
                delivered.served += u64::from(taken.is_some());
                // A malformed placement is an error, not values that came
                // through the region.
                delivered.shared += u64::from(shared && taken == Some(true));
                // Values (not a mask, which is never placed) that the
                // region would have taken had it had room: not those it
                // refused for a weight that is not one, which fail here.
                let values = !shared && frame.payload.first() == Some(&wire::VALUES);
                delivered.fallbacks += u64::from(
                    ring.is_some()
                        && values
                        && taken == Some(true)
                        && frame.payload.len() > SHARED_ABOVE,
                );
                continue;
            }
            let locked = table.get_or_insert_with(|| lock(&self.pending));
            let Some(entry) = self.answered(locked, frame.id) else {
                tracing::debug!(id = frame.id, "reply to a call nobody waits for");
                continue;
            };
            if let Pending::Waiting(shape, ..) = entry {
                let answer = Outcome::Answered(shape.decode(frame.payload, None));
                if let Pending::Waiting(_, waker, _) =
                    std::mem::replace(entry, Pending::Done(answer))
                {
                    wakers.push(waker);
                    delivered.served += 1;
                }
            }
        };
        drop(table);
        (delivered, outcome)
    }

    /// Delivers a large reply, decoding it with the table unlocked;
    /// returns, when a caller waited for it, whether it decoded to values.
    /// `decode` is given the shape of the reply when a caller waits for
    /// it, and `None` when nobody does (it may have to release what the
    /// reply holds).
    fn deliver_unlocked(
        &self,
        id: u64,
        wakers: &mut Vec<Waker>,
        decode: impl FnOnce(Option<Shape>) -> Option<Result<Answer>>,
    ) -> Option<bool> {
        let shape = match self.answered(&mut lock(&self.pending), id) {
            Some(Pending::Waiting(shape, ..)) => Some(*shape),
            _ => None,
        };
        let Some(answer) = decode(shape) else {
            tracing::debug!(id, "reply to a call nobody waits for");
            return None;
        };
        let ok = answer.is_ok();
        let answer = Outcome::Answered(answer);
        // The caller may have given up meanwhile (a timeout): then its
        // entry is abandoned (or gone) and the answer is dropped.
        let mut table = lock(&self.pending);
        let Entry::Occupied(mut entry) = table.calls.entry(id) else {
            return None;
        };
        match entry.get() {
            Pending::Waiting(..) => {}
            Pending::Abandoned => {
                entry.remove();
                return None;
            }
            Pending::Done(_) => return None,
        }
        if let Pending::Waiting(_, waker, _) = entry.insert(Pending::Done(answer)) {
            wakers.push(waker);
        }
        Some(ok)
    }

    /// Refuses new calls (the worker is gone); gives the earlier death of
    /// a call still in flight that had been retried here already, if any
    /// (then this death is that call's second, and the call may be a
    /// poison pill), and how many such calls were in flight.
    pub(crate) fn close(&self) -> (Option<Arc<Death>>, usize) {
        let mut table = lock(&self.pending);
        table.open = false;
        let mut retried = table.calls.values().filter_map(|entry| match entry {
            Pending::Waiting(_, _, Some(first)) => Some(first),
            _ => None,
        });
        let first = retried.next().cloned();
        (
            first.clone(),
            usize::from(first.is_some()) + retried.count(),
        )
    }

    /// Fails every call in flight with `error` and refuses new ones.
    pub(crate) fn fail_all(&self, error: &PotentialError) {
        self.end_all(|| Outcome::Answered(Err(error.clone())));
    }

    /// Tells every call in flight that the worker died, and refuses new ones.
    pub(crate) fn bury(&self, death: &Arc<Death>) {
        self.end_all(|| Outcome::Died(death.clone()));
    }

    fn end_all(&self, outcome: impl Fn() -> Outcome) {
        let mut wakers = Vec::new();
        {
            let mut table = lock(&self.pending);
            table.open = false;
            // No reply will come: abandoned calls leave, and nothing is
            // the worker's load any more.
            table.calls.retain(|_, p| !matches!(p, Pending::Abandoned));
            self.load.store(0, Ordering::Relaxed);
            // An answer delivered but not yet taken by its caller stays:
            // only the calls still waiting learn of the end.
            for entry in table.calls.values_mut() {
                if matches!(entry, Pending::Waiting(..))
                    && let Pending::Waiting(_, waker, _) =
                        std::mem::replace(entry, Pending::Done(outcome()))
                {
                    wakers.push(waker);
                }
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Waits for the reply to one call; if dropped first, marks the call
/// abandoned (its reply is dropped when it comes).
///
/// Its first poll, right after the call was sent with the task's waker,
/// only returns `Pending`: a reply that came meanwhile has woken the task
/// already.
///
/// Invariant: [`Conn::send`] and this future's first poll happen in the
/// same poll of the caller's task, with no `.await` between them; an
/// `.await` inserted there would let a reply wake a stale waker and be lost.
pub(crate) struct AwaitReply<'a> {
    conn: &'a Conn,
    id: u64,
    polled: bool,
    done: bool,
}

impl Future for AwaitReply<'_> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if !std::mem::replace(&mut self.polled, true) {
            return Poll::Pending;
        }
        let outcome = ready!(self.conn.poll_reply(self.id, cx));
        self.done = true;
        Poll::Ready(outcome)
    }
}

impl Drop for AwaitReply<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.abandon(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_frame;

    fn reply(values: &[f64]) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode_values(values, &mut out);
        out
    }

    /// A call of one value waiting on `conn` with id `id`.
    fn waiting(conn: &Conn, id: u64) -> AwaitReply<'_> {
        let shape = Shape::flat(Method::Complete, 1);
        conn.register(id, Pending::Waiting(shape, Waker::noop().clone(), None))
            .expect("an open connection");
        conn.reply(id)
    }

    /// Polls a reply; an answer comes back as a `Result`.
    fn poll(reply: &mut AwaitReply<'_>) -> Poll<Result<Answer>> {
        match Pin::new(reply).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Outcome::Answered(answer)) => Poll::Ready(answer),
            Poll::Ready(Outcome::Died(death)) => panic!("unexpected death: {death:?}"),
            Poll::Pending => Poll::Pending,
        }
    }

    #[test]
    fn replies_of_one_read_reach_their_callers_and_leave_no_entry() {
        let conn = Conn::new(1, 1, Outbox::new());
        let (mut first, mut second) = (waiting(&conn, 7), waiting(&conn, 8));
        // The first poll follows the send at once, with the waker the
        // entry holds: it waits without looking.
        assert!(poll(&mut first).is_pending());
        assert!(poll(&mut second).is_pending());
        assert!(poll(&mut first).is_pending());
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        for (id, value) in [(8, 2.0), (7, 1.0), (99, 3.0)] {
            decoder.push(&encode_frame(id, &reply(&[value])).unwrap());
        }
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new(), None);
        outcome.unwrap();
        assert!(matches!(
            poll(&mut first),
            Poll::Ready(Ok(Answer::One(1.0)))
        ));
        assert!(matches!(
            poll(&mut second),
            Poll::Ready(Ok(Answer::One(2.0)))
        ));
        // The reply nobody waited for is not counted.
        assert_eq!(served.served, 2);
        assert!(lock(&conn.pending).calls.is_empty());
    }

    #[test]
    fn a_call_dropped_before_its_reply_counts_as_load_until_the_worker_answers() {
        let conn = Conn::new(1, 1, Outbox::new());
        let mut gone = waiting(&conn, 3);
        assert!(poll(&mut gone).is_pending());
        drop(gone);
        // The worker still works on it: a new call should go elsewhere.
        assert_eq!(conn.load(), 1);
        assert!(conn.is_oldest_unanswered(3));
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&encode_frame(3, &reply(&[1.0])).unwrap());
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new(), None);
        outcome.unwrap();
        assert_eq!(served.served, 0);
        assert_eq!(conn.load(), 0);
        assert!(lock(&conn.pending).calls.is_empty());
    }

    #[test]
    fn load_counts_calls_until_their_replies_and_a_death_clears_it() {
        let conn = Conn::new(1, 1, Outbox::new());
        let (mut a, mut b) = (waiting(&conn, 1), waiting(&conn, 2));
        assert!(poll(&mut a).is_pending() && poll(&mut b).is_pending());
        assert_eq!(conn.load(), 2);
        assert!(conn.is_oldest_unanswered(1) && !conn.is_oldest_unanswered(2));
        let before = conn.last_heard();
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&encode_frame(1, &reply(&[1.0])).unwrap());
        conn.deliver_all(&mut decoder, &mut Vec::new(), None)
            .1
            .unwrap();
        assert!(conn.last_heard() >= before);
        // Answered but not yet taken by its caller: no longer the worker's load.
        assert_eq!(conn.load(), 1);
        assert!(conn.is_oldest_unanswered(2));
        drop(b);
        conn.bury(&death(9));
        assert_eq!(conn.load(), 0);
        assert!(
            lock(&conn.pending).calls.len() == 1,
            "only the answered call waits"
        );
        assert!(matches!(poll(&mut a), Poll::Ready(Ok(Answer::One(1.0)))));
    }

    #[test]
    fn a_malformed_shared_reply_is_an_error_not_counted_as_shared() {
        let conn = Conn::new(1, 1, Outbox::new());
        let mut call = waiting(&conn, 6);
        assert!(poll(&mut call).is_pending());
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        // A shared-memory reply on a connection without a region.
        decoder.push(&encode_frame(6, &[wire::SHARED, 0, 0]).unwrap());
        let (delivered, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new(), None);
        outcome.unwrap();
        assert_eq!(
            delivered,
            Delivered {
                served: 1,
                shared: 0,
                fallbacks: 0
            }
        );
        assert!(matches!(
            poll(&mut call),
            Poll::Ready(Err(PotentialError::WorkerFailure(m))) if m.contains("malformed")
        ));
    }

    #[test]
    fn a_large_reply_is_decoded_into_its_rows() {
        let conn = Conn::new(1, 1, Outbox::new());
        let width = DECODE_UNLOCKED_ABOVE / 8;
        let shape = Shape {
            method: Method::BatchLogwNext,
            rows: 2,
            width,
        };
        lock(&conn.pending)
            .calls
            .insert(5, Pending::Waiting(shape, Waker::noop().clone(), None));
        let mut call = conn.reply(5);
        call.polled = true;
        let values: Vec<f64> = (0..2 * width).map(|i| i as f64).collect();
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&encode_frame(5, &reply(&values)).unwrap());
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new(), None);
        outcome.unwrap();
        assert_eq!(served.served, 1);
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
        let sent = conn.send(
            &CallRef::<u8>::Complete(&[]),
            Shape::flat(Method::Complete, 1),
            Waker::noop().clone(),
            None,
        );
        assert!(matches!(sent, Sent::Gone));
    }

    fn death(pid: u32) -> Arc<Death> {
        Arc::new(Death {
            pid,
            slot: 0,
            crash: true,
            suspects: 0,
            at: Instant::now(),
            reason: "end of stream".into(),
            status: None,
        })
    }

    #[test]
    fn a_retried_call_on_a_dying_worker_marks_the_death_as_its_second() {
        let conn = Conn::new(2, 1, Outbox::new());
        let first = death(1);
        let Sent::Waiting(id) = conn.send(
            &CallRef::<u8>::Complete(&[1]),
            Shape::flat(Method::Complete, 1),
            Waker::noop().clone(),
            Some(first.clone()),
        ) else {
            panic!("the call was not queued");
        };
        let mut reply = conn.reply(id);
        reply.polled = true;
        let (earlier, suspects) = conn.close();
        let earlier = earlier.expect("the call had died once before");
        assert_eq!(suspects, 1);
        assert!(Arc::ptr_eq(&earlier, &first));
        conn.bury(&death(2));
        let Poll::Ready(Outcome::Died(second)) =
            Pin::new(&mut reply).poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("the call did not learn of the death");
        };
        let error = Death::poison_pill(&earlier, &second).to_string();
        assert!(
            error.contains("poison pill")
                && error.contains("worker 1")
                && error.contains("worker 2"),
            "{error}"
        );
    }

    #[test]
    fn an_oversized_call_fails_before_it_is_encoded() {
        let mut conn = Conn::new(1, 1, Outbox::new());
        conn.max_frame = 1024;
        let context = vec![7u32; 2048];
        let sent = conn.send(
            &CallRef::Complete(&context),
            Shape::flat(Method::Complete, 1),
            Waker::noop().clone(),
            None,
        );
        assert!(
            matches!(&sent, Sent::Failed(PotentialError::InvalidInput(m)) if m.contains("too large")),
            "the call was not refused"
        );
        // Nothing was written anywhere: no bytes kept in the outbox, no entry.
        assert_eq!(conn.outbox.queued_capacity(), (0, 0));
        assert!(lock(&conn.pending).calls.is_empty());
    }

    #[test]
    fn a_large_call_is_encoded_into_a_frame_of_its_own() {
        let conn = Conn::new(1, 1, Outbox::new());
        let context = vec![7u32; COALESCE_BELOW];
        let sent = conn.send(
            &CallRef::Complete(&context),
            Shape::flat(Method::Complete, 1),
            Waker::noop().clone(),
            None,
        );
        assert!(matches!(sent, Sent::Waiting(_)));
        // Queued whole, not encoded into the bytes shared under the lock.
        assert_eq!(conn.outbox.queued_capacity(), (0, 1));
    }
}
