//! The payloads that travel between a process and its worker processes:
//! one request per potential call, one reply per request.
//!
//! Framing, authentication, request ids and scheduling belong to the
//! runtime (`potential-runtime`); this module only says how a typed call
//! becomes bytes and back, because both sides need the token type to do it
//! and only this crate can name it in the worker (see [`Built::into_server`](crate::Built::into_server)).
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
//! | [`SHARED`] | where the runtime placed the values in memory it shares with the worker (the runtime's format) |
//! | [`MASK`] | values that are all `0` or `-∞`, one bit each (see below) |
//!
//! Weight vectors are the bulk of the traffic (a vocabulary of 50,000 is a
//! 400 KB reply), so they travel as raw bytes: no per-element tag, no varint,
//! a copy at each end. `complete`, `prefix` and `score` answer one value, the
//! batch forms one per context, `logw_next` `len + 1` values (EOS last) and
//! `batch_logw_next` the vectors of every context one after the other.
//!
//! The weights of a constraint (a grammar's, a regex's) are all `0` or
//! `-∞`: `logw_next` and `batch_logw_next` replies whose every value is
//! `+0.0` or `-∞` travel as [`MASK`], the rows' count and width then one
//! bit per value (6 KB instead of 400 KB for 50,000 tokens), and are
//! written back as `f64`s by the receiver, bit for bit.
//!
//! Errors travel as [`WireError`], a serde mirror of
//! [`PotentialError`] whose variants map one to one,
//! so that a caller matches a worker's error exactly as an in-process one; a
//! potential's own error travels as its message.
//!
//! [postcard]: https://docs.rs/postcard

use std::any::type_name;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::dyn_potential::DynPotential;
use crate::error::{Method, PotentialError, Result, Wrapper};
use crate::potential::{check_len, check_weights};
use crate::vocab::{Symbol, TokenType};

/// Reply tag: raw little-endian `f64` values follow.
pub const VALUES: u8 = 0;
/// Reply tag: a postcard [`Description`] follows.
pub const DESCRIPTION: u8 = 1;
/// Reply tag: a postcard [`WireError`] follows.
pub const ERROR: u8 = 2;
/// Reply tag: the values, as after [`VALUES`], are in memory the runtime
/// shares with the worker; the body says where, in the runtime's terms.
/// [`decode_reply`] does not read it: the runtime does.
pub const SHARED: u8 = 3;
/// Reply tag: rows whose values are all `0` or `-∞`: the number of rows
/// and their width as `u64` LE, then each row's bits (1 for `0`), least
/// significant first, padded to whole bytes.
pub const MASK: u8 = 4;

mod mask;

/// A call as the parent encodes it: the contexts are borrowed.
///
/// Its postcard form is that of [`Call`] with the same variant.
#[derive(Debug, Serialize)]
pub enum CallRef<'a, T> {
    /// `complete(context)`.
    Complete(&'a [T]),
    /// `prefix(context)`.
    Prefix(&'a [T]),
    /// `score(context)`.
    Score(&'a [Symbol<T>]),
    /// `logw_next(context)`.
    LogwNext(&'a [T]),
    /// `batch_complete(contexts)`.
    BatchComplete(&'a [Vec<T>]),
    /// `batch_prefix(contexts)`.
    BatchPrefix(&'a [Vec<T>]),
    /// `batch_score(contexts)`.
    BatchScore(&'a [Vec<Symbol<T>>]),
    /// `batch_logw_next(contexts)`.
    BatchLogwNext(&'a [Vec<T>]),
}

/// A call as the worker decodes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "T: TokenType"))]
pub enum Call<T> {
    /// See [`CallRef::Complete`].
    Complete(Vec<T>),
    /// See [`CallRef::Prefix`].
    Prefix(Vec<T>),
    /// See [`CallRef::Score`].
    Score(Vec<Symbol<T>>),
    /// See [`CallRef::LogwNext`].
    LogwNext(Vec<T>),
    /// See [`CallRef::BatchComplete`].
    BatchComplete(Vec<Vec<T>>),
    /// See [`CallRef::BatchPrefix`].
    BatchPrefix(Vec<Vec<T>>),
    /// See [`CallRef::BatchScore`].
    BatchScore(Vec<Vec<Symbol<T>>>),
    /// See [`CallRef::BatchLogwNext`].
    BatchLogwNext(Vec<Vec<T>>),
}

/// What a worker tells the parent about the potential it rebuilt: only
/// what the parent cannot know, so that it can check that both sides agree.
/// The parent holds the potential it sent, and so its vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// `std::any::type_name` of the token type, checked against the parent's.
    pub token_type: String,
    /// The vocabulary's length (EOS excluded), checked against the parent's.
    pub vocab_len: u64,
}

/// [`PotentialError`] on the wire: the same variants, owned strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // each variant is the one of `PotentialError` with its name
pub enum WireError {
    EmptyVocabulary,
    DuplicateToken {
        token: String,
    },
    EmptyIntersection,
    EmptyBatch {
        method: String,
    },
    ZeroWeightContext {
        context: String,
    },
    BatchSizeMismatch {
        method: String,
        expected: u64,
        got: u64,
    },
    InvalidInput(String),
    Closed(String),
    WorkerFailure(String),
    Panicked(String),
    /// A potential's own error, by its message.
    Potential(String),
    // Later variants go last, so that older peers decode the ones above.
    UnknownToken {
        token: String,
        position: u64,
    },
    InvalidWeight {
        method: String,
        value: f64,
    },
    Timeout {
        method: String,
        after: std::time::Duration,
    },
}

/// The name of a method on the wire, back as the `&'static str` that
/// errors carry; an unknown name (a newer peer) keeps its meaning in words.
fn method_name(name: &str) -> &'static str {
    Method::from_name(name).map_or("a batch method", Method::as_str)
}

impl From<&PotentialError> for WireError {
    fn from(e: &PotentialError) -> Self {
        match e {
            PotentialError::EmptyVocabulary => WireError::EmptyVocabulary,
            PotentialError::DuplicateToken { token } => WireError::DuplicateToken {
                token: token.clone(),
            },
            PotentialError::EmptyIntersection => WireError::EmptyIntersection,
            PotentialError::EmptyBatch { method } => WireError::EmptyBatch {
                method: method.to_string(),
            },
            PotentialError::ZeroWeightContext { context } => WireError::ZeroWeightContext {
                context: context.clone(),
            },
            PotentialError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => WireError::BatchSizeMismatch {
                method: method.to_string(),
                expected: *expected as u64,
                got: *got as u64,
            },
            PotentialError::InvalidInput(s) => WireError::InvalidInput(s.clone()),
            PotentialError::Closed(s) => WireError::Closed(s.to_string()),
            PotentialError::WorkerFailure(s) => WireError::WorkerFailure(s.clone()),
            PotentialError::Panicked(s) => WireError::Panicked(s.clone()),
            PotentialError::Potential(e) => WireError::Potential(e.to_string()),
            PotentialError::UnknownToken { token, position } => WireError::UnknownToken {
                token: token.clone(),
                position: *position as u64,
            },
            PotentialError::InvalidWeight { method, value } => WireError::InvalidWeight {
                method: method.to_string(),
                value: *value,
            },
            PotentialError::Timeout { method, after } => WireError::Timeout {
                method: method.to_string(),
                after: *after,
            },
        }
    }
}

impl From<WireError> for PotentialError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::EmptyVocabulary => PotentialError::EmptyVocabulary,
            WireError::DuplicateToken { token } => PotentialError::DuplicateToken { token },
            WireError::EmptyIntersection => PotentialError::EmptyIntersection,
            WireError::EmptyBatch { method } => PotentialError::EmptyBatch {
                method: method_name(&method),
            },
            WireError::ZeroWeightContext { context } => {
                PotentialError::ZeroWeightContext { context }
            }
            WireError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => PotentialError::BatchSizeMismatch {
                method: method_name(&method),
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
                got: usize::try_from(got).unwrap_or(usize::MAX),
            },
            WireError::InvalidInput(s) => PotentialError::InvalidInput(s),
            WireError::Closed(s) => {
                PotentialError::Closed(Wrapper::from_name(&s).map_or("wrapper", Wrapper::as_str))
            }
            WireError::WorkerFailure(s) => PotentialError::WorkerFailure(s),
            WireError::Panicked(s) => PotentialError::Panicked(s),
            WireError::Potential(s) => PotentialError::msg(s),
            WireError::UnknownToken { token, position } => PotentialError::UnknownToken {
                token,
                position: usize::try_from(position).unwrap_or(usize::MAX),
            },
            WireError::InvalidWeight { method, value } => PotentialError::InvalidWeight {
                method: method_name(&method),
                value,
            },
            WireError::Timeout { method, after } => PotentialError::Timeout {
                method: method_name(&method),
                after,
            },
        }
    }
}

/// Encodes a call into `out` (appended).
pub fn encode_call<T: Serialize>(call: &CallRef<'_, T>, out: &mut Vec<u8>) -> Result<()> {
    postcard::to_io(call, &mut *out)
        .map(|_| ())
        .map_err(|e| PotentialError::InvalidInput(format!("cannot encode a call: {e}")))
}

/// The length of a call's encoding, counted without writing it: a call
/// too large for a frame is refused before a byte of it is written.
pub fn encoded_call_len<T: Serialize>(call: &CallRef<'_, T>) -> Result<usize> {
    postcard::serialize_with_flavor::<_, postcard::ser_flavors::Size, usize>(
        call,
        postcard::ser_flavors::Size::default(),
    )
    .map_err(|e| PotentialError::InvalidInput(format!("cannot encode a call: {e}")))
}

/// Decodes a call.
pub fn decode_call<T: TokenType>(bytes: &[u8]) -> Result<Call<T>> {
    postcard::from_bytes(bytes).map_err(|e| {
        PotentialError::InvalidInput(format!(
            "malformed call for tokens of type {}: {e}",
            type_name::<T>()
        ))
    })
}

/// Appends a values reply.
pub fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    out.push(VALUES);
    append_le(values, out);
}

/// Appends `f64`s as little-endian bytes: one bulk copy on little-endian
/// targets (no zeroing first: for a 400 KB reply, zeroing cost as much as
/// the copy).
fn append_le(values: &[f64], out: &mut Vec<u8>) {
    if cfg!(target_endian = "little") {
        out.extend_from_slice(bytemuck::cast_slice(values));
    } else {
        out.reserve(8 * values.len());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
}

/// Appends an error reply.
pub fn encode_error(error: &PotentialError, out: &mut Vec<u8>) {
    out.push(ERROR);
    // Invariant: a `WireError` is strings and integers, and writing to a
    // `Vec` cannot fail, so postcard has no error to return here.
    postcard::to_io(&WireError::from(error), &mut *out)
        .expect("postcard writes strings and integers to a Vec without failing");
}

/// Appends a description reply for a potential over `T` with a
/// vocabulary of `vocab_len` tokens.
pub fn encode_description<T: TokenType>(vocab_len: usize, out: &mut Vec<u8>) {
    let description = Description {
        token_type: type_name::<T>().to_string(),
        vocab_len: vocab_len as u64,
    };
    out.push(DESCRIPTION);
    // Invariant: a string and an integer written to a `Vec` (see `encode_error`).
    postcard::to_io(&description, &mut *out)
        .expect("postcard writes strings and integers to a Vec without failing");
}

/// A decoded reply: its body, or the error it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply<'a> {
    /// Raw little-endian `f64` values (a multiple of 8 bytes).
    Values(&'a [u8]),
    /// A postcard [`Description`]; see [`check_description`].
    Description(&'a [u8]),
    /// A [`MASK`] body: rows of `0` and `-∞`, a bit each.
    Mask(&'a [u8]),
}

fn malformed(what: impl std::fmt::Display) -> PotentialError {
    PotentialError::WorkerFailure(format!("malformed reply from a worker: {what}"))
}

/// Splits a reply into its tag and body; an error reply becomes `Err` with
/// the worker's error, a malformed one a [`PotentialError::WorkerFailure`].
pub fn decode_reply(bytes: &[u8]) -> Result<Reply<'_>> {
    let (&tag, body) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    match tag {
        VALUES if body.len() % 8 == 0 => Ok(Reply::Values(body)),
        VALUES => Err(malformed(format!("{} bytes of f64 values", body.len()))),
        DESCRIPTION => Ok(Reply::Description(body)),
        MASK => Ok(Reply::Mask(body)),
        ERROR => Err(postcard::from_bytes::<WireError>(body)
            .map_err(malformed)?
            .into()),
        other => Err(malformed(format!("unknown tag {other}"))),
    }
}

/// A decoded values reply: a single call's one value needs no allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The one value of a reply that holds one.
    One(f64),
    /// The values, cut into rows.
    Rows(Vec<Vec<f64>>),
}

impl Answer {
    /// The answer made of `rows`: [`Answer::One`] when they hold one value.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Answer {
        match rows.as_slice() {
            [row] if row.len() == 1 => Answer::One(row[0]),
            _ => Answer::Rows(rows),
        }
    }

    /// The values as rows (one row of one value for [`Answer::One`]).
    pub fn into_rows(self) -> Vec<Vec<f64>> {
        match self {
            Answer::One(value) => vec![vec![value]],
            Answer::Rows(rows) => rows,
        }
    }
}

/// Decodes the reply to a call of `method` that answers `rows` rows of
/// `width` values each (one row for a scalar or a batch of scalars, one per
/// context for `batch_logw_next`): the one reply decoder, used by the pool,
/// the fuzz target and the benchmark alike.
///
/// A reply of another length is [`PotentialError::BatchSizeMismatch`]; an
/// error reply is the worker's error. The values are copied once, out of
/// the read buffer into the rows the caller keeps: no flat vector to cut
/// again, whose megabytes would be fresh memory (page faults) at every
/// batch.
pub fn decode_rows(bytes: &[u8], method: Method, rows: usize, width: usize) -> Result<Answer> {
    let raw = match decode_reply(bytes)? {
        Reply::Values(raw) => raw,
        Reply::Mask(body) => return decode_mask(body, method, rows, width),
        Reply::Description(_) => {
            return Err(malformed("a description where values were expected"));
        }
    };
    check_count(method, rows, width, raw.len() / 8)?;
    if let Ok(one) = <[u8; 8]>::try_from(raw) {
        return Ok(Answer::One(f64::from_le_bytes(one)));
    }
    Ok(Answer::Rows(
        raw.chunks_exact(8 * width)
            .map(|row| {
                row.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")))
                    .collect()
            })
            .collect(),
    ))
}

/// The rows of a [`MASK`] reply, checked against the call's shape.
fn decode_mask(body: &[u8], method: Method, rows: usize, width: usize) -> Result<Answer> {
    let (got_rows, got_width) =
        mask::shape(body).ok_or_else(|| malformed("a mask without its shape"))?;
    check_count(method, rows, width, got_rows.saturating_mul(got_width))?;
    if got_width != width {
        return Err(malformed(format!(
            "a mask of rows of {got_width} values for rows of {width}"
        )));
    }
    mask::decode(body, rows, width)
        .map(Answer::from_rows)
        .map_err(malformed)
}

/// How many bytes the values of a reply take once decoded: a [`MASK`]
/// reply is 64 times smaller on the wire than in memory. (The runtime
/// decodes large replies outside its locks.)
pub fn decoded_len(bytes: &[u8]) -> usize {
    match bytes.split_first() {
        Some((&MASK, body)) => mask::shape(body).map_or(0, |(rows, width)| {
            rows.saturating_mul(width).saturating_mul(8)
        }),
        _ => bytes.len(),
    }
}

/// Checks that a reply to `method` of `rows` rows of `width` values holds
/// `got` values: a worker that answers another count broke the call's contract.
pub fn check_count(method: Method, rows: usize, width: usize, got: usize) -> Result<()> {
    let expected = rows * width;
    if got != expected || width == 0 {
        return Err(PotentialError::BatchSizeMismatch {
            method: method.as_str(),
            expected,
            got,
        });
    }
    Ok(())
}

/// Checks a description reply against the parent's token type `T` and
/// vocabulary length.
pub fn check_description<T: TokenType>(bytes: &[u8], vocab_len: usize) -> Result<()> {
    let body = match decode_reply(bytes)? {
        Reply::Description(body) => body,
        Reply::Values(_) | Reply::Mask(_) => {
            return Err(malformed("values where a description was expected"));
        }
    };
    let description: Description = postcard::from_bytes(body).map_err(malformed)?;
    if description.token_type != type_name::<T>() {
        return Err(PotentialError::InvalidInput(format!(
            "the worker's potential has tokens of type {}, the caller expects {}",
            description.token_type,
            type_name::<T>()
        )));
    }
    if description.vocab_len != vocab_len as u64 {
        return Err(PotentialError::InvalidInput(format!(
            "the worker rebuilt a vocabulary of {} tokens from a potential with {vocab_len}",
            description.vocab_len
        )));
    }
    Ok(())
}

/// A rebuilt potential that answers encoded calls; what a worker serves.
///
/// Made by [`Built::into_server`](crate::Built::into_server), which knows
/// the token type. `serve` never panics and never fails: a malformed call,
/// the potential's error and a panic inside the potential all become error
/// replies, and the potential stays usable.
pub trait ServePotential: Send + Sync {
    /// Decodes the call `request` at once (so the request's buffer is free
    /// when this returns) and gives the future that appends the reply to
    /// `reply` and hands it back.
    fn serve(&self, request: &[u8], reply: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        self.serve_placing(request, reply, None)
    }

    /// As [`serve`](Self::serve), offering the weights of `logw_next` and
    /// `batch_logw_next` to `place` first: what it takes is not copied
    /// into the reply.
    fn serve_placing(
        &self,
        request: &[u8],
        reply: Vec<u8>,
        place: Option<Arc<dyn PlaceValues>>,
    ) -> BoxFuture<'static, Vec<u8>>;

    /// Appends the [`Description`] reply: the answer to the recipe.
    fn describe(&self, reply: &mut Vec<u8>);
}

/// Where a worker may put the values of a reply instead of in the reply:
/// the runtime's shared memory.
///
/// Offered the rows of a `logw_next` or `batch_logw_next` reply (each of
/// the same width, in order), it either takes them, appends to `reply`
/// the tag [`SHARED`] and the body that says where they are, and returns
/// `true`; or leaves `reply` alone and returns `false`, and the values are
/// encoded in the reply after [`VALUES`].
pub trait PlaceValues: Send + Sync {
    /// Takes `rows`, or declines them; see the trait's documentation.
    fn place(&self, rows: &[&[f64]], reply: &mut Vec<u8>) -> bool;
}

/// Serves one potential over tokens of type `T`.
pub(crate) struct Server<T> {
    potential: Arc<dyn DynPotential<T>>,
    tokens: PhantomData<fn() -> T>,
}

impl<T: TokenType> Server<T> {
    pub(crate) fn new(potential: Arc<dyn DynPotential<T>>) -> Self {
        Server {
            potential,
            tokens: PhantomData,
        }
    }

    async fn answer(
        p: &dyn DynPotential<T>,
        call: Call<T>,
        reply: &mut Vec<u8>,
        place: Option<&dyn PlaceValues>,
    ) -> Result<()> {
        // Every value is checked as a log weight before it leaves, as
        // `AutoBatched` checks it: a NaN is the same error on every path.
        let scalars = |method: Method, values: &[f64], reply: &mut Vec<u8>| {
            check_weights(method.as_str(), values).map(|()| encode_values(values, reply))
        };
        match call {
            Call::Complete(c) => scalars(Method::Complete, &[p.dyn_complete(&c).await?], reply)?,
            Call::Prefix(c) => scalars(Method::Prefix, &[p.dyn_prefix(&c).await?], reply)?,
            Call::Score(c) => scalars(Method::Score, &[p.dyn_score(&c).await?], reply)?,
            Call::LogwNext(c) => {
                let weights = p.dyn_logw_next(&c).await?;
                check_weights(Method::LogwNext.as_str(), weights.as_slice())?;
                encode_rows(&[weights.as_slice()], reply, place);
            }
            Call::BatchComplete(c) => {
                let values = p.dyn_batch_complete(&c).await?;
                scalars(Method::BatchComplete, &values, reply)?;
            }
            Call::BatchPrefix(c) => {
                let values = p.dyn_batch_prefix(&c).await?;
                scalars(Method::BatchPrefix, &values, reply)?;
            }
            Call::BatchScore(c) => {
                let values = p.dyn_batch_score(&c).await?;
                scalars(Method::BatchScore, &values, reply)?;
            }
            Call::BatchLogwNext(c) => {
                let all = p.dyn_batch_logw_next(&c).await?;
                check_len(Method::BatchLogwNext.as_str(), c.len(), all.len())?;
                let width = p.dyn_vocab().len() + 1;
                if let Some(w) = all.iter().find(|w| w.as_slice().len() != width) {
                    return Err(PotentialError::InvalidInput(format!(
                        "batch_logw_next returned {} weights for a vocabulary of {} plus EOS",
                        w.as_slice().len(),
                        width - 1
                    )));
                }
                let rows: Vec<&[f64]> = all.iter().map(|w| w.as_slice()).collect();
                rows.iter()
                    .try_for_each(|row| check_weights(Method::BatchLogwNext.as_str(), row))?;
                encode_rows(&rows, reply, place);
            }
        }
        Ok(())
    }
}

/// Appends a reply of `rows` of values (each of the same width): as a
/// [`MASK`] when they are one, else placed by `place` when it takes them,
/// else after [`VALUES`]. What a worker answers `logw_next` and
/// `batch_logw_next` with.
pub fn encode_rows(rows: &[&[f64]], reply: &mut Vec<u8>, place: Option<&dyn PlaceValues>) {
    reply.push(MASK);
    if mask::encode(rows, reply) {
        return;
    }
    reply.pop();
    if place.is_some_and(|place| place.place(rows, reply)) {
        return;
    }
    reply.reserve(1 + rows.iter().map(|r| 8 * r.len()).sum::<usize>());
    reply.push(VALUES);
    for row in rows {
        append_le(row, reply);
    }
}

impl<T: TokenType> ServePotential for Server<T> {
    fn serve_placing(
        &self,
        request: &[u8],
        mut reply: Vec<u8>,
        place: Option<Arc<dyn PlaceValues>>,
    ) -> BoxFuture<'static, Vec<u8>> {
        let call = decode_call::<T>(request);
        let potential = self.potential.clone();
        Box::pin(async move {
            let start = reply.len();
            let outcome = match call {
                Ok(call) => AssertUnwindSafe(Self::answer(
                    &*potential,
                    call,
                    &mut reply,
                    place.as_deref(),
                ))
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(PotentialError::from_panic(payload))),
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                reply.truncate(start);
                encode_error(&e, &mut reply);
            }
            reply
        })
    }

    fn describe(&self, reply: &mut Vec<u8>) {
        encode_description::<T>(self.potential.dyn_vocab().len(), reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::Potential;
    use crate::potential::tests::{Length, block_on};
    use crate::vocab::Vocab;
    use std::sync::Arc;

    fn server() -> Server<char> {
        Server::new(Arc::new(Length::abc()))
    }

    fn ask(call: CallRef<'_, char>) -> Vec<u8> {
        let mut request = Vec::new();
        encode_call(&call, &mut request).unwrap();
        block_on(server().serve(&request, Vec::new()))
    }

    /// The values of a reply that holds `n` of them, in one row.
    fn values(reply: &[u8], method: Method, n: usize) -> Result<Vec<f64>> {
        Ok(decode_rows(reply, method, 1, n)?.into_rows().concat())
    }

    #[test]
    fn values_travel_as_raw_little_endian_bytes() {
        let reply = ask(CallRef::BatchComplete(&[vec!['a'], vec!['a', 'b']]));
        assert_eq!(reply.len(), 1 + 16);
        assert_eq!(reply[0], VALUES);
        assert_eq!(
            values(&reply, Method::BatchComplete, 2).unwrap(),
            [-1.0, -2.0]
        );
        let err = values(&reply, Method::BatchComplete, 3).unwrap_err();
        assert!(matches!(
            err,
            PotentialError::BatchSizeMismatch {
                method: "batch_complete",
                got: 2,
                ..
            }
        ));
    }

    #[test]
    fn a_reply_is_cut_into_rows_of_its_shape() {
        let mut reply = Vec::new();
        let all: Vec<f64> = (0..6).map(f64::from).collect();
        encode_values(&all, &mut reply);
        assert_eq!(
            decode_rows(&reply, Method::BatchLogwNext, 3, 2)
                .unwrap()
                .into_rows(),
            [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
        );
        assert!(matches!(
            decode_rows(&reply, Method::BatchLogwNext, 2, 4),
            Err(PotentialError::BatchSizeMismatch {
                method: "batch_logw_next",
                expected: 8,
                got: 6
            })
        ));
        let mut one = Vec::new();
        encode_values(&[2.5], &mut one);
        assert_eq!(
            decode_rows(&one, Method::Complete, 1, 1).unwrap(),
            Answer::One(2.5)
        );
        let mut description = Vec::new();
        encode_description::<char>(3, &mut description);
        assert!(matches!(
            decode_rows(&description, Method::Complete, 1, 1),
            Err(PotentialError::WorkerFailure(_))
        ));
    }

    #[test]
    fn a_call_is_measured_as_it_is_encoded() {
        let contexts = [vec!['a'; 300], vec!['é'; 5]];
        let call = CallRef::BatchComplete(&contexts);
        let mut out = Vec::new();
        encode_call(&call, &mut out).unwrap();
        assert_eq!(encoded_call_len(&call).unwrap(), out.len());
    }

    #[test]
    fn logw_next_equals_the_in_process_weights() {
        let reply = ask(CallRef::LogwNext(&['a']));
        let want = block_on(Length::abc().logw_next(&['a'])).unwrap();
        assert_eq!(
            values(&reply, Method::LogwNext, 4).unwrap(),
            want.as_slice()
        );
        let reply = ask(CallRef::BatchLogwNext(&[vec![], vec!['a']]));
        let rows = decode_rows(&reply, Method::BatchLogwNext, 2, 4)
            .unwrap()
            .into_rows();
        assert_eq!(rows[1], want.as_slice());
    }

    #[test]
    fn masks_travel_as_bits_and_other_weights_as_values() {
        let ninf = f64::NEG_INFINITY;
        let mask = [vec![0.0, ninf, ninf, 0.0, 0.0], vec![ninf; 5]];
        let refs: Vec<&[f64]> = mask.iter().map(Vec::as_slice).collect();
        let mut reply = Vec::new();
        encode_rows(&refs, &mut reply, None);
        assert_eq!(reply[0], MASK);
        assert_eq!(reply.len(), 1 + 16 + 2);
        assert_eq!(decoded_len(&reply), 2 * 5 * 8);
        let rows = decode_rows(&reply, Method::BatchLogwNext, 2, 5).unwrap();
        assert_eq!(rows.into_rows(), mask);
        // The call's shape is checked against the mask's.
        assert!(decode_rows(&reply, Method::BatchLogwNext, 2, 4).is_err());
        assert!(decode_rows(&reply, Method::BatchLogwNext, 1, 10).is_err());
        // One value that is neither 0 nor -inf: the values themselves.
        let mixed = [0.0, ninf, -0.5];
        let mut reply = Vec::new();
        encode_rows(&[&mixed], &mut reply, None);
        assert_eq!(reply[0], VALUES);
        assert_eq!(decoded_len(&reply), reply.len());
        let rows = decode_rows(&reply, Method::LogwNext, 1, 3).unwrap();
        assert_eq!(rows.into_rows(), [mixed.to_vec()]);
    }

    #[test]
    fn errors_map_back_to_their_variants() {
        let reply = ask(CallRef::BatchPrefix(&[]));
        let err = values(&reply, Method::BatchPrefix, 0).unwrap_err();
        assert!(matches!(
            err,
            PotentialError::EmptyBatch {
                method: "batch_prefix"
            }
        ));
        let reply = ask(CallRef::Score(&[Symbol::Eos, Symbol::Token('a')]));
        let err = values(&reply, Method::Score, 1).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err:?}");
        for e in [
            PotentialError::msg("model missing"),
            PotentialError::Panicked("boom".into()),
            Wrapper::WorkerPool.closed(),
            Wrapper::AutoBatched.closed(),
            PotentialError::BatchSizeMismatch {
                method: "batch_score",
                expected: 3,
                got: 1,
            },
            PotentialError::UnknownToken {
                token: "'z'".into(),
                position: 4,
            },
            PotentialError::InvalidWeight {
                method: "logw_next",
                value: f64::INFINITY,
            },
            PotentialError::Timeout {
                method: "batch_prefix",
                after: std::time::Duration::from_millis(3),
            },
        ] {
            let mut reply = Vec::new();
            encode_error(&e, &mut reply);
            let back = decode_reply(&reply).unwrap_err();
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&e));
        }
    }

    #[test]
    fn a_description_carries_the_token_type_and_the_vocabulary_length() {
        let mut reply = Vec::new();
        server().describe(&mut reply);
        assert!(check_description::<char>(&reply, 3).is_ok());
        let err = check_description::<u32>(&reply, 3).unwrap_err();
        assert!(err.to_string().contains("char"), "{err}");
        let err = check_description::<char>(&reply, 4).unwrap_err();
        assert!(err.to_string().contains("of 3 tokens"), "{err}");
    }

    #[test]
    fn malformed_calls_and_replies_are_errors() {
        let reply = block_on(server().serve(&[0xff, 0xff, 0xff], Vec::new()));
        assert!(matches!(
            decode_reply(&reply).unwrap_err(),
            PotentialError::InvalidInput(_)
        ));
        for bad in [&[][..], &[VALUES, 1, 2], &[9], &[ERROR, 0xff]] {
            assert!(matches!(
                decode_reply(bad),
                Err(PotentialError::WorkerFailure(_))
            ));
        }
    }

    struct Panics(Vocab<char>);
    impl Potential for Panics {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0
        }
        async fn complete(&self, _: &[char]) -> Result<f64> {
            panic!("boom")
        }
        async fn prefix(&self, _: &[char]) -> Result<f64> {
            Ok(0.0)
        }
    }

    #[test]
    fn a_panic_becomes_an_error_reply() {
        let server = Server::new(Arc::new(Panics(Vocab::new(['a']).unwrap())));
        let mut request = Vec::new();
        encode_call(&CallRef::<char>::Complete(&[]), &mut request).unwrap();
        let reply = block_on(server.serve(&request, Vec::new()));
        let err = decode_reply(&reply).unwrap_err();
        assert!(
            matches!(&err, PotentialError::Panicked(m) if m == "boom"),
            "{err:?}"
        );
    }
}
