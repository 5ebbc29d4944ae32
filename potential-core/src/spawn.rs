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
    note = "if `{Self}` is marked `#[potential(local)]`, remove `local` (and derive `Serialize` and `Deserialize` for it): a local potential runs only in this process; otherwise derive `Potential`, `Serialize` and `Deserialize` for it, or implement `potential_core::Registered` by hand"
)]
pub trait Spawnable: Potential + Sized + 'static {
    /// The recipe from which a worker rebuilds an identical instance.
    fn recipe(&self) -> Result<Recipe>;

    /// A fresh instance of the same type rebuilt from the same state, as
    /// a worker would rebuild it but in this process (genlm-control's
    /// `spawn`): an autobatched wrapper gets its own loop over its own
    /// copy of the inner potential, with the same options; a product,
    /// spawns of its parts.
    ///
    /// ```
    /// use potential_core::{Potential, PotentialError, PotentialExt, Registered, Spawnable, Vocab};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Serialize, Deserialize)]
    /// struct Zero { vocab: Vocab<u8> }
    /// impl Potential for Zero {
    ///     type Token = u8;
    ///     fn vocab(&self) -> &Vocab<u8> { &self.vocab }
    ///     async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
    ///     async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
    /// }
    /// impl Registered for Zero {}
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let fast = Zero { vocab: Vocab::new([1, 2])? }.to_autobatched();
    /// let other = fast.spawn()?; // an `AutoBatched<Zero>`, with its own loop
    /// assert_eq!(other.complete(&[1]).await?, 0.0);
    /// assert_eq!(other.stats().requests, 1);
    /// assert_eq!(fast.stats().requests, 0);
    /// other.shutdown().await;
    /// println!("{other:?}, inner {:?}", other.inner());
    /// # Ok::<(), PotentialError>(()) }).unwrap();
    /// ```
    fn spawn(&self) -> Result<Self>;
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

/// A registered type's serde state, as its recipe carries it.
fn state<P: Registered>(potential: &P) -> Result<Vec<u8>> {
    postcard::to_stdvec(potential)
        .map_err(|e| PotentialError::InvalidInput(format!("cannot serialize {}: {e}", P::tag())))
}

impl<P: Registered> Spawnable for P {
    fn recipe(&self) -> Result<Recipe> {
        Ok(Recipe::Registered {
            tag: P::tag().to_string(),
            state: state(self)?,
        })
    }

    /// The serde round trip a worker makes, without the registry: the
    /// type is known here.
    fn spawn(&self) -> Result<Self> {
        registry::decode(&state(self)?)
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

    fn spawn(&self) -> Result<Self> {
        Product::new(self.first().spawn()?, self.second().spawn()?)
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

    fn spawn(&self) -> Result<Self> {
        Ok(AutoBatched::with_options(
            self.inner().spawn()?,
            self.options().clone(),
        ))
    }
}

/// A shared potential travels as the potential it shares: each worker
/// rebuilds its own `P`. So a program can keep the plain potential and
/// send it to workers too (`shared.clone().to_multiprocess(n)`).
impl<P: Spawnable> Spawnable for Arc<P> {
    fn recipe(&self) -> Result<Recipe> {
        (**self).recipe()
    }

    /// A new `Arc` of a fresh `P`: the spawn shares nothing with `self`.
    fn spawn(&self) -> Result<Self> {
        (**self).spawn().map(Arc::new)
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
    use crate::checks::assert_respawns;
    use crate::checks::block_on;
    use crate::ext::PotentialExt;
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

    fn contexts() -> Vec<Vec<u32>> {
        vec![vec![], vec![1, 2], vec![3]]
    }

    #[test]
    fn recipes_round_trip_through_the_registry() {
        block_on(async {
            assert_respawns(&scaled(2.0), &contexts()).await.unwrap();
            assert!(registered_tags().contains(&Scaled::tag()));
        });
    }

    #[test]
    fn products_rebuild_from_their_parts() {
        block_on(async {
            let product = Product::new(scaled(1.0), scaled(-3.0)).unwrap();
            let rebuilt = assert_respawns(&product, &contexts()).await.unwrap();
            assert_eq!(rebuilt.complete(&[1, 2]).await.unwrap(), 3.0 - 9.0);
        });
    }

    #[test]
    fn a_shared_potential_travels_as_what_it_shares() {
        block_on(async {
            let shared = Arc::new(scaled(2.0));
            assert_eq!(shared.recipe().unwrap(), scaled(2.0).recipe().unwrap());
            assert_respawns(&shared, &contexts()).await.unwrap();
        });
    }

    #[test]
    fn every_wrapper_spawns_a_typed_fresh_copy() {
        block_on(async {
            let fast = Product::new(Arc::new(scaled(1.0)), scaled(2.0))
                .unwrap()
                .to_autobatched();
            // The spawn's type is the original's: no downcast, and the
            // wrapper's own methods are there.
            let other: AutoBatched<Product<Arc<Scaled>, Scaled>> = fast.spawn().unwrap();
            assert_eq!(other.complete(&[1, 2]).await.unwrap(), 9.0);
            assert_eq!(other.inner().second().scale, 2.0);
            assert_eq!((other.stats().requests, fast.stats().requests), (1, 0));
            assert!(
                format!("{other:?}").starts_with("AutoBatched("),
                "{other:?}"
            );
            other.shutdown().await;
            assert!(other.is_shut_down() && !fast.is_shut_down());
            // Its parts are copies, not shares.
            assert!(!Arc::ptr_eq(fast.inner().first(), other.inner().first()));
        });
    }

    #[test]
    fn a_recipe_that_rebuilds_something_else_fails_the_respawn_check() {
        /// Scaled whose recipe is another potential's.
        struct Liar(Scaled);
        impl Potential for Liar {
            type Token = u32;
            fn vocab(&self) -> &Vocab<u32> {
                self.0.vocab()
            }
            async fn complete(&self, c: &[u32]) -> Result<f64> {
                self.0.complete(c).await
            }
            async fn prefix(&self, c: &[u32]) -> Result<f64> {
                self.0.prefix(c).await
            }
        }
        impl Spawnable for Liar {
            fn recipe(&self) -> Result<Recipe> {
                scaled(self.0.scale + 1.0).recipe()
            }
            fn spawn(&self) -> Result<Self> {
                self.0.spawn().map(Liar)
            }
        }
        block_on(async {
            let err = assert_respawns(&Liar(scaled(2.0)), &contexts())
                .await
                .map(drop)
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("context [1, 2] item \"complete\": expected 6, actual 9"),
                "{err}"
            );
            let unlisted = Unlisted(Vocab::new([1]).unwrap());
            let err = assert_respawns(&unlisted, &[]).await.map(drop).unwrap_err();
            assert!(err.to_string().contains("register!"), "{err}");
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
