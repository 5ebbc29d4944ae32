//! The conversation after the hello.
//!
//! 0. On Linux, the pool may first send a frame with id [`REGION_ID`] and
//!    an empty payload, with the descriptor of a shared memory region
//!    attached (`SCM_RIGHTS`); the worker then places large replies there
//!    (see [`shared`](crate::shared)). A worker that cannot map it ignores it.
//! 1. The pool sends the spawn recipe: a frame with id [`INIT_ID`] whose
//!    payload is the [`Recipe`] in postcard.
//! 2. The worker rebuilds the potential and answers with id [`INIT_ID`]: a
//!    [`wire`](potential_core::wire) description (what the parent cannot
//!    know: the token type and the vocabulary's length it rebuilt) or an
//!    error, after which it exits.
//! 3. Calls: the pool sends frames with ids from [`FIRST_CALL_ID`] up, each
//!    an encoded [`wire::CallRef`](potential_core::wire::CallRef); the
//!    worker answers each with a frame of the same id, as soon as that call
//!    is done (so replies may come in any order), many calls in flight.
//!    A reply of [`wire::SHARED`](potential_core::wire::SHARED) names the
//!    values' place in the shared region instead of carrying them.
//! 4. The pool closes its side to stop the worker; a worker that sees the
//!    end of the stream exits.

use potential_core::{PotentialError, Recipe, Result};

/// The id of the recipe frame and of its answer.
pub const INIT_ID: u64 = 0;

/// The id of the frame that carries the shared region's descriptor.
pub const REGION_ID: u64 = u64::MAX;

/// The id of the first call.
pub const FIRST_CALL_ID: u64 = 1;

/// The recipe frame's payload.
pub fn encode_recipe(recipe: &Recipe) -> Result<Vec<u8>> {
    postcard::to_stdvec(recipe)
        .map_err(|e| PotentialError::InvalidInput(format!("cannot encode the spawn recipe: {e}")))
}

/// Decodes the recipe frame's payload.
pub fn decode_recipe(payload: &[u8]) -> Result<Recipe> {
    postcard::from_bytes(payload)
        .map_err(|e| PotentialError::InvalidInput(format!("malformed spawn recipe: {e}")))
}
