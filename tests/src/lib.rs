//! Integration tests live in `tests/`; this crate only exists to hold them.
