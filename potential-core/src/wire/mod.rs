//! The payloads that travel between a process and its worker processes:
//! one request per potential call, one reply per request, and the version
//! that says which payloads a peer understands.
//!
//! Framing, authentication, request ids and scheduling belong to the
//! runtime (`potential-runtime`); this module says how a typed call
//! becomes bytes and back, because both sides need the token type to do it
//! and only this crate can name it in the worker (see [`Built::into_server`](crate::Built::into_server)).
//! Every tag and every body is defined here, and every reply is decoded
//! here ([`decode_reply`], [`decode_rows`]).
//!
//! | file | idea |
//! | --- | --- |
//! | `tag.rs` | the reply tags and [`VERSION`], with the test that ties them |
//! | `call.rs` | requests: [`CallRef`] / [`Call`] in [postcard] |
//! | `reply.rs` | replies: encoding, [`decode_reply`], [`decode_rows`] |
//! | `mask.rs` | the [`MASK`] body: weights of `0` and `-∞`, a bit each |
//! | `place.rs` | the [`SHARED`] body ([`Placed`]) and the shared memory's hooks |
//! | `describe.rs` | the answer to the recipe ([`Description`]) |
//! | `error.rs` | [`WireError`], the mirror of [`PotentialError`](crate::PotentialError) |
//! | `serve.rs` | the worker's [`ServePotential`] |
//!
//! # Requests
//!
//! A request is a [`Call`] in [postcard]: a compact, non-self-describing
//! serde format (a one-byte variant index, varint lengths, tokens in their
//! own serde form). The parent encodes borrowed contexts ([`CallRef`]) so
//! that a batch split across workers is never copied before it is encoded.
//!
//! # Replies
//!
//! A reply is one tag byte and a body:
//!
//! | tag | body |
//! | --- | --- |
//! | [`VALUES`] | `f64` values as raw little-endian bytes, 8 per value, nothing else |
//! | [`DESCRIPTION`] | a [`Description`] in postcard (the answer to the recipe) |
//! | [`ERROR`] | a [`WireError`] in postcard |
//! | [`SHARED`] | a [`Placed`]: where the values are in memory the worker shares with its pool |
//! | [`MASK`] | values that are all `0` or `-∞`, one bit each (see below) |
//!
//! Weight vectors are the bulk of the traffic (a vocabulary of 50,000 is a
//! 400 KB reply), so they travel as raw bytes: no per-element tag, no varint,
//! a copy at each end. `complete`, `prefix` and `score` answer one value, the
//! batch forms one per context, `logw_next` `len + 1` values (EOS last) and
//! `batch_logw_next` the vectors of every context one after the other.
//!
//! The weights of a constraint (a grammar's, a regex's) are all `0` or
//! `-∞`: `logw_next` and `batch_logw_next` replies that are
//! [`Mask`](crate::Mask)s, or whose every value is `+0.0` or `-∞`, travel
//! as [`MASK`], the rows' count and width then one bit per value (6 KB
//! instead of 400 KB for 50,000 tokens), and are kept as masks by the
//! receiver ([`Answer::Masks`]): their values, written out, are the
//! worker's bit for bit.
//!
//! Other large weights may go through memory the runtime shares between a
//! worker and its pool: the worker's [`PlaceValues`] copies them there and
//! the reply is [`SHARED`]; the pool's [`TakeValues`] reads them back,
//! through [`decode_rows`] like every other reply.
//!
//! Errors travel as [`WireError`], a serde mirror of
//! [`PotentialError`](crate::PotentialError) whose variants map one to one,
//! so that a caller matches a worker's error exactly as an in-process one; a
//! potential's own error travels as its message.
//!
//! [postcard]: https://docs.rs/postcard

mod call;
mod describe;
mod error;
mod mask;
mod place;
mod reply;
mod serve;
mod tag;
#[cfg(test)]
mod tests;

pub use call::{Call, CallRef, decode_call, encode_call, encoded_call_len};
pub use describe::{Description, check_description, encode_description};
pub use error::WireError;
pub use place::{PlaceValues, Placed, TakeValues};
pub use reply::{
    Answer, Reply, decode_reply, decode_rows, discard_reply, encode_error, encode_masks,
    encode_rows, encode_values, encode_weights, is_shared,
};
pub use serve::ServePotential;
pub(crate) use serve::Server;
pub use tag::{DESCRIPTION, ERROR, MASK, SHARED, VALUES, VERSION};
