//! The pool's private socket directory: made so that only this user can
//! enter it, and swept when its owner is gone.

use std::path::Path;

/// A builder of directories only this user can enter (mode `0700`).
pub(crate) fn private_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// Whether a process with this pid runs (or may: when unsure, it does).
#[cfg(unix)]
pub(crate) fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Unsure here: it may.
#[cfg(not(unix))]
pub(crate) fn alive(_pid: u32) -> bool {
    true
}

/// Whether `path` is a real directory (not a link to one) owned by this
/// process's user: only such a directory can be a pool's private one.
#[cfg(unix)]
pub(crate) fn own_directory(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // `symlink_metadata` does not follow a link: a link planted under a
    // dead pool's name is not a directory, and is left alone.
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_dir() && m.uid() == rustix::process::getuid().as_raw())
}

/// Whether `path` is a real directory (not a link to one).
#[cfg(not(unix))]
pub(crate) fn own_directory(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}
