//! The runtime's tuning constants side by side, each with the measurement
//! or the reason that chose it: the performance model in one room.

use std::time::Duration;

// --- Dispatch (`state.rs`) ---

/// How many more calls in flight than the least loaded worker the worker
/// that served a call's parent context may hold and still get the call.
/// Ties alone (the rule before) sent a quarter of a burst of 64 particles'
/// calls whose parents were spread evenly over two workers, shuffled, to
/// the worker without their state (15.7 calls on average over 1,000
/// shuffles), since each call sent makes its worker's load the higher;
/// with a slack of 2, 4.2 (and 0 when the parents alternate or come in
/// pairs). A slack that grew with the load (1 + a quarter) moved fewer
/// (2.2) but let a burst whose calls share one parent (duplicates after
/// resampling) pile 36 to 28 on one worker; with 2 it is 33 to 31, so a
/// burst's last call waits for at most two others' work.
///
/// The slack does not hold against an idle worker: a call whose worker is
/// busy goes to an idle one. AWRS with 2 workers checks two draws of a
/// particle at a time, both children of the particle's context; with the
/// slack alone both went to the worker that served it, one after the
/// other, and `awrs_worker_gain` fell from 1.50x to 1.02x (3 runs, 1.01
/// to 1.03x); with the exception, 1.65x (3 runs, 1.61 to 1.70x). A burst
/// loses at most one call a worker to it (the calls sent while a worker
/// is still idle).
pub(crate) const AFFINITY_SLACK: usize = 2;

// --- Writing: the outbox (`transport.rs`) and the worker's replies ---

/// Frames below this size are copied into one write; larger ones are
/// written as they are (a copy of 400 KB costs more than a syscall). The
/// worker queues the small replies of one read together below it too.
pub(crate) const COALESCE_BELOW: usize = 16 * 1024;

/// Spare buffers an outbox keeps for reuse.
pub(crate) const SPARE_BUFFERS: usize = 64;

/// The writer's byte buffer is dropped after a write larger than this, so
/// that one huge call does not pin its memory for the connection's life.
pub(crate) const KEEP_BYTES_BELOW: usize = 4 << 20;

/// Room for a whole `logw_next` reply over a large vocabulary in the
/// socket: one `write` instead of a wait for the reader per 200 KB (the
/// default), each wait a trip through both event loops. The kernel caps
/// it at `net.core.wmem_max`. (Linux only: elsewhere the system's default.)
pub(crate) const SEND_BUFFER: usize = 4 << 20;

/// How long a worker serves the calls of one read before it lets its
/// writer send the replies ready so far: a reply waits for at most its own
/// call and this much of others' work. Trivial calls (a few µs) still share
/// one write by the dozen; before, 1,000 calls of 1 ms in one read sent
/// their first answer after 1,003 ms.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_micros(100);

// --- Shared memory (`shared/`) ---

/// The data bytes of each connection's shared region: room for a batch of
/// 64 rows over a vocabulary of 50,000 (25.6 MB) in flight with another
/// one behind it. The pages cost memory only once a reply has used them.
pub(crate) const SHARED_REGION: usize = 64 << 20;

/// Replies of values larger than this go through the shared region; smaller
/// ones through the socket, where they share writes with other replies.
/// (Not gated: the pool also uses it to count the replies that fell back
/// to the socket, which is every platform's code.)
pub(crate) const SHARED_ABOVE: usize = 32 * 1024;

// --- Reading: the frame decoder (`protocol/frame.rs`) and the pool ---

/// How much the frame decoder asks to read at once when it needs more bytes.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// A decoder buffer this large is given back when the decoder empties, so
/// that one huge frame does not pin its memory for the connection's life.
pub(crate) const SHRINK_ABOVE: usize = 16 << 20;

/// A reply larger than this is decoded outside its connection's table
/// lock, so that calls sent meanwhile do not wait for its copy; smaller
/// ones are decoded under one lock per read (the lock, not the copy,
/// dominates a trivial call).
pub(crate) const DECODE_UNLOCKED_ABOVE: usize = 16 * 1024;

// --- Worker memory (`worker.rs`) ---

/// Below this size, glibc serves allocations from its heaps, not from
/// fresh mappings: 32 MiB, its largest. (This and the next: glibc only.)
pub(crate) const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of a heap that glibc keeps instead of handing it
/// back to the kernel: half of a `batch_logw_next` of 32 contexts was page
/// faults at glibc's default of 128 KB.
pub(crate) const TRIM_THRESHOLD: i32 = 128 << 20;

// --- Supervision and accepting (`supervise.rs`, `accept.rs`) ---

/// How long a connection may take to say hello: a worker sends it as soon
/// as it is connected, so only a peer that holds a connection open without
/// speaking waits this long.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_millis(500);

/// Connections waiting for their hello at once; more are refused at once.
/// Workers connect one per start, so a pool never needs more than a few.
pub(crate) const MAX_PENDING_HELLOS: usize = 32;

/// How often a starting worker is checked for an early exit: a worker that
/// dies at once (no `init()` in `main`) is reported within this much.
pub(crate) const EXIT_CHECK: Duration = Duration::from_millis(5);

/// The pause after a failed `accept`, so that a persistent error (out of
/// descriptors) does not spin.
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// How long [`Multiprocess::shutdown`](crate::Multiprocess::shutdown) lets
/// workers exit by themselves before it kills them.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// At most one log line per kind of refused connection this often, with
/// the count of those refused meanwhile: a flood of connections from any
/// local user once wrote 715,687 lines in 15 s.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The pause after a worker fails to start, doubled after each failure in
/// a row up to [`RESTART_PAUSE_MAX`]: without it, a start that fails at
/// once (a flood of connections crowding the socket) used up the restart
/// policy's deaths in 75 ms.
pub(crate) const RESTART_PAUSE_FIRST: Duration = Duration::from_millis(10);

/// The longest pause between two failed starts of a worker.
pub(crate) const RESTART_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The most refusals kept for [`Multiprocess::refusals`](crate::Multiprocess::refusals).
pub(crate) const REFUSALS_KEPT: usize = 64;
