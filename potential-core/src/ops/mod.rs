//! Operators that build potentials from potentials.
//!
//! - [`Product`]: the sum of two potentials' log weights, over the
//!   intersection of their vocabularies;
//! - [`Coerce`]: a potential seen through a mapping to another vocabulary.
//!
//! Both are potentials themselves, so they compose with autobatching and
//! with each other.

mod coerce;
mod product;

pub use coerce::{Coerce, CoerceOptions};
pub use product::Product;
