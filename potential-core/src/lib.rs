//! # potential-core
//!
//! The model of potential-rs: a [`Potential`] maps token sequences to
//! non-negative weights kept in log space, over a [`Vocab`] of tokens plus
//! an end of sequence ([`Symbol::Eos`]).
//!
//! - [`Potential`] is the trait: `complete` and `prefix` are required;
//!   `score`, `logw_next` and the four batch forms have defaults with
//!   genlm-control's semantics. [`DynPotential`] is its object-safe twin.
//! - [`LogWeights`] holds next-token log weights over vocabulary + EOS.
//! - [`ops`] builds new potentials from old: [`ops::Product`] and [`ops::Coerce`].
//! - [`checks`] holds the property checks a potential author runs in tests.
//! - [`PotentialError`] is the one error type.
//!
//! ```
//! use potential_core::{Potential, PotentialError, Symbol, Vocab};
//!
//! /// Weight one for every sequence of at most `max` tokens.
//! struct MaxLen { vocab: Vocab<u8>, max: usize }
//!
//! impl Potential for MaxLen {
//!     type Token = u8;
//!     fn vocab(&self) -> &Vocab<u8> { &self.vocab }
//!     async fn complete(&self, ctx: &[u8]) -> Result<f64, PotentialError> {
//!         Ok(if ctx.len() <= self.max { 0.0 } else { f64::NEG_INFINITY })
//!     }
//!     async fn prefix(&self, ctx: &[u8]) -> Result<f64, PotentialError> {
//!         self.complete(ctx).await
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let p = MaxLen { vocab: Vocab::new(*b"ab")?, max: 1 };
//! let next = p.logw_next(b"a").await?;
//! assert_eq!(next.get(&b'b'), f64::NEG_INFINITY); // "ab" is too long
//! assert_eq!(next.eos(), 0.0);                    // "a" may end here
//! # Ok::<(), PotentialError>(()) }).unwrap();
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod checks;
mod dyn_potential;
mod error;
pub mod ops;
mod potential;
mod spawn;
mod vocab;
mod weights;

pub use dyn_potential::DynPotential;
pub use error::{PotentialError, Result};
pub use potential::{NativeBatch, Potential, check_len, non_empty, zero_weight};
pub use spawn::{Built, Recipe, Registered, Registration, Spawnable, registered_tags, wire};
pub use vocab::{Symbol, TokenType, Vocab, split_eos};
pub use weights::{LogWeights, Weights, logsumexp};

/// Items used by the code that the macros generate; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
