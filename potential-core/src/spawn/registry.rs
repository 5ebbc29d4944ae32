//! The registry of spawnable types: filled before `main` by [`inventory`],
//! read once per worker start.

use std::sync::Arc;

use crate::dyn_potential::DynPotential;
use crate::error::{PotentialError, Result};

use super::{Built, Registered};

/// An entry of the registry: a tag and how to rebuild the type from its state.
///
/// Built by [`Registration::of`] inside `inventory::submit!`, which
/// `#[derive(Potential)]` and [`register!`](crate::register) emit.
pub struct Registration {
    tag: fn() -> &'static str,
    build: fn(&[u8]) -> Result<Built>,
}

impl Registration {
    /// The registration of `P`.
    pub const fn of<P: Registered>() -> Self {
        Registration {
            tag: P::tag,
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
    if found.any(|r| r.build as usize != first.build as usize) {
        return Err(PotentialError::InvalidInput(format!(
            "two different potential types are registered under the tag `{tag}`; give one of them another tag"
        )));
    }
    Ok(first)
}

fn build_registered<P: Registered>(state: &[u8]) -> Result<Built> {
    let potential: P = postcard::from_bytes(state).map_err(|e| {
        PotentialError::InvalidInput(format!("cannot rebuild {} from its recipe: {e}", P::tag()))
    })?;
    Ok(Built::new(
        Arc::new(potential) as Arc<dyn DynPotential<P::Token>>
    ))
}
