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
//! - [`autobatch`] turns concurrent single calls into batch calls:
//!   [`PotentialExt::to_autobatched`] gives an [`AutoBatched`] potential.
//! - [`checks`] holds the property checks a potential author runs in tests.
//! - [`prefix_cache`] keeps states by token-id prefix, for potentials that
//!   extend a context's state by its next tokens.
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
#![forbid(unsafe_code)]

// Lets the macros' `::potential_core::…` paths resolve inside this crate too.
extern crate self as potential_core;

pub mod autobatch;
pub mod checks;
mod derive_support;
mod dyn_potential;
mod error;
mod ext;
pub mod hash;
mod mask;
pub mod ops;
mod potential;
pub mod prefix_cache;
mod spawn;
#[cfg(test)]
mod testing;
mod vocab;
mod weights;
pub mod wire;

pub use autobatch::{AutoBatchOptions, AutoBatchStats, AutoBatched};
pub use dyn_potential::DynPotential;
pub use error::{Method, PotentialError, Result, Wrapper};
pub use ext::PotentialExt;
pub use mask::Mask;
pub use potential::{
    NativeBatch, Potential, all_log_weights, check_len, check_symbols, check_tokens, check_weight,
    check_weights, is_log_weight, non_empty, zero_weight,
};
pub use spawn::{Built, Recipe, Registered, Registration, Spawnable, registered_tags};
pub use vocab::{Shown, Symbol, TokenType, Vocab, split_eos};
pub use weights::{LogWeights, Weights, logsumexp};

/// The macros: `#[derive(Potential)]` on the struct, `#[batched]` on its
/// methods; they generate the [`Potential`] impl and the spawn
/// registration (attribute grammar and generated items: the
/// `potential-derive` crate docs).
///
/// ```
/// use potential_core::{NativeBatch, Potential, PotentialError, Spawnable, Vocab, batched};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Potential, Serialize, Deserialize)]
/// struct Length {
///     vocab: Vocab<u8>, // the vocabulary: the one `Vocab<_>` field, or mark it `#[potential(vocab)]`
///     max: usize,
/// }
///
/// #[batched]
/// impl Length {
///     async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
///         Ok(if context.len() <= self.max { 0.0 } else { f64::NEG_INFINITY })
///     }
///     async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
///         self.complete(context).await
///     }
///     // Optional, native: used by autobatching and by worker processes.
///     async fn batch_prefix(&self, contexts: &[Vec<u8>]) -> Result<Vec<f64>, PotentialError> {
///         let mut out = Vec::with_capacity(contexts.len());
///         for c in contexts {
///             out.push(self.prefix(c).await?);
///         }
///         Ok(out)
///     }
///     // Not a potential method: stays an inherent method.
///     fn max(&self) -> usize { self.max }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = Length { vocab: Vocab::new(*b"ab")?, max: 1 };
/// assert_eq!(p.logw_next(b"a").await?.eos(), 0.0);
/// assert_eq!(p.native_batch(), NativeBatch { prefix: true, ..NativeBatch::NONE });
/// assert!(p.batch_prefix(&[]).await.is_err()); // an empty batch is an error
/// assert_eq!(p.max(), 1);
///
/// // The spawn recipe: what a worker process rebuilds the potential from.
/// let rebuilt = p.recipe()?.build()?.downcast::<u8>().unwrap();
/// assert_eq!(rebuilt.complete(b"ab").await?, f64::NEG_INFINITY);
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub use potential_derive::Potential;
/// Generates a derived potential's [`Potential`] impl from its impl block;
/// see [`Potential`](derive@Potential) for the example.
pub use potential_derive::batched;

/// Items used by the code that the macros generate; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::derive_support::*;
    pub use inventory;
}
