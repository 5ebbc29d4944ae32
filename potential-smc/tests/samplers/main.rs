//! The samplers on tiny potentials whose exact answers are known.

mod awrs;
mod common;
mod critic;
mod modes;
mod unbiased;
