//! Keeping freed memory in the process, for programs that move many large
//! weight vectors.

/// Tells glibc's allocator to keep the memory this process frees (mmap
/// threshold 32 MiB, trim threshold 128 MiB) instead of handing it back to
/// the kernel after each call: with vocabularies of thousands of tokens
/// every next-token weight vector is tens of KB, a batch of them megabytes,
/// and memory handed back faults its pages in again on the next step. The
/// worker processes of `potential-runtime` do the same for themselves.
///
/// Call it once at the start of `main`. It changes nothing but the
/// allocator's parameters, the same for every mode the examples compare;
/// elsewhere than on glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets the allocator's parameters, and is called
    // before this program's threads start allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}
