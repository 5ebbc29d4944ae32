//! Methods that every potential gets.

use crate::autobatch::{AutoBatchOptions, AutoBatched};
use crate::potential::Potential;

/// Conveniences for every [`Potential`]: bring the trait into scope
/// (`use potential_core::PotentialExt;`) and call them on any potential.
///
/// ```
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
/// let options = AutoBatchOptions { max_batch_size: 16, ..AutoBatchOptions::default() };
/// let p = Zero(Vocab::new([1, 2])?).to_autobatched_with(options);
/// assert_eq!(format!("{:?}", p.options().max_batch_size), "16");
/// # Ok::<(), PotentialError>(())
/// ```
pub trait PotentialExt: Potential {
    /// Wraps the potential so that concurrent single calls are served by
    /// batch calls (see [`crate::autobatch`]), with the default options.
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
}

impl<P: Potential + ?Sized> PotentialExt for P {}
