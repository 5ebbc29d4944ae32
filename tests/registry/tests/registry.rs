//! One potential type registered by two crates: this crate's library
//! registers `Length<u8>`, and so does this test, as a user who registers
//! an instantiation a library already registers would.
//!
//! In a release build the two registrations' functions are two copies at
//! two addresses (generics are shared between crates only at opt-level 0),
//! so a registry that told types apart by function address refused to
//! rebuild the type ("two different potential types are registered under
//! the tag"). The registry keys types by `TypeId`. `.ci/run` runs this test
//! in release (`cargo test --release -p potential-registry-test`): in a
//! debug build it cannot fail. It lives in a crate of its own, which
//! depends on core alone, so that the release build is cheap.

use potential_core::checks::assert_respawns;
use potential_core::{Potential, Vocab};
use potential_registry_test::Length;

potential_core::register!(Length<u8>);

#[test]
fn a_type_registered_by_two_crates_rebuilds_from_its_recipe() {
    let length = Length::<u8>::new(Vocab::new(*b"ab").unwrap());
    let contexts = [b"aab".to_vec(), b"b".to_vec()];
    let rebuilt = futures::executor::block_on(assert_respawns(&length, &contexts))
        .expect("one type registered twice rebuilds");
    let complete = futures::executor::block_on(rebuilt.complete(b"aab")).unwrap();
    assert_eq!(complete, -3.0);
}
