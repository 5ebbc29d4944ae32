//! Integration tests live in `tests/`; this crate holds them and the
//! potentials they send to worker processes.
#![warn(missing_docs)]

pub mod worker_potentials;
