//! Calibrated busy work: a deterministic amount of floating-point work
//! that stands in for an expensive computation (a potential that costs
//! about a millisecond a call) in the bench rows and the examples.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// `iters` rounds of floating-point work that the compiler cannot skip.
pub fn spin(iters: u64) -> f64 {
    let mut x = 1.0f64;
    for i in 0..iters {
        x = (x * 1.000_000_1 + (i & 7) as f64).sqrt();
    }
    black_box(x)
}

/// The rounds of [`spin`] that take about `target` on this machine now.
/// Measured once, the count is then fixed: the work stays the same
/// wherever it runs (in this process or in a worker).
pub fn calibrate(target: Duration) -> u64 {
    let mut iters = 1_000u64;
    loop {
        let t = Instant::now();
        spin(iters);
        let took = t.elapsed();
        if took >= target / 4 {
            let per_iter = took.as_secs_f64() / iters as f64;
            return (target.as_secs_f64() / per_iter) as u64;
        }
        iters *= 4;
    }
}
