//! Accepting connections on a pool's socket: each must say hello with the
//! pool's secret and a ticket it handed out, or it is refused.

use std::io;
use std::sync::Arc;

use interprocess::local_socket::ListenerOptions;
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};

use crate::protocol::frame::{Frame, FrameDecoder, MAX_FRAME_LEN};
use crate::protocol::handshake::{HELLO_FRAME_LEN, Refusal, check_hello};
use crate::state::Pool;
use crate::transport::{Half, ReadEnd, read_one};
use crate::tuning::{ACCEPT_RETRY, HELLO_TIMEOUT};

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
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let task = tokio::spawn(handshake(pool.clone(), stream));
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
