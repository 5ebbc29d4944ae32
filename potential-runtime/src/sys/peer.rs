//! The peer's credentials: a connection from another user is refused
//! before a byte of it is read, and the pool's own workers are known by
//! their pid.
//!
//! Through interprocess's portable [`peer_creds`](StreamCommon::peer_creds)
//! (`SO_PEERCRED` on Linux, `LOCAL_PEERCRED` on macOS and the BSDs, the
//! named pipe's client on Windows). Where the system gives no uid
//! (Windows), the socket's location keeps other users out; where it gives
//! no pid (macOS), a worker of the pool waits for a place among the
//! pending hellos like any other connection.

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::StreamCommon;

use crate::protocol::handshake::Refusal;

/// Refuses a peer that runs as another user; gives its pid where the
/// system tells it.
pub(crate) fn check_peer(stream: &Stream) -> Result<Option<u32>, Refusal> {
    let creds = stream
        .peer_creds()
        .map_err(|e| Refusal::NoHello(format!("cannot read the peer's credentials: {e}")))?;
    #[cfg(unix)]
    if let Some(uid) = creds.euid() {
        same_user(uid)?;
    }
    Ok(creds.pid().and_then(|pid| u32::try_from(pid).ok()))
}

/// Refuses a peer whose uid is not this process's.
#[cfg(unix)]
fn same_user(peer: u32) -> Result<(), Refusal> {
    if peer == rustix::process::getuid().as_raw() {
        Ok(())
    } else {
        Err(Refusal::WrongUser { uid: peer })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_peer_of_another_user_is_refused() {
        let me = rustix::process::getuid().as_raw();
        assert_eq!(same_user(me), Ok(()));
        let other = me.wrapping_add(1);
        assert_eq!(same_user(other), Err(Refusal::WrongUser { uid: other }));
    }

    #[test]
    fn a_peer_of_this_user_is_let_in() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use interprocess::os::unix::uds_local_socket::tokio::Stream as UdStream;
            let (ours, _peer) = tokio::net::UnixStream::pair().unwrap();
            let stream = Stream::UdSocket(UdStream::from(ours));
            let pid = check_peer(&stream).unwrap();
            // Where the system gives the pid, it is this process's (the
            // pair's creator).
            assert!(pid.is_none_or(|pid| pid == std::process::id()), "{pid:?}");
            #[cfg(target_os = "linux")]
            assert_eq!(pid, Some(std::process::id()));
        });
    }
}
