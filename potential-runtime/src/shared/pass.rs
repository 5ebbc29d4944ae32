//! Handing a region's descriptor to the worker: one frame sent with the
//! descriptor attached (`SCM_RIGHTS`), and the worker's reads of the
//! frames before its recipe, which must be `recvmsg` to receive it.
//!
//! Both go through tokio's own readiness (`writable`/`readable` and
//! `try_io`) on the socket the stream already registered, so the stream
//! stays usable for ordinary reads and writes afterwards.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::task::{Context, Poll};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::{AsyncWriteExt, Interest};

use crate::protocol::frame::FrameDecoder;
use crate::transport::{Half, ReadEnd, read_one_with};

/// Writes `frame` with `fd` attached to its first bytes.
pub(crate) async fn send_with_fd(half: &Half, frame: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let socket = crate::sys::stream::unix_socket(&half.0);
    let sent = loop {
        socket.writable().await?;
        let attempt = socket.try_io(Interest::WRITABLE, || {
            let fds = [fd];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            control.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(
                socket,
                &[IoSlice::new(frame)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        });
        match attempt {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    // The descriptor went with the first bytes; the rest, if any, as usual.
    half.clone().write_all(&frame[sent..]).await
}

/// Reads one frame, as [`read_one`](crate::transport::read_one), with
/// `recvmsg`: a descriptor attached to the bytes read is kept in `fd`
/// (the first one; the kernel closes any others as the buffer drops them).
pub(crate) async fn read_one_with_fd(
    half: &Half,
    decoder: &mut FrameDecoder,
    fd: &mut Option<OwnedFd>,
) -> Result<(u64, Vec<u8>), ReadEnd> {
    read_one_with(decoder, |cx, buf| poll_recv_with_fd(half, cx, buf, fd)).await
}

/// One `recvmsg` into `buf` once the socket is readable, keeping the first
/// descriptor that comes with the bytes.
fn poll_recv_with_fd(
    half: &Half,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    fd: &mut Option<OwnedFd>,
) -> Poll<io::Result<usize>> {
    let socket = crate::sys::stream::unix_socket(&half.0);
    loop {
        std::task::ready!(socket.poll_read_ready(cx))?;
        let attempt = socket.try_io(Interest::READABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = rustix::net::recvmsg(
                socket,
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    for received in fds {
                        fd.get_or_insert(received);
                    }
                }
            }
            Ok(msg.bytes)
        });
        // Would block: the readiness was cleared, and the next poll waits.
        match attempt {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return Poll::Ready(done),
        }
    }
}
