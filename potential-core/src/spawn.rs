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

pub mod wire;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dyn_potential::DynPotential;
use crate::error::{PotentialError, Result};
use crate::ops::Product;
use crate::potential::Potential;
use crate::vocab::TokenType;

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
        options: crate::autobatch::AutoBatchOptions,
    },
}

impl Recipe {
    /// Rebuilds the potential: finds each leaf's type in the registry and
    /// deserializes it, then applies the wrappers.
    pub fn build(&self) -> Result<Built> {
        match self {
            Recipe::Registered { tag, state } => (lookup(tag)?.build)(state),
            Recipe::Product(first, second) => {
                let (first, second) = (first.build()?, second.build()?);
                (first.ops.product)(first, second)
            }
            Recipe::AutoBatched { inner, options } => {
                let inner = inner.build()?;
                (inner.ops.autobatch)(inner, options.clone())
            }
        }
    }
}

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

fn lookup(tag: &str) -> Result<&'static Registration> {
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

/// A potential rebuilt from a recipe, with its token type erased, as a
/// worker holds it before it knows the token type.
pub struct Built {
    potential: Box<dyn Any + Send + Sync>,
    ops: TokenOps,
}

/// The operations a worker applies to rebuilt potentials; each is
/// monomorphized for the token type when the leaf's registration is built.
#[derive(Clone, Copy)]
struct TokenOps {
    token_type: fn() -> &'static str,
    product: fn(Built, Built) -> Result<Built>,
    autobatch: fn(Built, crate::autobatch::AutoBatchOptions) -> Result<Built>,
    serve: fn(Built) -> Result<Arc<dyn wire::ServePotential>>,
}

impl Built {
    /// Erases the token type of a potential.
    pub fn new<T: TokenType>(potential: Arc<dyn DynPotential<T>>) -> Self {
        Built {
            potential: Box::new(potential),
            ops: TokenOps {
                token_type: std::any::type_name::<T>,
                product: product_of::<T>,
                autobatch: crate::autobatch::autobatch_built::<T>,
                serve: serve_of::<T>,
            },
        }
    }

    /// The name of the token type.
    pub fn token_type(&self) -> &'static str {
        (self.ops.token_type)()
    }

    /// The potential, when its tokens are of type `T`; `self` back otherwise.
    pub fn downcast<T: TokenType>(self) -> std::result::Result<Arc<dyn DynPotential<T>>, Self> {
        match self.potential.downcast::<Arc<dyn DynPotential<T>>>() {
            Ok(p) => Ok(*p),
            Err(potential) => Err(Built {
                potential,
                ops: self.ops,
            }),
        }
    }
}

impl Built {
    /// The potential as a worker serves it: it answers encoded calls
    /// ([`wire`]) whatever its token type.
    pub fn into_server(self) -> Result<Arc<dyn wire::ServePotential>> {
        (self.ops.serve)(self)
    }
}

fn serve_of<T: TokenType>(built: Built) -> Result<Arc<dyn wire::ServePotential>> {
    let potential = built.downcast::<T>().map_err(|b| {
        PotentialError::InvalidInput(format!("cannot serve tokens of type {}", b.token_type()))
    })?;
    Ok(Arc::new(wire::Server::new(potential)))
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Built(tokens of type {})", self.token_type())
    }
}

fn product_of<T: TokenType>(first: Built, second: Built) -> Result<Built> {
    let mismatch = |b: &Built| {
        PotentialError::InvalidInput(format!(
            "a product needs one token type, got {} and {}",
            std::any::type_name::<T>(),
            b.token_type()
        ))
    };
    let first = first.downcast::<T>().map_err(|b| mismatch(&b))?;
    let second = second.downcast::<T>().map_err(|b| mismatch(&b))?;
    let product = Product::new(first, second)?;
    Ok(Built::new(Arc::new(product) as Arc<dyn DynPotential<T>>))
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
