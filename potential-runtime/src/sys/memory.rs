//! The allocator's parameters of a worker process.

/// Makes glibc keep freed memory: serves allocations below `mmap_threshold`
/// bytes from its heaps and keeps up to `trim_threshold` bytes free at a
/// heap's top. Elsewhere than on glibc, nothing.
#[cfg(all(potential_linux, target_env = "gnu"))]
pub(crate) fn keep_freed_memory(mmap_threshold: i32, trim_threshold: i32) {
    // SAFETY: `mallopt` only sets malloc's parameters; it runs before the
    // worker starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_threshold);
    }
}

/// Elsewhere than on glibc, nothing.
#[cfg(not(all(potential_linux, target_env = "gnu")))]
pub(crate) fn keep_freed_memory(_mmap_threshold: i32, _trim_threshold: i32) {}
