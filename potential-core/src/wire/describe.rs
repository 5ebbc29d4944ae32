//! The worker's answer to the recipe: a [`Description`] of the potential
//! it rebuilt, which the pool checks against the one it sent.

use std::any::type_name;

use serde::{Deserialize, Serialize};

use crate::error::{PotentialError, Result};
use crate::vocab::TokenType;

use super::reply::{Reply, decode_reply, malformed};
use super::tag::DESCRIPTION;

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

/// Checks a description reply against the parent's token type `T` and
/// vocabulary length.
pub fn check_description<T: TokenType>(bytes: &[u8], vocab_len: usize) -> Result<()> {
    let body = match decode_reply(bytes)? {
        Reply::Description(body) => body,
        Reply::Values(_) | Reply::Mask(_) | Reply::Shared(_) => {
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
