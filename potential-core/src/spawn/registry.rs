//! The registry of spawnable types: filled before `main` by [`inventory`],
//! read once per worker start.

use std::any::TypeId;
use std::sync::Arc;

use crate::error::{PotentialError, Result};

use super::{Built, Registered};

/// An entry of the registry: a tag and how to rebuild the type from its state.
///
/// Built by [`Registration::of`] inside `inventory::submit!`, which
/// `#[derive(Potential)]` and [`register!`](crate::register) emit.
pub struct Registration {
    tag: fn() -> &'static str,
    /// The type's identity. Not the address of `build`: Rust does not
    /// promise one address per function (a generic instantiated in two
    /// crates gets two copies in release builds, and identical code
    /// folding can merge different functions).
    type_id: fn() -> TypeId,
    build: fn(&[u8]) -> Result<Built>,
}

impl Registration {
    /// The registration of `P`.
    pub const fn of<P: Registered>() -> Self {
        Registration {
            tag: P::tag,
            type_id: TypeId::of::<P>,
            build: build_registered::<P>,
        }
    }

    /// The registered tag.
    pub fn tag(&self) -> &'static str {
        (self.tag)()
    }

    /// Rebuilds the registered type from its serde state.
    pub(super) fn build(&self, state: &[u8]) -> Result<Built> {
        (self.build)(state)
    }
}

inventory::collect!(Registration);

/// Registers concrete potential types so that worker processes can rebuild
/// them. `#[derive(Potential)]` does this for non-generic types; call it
/// once per instantiation of a generic type, at module level:
///
/// ```ignore
/// potential_core::register!(Ngram<u32>, Ngram<String>);
/// ```
#[macro_export]
macro_rules! register {
    ($($ty:ty),+ $(,)?) => {
        $( $crate::__private::inventory::submit! { $crate::Registration::of::<$ty>() } )+
    };
}

/// The tags of every registered type, sorted.
pub fn registered_tags() -> Vec<&'static str> {
    let mut tags: Vec<_> = inventory::iter::<Registration>()
        .map(Registration::tag)
        .collect();
    tags.sort_unstable();
    tags
}

/// The registration of `tag`.
pub(super) fn lookup(tag: &str) -> Result<&'static Registration> {
    let mut found = inventory::iter::<Registration>().filter(|r| r.tag() == tag);
    let first = found.next().ok_or_else(|| {
        PotentialError::InvalidInput(format!(
            "no potential type is registered under `{tag}` in this executable; \
             derive `Potential` for it or call `potential_core::register!` with it"
        ))
    })?;
    // Registering one type twice is harmless; two types under one tag is not.
    let id = (first.type_id)();
    if found.any(|r| (r.type_id)() != id) {
        return Err(PotentialError::InvalidInput(format!(
            "two different potential types are registered under the tag `{tag}`; give one of them another tag"
        )));
    }
    Ok(first)
}

fn build_registered<P: Registered>(state: &[u8]) -> Result<Built> {
    Ok(Built::leaf(Arc::new(decode::<P>(state)?)))
}

/// A registered type rebuilt from its serde state.
pub(super) fn decode<P: Registered>(state: &[u8]) -> Result<P> {
    postcard::from_bytes(state).map_err(|e| {
        PotentialError::InvalidInput(format!("cannot rebuild {} from its recipe: {e}", P::tag()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::Potential;
    use crate::vocab::Vocab;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Twice(Vocab<u8>);

    impl Potential for Twice {
        type Token = u8;
        fn vocab(&self) -> &Vocab<u8> {
            &self.0
        }
        async fn complete(&self, _: &[u8]) -> Result<f64> {
            Ok(0.0)
        }
        async fn prefix(&self, _: &[u8]) -> Result<f64> {
            Ok(0.0)
        }
    }

    impl Registered for Twice {}

    /// Another copy of `build_registered::<Twice>`, at another address: what
    /// a release build gives when two crates register one instantiation.
    fn build_twice_elsewhere(state: &[u8]) -> Result<Built> {
        build_registered::<Twice>(state)
    }

    crate::register!(Twice);
    inventory::submit! {
        Registration {
            tag: Twice::tag,
            type_id: TypeId::of::<Twice>,
            build: build_twice_elsewhere,
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Impostor(Vocab<u8>);

    impl Potential for Impostor {
        type Token = u8;
        fn vocab(&self) -> &Vocab<u8> {
            &self.0
        }
        async fn complete(&self, _: &[u8]) -> Result<f64> {
            Ok(1.0)
        }
        async fn prefix(&self, _: &[u8]) -> Result<f64> {
            Ok(1.0)
        }
    }

    impl Registered for Impostor {
        fn tag() -> &'static str {
            "potential_core::spawn::registry::tests::Clash"
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Clash(Vocab<u8>);

    impl Potential for Clash {
        type Token = u8;
        fn vocab(&self) -> &Vocab<u8> {
            &self.0
        }
        async fn complete(&self, _: &[u8]) -> Result<f64> {
            Ok(2.0)
        }
        async fn prefix(&self, _: &[u8]) -> Result<f64> {
            Ok(2.0)
        }
    }

    impl Registered for Clash {}
    crate::register!(Impostor, Clash);

    #[test]
    fn one_type_registered_twice_at_two_addresses_rebuilds() {
        use crate::spawn::Spawnable;
        let recipe = Twice(Vocab::new([1]).unwrap()).recipe().unwrap();
        let rebuilt = recipe.build().unwrap();
        assert_eq!(rebuilt.token_type(), "u8");
    }

    #[test]
    fn two_types_under_one_tag_are_an_error() {
        use crate::spawn::Spawnable;
        let err = Clash(Vocab::new([1]).unwrap())
            .recipe()
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("two different potential types"),
            "{err}"
        );
    }
}
