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
//! | [`DESCRIPTION`] | a [`Description`] in postcard |
//! | [`ERROR`] | a [`WireError`] in postcard |
//!
//! Weight vectors are the bulk of the traffic (a vocabulary of 50,000 is a
//! 400 KB reply), so they travel as raw bytes: no per-element tag, no varint,
//! a copy at each end. `complete`, `prefix` and `score` answer one value, the
//! batch forms one per context, `logw_next` `len + 1` values (EOS last) and
//! `batch_logw_next` the vectors of every context one after the other.
//!
//! Errors travel as [`WireError`], a serde mirror of
//! [`PotentialError`](crate::PotentialError) whose variants map one to one,
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
use crate::error::{PotentialError, Result};
use crate::potential::NativeBatch;
use crate::vocab::{Symbol, TokenType, Vocab};

/// Reply tag: raw little-endian `f64` values follow.
pub const VALUES: u8 = 0;
/// Reply tag: a postcard [`Description`] follows.
pub const DESCRIPTION: u8 = 1;
/// Reply tag: a postcard [`WireError`] follows.
pub const ERROR: u8 = 2;

/// A call as the parent encodes it: the contexts are borrowed.
///
/// Its postcard form is that of [`Call`] with the same variant.
#[derive(Debug, Serialize)]
pub enum CallRef<'a, T> {
    /// Ask for a [`Description`] of the potential.
    Describe,
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
    /// See [`CallRef::Describe`].
    Describe,
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

/// What the parent learns about a worker's potential before the first call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: TokenType"))]
pub struct Description<T> {
    /// `std::any::type_name` of the token type, checked against the parent's.
    pub token_type: String,
    /// The vocabulary (EOS is implicit).
    pub vocab: Vocab<T>,
    /// The native batch forms.
    pub native_batch: NativeBatch,
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

/// The `&'static str` names that errors carry, so that they survive the
/// trip; an unknown name (a newer peer) keeps its meaning in words.
const STATIC_NAMES: &[&str] = &[
    "complete",
    "prefix",
    "score",
    "logw_next",
    "batch_complete",
    "batch_prefix",
    "batch_score",
    "batch_logw_next",
    "autobatching loop",
    "worker pool",
];

fn static_name(name: &str, unknown: &'static str) -> &'static str {
    STATIC_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or(unknown)
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
                method: static_name(&method, "a batch method"),
            },
            WireError::ZeroWeightContext { context } => {
                PotentialError::ZeroWeightContext { context }
            }
            WireError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => PotentialError::BatchSizeMismatch {
                method: static_name(&method, "a batch method"),
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
                got: usize::try_from(got).unwrap_or(usize::MAX),
            },
            WireError::InvalidInput(s) => PotentialError::InvalidInput(s),
            WireError::Closed(s) => PotentialError::Closed(static_name(&s, "wrapper")),
            WireError::WorkerFailure(s) => PotentialError::WorkerFailure(s),
            WireError::Panicked(s) => PotentialError::Panicked(s),
            WireError::Potential(s) => PotentialError::msg(s),
            WireError::UnknownToken { token, position } => PotentialError::UnknownToken {
                token,
                position: usize::try_from(position).unwrap_or(usize::MAX),
            },
            WireError::InvalidWeight { method, value } => PotentialError::InvalidWeight {
                method: static_name(&method, "a method"),
                value,
            },
            WireError::Timeout { method, after } => PotentialError::Timeout {
                method: static_name(&method, "a method"),
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

/// Appends `f64`s as little-endian bytes; a bulk copy on little-endian targets.
fn append_le(values: &[f64], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 8 * values.len(), 0);
    for (bytes, v) in out[start..].chunks_exact_mut(8).zip(values) {
        bytes.copy_from_slice(&v.to_le_bytes());
    }
}

/// Appends an error reply.
pub fn encode_error(error: &PotentialError, out: &mut Vec<u8>) {
    out.push(ERROR);
    // A `WireError` is strings and integers: postcard cannot fail on it
    // when writing to a Vec, so a failure here is unreachable in practice.
    if postcard::to_io(&WireError::from(error), &mut *out).is_err() {
        out.truncate(out.len().saturating_sub(1));
        out.push(ERROR);
        out.push(0); // WireError::EmptyVocabulary; never reached
    }
}

/// Appends a description reply.
pub fn encode_description<T: TokenType>(
    vocab: &Vocab<T>,
    native_batch: NativeBatch,
    out: &mut Vec<u8>,
) -> Result<()> {
    let description = Description {
        token_type: type_name::<T>().to_string(),
        vocab: vocab.clone(),
        native_batch,
    };
    out.push(DESCRIPTION);
    postcard::to_io(&description, &mut *out)
        .map(|_| ())
        .map_err(|e| PotentialError::InvalidInput(format!("cannot encode a vocabulary: {e}")))
}

/// A decoded reply: its body, or the error it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply<'a> {
    /// Raw little-endian `f64` values (a multiple of 8 bytes).
    Values(&'a [u8]),
    /// A postcard [`Description`]; see [`decode_description`].
    Description(&'a [u8]),
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
        ERROR => Err(postcard::from_bytes::<WireError>(body)
            .map_err(malformed)?
            .into()),
        other => Err(malformed(format!("unknown tag {other}"))),
    }
}

/// The values of a reply that must hold exactly `expected` of them.
pub fn decode_values(bytes: &[u8], method: &'static str, expected: usize) -> Result<Vec<f64>> {
    match decode_reply(bytes)? {
        Reply::Values(raw) => {
            let got = raw.len() / 8;
            if got != expected {
                return Err(PotentialError::BatchSizeMismatch {
                    method,
                    expected,
                    got,
                });
            }
            Ok(raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect())
        }
        Reply::Description(_) => Err(malformed("a description where values were expected")),
    }
}

/// The description in a reply, checked against the token type `T`.
pub fn decode_description<T: TokenType>(bytes: &[u8]) -> Result<Description<T>> {
    let body = match decode_reply(bytes)? {
        Reply::Description(body) => body,
        Reply::Values(_) => return Err(malformed("values where a description was expected")),
    };
    // The token type is the first field: check it before the vocabulary,
    // whose tokens would not decode as `T`.
    let (token_type, _) = postcard::take_from_bytes::<String>(body).map_err(malformed)?;
    if token_type != type_name::<T>() {
        return Err(PotentialError::InvalidInput(format!(
            "the worker's potential has tokens of type {token_type}, the caller expects {}",
            type_name::<T>()
        )));
    }
    postcard::from_bytes(body).map_err(malformed)
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
    fn serve(&self, request: &[u8], reply: Vec<u8>) -> BoxFuture<'static, Vec<u8>>;
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

    async fn answer(p: &dyn DynPotential<T>, call: Call<T>, reply: &mut Vec<u8>) -> Result<()> {
        match call {
            Call::Describe => encode_description(p.dyn_vocab(), p.dyn_native_batch(), reply)?,
            Call::Complete(c) => encode_values(&[p.dyn_complete(&c).await?], reply),
            Call::Prefix(c) => encode_values(&[p.dyn_prefix(&c).await?], reply),
            Call::Score(c) => encode_values(&[p.dyn_score(&c).await?], reply),
            Call::LogwNext(c) => encode_values(p.dyn_logw_next(&c).await?.as_slice(), reply),
            Call::BatchComplete(c) => encode_values(&p.dyn_batch_complete(&c).await?, reply),
            Call::BatchPrefix(c) => encode_values(&p.dyn_batch_prefix(&c).await?, reply),
            Call::BatchScore(c) => encode_values(&p.dyn_batch_score(&c).await?, reply),
            Call::BatchLogwNext(c) => {
                let all = p.dyn_batch_logw_next(&c).await?;
                check_batch_len("batch_logw_next", c.len(), all.len())?;
                let width = p.dyn_vocab().len() + 1;
                reply.reserve(1 + 8 * width * all.len());
                reply.push(VALUES);
                for w in &all {
                    if w.as_slice().len() != width {
                        return Err(PotentialError::InvalidInput(format!(
                            "batch_logw_next returned {} weights for a vocabulary of {} plus EOS",
                            w.as_slice().len(),
                            width - 1
                        )));
                    }
                    append_le(w.as_slice(), reply);
                }
            }
        }
        Ok(())
    }
}

fn check_batch_len(method: &'static str, expected: usize, got: usize) -> Result<()> {
    crate::potential::check_len(method, expected, got)
}

impl<T: TokenType> ServePotential for Server<T> {
    fn serve(&self, request: &[u8], mut reply: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        let call = decode_call::<T>(request);
        let potential = self.potential.clone();
        Box::pin(async move {
            let start = reply.len();
            let outcome = match call {
                Ok(call) => AssertUnwindSafe(Self::answer(&*potential, call, &mut reply))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::Potential;
    use crate::potential::tests::{Length, block_on};
    use std::sync::Arc;

    fn server() -> Server<char> {
        Server::new(Arc::new(Length::abc()))
    }

    fn ask(call: CallRef<'_, char>) -> Vec<u8> {
        let mut request = Vec::new();
        encode_call(&call, &mut request).unwrap();
        block_on(server().serve(&request, Vec::new()))
    }

    #[test]
    fn values_travel_as_raw_little_endian_bytes() {
        let reply = ask(CallRef::BatchComplete(&[vec!['a'], vec!['a', 'b']]));
        assert_eq!(reply.len(), 1 + 16);
        assert_eq!(reply[0], VALUES);
        assert_eq!(
            decode_values(&reply, "batch_complete", 2).unwrap(),
            [-1.0, -2.0]
        );
        let err = decode_values(&reply, "batch_complete", 3).unwrap_err();
        assert!(matches!(
            err,
            PotentialError::BatchSizeMismatch { got: 2, .. }
        ));
    }

    #[test]
    fn logw_next_equals_the_in_process_weights() {
        let reply = ask(CallRef::LogwNext(&['a']));
        let want = block_on(Length::abc().logw_next(&['a'])).unwrap();
        assert_eq!(
            decode_values(&reply, "logw_next", 4).unwrap(),
            want.as_slice()
        );
        let reply = ask(CallRef::BatchLogwNext(&[vec![], vec!['a']]));
        let values = decode_values(&reply, "batch_logw_next", 8).unwrap();
        assert_eq!(&values[4..], want.as_slice());
    }

    #[test]
    fn errors_map_back_to_their_variants() {
        let reply = ask(CallRef::BatchPrefix(&[]));
        let err = decode_values(&reply, "batch_prefix", 0).unwrap_err();
        assert!(matches!(
            err,
            PotentialError::EmptyBatch {
                method: "batch_prefix"
            }
        ));
        let reply = ask(CallRef::Score(&[Symbol::Eos, Symbol::Token('a')]));
        let err = decode_values(&reply, "score", 1).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err:?}");
        for e in [
            PotentialError::msg("model missing"),
            PotentialError::Panicked("boom".into()),
            PotentialError::Closed("worker pool"),
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
    fn a_description_carries_vocabulary_and_token_type() {
        let reply = ask(CallRef::Describe);
        let d = decode_description::<char>(&reply).unwrap();
        assert_eq!(d.vocab.tokens(), ['a', 'b', 'c']);
        let err = decode_description::<u32>(&reply).unwrap_err();
        assert!(err.to_string().contains("char"), "{err}");
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
