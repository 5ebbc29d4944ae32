//! # potential-builtins
//!
//! Ready-made, spawnable potentials over byte-string tokens:
//!
//! - [`Regex`]: a byte-level regular-expression constraint compiled to a
//!   DFA by `regex-automata`; weight one for the sequences that match;
//! - [`NgramLm`]: an interpolated Kneser-Ney n-gram language model over a
//!   vocabulary of a few thousand multi-byte tokens learned from text, with
//!   a native batch `logw_next` that shares work across contexts.
//!
//! Both implement [`potential_core::Registered`] by hand and register
//! themselves, so a worker process that links this crate rebuilds them from
//! their recipes. Reference the crate from the binary that runs workers
//! (`use potential_builtins as _;`) so that the linker keeps the
//! registrations.
//!
//! Their product is the main job of the examples: a language model steered
//! by a constraint.
//!
//! ```
//! use potential_builtins::{NgramConfig, NgramLm, Regex};
//! use potential_core::{ops::Product, Potential};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let text = b"the cat sat.\n\nthe dog sat.\n\nthe cat ran.\n";
//! let lm = NgramLm::train(text, &NgramConfig { order: 3, merges: 20 })?;
//! let only_cats = Regex::new("the cat.*", lm.vocab().clone())?;
//! let both = Product::new(lm.clone(), only_cats)?;
//! let next = both.logw_next(&lm.tokenize(b"the")).await?;
//! let (best, _) = next.top_k(1)[0];
//! assert_eq!(best.token().copied(), Some(&b" cat".to_vec()));
//! # Ok::<(), potential_core::PotentialError>(()) }).unwrap();
//! ```
#![warn(missing_docs, unreachable_pub)]

mod ngram;
mod regex;

pub use ngram::{NgramConfig, NgramLm};
pub use regex::Regex;

/// A token made of bytes: what the byte-level built-ins accept.
///
/// Implemented for `u8` (one byte) and `Vec<u8>` (a byte string, as a
/// language model's tokens are).
pub trait ByteToken: potential_core::TokenType {
    /// The bytes of the token.
    fn as_bytes(&self) -> &[u8];
}

impl ByteToken for u8 {
    fn as_bytes(&self) -> &[u8] {
        std::slice::from_ref(self)
    }
}

impl ByteToken for Vec<u8> {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}
