//! Log weights over a vocabulary plus EOS (genlm's `LazyWeights`).

use std::fmt::Debug;
use std::sync::OnceLock;

use crate::error::{PotentialError, Result};
use crate::mask::Mask;
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
/// in vocabulary order with EOS last.
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
///
/// # Masks
///
/// The weights of a constraint (a grammar, a regular expression) are all
/// `0` or `-∞`, and are better held as a [`Mask`], one bit per symbol:
/// [`LogWeights::from_mask`] keeps them that way, [`LogWeights::as_mask`]
/// gives the bits back, and a product, the wire to a worker and the
/// samplers read them as bits. Everything else reads them as values: a
/// mask's `f64`s are written the first time [`LogWeights::as_slice`] is
/// called (and kept), so that no one pays for 50,000 of them who does not
/// read them.
///
/// ```
/// use potential_core::{LogWeights, Mask, Vocab};
///
/// let vocab = Vocab::new(vec!['a', 'b', 'c'])?;
/// let mut allowed = Mask::none(4);
/// allowed.insert(1); // 'b'
/// allowed.insert(3); // EOS
/// let w = LogWeights::from_mask(vocab, allowed)?;
/// assert_eq!((w.get(&'a'), w.get(&'b'), w.eos()), (f64::NEG_INFINITY, 0.0, 0.0));
/// assert_eq!(w.logsumexp(), 2f64.ln());
/// assert_eq!(w.as_mask().map(|m| m.count()), Some(2));
/// assert_eq!(w.as_slice(), [f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY, 0.0]);
/// # Ok::<(), potential_core::PotentialError>(())
/// ```
pub struct LogWeights<T> {
    vocab: Vocab<T>,
    values: Values,
}

/// The two forms of [`LogWeights`].
#[derive(Clone)]
enum Values {
    Dense(Vec<f64>),
    /// The bits, and their values once someone asked for the slice.
    Mask(Mask, OnceLock<Vec<f64>>),
}

/// Weights in linear space, as [`LogWeights::exp`] gives them.
#[derive(Clone, PartialEq)]
pub struct Weights<T> {
    vocab: Vocab<T>,
    values: Vec<f64>,
}

fn check_len<T>(vocab: &Vocab<T>, len: usize) -> Result<()> {
    if len == vocab.len() + 1 {
        Ok(())
    } else {
        Err(PotentialError::InvalidInput(format!(
            "{len} weights for a vocabulary of {} tokens plus EOS",
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

/// The `k` heaviest symbols of a mask: its positions, then the others, each
/// in vocabulary order (the order [`top_k`] gives for `0` and `-∞`).
fn top_k_of_mask<'a, T>(vocab: &'a Vocab<T>, mask: &Mask, k: usize) -> Vec<(Symbol<&'a T>, f64)> {
    let allowed = mask.iter().map(|i| (i, 0.0));
    let others = (0..mask.len())
        .filter(|&i| !mask.contains(i))
        .map(|i| (i, f64::NEG_INFINITY));
    allowed
        .chain(others)
        .take(k)
        .filter_map(|(i, v)| vocab.symbol(i).map(|s| (s, v)))
        .collect()
}

/// The `Debug` form of both weight types: the length and the five heaviest.
fn debug_top<T>(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    vocab: &Vocab<T>,
    len: usize,
    top: Vec<(Symbol<&T>, f64)>,
) -> std::fmt::Result {
    let top: Vec<_> = top
        .into_iter()
        .map(|(s, v)| (vocab.show_symbol(s), v))
        .collect();
    f.debug_struct(name)
        .field("len", &len)
        .field("top", &top)
        .finish()
}

impl<T: TokenType> LogWeights<T> {
    /// Wraps a vector of `vocab.len() + 1` values (EOS last); any other length is an error.
    pub fn new(vocab: Vocab<T>, values: Vec<f64>) -> Result<Self> {
        check_len(&vocab, values.len())?;
        Ok(LogWeights {
            vocab,
            values: Values::Dense(values),
        })
    }

    /// Weights of `0` at the mask's positions and `-∞` elsewhere, kept as
    /// bits; a mask of other than `vocab.len() + 1` positions is an error.
    pub fn from_mask(vocab: Vocab<T>, mask: Mask) -> Result<Self> {
        check_len(&vocab, mask.len())?;
        Ok(LogWeights {
            vocab,
            values: Values::Mask(mask, OnceLock::new()),
        })
    }

    /// The value of a token; a token outside the vocabulary has weight zero.
    pub fn get(&self, token: &T) -> f64 {
        self.vocab
            .index_of(token)
            .map_or(f64::NEG_INFINITY, |i| self.at(i))
    }

    /// The value of a token or of EOS.
    pub fn get_symbol(&self, symbol: Symbol<&T>) -> f64 {
        match symbol {
            Symbol::Token(t) => self.get(t),
            Symbol::Eos => self.eos(),
        }
    }
}

impl<T> LogWeights<T> {
    /// Builds weights from values already checked to have the right length.
    pub(crate) fn from_parts(vocab: Vocab<T>, values: Vec<f64>) -> Self {
        debug_assert_eq!(values.len(), vocab.len() + 1);
        LogWeights {
            vocab,
            values: Values::Dense(values),
        }
    }

    /// The value at a position of the vocabulary (EOS at `vocab().len()`);
    /// `-inf` past it. A mask answers from its bits.
    pub fn at(&self, index: usize) -> f64 {
        match &self.values {
            Values::Dense(values) => values.get(index).copied().unwrap_or(f64::NEG_INFINITY),
            Values::Mask(mask, _) => {
                if mask.contains(index) {
                    0.0
                } else {
                    f64::NEG_INFINITY
                }
            }
        }
    }

    /// The value of EOS.
    pub fn eos(&self) -> f64 {
        self.at(self.vocab.len())
    }

    /// The vocabulary the values are indexed by.
    pub fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    /// The number of values: `vocab().len() + 1`.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Dense(values) => values.len(),
            Values::Mask(mask, _) => mask.len(),
        }
    }

    /// Never: there is always a value for EOS.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bits of weights made by [`LogWeights::from_mask`]; `None` for
    /// weights made from values (even if those happen to be all `0` and `-∞`).
    pub fn as_mask(&self) -> Option<&Mask> {
        match &self.values {
            Values::Dense(_) => None,
            Values::Mask(mask, _) => Some(mask),
        }
    }

    /// The values in vocabulary order, EOS last. A mask's are written on
    /// the first call and kept.
    pub fn as_slice(&self) -> &[f64] {
        match &self.values {
            Values::Dense(values) => values,
            Values::Mask(mask, dense) => dense.get_or_init(|| mask.to_values()),
        }
    }

    /// Gives the values back, EOS last.
    pub fn into_vec(self) -> Vec<f64> {
        match self.values {
            Values::Dense(values) => values,
            Values::Mask(mask, dense) => dense.into_inner().unwrap_or_else(|| mask.to_values()),
        }
    }

    /// Each symbol with its value, EOS last.
    pub fn iter(&self) -> impl Iterator<Item = (Symbol<&T>, f64)> + '_ {
        self.vocab
            .symbols()
            .enumerate()
            .map(|(i, s)| (s, self.at(i)))
    }

    /// The `k` heaviest symbols in descending order (ties in vocabulary order).
    pub fn top_k(&self, k: usize) -> Vec<(Symbol<&T>, f64)> {
        match &self.values {
            Values::Dense(values) => top_k(&self.vocab, values, k),
            Values::Mask(mask, _) => top_k_of_mask(&self.vocab, mask, k),
        }
    }

    /// The log of the total weight (log-sum-exp), `-inf` when all are zero.
    pub fn logsumexp(&self) -> f64 {
        match &self.values {
            Values::Dense(values) => logsumexp(values),
            Values::Mask(mask, _) => match mask.count() {
                0 => f64::NEG_INFINITY,
                n => (n as f64).ln(),
            },
        }
    }

    /// The log of the total weight; the same as [`LogWeights::logsumexp`].
    pub fn sum(&self) -> f64 {
        self.logsumexp()
    }

    /// Subtracts the log total so that the weights sum to one. All-zero
    /// weights stay all `-inf` rather than becoming NaN.
    pub fn normalize(&self) -> Self {
        let total = self.logsumexp();
        if total == f64::NEG_INFINITY {
            return self.clone();
        }
        let values = match &self.values {
            Values::Dense(values) => values.iter().map(|v| v - total).collect(),
            Values::Mask(mask, _) => {
                let mut values = vec![-total; mask.len()];
                // Restricting values of the mask's own length cannot fail.
                let _ = mask.restrict(&mut values);
                values
            }
        };
        LogWeights {
            vocab: self.vocab.clone(),
            values: Values::Dense(values),
        }
    }

    /// Into linear space.
    pub fn exp(&self) -> Weights<T> {
        let values = match &self.values {
            Values::Dense(values) => values.iter().map(|v| v.exp()).collect(),
            Values::Mask(mask, _) => (0..mask.len())
                .map(|i| if mask.contains(i) { 1.0 } else { 0.0 })
                .collect(),
        };
        Weights {
            vocab: self.vocab.clone(),
            values,
        }
    }
}

// By hand: a derive would ask `T: Clone`, and the vocabulary is shared.
impl<T> Clone for LogWeights<T> {
    fn clone(&self) -> Self {
        LogWeights {
            vocab: self.vocab.clone(),
            values: self.values.clone(),
        }
    }
}

/// Equal when the vocabularies and the values are: a mask equals the dense
/// weights of the same values.
impl<T: PartialEq> PartialEq for LogWeights<T> {
    fn eq(&self, other: &Self) -> bool {
        if self.vocab != other.vocab {
            return false;
        }
        match (&self.values, &other.values) {
            (Values::Mask(a, _), Values::Mask(b, _)) => a == b,
            _ => self.as_slice() == other.as_slice(),
        }
    }
}

impl<T> Debug for LogWeights<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_top(f, "LogWeights", &self.vocab, self.len(), self.top_k(5))
    }
}

impl<T: TokenType> Weights<T> {
    /// Wraps a vector of `vocab.len() + 1` values (EOS last); any other length is an error.
    pub fn new(vocab: Vocab<T>, values: Vec<f64>) -> Result<Self> {
        check_len(&vocab, values.len())?;
        Ok(Weights { vocab, values })
    }

    /// The value of a token; a token outside the vocabulary has weight zero.
    pub fn get(&self, token: &T) -> f64 {
        self.vocab.index_of(token).map_or(0.0, |i| self.values[i])
    }

    /// The value of a token or of EOS.
    pub fn get_symbol(&self, symbol: Symbol<&T>) -> f64 {
        match symbol {
            Symbol::Token(t) => self.get(t),
            Symbol::Eos => self.eos(),
        }
    }
}

impl<T> Weights<T> {
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
            values: Values::Dense(self.values.iter().map(|v| v.ln()).collect()),
        }
    }
}

impl<T> Debug for Weights<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let top = top_k(&self.vocab, &self.values, 5);
        debug_top(f, "Weights", &self.vocab, self.values.len(), top)
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

    /// Every reading of weights made from a mask is the reading of the same
    /// values made dense.
    #[test]
    fn a_mask_reads_as_its_values() {
        for bits in [0b0000, 0b1010, 0b0101, 0b1111, 0b1000] {
            let mask = Mask::from_words(4, vec![bits]).unwrap();
            let masked = LogWeights::from_mask(abc(), mask.clone()).unwrap();
            let dense = LogWeights::new(abc(), mask.to_values()).unwrap();
            assert_eq!(masked.as_mask(), Some(&mask));
            assert_eq!(dense.as_mask(), None);
            assert_eq!(masked, dense);
            assert_eq!(dense, masked);
            for i in 0..6 {
                assert_eq!(masked.at(i), dense.at(i), "{bits:b} at {i}");
            }
            assert_eq!(masked.get(&'c'), dense.get(&'c'));
            assert_eq!(masked.get(&'q'), NEG);
            assert_eq!(masked.eos(), dense.eos());
            assert_eq!(masked.len(), 4);
            assert_eq!(masked.logsumexp(), dense.logsumexp());
            assert_eq!(masked.normalize(), dense.normalize());
            assert_eq!(masked.exp(), dense.exp());
            for k in 0..6 {
                assert_eq!(masked.top_k(k), dense.top_k(k), "{bits:b} top {k}");
            }
            assert!(masked.iter().eq(dense.iter()));
            assert_eq!(format!("{masked:?}"), format!("{dense:?}"));
            assert_eq!(masked.as_slice(), dense.as_slice());
            assert_eq!(masked.clone().into_vec(), dense.into_vec());
        }
        let other = LogWeights::from_mask(abc(), Mask::all(4)).unwrap();
        assert_ne!(other, LogWeights::from_mask(abc(), Mask::none(4)).unwrap());
        assert!(LogWeights::from_mask(abc(), Mask::all(3)).is_err());
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
