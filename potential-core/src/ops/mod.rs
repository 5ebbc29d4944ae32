//! Operators that build potentials from potentials.
//!
//! - [`Product`]: the sum of two potentials' log weights, over the
//!   intersection of their vocabularies;
//! - [`Coerce`]: a potential seen through a mapping to another vocabulary;
//!   [`CoerceConcat`] when the map concatenates the tokens' images (a
//!   byte-level potential lifted to byte-string tokens).
//!
//! Both are potentials themselves, so they compose with autobatching and
//! with each other.

mod coerce;
mod product;

pub use coerce::{Coerce, CoerceConcat, CoerceOptions, ConcatMap};
pub use product::{Product, SameTokens};
