//! One potential type registered by two crates: `potential-builtins`
//! registers `Regex<u8>`, and so does this test, as a user who registers an
//! instantiation a library already registers would.
//!
//! In a release build the two registrations' functions are two copies at
//! two addresses (generics are shared between crates only at opt-level 0),
//! so a registry that told types apart by function address refused to
//! rebuild the type ("two different potential types are registered under
//! the tag"). The registry keys types by `TypeId`. CI runs this test in
//! release: `cargo test --release -p potential-examples --test registry`.

use potential_builtins::Regex;
use potential_core::checks::assert_respawns;
use potential_core::{Potential, Vocab};

potential_core::register!(Regex<u8>);

#[test]
fn a_type_registered_by_two_crates_rebuilds_from_its_recipe() {
    let regex = Regex::<u8>::new_plain("a+b", Vocab::new(*b"ab").unwrap()).unwrap();
    let contexts = [b"aab".to_vec(), b"b".to_vec()];
    let rebuilt = futures::executor::block_on(assert_respawns(&regex, &contexts))
        .expect("one type registered twice rebuilds");
    let complete = futures::executor::block_on(rebuilt.complete(b"aab")).unwrap();
    assert_eq!(complete, 0.0);
}
