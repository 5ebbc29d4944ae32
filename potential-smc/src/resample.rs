//! Resampling: the effective sample size of a population of log weights,
//! and the two ways to draw ancestors in proportion to the weights.

use potential_core::{PotentialError, Result};

use crate::Stream;

/// How ancestors are drawn when the population is resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resampling {
    /// One uniform draw, `N` evenly spaced points (lower variance; the
    /// default, as in genlm-control's SMC).
    #[default]
    Systematic,
    /// `N` independent draws.
    Multinomial,
}

/// The effective sample size of log weights, `(Σw)² / Σw²`: `N` when the
/// weights are equal, 1 when one particle holds all the weight, 0 when
/// every weight is zero.
pub fn effective_sample_size(log_weights: &[f64]) -> f64 {
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return 0.0;
    }
    // Scaled by exp(-max), which cancels in the ratio and keeps it finite.
    let (sum, sum_sq) = log_weights.iter().fold((0.0, 0.0), |(s, q), w| {
        let x = (w - max).exp();
        (s + x, q + x * x)
    });
    sum * sum / sum_sq
}

/// Draws `log_weights.len()` ancestor indices in proportion to the weights,
/// in ascending order. An empty population, or one where every weight is
/// zero, has no ancestors to draw, and a NaN or `+inf` weight is not a
/// weight: [`PotentialError::InvalidInput`].
pub fn ancestors(log_weights: &[f64], how: Resampling, rng: &mut Stream) -> Result<Vec<usize>> {
    let n = log_weights.len();
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let invalid = log_weights
        .iter()
        .any(|w| w.is_nan() || *w == f64::INFINITY);
    if max == f64::NEG_INFINITY || invalid {
        return Err(PotentialError::InvalidInput(
            "resampling needs finite log weights (or -inf), at least one finite".to_string(),
        ));
    }
    let mut cumulative: Vec<f64> = log_weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += (w - max).exp();
            Some(*acc)
        })
        .collect();
    let total = cumulative[n - 1];
    for c in &mut cumulative {
        *c /= total;
    }
    let mut points: Vec<f64> = match how {
        Resampling::Systematic => {
            let u = rng.uniform();
            (0..n).map(|i| (i as f64 + u) / n as f64).collect()
        }
        Resampling::Multinomial => (0..n).map(|_| rng.uniform()).collect(),
    };
    points.sort_by(f64::total_cmp);
    // One merge pass over the sorted points and the cumulative weights.
    let mut out = Vec::with_capacity(n);
    let mut j = 0;
    for p in points {
        // A particle of weight zero never has cumulative > its predecessor's,
        // so it is skipped; rounding can leave the last sum a hair under 1.
        while j < n - 1 && cumulative[j] <= p {
            j += 1;
        }
        while log_weights[j] == f64::NEG_INFINITY {
            j -= 1;
        }
        out.push(j);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_sample_size_of_equal_one_hot_and_dead_populations() {
        assert!((effective_sample_size(&[-3.0; 8]) - 8.0).abs() < 1e-12);
        let one = [0.0, f64::NEG_INFINITY, f64::NEG_INFINITY];
        assert!((effective_sample_size(&one) - 1.0).abs() < 1e-12);
        assert_eq!(effective_sample_size(&[f64::NEG_INFINITY; 3]), 0.0);
        // Huge log weights do not overflow.
        assert!((effective_sample_size(&[1e6, 1e6]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn ancestors_follow_the_weights_and_skip_dead_particles() {
        let mut rng = Stream::new(5, 0);
        let w = [0.5f64.ln(), f64::NEG_INFINITY, 0.25f64.ln(), 0.25f64.ln()];
        for how in [Resampling::Systematic, Resampling::Multinomial] {
            let mut counts = [0usize; 4];
            for _ in 0..2000 {
                for a in ancestors(&w, how, &mut rng).unwrap() {
                    counts[a] += 1;
                }
            }
            let total = 8000.0;
            assert_eq!(counts[1], 0, "{how:?}");
            assert!(
                (counts[0] as f64 / total - 0.5).abs() < 0.03,
                "{how:?} {counts:?}"
            );
            assert!(
                (counts[2] as f64 / total - 0.25).abs() < 0.03,
                "{how:?} {counts:?}"
            );
        }
        // Systematic resampling gives each particle its expected count, ±1.
        let a = ancestors(&w, Resampling::Systematic, &mut rng).unwrap();
        assert_eq!(a.iter().filter(|&&i| i == 0).count(), 2);
    }

    #[test]
    fn a_lone_finite_weight_takes_every_slot() {
        let mut rng = Stream::new(1, 0);
        let w = [f64::NEG_INFINITY, f64::NEG_INFINITY, 2.0];
        for how in [Resampling::Systematic, Resampling::Multinomial] {
            assert_eq!(ancestors(&w, how, &mut rng).unwrap(), vec![2, 2, 2]);
        }
    }

    #[test]
    fn a_population_without_weight_has_no_ancestors() {
        let mut rng = Stream::new(1, 0);
        for w in [
            &[][..],
            &[f64::NEG_INFINITY; 2][..],
            &[0.0, f64::NAN][..],
            &[f64::INFINITY][..],
        ] {
            let err = ancestors(w, Resampling::Systematic, &mut rng).unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{w:?}");
        }
    }
}
