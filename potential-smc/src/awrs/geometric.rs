//! Geometric AWRS: sampling with replacement simulated by sampling without
//! replacement, with the negative binomial estimate of the accepted mass.

use potential_core::{Potential, Result};

use super::check::Checker;
use super::order::GumbelOrder;
use crate::Stream;

/// Draws indices from `logps` (normalized log probabilities, at least one
/// finite) until the constraint has accepted `max_accepts` of them (with
/// replacement: an accepted index may come again), exactly as
/// genlm-control's `geometric_awrs`.
///
/// A rejected index is removed, and the draws of it that sampling with
/// replacement would have made are counted instead of made: before each
/// new index, a geometric number of such phantom rejections. With `r`
/// rejections and `a` acceptances, `min(max_accepts - 1, a) / (a + r - 1)`
/// is an unbiased estimate of the accepted mass (Rao-Blackwellized from
/// "was the first draw accepted"). Returns the first accepted index and
/// the log of the estimate (`-inf`, with a rejected index, when nothing
/// was accepted).
pub(super) async fn geometric_awrs<C: Potential>(
    logps: &[f64],
    checker: &mut Checker<'_, C>,
    stream: &mut Stream,
    max_rejects: usize,
    max_accepts: usize,
) -> Result<(usize, f64)> {
    let mut logps = logps.to_vec();
    let (mut accepts, mut rejects, mut rejected_mass) = (0usize, 0usize, 0.0f64);
    let (mut result, mut rejected) = (None, None);
    for _ in 0..max_accepts {
        if rejects >= max_rejects {
            break;
        }
        let mut order = GumbelOrder::new(&logps, stream);
        while let Some(item) = order.next() {
            if rejected_mass >= 1.0 {
                // Rounding has made the rejected mass all of it: the
                // estimate would be vanishingly small, and the phantom
                // rejections beyond any limit.
                return Ok((rejected.unwrap_or(item), f64::NEG_INFINITY));
            }
            if rejected_mass > 0.0 {
                rejects = rejects.saturating_add(phantoms(rejected_mass, stream));
            }
            if rejects >= max_rejects {
                break;
            }
            let ahead = order.peek(checker.ahead());
            if checker.accept(item, ahead).await? {
                accepts += 1;
                result.get_or_insert(item);
                break;
            }
            rejected.get_or_insert(item);
            rejects += 1;
            rejected_mass += logps[item].exp();
            logps[item] = f64::NEG_INFINITY;
        }
    }
    let Some(result) = result else {
        return Ok((rejected.unwrap_or(0), f64::NEG_INFINITY));
    };
    // Phantom rejections can overshoot the limit.
    let rejects = rejects.min(max_rejects);
    // At least 1: with max_accepts and max_rejects at least 2 (checked
    // when the sampler is built), one acceptance ends the loop early only
    // after max_rejects rejections.
    let trials = (accepts + rejects - 1).max(1);
    let estimate = (max_accepts - 1).min(accepts) as f64 / trials as f64;
    Ok((result, estimate.ln()))
}

/// The number of failures before the first success of trials that
/// succeed with probability `1 - rejected_mass`: the draws of already
/// rejected indices that sampling with replacement would have made.
fn phantoms(rejected_mass: f64, stream: &mut Stream) -> usize {
    // P(count >= k) = rejected_mass^k; the cast saturates.
    (stream.open_uniform().ln() / rejected_mass.ln()).floor() as usize
}
