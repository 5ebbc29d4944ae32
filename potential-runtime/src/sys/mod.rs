//! The runtime's platform seam: each mechanism that differs between
//! systems is one module here, with the same functions on every platform,
//! and the platform conditions stay inside it (as tokio keeps each
//! mechanism's `unix` and `windows` halves behind one module).
//!
//! | module | Linux | other Unix | elsewhere (Windows) |
//! |---|---|---|---|
//! | [`peer`] | the peer's uid checked, its pid read | the uid checked, the pid where the system gives it | the pid |
//! | [`parent`] | killed with the parent (`PR_SET_PDEATHSIG`), the parent checked | the parent checked | nothing |
//! | [`memory`] | glibc keeps freed memory (`mallopt`) | nothing | nothing |
//! | [`stream`] | `shutdown(SHUT_WR)`, writes without the writer task, a 4 MB send buffer | the same but the send buffer | interprocess's own |
//! | [`dir`] | the private directory's mode and owner, a dead owner's pid | the same | the directory alone |
//!
//! "Linux" is `cfg(potential_linux)`, which `build.rs` sets on Linux unless
//! `--cfg potential_portable` asks for the portable path (`.ci/run` checks
//! that it compiles). The one other mechanism, replies through shared
//! memory, is the public [`shared`](crate::shared) module, which picks its
//! Linux or its portable half in its own `mod.rs`.

pub(crate) mod dir;
pub(crate) mod memory;
pub(crate) mod parent;
pub(crate) mod peer;
pub(crate) mod stream;
