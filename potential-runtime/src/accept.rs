//! Accepting connections on a pool's socket: each must come from this
//! user, and say hello with the pool's secret and a ticket it handed out,
//! or it is refused.
//!
//! Before a peer has authenticated, it costs the pool little and not for
//! long: its uid is checked ([`check_peer`]) before a byte is read, at most
//! [`MAX_PENDING_HELLOS`] connections (or twice the workers, if more) wait
//! for their hello at once (more are refused at once), each with a
//! hello-sized buffer and for at most [`HELLO_TIMEOUT`]. (Anyone on the machine can see an abstract socket's
//! name and connect to it: 10,000 held connections used to cost 658 MB and
//! 10,014 descriptors, for up to 5 s each.)

use std::io;
use std::sync::Arc;

use interprocess::local_socket::ListenerOptions;
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use tokio::sync::Semaphore;

use crate::protocol::frame::{Frame, FrameDecoder, MAX_FRAME_LEN};
use crate::protocol::handshake::{HELLO_FRAME_LEN, Refusal, check_hello};
use crate::state::Pool;
use crate::sys::peer::check_peer;
use crate::transport::{Half, ReadEnd, read_one};
use crate::tuning::{ACCEPT_RETRY, HELLO_TIMEOUT, MAX_PENDING_HELLOS};

/// Binds the pool's socket and starts accepting connections.
pub(crate) fn listen(pool: &Arc<Pool>) -> io::Result<()> {
    let listener = ListenerOptions::new()
        .name(pool.address().to_name()?)
        .create_tokio()?;
    let task = tokio::spawn(accept_loop(pool.clone(), listener));
    pool.track(task.abort_handle());
    Ok(())
}

async fn accept_loop(pool: Arc<Pool>, listener: Listener) {
    // Every worker of the pool may be starting at once.
    let cap = MAX_PENDING_HELLOS.max(2 * pool.slot_count());
    let pending = Arc::new(Semaphore::new(cap));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                // Refused connections are dropped here: closed at once.
                let pid = match check_peer(&stream) {
                    Ok(pid) => pid,
                    Err(refusal) => {
                        pool.refuse(refusal);
                        continue;
                    }
                };
                // A worker this pool spawned gets in past the cap, so that
                // a flood of connections cannot keep a restart out (its
                // hello is checked all the same).
                let permit = if pid.is_some_and(|pid| pool.is_child(pid)) {
                    None
                } else if let Ok(permit) = pending.clone().try_acquire_owned() {
                    Some(permit)
                } else {
                    pool.refuse(Refusal::Busy { pending: cap });
                    continue;
                };
                let task = tokio::spawn({
                    let pool = pool.clone();
                    async move {
                        handshake(pool, stream).await;
                        drop(permit);
                    }
                });
                pool.track(task.abort_handle());
            }
            Err(e) => {
                tracing::warn!(socket = %pool.address(), error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
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
            pool.secret(),
        ),
    };
    let arrival = ticket.and_then(|ticket| {
        pool.take_ticket(ticket)
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
