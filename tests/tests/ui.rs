//! trybuild UI tests: every misuse of the macros gives a pinned error, and
//! every supported shape compiles.
//!
//! rustc's wording around our own messages changes between versions, so
//! the `.stderr` files are pinned to the compiler they were written for.
//! Regenerate them with `TRYBUILD=overwrite cargo test -p potential-tests
//! --test ui` and read the diff.

#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr files are pinned to rustc 1.95"
)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
