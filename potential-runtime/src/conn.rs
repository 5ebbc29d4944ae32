//! One worker's connection: its outbox, and the table of the calls that
//! wait for its replies.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use potential_core::wire::{self, Answer, CallRef};
use potential_core::{Method, PotentialError, Result, TokenType};

use crate::protocol::frame::{FrameDecoder, FrameError, MAX_FRAME_LEN, begin_frame, finish_frame};
use crate::protocol::message::FIRST_CALL_ID;
use crate::sync::lock;
use crate::transport::Outbox;
use crate::tuning::DECODE_UNLOCKED_ABOVE;

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

    /// Decodes a reply of this shape.
    fn decode(self, payload: &[u8]) -> Result<Answer> {
        wire::decode_rows(payload, self.method, self.rows, self.width)
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

/// Hashes call ids, which the pool draws in sequence: one multiplication
/// spreads them over the table (SipHash, the default, cost a visible share
/// of a trivial call). Only `write_u64` is reached: the key is a `u64`.
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

/// What [`Conn::send`] did with a call.
pub(crate) enum Sent {
    /// Queued: wait for the reply of this id.
    Waiting(u64),
    /// The call could not be encoded.
    Failed(PotentialError),
    /// The worker is gone; nothing was sent.
    Gone,
}

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
            next_id: AtomicU64::new(FIRST_CALL_ID),
        }
    }

    /// Registers a call's reply with the task's `waker`, then encodes its
    /// frame straight into the worker's outbox.
    pub(crate) fn send<T: TokenType>(
        &self,
        call: &CallRef<'_, T>,
        shape: Shape,
        waker: Waker,
    ) -> Sent {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut table = lock(&self.pending);
            if !table.open {
                return Sent::Gone;
            }
            table.calls.insert(id, Pending::Waiting(shape, waker));
        }
        let queued = self.outbox.push_with(|out| {
            let start = begin_frame(out, id);
            wire::encode_call(call, out)?;
            finish_frame(out, start, MAX_FRAME_LEN)
                .map_err(|e| PotentialError::InvalidInput(format!("the call is too large: {e}")))
        });
        if let Err(e) = queued {
            lock(&self.pending).calls.remove(&id);
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

    /// Hands the replies of one read to their callers: one lock for all
    /// the small ones, the wakers woken once it is released. Gives the
    /// number of replies a caller waited for, and how the read ended.
    pub(crate) fn deliver_all(
        &self,
        decoder: &mut FrameDecoder,
        wakers: &mut Vec<Waker>,
    ) -> (u64, std::result::Result<(), FrameError>) {
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
        wakers.drain(..).for_each(Waker::wake);
        (served, outcome)
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

impl AwaitReply<'_> {
    /// The error for a call whose entry is gone (not reached: only the
    /// call's own future removes it).
    fn lost(&self) -> PotentialError {
        PotentialError::WorkerFailure(format!("worker {} lost call {}", self.conn.pid, self.id))
    }
}

impl Drop for AwaitReply<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.conn.pending).calls.remove(&self.id);
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
        lock(&conn.pending)
            .calls
            .insert(id, Pending::Waiting(shape, Waker::noop().clone()));
        conn.reply(id)
    }

    fn poll(reply: &mut AwaitReply<'_>) -> Poll<Result<Answer>> {
        Pin::new(reply).poll(&mut Context::from_waker(Waker::noop()))
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
            decoder.push(&encode_frame(id, &reply(&[value])));
        }
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new());
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
        assert_eq!(served, 2);
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
        decoder.push(&encode_frame(3, &reply(&[1.0])));
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new());
        outcome.unwrap();
        assert_eq!(served, 0);
        assert!(lock(&conn.pending).calls.is_empty());
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
            .insert(5, Pending::Waiting(shape, Waker::noop().clone()));
        let mut call = conn.reply(5);
        call.polled = true;
        let values: Vec<f64> = (0..2 * width).map(|i| i as f64).collect();
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&encode_frame(5, &reply(&values)));
        let (served, outcome) = conn.deliver_all(&mut decoder, &mut Vec::new());
        outcome.unwrap();
        assert_eq!(served, 1);
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
        );
        assert!(matches!(sent, Sent::Gone));
    }
}
