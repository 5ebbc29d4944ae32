//! What a run gives back: the particles and the estimates.

/// One particle at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<T> {
    /// The tokens it took.
    pub tokens: Vec<T>,
    /// Its log importance weight.
    pub log_weight: f64,
    /// Whether it ended with EOS (rather than running out of tokens or weight).
    pub finished: bool,
}

/// The particles of a run and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// The particles, in order.
    pub samples: Vec<Sample<T>>,
    /// The `logw_next` calls made.
    pub calls: usize,
    /// How many times the population was resampled.
    pub resamples: usize,
    /// The estimate of the log marginal likelihood (the log of the mean
    /// weight): the log of the total weight of the texts the potential
    /// allows, `-inf` when every particle died.
    pub log_ml: f64,
}

impl<T> Run<T> {
    /// The particles' normalized posterior probabilities (the weights over
    /// their sum), in order; all zero when every particle died.
    pub fn posterior(&self) -> Vec<f64> {
        let w: Vec<f64> = self.samples.iter().map(|s| s.log_weight).collect();
        let max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return vec![0.0; w.len()];
        }
        let linear: Vec<f64> = w.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = linear.iter().sum();
        linear.into_iter().map(|x| x / sum).collect()
    }
}
