//! The future of one call through the pool: dispatch to a worker, the
//! wait for its reply, and the retries when workers die.
//!
//! The common case (a worker is running, the call is sent, the worker
//! answers) is a small hand-written state machine, [`CallFuture`]; every
//! other case (no worker running yet, a worker that died with the call, a
//! request timeout) hands over to the general loop, [`dispatch`], boxed.
//!
//! Why by hand: thousands of these futures are in flight at once (a
//! `join_all` over a sampler's particles, a bench's 2,000 calls), each
//! moved into its task three or four times. As nested `async fn`s the
//! call's future was 344 bytes (each layer keeps its own copy of its
//! arguments, and every variable of the rare paths has its place), and
//! `memcpy`'s moves of it were 10% of the parent's instructions per call
//! (callgrind, the `worker_throughput` row). The fast path keeps only what
//! it needs across its one wait.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use potential_core::wire::{Answer, CallRef};
use potential_core::{PotentialError, Result, TokenType};

use crate::affinity::Hashes;
use crate::conn::{AwaitReply, Conn, Death, Outcome, Sent, Shape};
use crate::state::Pool;

/// See the module's documentation; made by `Multiprocess::call`.
///
/// Two lifetimes, the pool's (`'p`) and the call's contexts' (`'c`): a
/// potential's method borrows its `self` and its context for lifetimes
/// of their own, and the future it returns can name only those.
pub(crate) struct CallFuture<'p, 'c, T: TokenType> {
    pool: &'p Arc<Pool>,
    call: CallRef<'c, T>,
    shape: Shape,
    hashes: Option<Hashes>,
    state: State<'c>,
}

enum State<'c> {
    /// Not sent yet.
    Start,
    /// Sent to the worker of `slot` as its call `id`; waiting for the reply.
    Sent {
        conn: Arc<Conn>,
        slot: usize,
        id: u64,
    },
    /// Off the fast path: the general loop (which holds a pool of its
    /// own, so that it borrows only the call).
    Slow(BoxFuture<'c, Result<Answer>>),
    /// Answered.
    Done,
}

impl<'p, 'c, T: TokenType> CallFuture<'p, 'c, T> {
    /// Sends `call`, whose reply has `shape`, to the least-loaded worker
    /// of `pool` (see [`dispatch`]) once polled.
    pub(crate) fn new(pool: &'p Arc<Pool>, call: CallRef<'c, T>, shape: Shape) -> Self {
        CallFuture {
            pool,
            hashes: Hashes::of(&call),
            call,
            shape,
            state: State::Start,
        }
    }

    /// Hands over to the general loop; `died`: the death this call was
    /// in flight at already, if any.
    fn go_slow(&mut self, died: Option<Arc<Death>>) {
        self.state = State::Slow(Box::pin(dispatch(
            self.pool.clone(),
            self.call,
            self.shape,
            self.hashes,
            died,
        )));
    }
}

impl<T: TokenType> Future for CallFuture<'_, '_, T> {
    type Output = Result<Answer>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Answer>> {
        // Unpin: no field is pinned (the slow path's future is boxed).
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Start => {
                    let pool = this.pool;
                    let chosen = match pool.options().request_timeout {
                        // A timed wait: the general loop's.
                        Some(_) => None,
                        None => pool.least_loaded(pool.preferred(this.hashes)).0,
                    };
                    let Some((slot, conn)) = chosen else {
                        this.go_slow(None);
                        continue;
                    };
                    // The waker goes into the call's entry as it is sent:
                    // a reply that comes before the next poll wakes it.
                    match conn.send(&this.call, this.shape, cx.waker().clone(), None) {
                        Sent::Waiting(id) => {
                            this.state = State::Sent { conn, slot, id };
                            return Poll::Pending;
                        }
                        Sent::Failed(e) => {
                            this.state = State::Done;
                            return Poll::Ready(Err(e));
                        }
                        // The worker died before the call was sent.
                        Sent::Gone => this.go_slow(None),
                    }
                }
                State::Sent { conn, slot, id } => {
                    let outcome = ready!(conn.poll_reply(*id, cx));
                    let slot = *slot;
                    // The entry is gone: nothing to abandon on drop.
                    this.state = State::Done;
                    match outcome {
                        Outcome::Answered(answer) => {
                            if answer.is_ok() {
                                this.pool.served_context(this.hashes, slot);
                            }
                            return Poll::Ready(answer);
                        }
                        Outcome::Died(death) => {
                            let mut died = None;
                            match after_death(this.pool, death, &mut died, false) {
                                AfterDeath::Fail(e) => return Poll::Ready(Err(e)),
                                AfterDeath::Retry | AfterDeath::Isolate => this.go_slow(died),
                            }
                        }
                    }
                }
                State::Slow(slow) => {
                    let answer = ready!(slow.as_mut().poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(answer);
                }
                State::Done => panic!("a pool call's future polled after it completed"),
            }
        }
    }
}

impl<T: TokenType> Drop for CallFuture<'_, '_, T> {
    fn drop(&mut self) {
        if let State::Sent { conn, id, .. } = &self.state {
            conn.abandon(*id);
        }
    }
}

/// What a call does after the worker it was in flight at died.
enum AfterDeath {
    /// Send it again.
    Retry,
    /// Send it again alone (one such call in the pool at a time).
    Isolate,
    /// Give up with this error.
    Fail(PotentialError),
}

/// Decides what a call does after `death`; `died` holds the first death
/// it was in flight at (set here at the first crash), `alone` whether it
/// was sent alone already.
///
/// A call that two workers died of is a poison pill and fails. When the
/// second death held several calls that had each died once (a poison
/// pill's innocent companions, retried with it), it cannot tell which:
/// each of them is then sent once more alone, and only the one whose
/// worker dies again fails.
fn after_death(
    pool: &Pool,
    death: Arc<Death>,
    died: &mut Option<Arc<Death>>,
    alone: bool,
) -> AfterDeath {
    if !pool.options().retry {
        return AfterDeath::Fail(death.error());
    }
    // Killed for another call's timeout: not this call's fault.
    if !death.crash {
        pool.add_retried(death.slot);
        return AfterDeath::Retry;
    }
    match died {
        None => {
            pool.add_retried(death.slot);
            *died = Some(death);
            AfterDeath::Retry
        }
        Some(first) if alone || death.suspects <= 1 => {
            AfterDeath::Fail(Death::poison_pill(first, &death))
        }
        Some(_) => {
            pool.add_retried(death.slot);
            AfterDeath::Isolate
        }
    }
}

/// The general loop: sends a call to the least-loaded worker (on a tie,
/// the one that served the call's parent context: see `affinity`),
/// waiting for one to run if none does, and waits for its answer (under
/// the request timeout, if set); sends it again to a live worker if its
/// worker dies meanwhile (see [`after_death`]). `died`: the death the
/// call was in flight at already, if any.
async fn dispatch<T: TokenType>(
    pool: Arc<Pool>,
    call: CallRef<'_, T>,
    shape: Shape,
    hashes: Option<Hashes>,
    mut died: Option<Arc<Death>>,
) -> Result<Answer> {
    let mut alone = None;
    loop {
        let (slot, conn) = match pool.least_loaded(pool.preferred(hashes)) {
            (Some(best), _) => best,
            _ => pool.pick().await?,
        };
        // The waker goes into the call's entry as it is sent; no
        // `.await` may come between the send and the reply's first
        // poll (see `AwaitReply`).
        let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let id = match conn.send(&call, shape, waker, died.clone()) {
            Sent::Waiting(id) => id,
            Sent::Failed(e) => return Err(e),
            // The worker died before the call was sent: its slot is no
            // longer running, so the next pick finds another (or waits).
            Sent::Gone => continue,
        };
        match wait(&pool, id, &conn).await {
            Outcome::Answered(answer) => {
                if answer.is_ok() {
                    pool.served_context(hashes, slot);
                }
                return answer;
            }
            Outcome::Died(death) => match after_death(&pool, death, &mut died, alone.is_some()) {
                AfterDeath::Retry => {}
                AfterDeath::Isolate => alone = Some(pool.isolate().await),
                AfterDeath::Fail(e) => return Err(e),
            },
        }
    }
}

/// Waits for the reply to call `id`, up to the request timeout.
async fn wait(pool: &Pool, id: u64, conn: &Conn) -> Outcome {
    let reply = conn.reply(id);
    match pool.options().request_timeout {
        None => reply.await,
        Some(limit) => wait_timed(pool, id, conn, reply, limit).await,
    }
}

/// Waits for a reply under a request timeout that times the work, not
/// the queue: the clock of a call runs from when it was sent or from
/// when its worker was last heard from, whichever is later, so that a
/// worker that keeps answering other calls is busy, not stuck (400
/// callers of 1 ms calls on 2 workers queue for 200 ms, and none of
/// them is late). A worker silent for the whole limit is killed (stuck,
/// it would look idle and win the next calls) and restarts; the call it
/// was stuck in (its oldest unanswered call) fails with the timeout,
/// and its other calls are retried. Such a kill is not a crash: it
/// does not count towards giving the worker up.
async fn wait_timed(
    pool: &Pool,
    id: u64,
    conn: &Conn,
    mut reply: AwaitReply<'_>,
    limit: std::time::Duration,
) -> Outcome {
    let sent = tokio::time::Instant::now();
    loop {
        let quiet_since = tokio::time::Instant::from_std(conn.last_heard()).max(sent);
        let deadline = quiet_since + limit;
        if let Ok(outcome) = tokio::time::timeout_at(deadline, &mut reply).await {
            return outcome;
        }
        if tokio::time::Instant::from_std(conn.last_heard()) + limit > tokio::time::Instant::now() {
            continue; // heard from meanwhile: busy, not stuck
        }
        let why = format!("killed: it answered nothing for {limit:?}");
        conn.kill_for(why, false);
        pool.kill(conn.ticket);
        if conn.is_oldest_unanswered(id) {
            // Dropping `reply` marks the call abandoned: a reply that
            // comes after all is dropped.
            return Outcome::Answered(Err(PotentialError::WorkerFailure(format!(
                "worker {} did not answer within {limit:?}; it was killed and is restarted",
                conn.pid
            ))));
        }
        // Another call holds the worker up: this one learns of the
        // death and is retried.
        return reply.await;
    }
}
