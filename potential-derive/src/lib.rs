//! Proc macros for potential-rs (see issue #3): `#[derive(Potential)]` and `#[batched]`.
