//! A worker dies with the process that started it.

/// Asks the kernel to kill this worker when its parent dies, even by
/// SIGKILL (the socket's end of stream covers the rest, and other
/// platforms), then checks that the parent did not die before.
#[cfg(potential_linux)]
pub(crate) fn die_with_parent(parent: u32) -> bool {
    use rustix::process::{Signal, set_parent_process_death_signal};
    if let Err(e) = set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!("potential worker: PR_SET_PDEATHSIG failed: {e}");
    }
    std::os::unix::process::parent_id() == parent
}

/// Checks that the parent did not die before (the socket's end of stream
/// ends the worker later).
#[cfg(all(unix, not(potential_linux)))]
pub(crate) fn die_with_parent(parent: u32) -> bool {
    std::os::unix::process::parent_id() == parent
}

/// Nothing to check: the socket's end of stream ends the worker.
#[cfg(not(unix))]
pub(crate) fn die_with_parent(_parent: u32) -> bool {
    true
}
