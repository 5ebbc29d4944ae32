//! The worker side: what a re-executed copy of the program does when
//! [`init`](crate::init) finds itself started by a pool.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use interprocess::local_socket::tokio::{Stream, prelude::*};
use potential_core::wire::{self, PlaceValues, ServePotential};
use potential_core::{PotentialError, Result};
use tokio::io::AsyncWriteExt;

use crate::protocol::env::{self, WorkerEnv, started_as_worker};
use crate::protocol::frame::{FrameDecoder, MAX_FRAME_LEN, begin_frame, finish_frame};
use crate::protocol::handshake::Hello;
use crate::protocol::message::{INIT_ID, decode_recipe};
use crate::shared;
use crate::socket::SocketAddress;
use crate::sys;
use crate::transport::{Half, Outbox, ReadEnd, Send, Took, read_loop};
use crate::tuning::{COALESCE_BELOW, FLUSH_AFTER, MMAP_THRESHOLD, TRIM_THRESHOLD};

/// Exit codes of a worker, for the parent's log.
const EXIT_OK: i32 = 0;
const EXIT_BAD_ENV: i32 = 70;
const EXIT_NO_PARENT: i32 = 71;
const EXIT_CONNECT: i32 = 72;
const EXIT_RECIPE: i32 = 73;
const EXIT_PROTOCOL: i32 = 74;

/// Runs the worker and exits, when this process is one; returns otherwise.
pub(crate) fn enter_if_worker() {
    if !started_as_worker() {
        return;
    }
    let env = WorkerEnv::read(&mut std::io::stdin().lock());
    // SAFETY: `init` runs first in `main` (its documented contract), before
    // the program starts threads that could read the environment concurrently.
    // The variables are removed so that nothing the potential spawns
    // believes it is a worker.
    unsafe {
        for var in env::ALL {
            std::env::remove_var(var);
        }
    }
    let code = match env {
        Some(env) => run(env),
        None => {
            eprintln!(
                "potential worker: malformed environment ({})",
                env::ALL.join(", ")
            );
            EXIT_BAD_ENV
        }
    };
    std::process::exit(code);
}

fn run(env: WorkerEnv) -> i32 {
    if !sys::parent::die_with_parent(env.parent) {
        return EXIT_NO_PARENT;
    }
    keep_freed_memory();
    // The worker serves from a thread of its own, not the main thread:
    // glibc trims the main arena on free, so a reply buffer of 400 KB
    // freed and reallocated there costs about 260 µs in page faults.
    let serving = std::thread::Builder::new()
        .name("potential-worker".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(serve(env)),
                Err(e) => {
                    eprintln!("potential worker: cannot start a runtime: {e}");
                    EXIT_CONNECT
                }
            }
        });
    match serving.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => EXIT_PROTOCOL,
        Err(e) => {
            eprintln!("potential worker: cannot start its thread: {e}");
            EXIT_CONNECT
        }
    }
}

/// Makes glibc keep the memory a worker frees, up to
/// [`TRIM_THRESHOLD`] (elsewhere than on glibc, nothing).
///
/// A worker allocates the same sizes call after call: a potential's weight
/// vectors (66 KB each over a vocabulary of 8,257) and the reply frames
/// that carry them (megabytes for a batch). By default glibc gives a
/// heap's free top back to the kernel once it exceeds 128 KB, on every
/// thread, so each batch would fault its pages in again: half of a
/// `batch_logw_next` of 32 contexts was page faults. The worker process
/// belongs to the runtime, so it sets these for itself; its memory stays
/// at the peak of what it used.
fn keep_freed_memory() {
    sys::memory::keep_freed_memory(MMAP_THRESHOLD, TRIM_THRESHOLD);
}

/// The worker's conversation with its pool, in the order of
/// [`protocol`](crate::protocol): hello, recipe, calls.
async fn serve(env: WorkerEnv) -> i32 {
    let mut half = match connect_and_hello(&env).await {
        Ok(half) => half,
        Err(code) => return code,
    };
    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let (server, placer) = match receive_recipe(&mut half, &mut decoder).await {
        Ok(received) => received,
        Err(code) => return code,
    };
    serve_calls(half, decoder, server, placer).await
}

/// Connects to the pool's socket and says hello.
async fn connect_and_hello(env: &WorkerEnv) -> std::result::Result<Half, i32> {
    let stream = match connect(&env.socket).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("potential worker: cannot connect to {}: {e}", env.socket);
            return Err(EXIT_CONNECT);
        }
    };
    crate::transport::tune(&stream);
    let mut half = Half(Arc::new(stream));
    if let Err(e) = half
        .write_all(&Hello::new(&env.secret, env.ticket).to_frame())
        .await
    {
        eprintln!("potential worker: cannot send hello: {e}");
        return Err(EXIT_CONNECT);
    }
    Ok(half)
}

/// Reads the recipe (and the shared region before it, if one comes) and
/// rebuilds the potential; answers with its description, or with the
/// error and an exit code.
async fn receive_recipe(
    half: &mut Half,
    decoder: &mut FrameDecoder,
) -> std::result::Result<(Arc<dyn ServePotential>, Option<Arc<dyn PlaceValues>>), i32> {
    let (recipe, placer) = match shared::read_recipe(half, decoder).await {
        Ok(received) => received,
        // The pool closes without a recipe when it refused us or shut down.
        Err(ReadEnd::Eof) => return Err(EXIT_OK),
        Err(e) => {
            eprintln!("potential worker: no recipe: {e}");
            return Err(EXIT_PROTOCOL);
        }
    };
    let server = match recipe {
        (id, payload) if id == INIT_ID => rebuild(&payload),
        (id, _) => Err(PotentialError::InvalidInput(format!(
            "expected the recipe, got frame {id}"
        ))),
    };
    let mut reply = Vec::new();
    let start = begin_frame(&mut reply, INIT_ID);
    match &server {
        Ok(server) => server.describe(&mut reply),
        Err(e) => wire::encode_error(e, &mut reply),
    }
    let framed = finish_frame(&mut reply, start, MAX_FRAME_LEN);
    let sent = match framed {
        Ok(()) => half.write_all(&reply).await.is_ok(),
        Err(_) => false,
    };
    match server {
        Ok(server) if sent => Ok((server, placer)),
        Ok(_) => Err(EXIT_PROTOCOL),
        Err(_) => {
            let _ = half.shutdown().await;
            Err(EXIT_RECIPE)
        }
    }
}

/// The potential a recipe describes, ready to answer encoded calls.
fn rebuild(payload: &[u8]) -> Result<Arc<dyn ServePotential>> {
    decode_recipe(payload)?.build()?.into_server()
}

/// Answers calls until the pool closes the connection.
///
/// With a shared region, the server writes the weights of large replies
/// there (`placer`) and their frames are small: they are queued with the
/// other small replies of the read. Each reply's frame is queued in the
/// poll that completes it, before any later placement (this loop and the
/// tasks it spawns run on one thread), which is the order the ring's
/// reader needs.
async fn serve_calls(
    half: Half,
    mut decoder: FrameDecoder,
    server: Arc<dyn ServePotential>,
    placer: Option<Arc<dyn PlaceValues>>,
) -> i32 {
    let outbox = Outbox::with_stream(half.clone());
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.write_loop().await }
    });
    // The socket stays open until the process exits (the kernel closes it
    // as the process ends), so the end of stream the pool reads means this
    // worker is exiting, and the pool's reaper never catches it alive.
    std::mem::forget(half.clone());
    // The small replies of one read are built one after the other in one
    // buffer and queued together: one lock and one wakeup of the writer
    // per read, not per call. The writer runs on this thread too, so the
    // loop hands over (yields) once it has served for `FLUSH_AFTER` or
    // gathered a write's worth: replies leave as they are computed, not
    // when the whole read is done (1,000 calls of 1 ms in one read sent
    // their first answer after 1,003 ms).
    let mut ready = outbox.buffer();
    let mut scratch = Vec::new();
    let end = read_loop(half, &mut decoder, |frames| {
        // A deadline compared with the clock, not `elapsed()` compared with
        // a duration: the subtraction of two `Instant`s was two thirds of
        // the check's cost, paid before every call (callgrind).
        let flush_at = Instant::now() + FLUSH_AFTER;
        let outcome = loop {
            if ready.len() >= COALESCE_BELOW || Instant::now() >= flush_at {
                break Ok(Took::Some);
            }
            let frame = match frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break Ok(Took::All),
                Err(e) => break Err(e),
            };
            if scratch.capacity() == 0 {
                // After a large reply: a buffer the writer gave back,
                // whose pages are mapped already (a fresh megabyte would
                // be page faults at every batch).
                scratch = outbox.buffer();
            }
            let start = begin_frame(&mut scratch, frame.id);
            // The call is decoded here, from the read buffer; most answers
            // are ready at the first poll and need no task of their own.
            let mut answer =
                server.serve_placing(frame.payload, std::mem::take(&mut scratch), placer.clone());
            let mut cx = Context::from_waker(Waker::noop());
            match answer.as_mut().poll(&mut cx) {
                Poll::Ready(mut reply) => {
                    finish_reply(&mut reply, frame.id, start);
                    if reply.len() < COALESCE_BELOW {
                        ready.extend_from_slice(&reply);
                        reply.clear();
                        scratch = reply;
                    } else {
                        outbox.push(reply, Send::Queued);
                    }
                }
                Poll::Pending => {
                    let (id, outbox) = (frame.id, outbox.clone());
                    tokio::spawn(async move {
                        let mut reply = answer.await;
                        finish_reply(&mut reply, id, start);
                        outbox.push(reply, Send::Queued);
                    });
                }
            }
        };
        if !ready.is_empty() {
            // The replies of this read, written at once when the writer
            // is idle.
            outbox.push(std::mem::replace(&mut ready, outbox.buffer()), Send::Now);
        }
        outcome
    })
    .await;
    writer.abort();
    match end {
        ReadEnd::Eof => EXIT_OK,
        other => {
            eprintln!("potential worker: {other}");
            EXIT_PROTOCOL
        }
    }
}

async fn connect(socket: &SocketAddress) -> std::io::Result<Stream> {
    Stream::connect(socket.to_name()?).await
}

/// Finishes the reply frame begun at `start`; one too large for a frame
/// becomes an error reply.
fn finish_reply(reply: &mut Vec<u8>, id: u64, start: usize) {
    if let Err(e) = finish_frame(reply, start, MAX_FRAME_LEN) {
        reply.truncate(start);
        let start = begin_frame(reply, id);
        wire::encode_error(
            &PotentialError::InvalidInput(format!("the reply is too large: {e}")),
            reply,
        );
        let _ = finish_frame(reply, start, MAX_FRAME_LEN);
    }
}
