//! One connection's two directions: a shared stream, an outbox that
//! coalesces frames into few writes, and a reader loop.

use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::FutureExt;
use interprocess::local_socket::tokio::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;

use crate::protocol::frame::{FrameDecoder, FrameError};
use crate::sync::lock;
use crate::sys;
use crate::tuning::{COALESCE_BELOW, KEEP_BYTES_BELOW, SEND_BUFFER, SPARE_BUFFERS};

/// A shared handle to a stream: `&Stream` reads and writes, so both
/// directions use one `Arc` (`Stream::split` is deprecated in interprocess 2.4).
///
/// Its `poll_shutdown` really shuts the write side down: interprocess's
/// `&Stream` answers `Ready(Ok)` and does nothing, so the peer would never
/// see the end of the stream while this side keeps the socket open.
#[derive(Clone)]
pub(crate) struct Half(pub(crate) Arc<Stream>);

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        sys::stream::poll_shutdown_write(&self.0, cx)
    }
}

/// Frames waiting to be written, and spare buffers to build them in.
///
/// Callers push whole frames from any task, or build them straight into
/// the queue's bytes ([`push_with`](Self::push_with)); one writer task
/// drains them, so many calls in flight cost few `write` calls.
///
/// A frame pushed with [`Send::Now`] when nothing else waits and the writer
/// is idle is written at once by the pusher, without waking the writer
/// task: a lone call costs no hand-over between threads (about 20 µs on a
/// busy 2-core machine). What the socket does not take at once is left to
/// the writer.
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    spare: Mutex<Vec<Vec<u8>>>,
    notify: Notify,
    closed: AtomicBool,
    /// The stream the writer task writes to, and pushers of [`Send::Now`]
    /// frames (`None` only in unit tests, which do not write).
    stream: Option<Half>,
}

/// What waits to be written: frames built in place, and frames pushed whole.
#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    frames: Vec<Vec<u8>>,
    /// The writer task holds frames it took out and has not written yet:
    /// nobody else may write until it has.
    writing: bool,
}

/// When a pushed frame may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Send {
    /// By the writer task, with whatever else is queued.
    Queued,
    /// At once by the pusher, if nothing else waits and the writer is
    /// idle (a lone call, the replies of one read); else as `Queued`.
    Now,
}

impl Outbox {
    /// An outbox without a stream, whose frames stay queued (for tests).
    #[cfg(test)]
    pub(crate) fn new() -> Arc<Outbox> {
        Outbox::build(None)
    }

    /// An outbox whose writer task writes to `stream`, as may pushers of
    /// [`Send::Now`] frames.
    pub(crate) fn with_stream(stream: Half) -> Arc<Outbox> {
        Outbox::build(Some(stream))
    }

    fn build(stream: Option<Half>) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue::default()),
            spare: Mutex::new(Vec::new()),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            stream,
        })
    }

    /// Builds frames at the end of the queue's bytes, under its lock: no
    /// buffer of their own, no copy. On error, what `build` wrote is
    /// dropped and nothing is queued.
    pub(crate) fn push_with<E>(
        &self,
        build: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        send: Send,
    ) -> Result<(), E> {
        let mut queue = lock(&self.queue);
        let start = queue.bytes.len();
        if let Err(e) = build(&mut queue.bytes) {
            queue.bytes.truncate(start);
            return Err(e);
        }
        if send == Send::Now && start == 0 && self.write_now(&mut queue) {
            return Ok(());
        }
        drop(queue);
        self.notify.notify_one();
        Ok(())
    }

    /// Writes the queue's bytes at once, under its lock, when they are all
    /// that waits and the writer is idle: the writer cannot start
    /// meanwhile, and nothing it took is still unwritten, so no frame can
    /// be cut by another. Gives whether everything was written; what the
    /// socket did not take stays at the front of the queue for the writer.
    fn write_now(&self, queue: &mut Queue) -> bool {
        if let Some(stream) = &self.stream
            && !queue.writing
            && queue.frames.is_empty()
            && !self.closed.load(Ordering::Acquire)
        {
            let mut written = 0;
            while written < queue.bytes.len() {
                match sys::stream::try_write(&stream.0, &queue.bytes[written..]) {
                    Some(n) if n > 0 => written += n,
                    // Would block, or failed: the writer takes over (and
                    // meets the error, if it lasts).
                    _ => break,
                }
            }
            queue.bytes.drain(..written);
            return queue.bytes.is_empty();
        }
        false
    }

    /// An empty buffer, with capacity when one was recycled.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        lock(&self.spare).pop().unwrap_or_default()
    }

    /// Gives written buffers back, taking the lock once for all of them.
    fn recycle_all(&self, written: &mut Vec<Vec<u8>>) {
        let mut spare = lock(&self.spare);
        let room = SPARE_BUFFERS.saturating_sub(spare.len());
        spare.extend(written.drain(..).take(room).map(|mut buf| {
            buf.clear();
            buf
        }));
        written.clear();
    }

    /// The capacity of the queue's shared bytes and the number of frames
    /// queued whole (for tests).
    #[cfg(test)]
    pub(crate) fn queued_capacity(&self) -> (usize, usize) {
        let queue = lock(&self.queue);
        (queue.bytes.capacity(), queue.frames.len())
    }

    /// Queues a whole frame.
    pub(crate) fn push(&self, frame: Vec<u8>, send: Send) {
        let mut queue = lock(&self.queue);
        if send == Send::Now && queue.bytes.is_empty() && queue.frames.is_empty() {
            // Written from the queue's bytes, whose buffer is kept: the
            // frame's buffer goes back to the spares.
            queue.bytes.extend_from_slice(&frame);
            let done = self.write_now(&mut queue);
            drop(queue);
            self.recycle_all(&mut vec![frame]);
            if !done {
                self.notify.notify_one();
            }
            return;
        }
        queue.frames.push(frame);
        drop(queue);
        self.notify.notify_one();
    }

    /// Makes the writer shut the write side down once the queue is empty.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Writes queued frames until closed or the peer is gone.
    pub(crate) async fn write_loop(&self) -> io::Result<()> {
        // Only the outboxes of unit tests have no stream; they are not written.
        let mut out = self
            .stream
            .clone()
            .ok_or_else(|| io::Error::other("an outbox without a stream"))?;
        let mut batch = Vec::new();
        let mut joined = Vec::new();
        loop {
            {
                let mut queue = lock(&self.queue);
                // The bytes swap with the (empty) buffer written last time,
                // so the two take turns and neither is allocated again.
                std::mem::swap(&mut joined, &mut queue.bytes);
                std::mem::swap(&mut batch, &mut queue.frames);
                queue.writing = !(batch.is_empty() && joined.is_empty());
            }
            if batch.is_empty() && joined.is_empty() {
                if self.closed.load(Ordering::Acquire) {
                    return out.shutdown().await;
                }
                // Frames queued while this task waits to run go out in one
                // write; a yield here to gather more would cost every lone
                // call a trip through the scheduler.
                self.notify.notified().await;
                continue;
            }
            for frame in &batch {
                if frame.len() < COALESCE_BELOW {
                    joined.extend_from_slice(frame);
                } else {
                    if !joined.is_empty() {
                        out.write_all(&joined).await?;
                        joined.clear();
                    }
                    out.write_all(frame).await?;
                }
            }
            if !joined.is_empty() {
                out.write_all(&joined).await?;
                joined.clear();
            }
            lock(&self.queue).writing = false;
            if joined.capacity() > KEEP_BYTES_BELOW {
                joined = Vec::new();
            }
            self.recycle_all(&mut batch);
        }
    }
}

/// Why a reader stopped.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The peer closed the stream.
    Eof,
    /// Reading failed.
    Io(io::Error),
    /// The peer broke the framing.
    Frame(FrameError),
    /// The reader itself panicked (a bug of ours): the connection is
    /// treated as dead, with the panic's message.
    Panicked(String),
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Eof => f.write_str("end of stream"),
            ReadEnd::Io(e) => write!(f, "read error: {e}"),
            ReadEnd::Frame(e) => write!(f, "protocol error: {e}"),
            ReadEnd::Panicked(e) => write!(f, "the pool's reader panicked: {e}"),
        }
    }
}

/// What a reader's handler did with the frames of one read.
pub(crate) enum Took {
    /// Every whole frame: read more.
    All,
    /// Some, and it yields now (to let replies be written) before it
    /// takes the rest.
    Some,
}

/// Reads until the stream ends; after each read, `on_read` takes the
/// frames now whole out of the decoder ([`FrameDecoder::next_frame`]), all
/// at once, so that it can take its locks once per read rather than once
/// per frame. When it leaves some for later, the task yields and calls it
/// again before reading more. An error it returns ends the loop.
pub(crate) async fn read_loop(
    mut input: Half,
    decoder: &mut FrameDecoder,
    mut on_read: impl FnMut(&mut FrameDecoder) -> Result<Took, FrameError>,
) -> ReadEnd {
    loop {
        match on_read(decoder) {
            Err(e) => return ReadEnd::Frame(e),
            Ok(Took::Some) => {
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Took::All) => {}
        }
        match input.read(decoder.spare()).await {
            Ok(0) => return ReadEnd::Eof,
            Ok(n) => decoder.advance(n),
            Err(e) => return ReadEnd::Io(e),
        }
    }
}

/// Runs a reader to its end; a panic in it is an end like the others
/// ([`ReadEnd::Panicked`]), so that whoever waits on the reader learns
/// that the connection is over.
pub(crate) async fn guarded(reading: impl Future<Output = ReadEnd>) -> ReadEnd {
    AssertUnwindSafe(reading)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| ReadEnd::Panicked(panic_text(panic)))
}

/// The message of a caught panic.
pub(crate) fn panic_text(payload: Box<dyn std::any::Any + std::marker::Send>) -> String {
    match potential_core::PotentialError::from_panic(payload) {
        potential_core::PotentialError::Panicked(text) => text,
        other => other.to_string(),
    }
}

/// Reads exactly one frame (the handshake's), copying its id and payload out.
pub(crate) async fn read_one(
    input: &mut Half,
    decoder: &mut FrameDecoder,
) -> Result<(u64, Vec<u8>), ReadEnd> {
    read_one_with(decoder, |cx, buf| {
        let mut read = ReadBuf::new(buf);
        Pin::new(&mut *input)
            .poll_read(cx, &mut read)
            .map_ok(|()| read.filled().len())
    })
    .await
}

/// As [`read_one`], reading with `poll_read`, which fills the buffer it is
/// given and says how much it read (0: the end of the stream).
pub(crate) async fn read_one_with(
    decoder: &mut FrameDecoder,
    mut poll_read: impl FnMut(&mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
) -> Result<(u64, Vec<u8>), ReadEnd> {
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => return Ok((frame.id, frame.payload.to_vec())),
            Ok(None) => {}
            Err(e) => return Err(ReadEnd::Frame(e)),
        }
        match std::future::poll_fn(|cx| poll_read(cx, decoder.spare())).await {
            Ok(0) => return Err(ReadEnd::Eof),
            Ok(n) => decoder.advance(n),
            Err(e) => return Err(ReadEnd::Io(e)),
        }
    }
}

/// Enlarges the socket's send buffer (where the system lets it); failure
/// only costs speed.
pub(crate) fn tune(stream: &Stream) {
    sys::stream::set_send_buffer(stream, SEND_BUFFER);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(outbox: &Outbox) -> (Vec<u8>, usize) {
        let queue = outbox.queue.lock().unwrap();
        (queue.bytes.clone(), queue.frames.len())
    }

    #[cfg(unix)]
    #[test]
    fn a_lone_frame_is_written_by_its_pusher_and_nothing_jumps_the_writer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use interprocess::os::unix::uds_local_socket::tokio::Stream as UdStream;
            let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
            let half = Half(Arc::new(Stream::UdSocket(UdStream::from(ours))));
            let outbox = Outbox::with_stream(half);
            let frame = |bytes: &'static [u8]| {
                move |out: &mut Vec<u8>| {
                    out.extend_from_slice(bytes);
                    Ok::<_, ()>(())
                }
            };
            // No writer task runs here: what the peer reads, the pusher wrote.
            outbox.push_with(frame(b"lone"), Send::Now).unwrap();
            let mut read = [0; 4];
            peer.read_exact(&mut read).await.unwrap();
            assert_eq!(&read, b"lone");
            // While the writer holds frames it has not written, a frame sent
            // now waits its turn, as does one behind a queued frame.
            lock(&outbox.queue).writing = true;
            outbox.push_with(frame(b"late"), Send::Now).unwrap();
            outbox.push(b"whole".to_vec(), Send::Now);
            assert_eq!(queued(&outbox), (b"late".to_vec(), 1));
            assert!(peer.try_read(&mut read).is_err(), "nothing was written");
        });
    }

    #[test]
    fn a_reader_that_panics_ends_with_the_panic_message() {
        let reading = async { panic!("the decoder broke") };
        let end = futures::executor::block_on(guarded(reading));
        assert!(
            matches!(&end, ReadEnd::Panicked(m) if m == "the decoder broke"),
            "{end:?}"
        );
        assert_eq!(
            end.to_string(),
            "the pool's reader panicked: the decoder broke"
        );
    }

    #[test]
    fn a_frame_that_fails_to_build_leaves_nothing_queued() {
        let outbox = Outbox::new();
        outbox
            .push_with(
                |out| {
                    out.extend_from_slice(b"first");
                    Ok::<_, ()>(())
                },
                Send::Queued,
            )
            .unwrap();
        let failed = outbox.push_with(
            |out| {
                out.extend_from_slice(b"half a frame");
                Err("too large")
            },
            Send::Now,
        );
        assert_eq!(failed, Err("too large"));
        outbox.push(b"whole".to_vec(), Send::Queued);
        assert_eq!(queued(&outbox), (b"first".to_vec(), 1));
    }
}
