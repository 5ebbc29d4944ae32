//! Spawn recipes, the spawn trait and the registry of spawnable types.
//!
//! A worker process rebuilds a potential from a [`Recipe`]: a tree whose
//! leaves are registered types (a stable tag plus the type's serde state)
//! and whose inner nodes are the library's wrappers (products, …). The
//! worker is the same executable as the parent (or one built from the same
//! code), and it finds the type of each leaf in a registry filled before
//! `main` by [`inventory`]: `#[derive(Potential)]` registers the types it
//! derives, and [`register!`](crate::register) registers a concrete
//! instantiation of a generic type by hand.
//!
//! Why `inventory` and not `linkme`: its entries may be built by any
//! constant expression (here, function pointers of a generic function),
//! it needs no linker-section support, and it works on every platform
//! where workers run. Its one trap: a crate that is never referenced by
//! path is not linked, and its registrations vanish; reference the crate
//! that holds your potentials (`use my_potentials as _;`) from the binary.
//!
//! Every recipe lives here, the wrappers' too: batching and the operators
//! know nothing of processes.
//!
//! - this module: [`Spawnable`], [`Registered`], [`Recipe`] and the
//!   recipes of the library's wrappers;
//! - [`registry`]: [`Registration`], [`register!`](crate::register) and the
//!   lookup by tag;
//! - [`erased`]: [`Built`], a rebuilt potential whose token type is erased.

mod erased;
mod registry;

pub use erased::Built;
pub use registry::{Registration, registered_tags};

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::autobatch::{AutoBatchOptions, AutoBatched};
use crate::error::{PotentialError, Result};
use crate::ops::Product;
use crate::potential::Potential;

/// A potential whose recipe can cross a process boundary, so that worker
/// processes can rebuild it.
///
/// `#[derive(Potential)]` implements it (through [`Registered`]) for
/// potentials whose fields are all serde types; the library's wrappers
/// implement it when their parts do.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to a worker process",
    label = "this potential has no spawn recipe",
    note = "derive `Potential`, `Serialize` and `Deserialize` for it, or implement `potential_core::Registered` by hand; a potential marked `#[potential(local)]` runs only in this process"
)]
pub trait Spawnable: Potential + Sized + 'static {
    /// The recipe from which a worker rebuilds an identical instance.
    fn recipe(&self) -> Result<Recipe>;
}
/// A spawnable potential type that a worker finds by its tag: its serde
/// form is its recipe.
///
/// Implement it (an empty impl is enough) to make a hand-written potential
/// spawnable, and register the type with [`register!`](crate::register):
///
/// ```
/// use potential_core::{Potential, PotentialError, Registered, Spawnable, Vocab};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Zero { vocab: Vocab<u8> }
///
/// impl Potential for Zero {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.vocab }
///     async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
///     async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
/// }
///
/// impl Registered for Zero {}
/// potential_core::register!(Zero);
///
/// let recipe = Zero { vocab: Vocab::new([1, 2])? }.recipe()?;
/// let rebuilt = recipe.build()?.downcast::<u8>().ok().unwrap();
/// assert_eq!(rebuilt.vocab().len(), 2);
/// # Ok::<(), PotentialError>(())
/// ```
pub trait Registered: Potential + Serialize + DeserializeOwned + 'static {
    /// The stable name under which workers find the type. Defaults to the
    /// type's name, the same in the parent and in the worker because both
    /// run the same code.
    fn tag() -> &'static str {
        std::any::type_name::<Self>()
    }
}

impl<P: Registered> Spawnable for P {
    fn recipe(&self) -> Result<Recipe> {
        let state = postcard::to_stdvec(self).map_err(|e| {
            PotentialError::InvalidInput(format!("cannot serialize {}: {e}", P::tag()))
        })?;
        Ok(Recipe::Registered {
            tag: P::tag().to_string(),
            state,
        })
    }
}

impl<A, B> Spawnable for Product<A, B>
where
    A: Spawnable,
    B: Spawnable<Token = A::Token>,
{
    fn recipe(&self) -> Result<Recipe> {
        Ok(Recipe::Product(
            Box::new(self.first().recipe()?),
            Box::new(self.second().recipe()?),
        ))
    }
}

/// A worker builds a fresh wrapper, with its loop on the worker's runtime,
/// over its own copy of the inner potential.
impl<P: Spawnable> Spawnable for AutoBatched<P> {
    fn recipe(&self) -> Result<Recipe> {
        Ok(Recipe::AutoBatched {
            inner: Box::new(self.inner().recipe()?),
            options: self.options().clone(),
        })
    }
}

/// A shared potential travels as the potential it shares: each worker
/// rebuilds its own `P`. So a program can keep the plain potential and
/// send it to workers too (`shared.clone().to_multiprocess(n)`).
impl<P: Spawnable> Spawnable for Arc<P> {
    fn recipe(&self) -> Result<Recipe> {
        (**self).recipe()
    }
}

/// What a worker needs to rebuild a potential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Recipe {
    /// A registered type and its serde state (postcard).
    Registered {
        /// The type's [`Registered::tag`].
        tag: String,
        /// The type's serialized form.
        state: Vec<u8>,
    },
    /// The product of two potentials over the same token type.
    Product(Box<Recipe>, Box<Recipe>),
    /// An autobatching wrapper: rebuilt as a fresh wrapper, with its loop on
    /// the rebuilding process's runtime, over the rebuilt inner potential.
    AutoBatched {
        /// The inner potential's recipe.
        inner: Box<Recipe>,
        /// The wrapper's options.
        options: AutoBatchOptions,
    },
}

impl Recipe {
    /// Rebuilds the potential: finds each leaf's type in the registry and
    /// deserializes it, then applies the wrappers.
    pub fn build(&self) -> Result<Built> {
        match self {
            Recipe::Registered { tag, state } => registry::lookup(tag)?.build(state),
            Recipe::Product(first, second) => first.build()?.product(second.build()?),
            Recipe::AutoBatched { inner, options } => Ok(inner.build()?.autobatch(options.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::tests::block_on;
    use crate::vocab::Vocab;

    #[derive(Debug, Serialize, Deserialize)]
    struct Scaled {
        vocab: Vocab<u32>,
        scale: f64,
    }

    impl Potential for Scaled {
        type Token = u32;
        fn vocab(&self) -> &Vocab<u32> {
            &self.vocab
        }
        async fn complete(&self, c: &[u32]) -> Result<f64> {
            Ok(self.scale * c.iter().sum::<u32>() as f64)
        }
        async fn prefix(&self, c: &[u32]) -> Result<f64> {
            Ok(self.scale * c.len() as f64)
        }
    }

    impl Registered for Scaled {}
    crate::register!(Scaled);

    #[derive(Serialize, Deserialize)]
    struct Unlisted(Vocab<u32>);

    impl Potential for Unlisted {
        type Token = u32;
        fn vocab(&self) -> &Vocab<u32> {
            &self.0
        }
        async fn complete(&self, _: &[u32]) -> Result<f64> {
            Ok(0.0)
        }
        async fn prefix(&self, _: &[u32]) -> Result<f64> {
            Ok(0.0)
        }
    }

    impl Registered for Unlisted {}

    fn scaled(scale: f64) -> Scaled {
        Scaled {
            vocab: Vocab::new([1, 2, 3]).unwrap(),
            scale,
        }
    }

    #[test]
    fn recipes_round_trip_through_the_registry() {
        block_on(async {
            let original = scaled(2.0);
            let recipe = original.recipe().unwrap();
            let wire = postcard::to_stdvec(&recipe).unwrap();
            let recipe: Recipe = postcard::from_bytes(&wire).unwrap();
            let rebuilt = recipe.build().unwrap().downcast::<u32>().unwrap();
            let ctx = [vec![1, 2], vec![3]];
            assert_eq!(
                rebuilt.batch_complete(&ctx).await.unwrap(),
                original.batch_complete(&ctx).await.unwrap()
            );
            assert!(registered_tags().contains(&Scaled::tag()));
        });
    }

    #[test]
    fn products_rebuild_from_their_parts() {
        block_on(async {
            let product = Product::new(scaled(1.0), scaled(-3.0)).unwrap();
            let rebuilt = product.recipe().unwrap().build().unwrap();
            assert_eq!(rebuilt.token_type(), "u32");
            let rebuilt = rebuilt.downcast::<u32>().unwrap();
            assert_eq!(rebuilt.complete(&[1, 2]).await.unwrap(), 3.0 - 9.0);
        });
    }

    #[test]
    fn a_shared_potential_travels_as_what_it_shares() {
        block_on(async {
            let shared = Arc::new(scaled(2.0));
            let recipe = shared.recipe().unwrap();
            assert_eq!(recipe, scaled(2.0).recipe().unwrap());
            let rebuilt = recipe.build().unwrap().downcast::<u32>().unwrap();
            assert_eq!(rebuilt.complete(&[1, 2]).await.unwrap(), 6.0);
        });
    }

    #[test]
    fn unknown_tags_wrong_state_and_wrong_token_types_are_errors() {
        let err = Unlisted(Vocab::new([1]).unwrap())
            .recipe()
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("register!"), "{err}");
        let bad = Recipe::Registered {
            tag: Scaled::tag().to_string(),
            state: vec![0xff; 3],
        };
        assert!(matches!(bad.build(), Err(PotentialError::InvalidInput(_))));
        let built = scaled(1.0).recipe().unwrap().build().unwrap();
        assert!(built.downcast::<u8>().is_err());
    }
}
