//! Shared code of the examples lives here as it grows.
