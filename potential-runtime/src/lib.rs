//! Worker processes for potentials (see issue #5).

pub use potential_core;
