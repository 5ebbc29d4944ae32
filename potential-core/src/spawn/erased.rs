//! A potential rebuilt from a recipe, its token type erased: what a worker
//! holds before it knows the token type.

use std::any::{Any, type_name};
use std::fmt;
use std::sync::Arc;

use crate::autobatch::{AutoBatchOptions, AutoBatched};
use crate::dyn_potential::DynPotential;
use crate::error::{PotentialError, Result};
use crate::ops::Product;
use crate::potential::Potential;
use crate::vocab::TokenType;
use crate::wire::{self, ServePotential};

/// A potential rebuilt from a recipe, with its token type erased, as a
/// worker holds it before it knows the token type.
pub struct Built(Box<dyn Erased>);

/// What can be done with a rebuilt potential without naming its token type;
/// implemented once, by [`Typed`], where the token type is known (at the
/// leaf's registration), so the compiler writes the table.
trait Erased: Send + Sync {
    fn token_type(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn product(&self, second: Built) -> Result<Built>;
    fn autobatch(&self, options: AutoBatchOptions) -> Built;
    fn server(&self) -> Arc<dyn ServePotential>;
}

struct Typed<T: TokenType> {
    potential: Arc<dyn DynPotential<T>>,
    /// The server of a registered type, made where the type is known
    /// (see [`Built::leaf`]); `None` for a product or a wrapper, whose
    /// server is made over the erased potential.
    server: Option<Arc<dyn ServePotential>>,
}

impl<T: TokenType> Erased for Typed<T> {
    fn token_type(&self) -> &'static str {
        type_name::<T>()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn product(&self, second: Built) -> Result<Built> {
        let second = second.expect_tokens::<T>("a product needs one token type")?;
        let product = Product::new(self.potential.clone(), second)?;
        Ok(Built::new(Arc::new(product) as Arc<dyn DynPotential<T>>))
    }

    fn autobatch(&self, options: AutoBatchOptions) -> Built {
        let wrapper = AutoBatched::with_options(self.potential.clone(), options);
        Built::new(Arc::new(wrapper) as Arc<dyn DynPotential<T>>)
    }

    fn server(&self) -> Arc<dyn ServePotential> {
        match &self.server {
            Some(server) => server.clone(),
            None => Arc::new(wire::Server::new(self.potential.clone())),
        }
    }
}

impl Built {
    /// Erases the token type of a potential.
    pub fn new<T: TokenType>(potential: Arc<dyn DynPotential<T>>) -> Self {
        Built(Box::new(Typed {
            potential,
            server: None,
        }))
    }

    /// Erases the token type of a potential whose type is known here (a
    /// registered type rebuilt from its state): its server awaits the
    /// potential's own methods, so that a call served costs one boxed
    /// future, not two (callgrind, a worker's trivial call: 1,450
    /// instructions, 1,200 this way).
    pub(crate) fn leaf<P: Potential + 'static>(potential: Arc<P>) -> Self {
        Built(Box::new(Typed {
            potential: potential.clone(),
            server: Some(Arc::new(wire::Server::new(potential))),
        }))
    }

    /// The name of the token type.
    pub fn token_type(&self) -> &'static str {
        self.0.token_type()
    }

    /// The potential, when its tokens are of type `T`; `self` back otherwise.
    pub fn downcast<T: TokenType>(self) -> std::result::Result<Arc<dyn DynPotential<T>>, Self> {
        match self.0.as_any().downcast_ref::<Typed<T>>() {
            Some(typed) => Ok(typed.potential.clone()),
            None => Err(self),
        }
    }

    /// The potential over `T`, or an error that says `what` and names both
    /// token types.
    pub(crate) fn expect_tokens<T: TokenType>(
        self,
        what: &str,
    ) -> Result<Arc<dyn DynPotential<T>>> {
        self.downcast::<T>().map_err(|other| {
            PotentialError::InvalidInput(format!(
                "{what}: a potential over {} where one over {} was expected",
                other.token_type(),
                type_name::<T>()
            ))
        })
    }

    /// The product of this potential and `second`, over the same tokens.
    pub(super) fn product(self, second: Built) -> Result<Built> {
        self.0.product(second)
    }

    /// A fresh autobatching wrapper over this potential.
    pub(super) fn autobatch(self, options: AutoBatchOptions) -> Built {
        self.0.autobatch(options)
    }

    /// The potential as a worker serves it: it answers encoded calls
    /// ([`wire`]) whatever its token type.
    pub fn into_server(self) -> Result<Arc<dyn ServePotential>> {
        Ok(self.0.server())
    }
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Built(tokens of type {})", self.token_type())
    }
}
