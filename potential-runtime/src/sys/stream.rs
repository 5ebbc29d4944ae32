//! What the runtime does to a connection's socket beyond reading and
//! writing: ending the write side, writing without the writer task, and
//! the send buffer's size.

use std::io;
use std::task::{Context, Poll};

use interprocess::local_socket::tokio::Stream;

/// The tokio socket under the stream, for what `AsyncRead` and
/// `AsyncWrite` do not offer (`try_write`, `recvmsg`).
#[cfg(unix)]
pub(crate) fn unix_socket(stream: &Stream) -> &tokio::net::UnixStream {
    let Stream::UdSocket(s) = stream;
    s.inner()
}

/// `shutdown(fd, SHUT_WR)`: the peer reads the end of the stream once the
/// bytes already written are read, and this side can still read.
#[cfg(unix)]
pub(crate) fn poll_shutdown_write(stream: &Stream, _: &mut Context<'_>) -> Poll<io::Result<()>> {
    use std::os::fd::AsFd;
    let Stream::UdSocket(s) = stream;
    Poll::Ready(
        match rustix::net::shutdown(s.as_fd(), rustix::net::Shutdown::Write) {
            // The peer already hung up: its end is what shutting down asks for.
            Ok(()) | Err(rustix::io::Errno::NOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        },
    )
}

/// Elsewhere, interprocess's own shutdown.
#[cfg(not(unix))]
pub(crate) fn poll_shutdown_write(stream: &Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut &*stream), cx)
}

/// Writes what the socket takes of `bytes` now, without waiting: `None`
/// when it would block or failed (the writer task then takes over and
/// meets the error, if it lasts), and always where the stream offers no
/// such write.
#[cfg(unix)]
pub(crate) fn try_write(stream: &Stream, bytes: &[u8]) -> Option<usize> {
    unix_socket(stream).try_write(bytes).ok()
}

/// No write without the writer task here.
#[cfg(not(unix))]
pub(crate) fn try_write(_: &Stream, _: &[u8]) -> Option<usize> {
    None
}

/// Asks for a send buffer of `size` bytes; failure only costs speed.
#[cfg(potential_linux)]
pub(crate) fn set_send_buffer(stream: &Stream, size: usize) {
    use std::os::fd::AsFd;
    let Stream::UdSocket(s) = stream;
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(s.as_fd(), size);
}

/// Elsewhere the system's default.
#[cfg(not(potential_linux))]
pub(crate) fn set_send_buffer(_: &Stream, _: usize) {}
