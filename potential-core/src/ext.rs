//! Methods that every potential gets.

use crate::autobatch::{AutoBatchOptions, AutoBatched};
use crate::error::Result;
use crate::ops::{Coerce, CoerceOptions, Product, SameTokens};
use crate::potential::Potential;
use crate::vocab::{TokenType, Vocab};

/// Conveniences for every [`Potential`]: bring the trait into scope
/// (`use potential_core::PotentialExt;`) and call them on any potential.
///
/// Every method takes the potential by value: the wrapper or operator owns
/// what it wraps, as iterator adaptors do, and so does
/// `potential_runtime::MultiprocessExt::to_multiprocess`. To keep using the
/// plain potential beside its wrapper (to compare them, as genlm-control's
/// tests do), share it: `Arc<P>` is a potential, and a spawnable one when
/// `P` is.
///
/// ```
/// use std::sync::Arc;
/// use potential_core::{AutoBatchOptions, Potential, PotentialError, PotentialExt, Vocab};
///
/// struct Zero(Vocab<u8>);
/// impl Potential for Zero {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.0 }
///     async fn complete(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
///     async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> { Ok(0.0) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let options = AutoBatchOptions { max_batch_size: 16, ..AutoBatchOptions::default() };
/// let p = Arc::new(Zero(Vocab::new([1, 2])?));
/// let fast = p.clone().to_autobatched_with(options);
/// assert_eq!(fast.options().max_batch_size, 16);
/// assert_eq!(fast.complete(&[1]).await?, p.complete(&[1]).await?);
///
/// // Operators chain left to right.
/// let both = Zero(Vocab::new([1, 2, 3])?)
///     .product(Zero(Vocab::new([2, 3])?))?
///     .product(p)?;
/// assert_eq!(both.vocab().tokens(), [2]);
/// let shifted = both.coerce(Vocab::new([12, 13])?, |c: &[u8]| c.iter().map(|t| t - 10).collect())?;
/// assert_eq!(shifted.vocab().tokens(), [12]); // 13 maps to 3, which `both` lacks
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
///
/// There is no `*` operator for products: it could not be implemented for
/// your own potential types (the orphan rule), and a product can fail
/// (vocabularies with no token in common), which `*` could only report by
/// panicking or by a `Result` that chains no better than
/// [`product`](Self::product).
pub trait PotentialExt: Potential {
    /// Wraps the potential so that concurrent single calls are served by
    /// batch calls (see [`crate::autobatch`]), with the default options.
    ///
    /// Make one wrapper and share it (`&` or `Arc`) among the callers whose
    /// calls should be batched together: each wrapper has its own batching
    /// loop, and calls to different wrappers never meet in a batch.
    fn to_autobatched(self) -> AutoBatched<Self>
    where
        Self: Sized + 'static,
    {
        AutoBatched::new(self)
    }

    /// [`to_autobatched`](Self::to_autobatched) with other options.
    fn to_autobatched_with(self, options: AutoBatchOptions) -> AutoBatched<Self>
    where
        Self: Sized + 'static,
    {
        AutoBatched::with_options(self, options)
    }

    /// The product of this potential and `other` ([`Product::new`]):
    /// `a.product(b)?.product(c)?` reads in the order the factors apply.
    fn product<B>(self, other: B) -> Result<Product<Self, B>>
    where
        Self: Sized,
        B: SameTokens<Self::Token>,
    {
        Product::new(self, other)
    }

    /// This potential seen over the `target` vocabulary through `map`
    /// ([`Coerce::new`] with the default options: target tokens whose image
    /// leaves this potential's vocabulary are dropped).
    fn coerce<T, F>(self, target: Vocab<T>, map: F) -> Result<Coerce<Self, T, F>>
    where
        Self: Sized,
        T: TokenType,
        F: Fn(&[T]) -> Vec<Self::Token> + Send + Sync,
    {
        Coerce::new(self, target, map, CoerceOptions::default())
    }

    /// [`coerce`](Self::coerce) with other options.
    fn coerce_with<T, F>(
        self,
        target: Vocab<T>,
        map: F,
        options: CoerceOptions,
    ) -> Result<Coerce<Self, T, F>>
    where
        Self: Sized,
        T: TokenType,
        F: Fn(&[T]) -> Vec<Self::Token> + Send + Sync,
    {
        Coerce::new(self, target, map, options)
    }
}

impl<P: Potential + ?Sized> PotentialExt for P {}
