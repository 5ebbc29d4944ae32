//! The wire protocol between a pool and its workers.
//!
//! - [`frame`]: every message is a frame: a `u32` little-endian length,
//!   then a `u64` little-endian request id, then the payload; the length
//!   counts the id and the payload and has a hard limit.
//! - [`handshake`]: a worker's first frame is its hello (magic, protocol
//!   version, the pool's secret, its spawn ticket); anything else is refused.
//! - [`message`]: after the hello, the pool sends the spawn recipe (id 0),
//!   the worker answers with a description of its potential (id 0), and
//!   then every frame is a call (ids from 1) or its reply (same id), in any
//!   order, many in flight. Payloads are those of
//!   [`potential_core::wire`].
//!
//! The modules are public so that the protocol can be fuzzed and tested
//! from outside; a program never needs them to use workers.

pub(crate) mod env;
pub mod frame;
pub mod handshake;
pub mod message;
