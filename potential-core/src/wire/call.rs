//! Calls: what the parent asks a worker, in [postcard].
//!
//! A compact, non-self-describing serde format (a one-byte variant index,
//! varint lengths, tokens in their own serde form). The parent encodes
//! borrowed contexts ([`CallRef`]) so that a batch split across workers is
//! never copied before it is encoded; the worker decodes owned ones
//! ([`Call`]).
//!
//! [postcard]: https://docs.rs/postcard

use std::any::type_name;

use serde::{Deserialize, Serialize};

use crate::error::{PotentialError, Result};
use crate::vocab::{Symbol, TokenType};

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

// By hand, not derived: a derive would ask `T: Copy`, and a call holds
// only references.
impl<T> Clone for CallRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for CallRef<'_, T> {}

impl<T> CallRef<'_, T> {
    /// A guess at the length of the call's encoding, from how many tokens
    /// it holds and their size in memory, without visiting them (a batch
    /// costs one step per context). It chooses how a call is written and
    /// whether it is worth measuring first; it bounds nothing: a token
    /// whose encoding is longer than its size in memory (a long string)
    /// makes it too small, and the frame's limit is checked once the call
    /// is written anyway.
    ///
    /// ```
    /// use potential_core::wire::CallRef;
    /// let contexts = vec![vec![1u32, 2, 3]; 10];
    /// assert!(CallRef::BatchPrefix(&contexts).len_hint() >= 30);
    /// ```
    pub fn len_hint(&self) -> usize {
        let (contexts, tokens) = match self {
            CallRef::Complete(c) | CallRef::Prefix(c) | CallRef::LogwNext(c) => (1, c.len()),
            CallRef::Score(c) => (1, c.len()),
            CallRef::BatchComplete(cs) | CallRef::BatchPrefix(cs) | CallRef::BatchLogwNext(cs) => {
                (cs.len(), cs.iter().map(Vec::len).sum())
            }
            CallRef::BatchScore(cs) => (cs.len(), cs.iter().map(Vec::len).sum()),
        };
        // A variant byte, then per context a length of up to 10 bytes.
        1 + contexts * 10 + tokens * size_of::<T>().max(1)
    }
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
