//! Recursive AWRS: one run of sampling without replacement, with an
//! unbiased estimate of the accepted mass built along the way.

use potential_core::{Potential, Result};

use super::check::Checker;
use super::order::GumbelOrder;
use crate::Stream;

/// Below this, a probability is taken as zero (genlm-control's tolerance):
/// the run stops once the rejected mass is within it of 1, and rounding
/// errors of that size are clamped away.
const TOLERANCE: f64 = 1e-5;

/// Draws an index from `logps` (normalized log probabilities, at least one
/// finite) until the constraint accepts one, removing each rejected index
/// and renormalizing, exactly as genlm-control's `recursive_awrs`.
///
/// The estimate uses `E f(X) = P(X = x) f(x) + (1 - P(X = x)) E(f(X) | X ≠ x)`:
/// each rejection multiplies it by one minus the rejected index's
/// probability among those left; at the first acceptance, a coin flip (is
/// the next index in the order accepted too?) estimates the mass left
/// beyond it. Returns the index and the log of the estimate of the
/// accepted probability mass (`-inf` when nothing was accepted).
pub(super) async fn recursive_awrs<C: Potential>(
    logps: &[f64],
    checker: &mut Checker<'_, C>,
    stream: &mut Stream,
    max_rejects: usize,
) -> Result<(usize, f64)> {
    let mut order = GumbelOrder::new(logps, stream);
    let (mut rejects, mut rejected_mass, mut log_multiplier) = (0usize, 0.0f64, 0.0f64);
    let Some(mut item) = order.next() else {
        // No possible index: the caller never asks, but a dead particle
        // is the answer.
        return Ok((0, f64::NEG_INFINITY));
    };
    loop {
        let next = order.next();
        let last = next.is_none();
        let mut log_q = logps[item] - (-rejected_mass).ln_1p();
        // Rounding: the last index left has all the mass left, and no
        // conditional probability exceeds 1.
        if last {
            log_q = 0.0;
        }
        log_q = log_q.min(0.0);
        log_multiplier = log_multiplier.min(0.0);
        // The indices asked about after this one, in order: the next, then
        // those still in the order (see the checker's lookahead).
        let ahead: Vec<usize> = next
            .into_iter()
            .chain(order.peek(checker.ahead()).iter().copied())
            .collect();
        if checker.accept(item, &ahead).await? {
            if rejects == max_rejects - 1 {
                return Ok((item, log_multiplier));
            }
            let tail = match next {
                None => 0.0,
                Some(next) if checker.accept(next, &ahead[1..]).await? => 0.0,
                Some(_) => log_q,
            };
            return Ok((item, log_multiplier + tail));
        }
        let Some(next) = next.filter(|_| rejects != max_rejects - 1) else {
            // Nothing accepted: the particle dies.
            return Ok((item, f64::NEG_INFINITY));
        };
        rejects += 1;
        rejected_mass += logps[item].exp();
        if rejected_mass >= 1.0 - TOLERANCE {
            // All the mass explored, none of it accepted.
            return Ok((item, f64::NEG_INFINITY));
        }
        log_multiplier += log1mexp(log_q);
        item = next;
    }
}

/// `ln(1 - exp(x))` for `x <= 0`, accurate at both ends.
fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}
