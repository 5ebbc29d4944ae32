//! The sampler's settings.

use potential_core::{PotentialError, Result};

use crate::Resampling;

/// What to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerOptions {
    /// The number of particles.
    pub particles: usize,
    /// The most tokens a particle may take (EOS not counted).
    pub max_tokens: usize,
    /// The seed of the particles' random streams.
    pub seed: u64,
    /// The live particles are stepped in this many groups, concurrently
    /// (at least 1): while one group draws its next tokens, the potential
    /// can already answer another, so the sampler's own work and the
    /// potential's overlap. One group steps all particles as one.
    pub groups: usize,
    /// Resample when the effective sample size falls under this fraction
    /// of the particles (genlm's default: 0.5); 0 never resamples.
    pub ess_threshold: f64,
    /// How ancestors are drawn.
    pub resampling: Resampling,
}

impl SamplerOptions {
    /// `particles` particles of at most `max_tokens` tokens, seed `seed`,
    /// two groups, resampling systematically under half the particles.
    pub fn new(particles: usize, max_tokens: usize, seed: u64) -> Self {
        SamplerOptions {
            particles,
            max_tokens,
            seed,
            groups: 2,
            ess_threshold: 0.5,
            resampling: Resampling::Systematic,
        }
    }

    /// Checks the options: no particles, no groups, or a threshold outside
    /// [0, 1] are [`PotentialError::InvalidInput`]s.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(PotentialError::InvalidInput(what.to_string()));
        if self.particles == 0 {
            return bad("the sampler needs at least one particle");
        }
        if self.groups == 0 {
            return bad("the sampler needs at least one group of particles");
        }
        if !(0.0..=1.0).contains(&self.ess_threshold) {
            return bad("the resampling threshold is a fraction of the particles, in [0, 1]");
        }
        Ok(())
    }
}
