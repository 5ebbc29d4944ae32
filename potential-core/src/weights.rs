//! Log weights over a vocabulary plus EOS (genlm's `LazyWeights`).

use std::fmt::Debug;

use crate::error::{PotentialError, Result};
use crate::vocab::{Symbol, TokenType, Vocab};

/// Log-sum-exp of a slice, stable with `-inf` entries: all `-inf` (or an
/// empty slice) gives `-inf`, and a `+inf` entry gives `+inf`.
///
/// ```
/// use potential_core::logsumexp;
/// assert_eq!(logsumexp(&[f64::NEG_INFINITY, 0.0]), 0.0);
/// assert_eq!(logsumexp(&[f64::NEG_INFINITY; 3]), f64::NEG_INFINITY);
/// assert!((logsumexp(&[0.0, 0.0]) - 2f64.ln()).abs() < 1e-12);
/// ```
pub fn logsumexp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    // Zero weights are common (a constraint masks most tokens): skip their `exp`.
    let sum: f64 = values
        .iter()
        .filter(|v| **v != f64::NEG_INFINITY)
        .map(|v| (v - max).exp())
        .sum();
    max + sum.ln()
}

/// Next-token log weights: one `f64` per vocabulary token plus one for EOS,
/// stored contiguously in vocabulary order with EOS last.
///
/// Indexing by a token outside the vocabulary gives `-inf` (weight zero).
///
/// ```
/// use potential_core::{LogWeights, Symbol, Vocab};
///
/// let vocab = Vocab::new(vec!['a', 'b'])?;
/// let w = LogWeights::new(vocab, vec![0.0, -1.0, f64::NEG_INFINITY])?;
/// assert_eq!(w.get(&'a'), 0.0);
/// assert_eq!(w.get(&'z'), f64::NEG_INFINITY);
/// assert_eq!(w.eos(), f64::NEG_INFINITY);
/// let top = w.top_k(1);
/// assert_eq!(top[0].0, Symbol::Token(&'a'));
/// let probs = w.normalize().exp();
/// assert!((probs.sum() - 1.0).abs() < 1e-12);
/// # Ok::<(), potential_core::PotentialError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct LogWeights<T> {
    vocab: Vocab<T>,
    values: Vec<f64>,
}

/// Weights in linear space, as [`LogWeights::exp`] gives them.
#[derive(Clone, PartialEq)]
pub struct Weights<T> {
    vocab: Vocab<T>,
    values: Vec<f64>,
}

fn check_len<T>(vocab: &Vocab<T>, values: &[f64]) -> Result<()> {
    if values.len() == vocab.len() + 1 {
        Ok(())
    } else {
        Err(PotentialError::InvalidInput(format!(
            "{} weights for a vocabulary of {} tokens plus EOS",
            values.len(),
            vocab.len()
        )))
    }
}

/// Items of a weight vector in descending order of weight, ties by position.
fn top_k<'a, T>(vocab: &'a Vocab<T>, values: &[f64], k: usize) -> Vec<(Symbol<&'a T>, f64)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let by_weight = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    let k = k.min(order.len());
    if k < order.len() {
        order.select_nth_unstable_by(k, by_weight);
        order.truncate(k);
    }
    order.sort_by(by_weight);
    order
        .into_iter()
        .filter_map(|i| vocab.symbol(i).map(|s| (s, values[i])))
        .collect()
}

macro_rules! weight_vector_common {
    ($ty:ident, $zero:expr) => {
        impl<T: TokenType> $ty<T> {
            /// Wraps a vector of `vocab.len() + 1` values (EOS last); any other length is an error.
            pub fn new(vocab: Vocab<T>, values: Vec<f64>) -> Result<Self> {
                check_len(&vocab, &values)?;
                Ok($ty { vocab, values })
            }

            /// The value of a token; a token outside the vocabulary has weight zero.
            pub fn get(&self, token: &T) -> f64 {
                self.vocab.index_of(token).map_or($zero, |i| self.values[i])
            }

            /// The value of a token or of EOS.
            pub fn get_symbol(&self, symbol: Symbol<&T>) -> f64 {
                match symbol {
                    Symbol::Token(t) => self.get(t),
                    Symbol::Eos => self.eos(),
                }
            }
        }

        impl<T> $ty<T> {
            /// The value of EOS.
            pub fn eos(&self) -> f64 {
                self.values[self.vocab.len()]
            }

            /// The vocabulary the values are indexed by.
            pub fn vocab(&self) -> &Vocab<T> {
                &self.vocab
            }

            /// The values in vocabulary order, EOS last.
            pub fn as_slice(&self) -> &[f64] {
                &self.values
            }

            /// Gives the values back, EOS last.
            pub fn into_vec(self) -> Vec<f64> {
                self.values
            }

            /// Each symbol with its value, EOS last.
            pub fn iter(&self) -> impl Iterator<Item = (Symbol<&T>, f64)> + '_ {
                self.vocab.symbols().zip(self.values.iter().copied())
            }

            /// The `k` heaviest symbols in descending order (ties in vocabulary order).
            pub fn top_k(&self, k: usize) -> Vec<(Symbol<&T>, f64)> {
                top_k(&self.vocab, &self.values, k)
            }
        }

        impl<T> Debug for $ty<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let top = top_k(&self.vocab, &self.values, 5);
                let top: Vec<_> = top
                    .into_iter()
                    .map(|(s, v)| (self.vocab.show_symbol(s), v))
                    .collect();
                f.debug_struct(stringify!($ty))
                    .field("len", &self.values.len())
                    .field("top", &top)
                    .finish()
            }
        }
    };
}

weight_vector_common!(LogWeights, f64::NEG_INFINITY);
weight_vector_common!(Weights, 0.0);

impl<T> LogWeights<T> {
    /// Builds weights from values already checked to have the right length.
    pub(crate) fn from_parts(vocab: Vocab<T>, values: Vec<f64>) -> Self {
        debug_assert_eq!(values.len(), vocab.len() + 1);
        LogWeights { vocab, values }
    }

    /// The log of the total weight (log-sum-exp), `-inf` when all are zero.
    pub fn logsumexp(&self) -> f64 {
        logsumexp(&self.values)
    }

    /// The log of the total weight; the same as [`LogWeights::logsumexp`].
    pub fn sum(&self) -> f64 {
        self.logsumexp()
    }

    /// Subtracts the log total so that the weights sum to one. All-zero
    /// weights stay all `-inf` rather than becoming NaN.
    pub fn normalize(&self) -> Self {
        let total = self.logsumexp();
        let values = if total == f64::NEG_INFINITY {
            self.values.clone()
        } else {
            self.values.iter().map(|v| v - total).collect()
        };
        LogWeights {
            vocab: self.vocab.clone(),
            values,
        }
    }

    /// Into linear space.
    pub fn exp(&self) -> Weights<T> {
        Weights {
            vocab: self.vocab.clone(),
            values: self.values.iter().map(|v| v.exp()).collect(),
        }
    }
}

impl<T> Weights<T> {
    /// The total weight.
    pub fn sum(&self) -> f64 {
        self.values.iter().sum()
    }

    /// Divides by the total so that the weights sum to one; all-zero weights stay zero.
    pub fn normalize(&self) -> Self {
        let total = self.sum();
        let values = if total == 0.0 {
            self.values.clone()
        } else {
            self.values.iter().map(|v| v / total).collect()
        };
        Weights {
            vocab: self.vocab.clone(),
            values,
        }
    }

    /// Into log space.
    pub fn log(&self) -> LogWeights<T> {
        LogWeights {
            vocab: self.vocab.clone(),
            values: self.values.iter().map(|v| v.ln()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f64 = f64::NEG_INFINITY;

    fn abc() -> Vocab<char> {
        Vocab::new(vec!['a', 'b', 'c']).unwrap()
    }

    #[test]
    fn index_by_token_and_eos() {
        let w = LogWeights::new(abc(), vec![-1.0, -2.0, -3.0, -4.0]).unwrap();
        assert_eq!(w.get(&'b'), -2.0);
        assert_eq!(w.get(&'q'), NEG);
        assert_eq!(w.eos(), -4.0);
        assert_eq!(w.get_symbol(Symbol::Eos), -4.0);
        let seen: Vec<_> = w.iter().map(|(s, v)| (s.cloned(), v)).collect();
        assert_eq!(seen.last(), Some(&(Symbol::Eos, -4.0)));
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert!(matches!(
            LogWeights::new(abc(), vec![0.0; 3]),
            Err(PotentialError::InvalidInput(_))
        ));
    }

    #[test]
    fn logsumexp_is_stable() {
        assert_eq!(logsumexp(&[]), NEG);
        assert_eq!(logsumexp(&[NEG, NEG]), NEG);
        assert_eq!(logsumexp(&[NEG, -3.0]), -3.0);
        let big = logsumexp(&[1000.0, 1000.0]);
        assert!((big - (1000.0 + 2f64.ln())).abs() < 1e-9);
        assert_eq!(logsumexp(&[f64::INFINITY, 0.0]), f64::INFINITY);
    }

    #[test]
    fn normalize_exp_log_round_trip() {
        let w = LogWeights::new(abc(), vec![0.0, 0.0, NEG, 0.0]).unwrap();
        let n = w.normalize();
        assert!((n.logsumexp()).abs() < 1e-12);
        let p = n.exp();
        assert!((p.sum() - 1.0).abs() < 1e-12);
        assert_eq!(p.get(&'c'), 0.0);
        let back = p.log();
        for (a, b) in back.as_slice().iter().zip(n.as_slice()) {
            assert!(a == b || (a - b).abs() < 1e-12);
        }
        let zero = LogWeights::new(abc(), vec![NEG; 4]).unwrap();
        assert!(zero.normalize().as_slice().iter().all(|v| *v == NEG));
        assert_eq!(zero.exp().normalize().sum(), 0.0);
        let lin = Weights::new(abc(), vec![1.0, 1.0, 2.0, 0.0]).unwrap();
        assert_eq!(lin.normalize().get(&'c'), 0.5);
    }

    #[test]
    fn top_k_descending_with_eos() {
        let w = LogWeights::new(abc(), vec![-3.0, -1.0, -1.0, 0.0]).unwrap();
        let top = w.top_k(3);
        assert_eq!(
            top,
            vec![
                (Symbol::Eos, 0.0),
                (Symbol::Token(&'b'), -1.0),
                (Symbol::Token(&'c'), -1.0)
            ]
        );
        assert_eq!(w.top_k(10).len(), 4);
        assert!(w.top_k(0).is_empty());
    }
}
