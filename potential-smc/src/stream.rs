//! The particles' random streams.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// A seeded random stream: one for each particle, one more for resampling.
///
/// Each particle draws only from its own stream, so a run depends on the
/// seed and on the potentials' answers, never on the order in which
/// concurrent calls complete. ChaCha's stream id keeps the streams of one
/// seed independent.
///
/// ```
/// use potential_smc::Stream;
///
/// let (mut a, mut b) = (Stream::new(7, 0), Stream::new(7, 0));
/// assert_eq!(a.uniform(), b.uniform());
/// assert_ne!(Stream::new(7, 1).uniform(), Stream::new(7, 0).uniform());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// The stream numbered `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Stream(rng)
    }

    /// A uniform float in `[0, 1)` from 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in the open interval `(0, 1)`: safe to take the
    /// logarithm of, and of one minus it.
    pub fn open_uniform(&mut self) -> f64 {
        ((self.0.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}
