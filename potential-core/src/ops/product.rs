//! The product of two potentials.

use std::fmt;

use futures::future::try_join;

use crate::error::{Method, PotentialError, Result};
use crate::mask::Mask;
use crate::potential::{NativeBatch, Potential, check_len};
use crate::vocab::{Symbol, TokenType, Vocab};
use crate::weights::LogWeights;

/// A potential over tokens of type `T`: the bound of
/// [`product`](crate::PotentialExt::product), so that a product of
/// potentials over different token types is refused with a message that
/// says what to do (coerce one of them) rather than a type mismatch.
///
/// Implemented for every potential over `T`; never implement it yourself.
#[diagnostic::on_unimplemented(
    message = "a product needs two potentials over one token type: `{Self}` has other tokens than `{T}`",
    label = "tokens of another type than `{T}`",
    note = "coerce one potential to the other's tokens first: `other.coerce(this.vocab().clone(), |context| /* map a context of `{T}` to one of the other's tokens */)?`, then take the product"
)]
pub trait SameTokens<T>: Potential<Token = T> {}

#[diagnostic::do_not_recommend]
impl<T, P: Potential<Token = T> + ?Sized> SameTokens<T> for P {}

/// The product of two potentials over the same token type: log weights
/// add, and the vocabulary is the intersection, in the order of the first
/// potential's vocabulary.
///
/// Single `complete` and `prefix` calls skip the second potential when the
/// first gives `-inf` (as genlm-control does); `logw_next` and the batch
/// forms call both sides concurrently. Next-token weights are mapped into
/// the product's vocabulary through index tables built once, not by hashing
/// tokens on every call.
///
/// ```
/// use potential_core::{ops::Product, Potential, PotentialError, Vocab};
///
/// struct Const(Vocab<char>, f64);
/// impl Potential for Const {
///     type Token = char;
///     fn vocab(&self) -> &Vocab<char> { &self.0 }
///     async fn complete(&self, _: &[char]) -> Result<f64, PotentialError> { Ok(self.1) }
///     async fn prefix(&self, _: &[char]) -> Result<f64, PotentialError> { Ok(self.1) }
/// }
///
/// let p = Product::new(
///     Const(Vocab::new(['a', 'b'])?, -1.0),
///     Const(Vocab::new(['b', 'c'])?, -2.0),
/// )?;
/// assert_eq!(p.vocab().tokens(), ['b']);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(p.complete(&['b']).await?, -3.0);
/// # Ok::<(), PotentialError>(()) })?;
/// # Ok::<(), PotentialError>(())
/// ```
pub struct Product<A: Potential, B> {
    first: A,
    second: B,
    vocab: Vocab<A::Token>,
    /// For each product symbol (tokens, then EOS), its index in the first
    /// and in the second potential's weights; `None` when both potentials
    /// have the product's vocabulary.
    indexes: Option<(Vec<usize>, Vec<usize>)>,
    /// What [`Product::new`] warned of.
    warnings: Vec<String>,
}

impl<A, B> Product<A, B>
where
    A: Potential,
    B: Potential<Token = A::Token>,
{
    /// The product of `first` and `second`; an error when their vocabularies
    /// share no token.
    pub fn new(first: A, second: B) -> Result<Self> {
        let (v1, v2) = (first.vocab().clone(), second.vocab().clone());
        if v1 == v2 {
            return Ok(Product {
                first,
                second,
                vocab: v1,
                indexes: None,
                warnings: Vec::new(),
            });
        }
        let shared: Vec<A::Token> = v1
            .tokens()
            .iter()
            .filter(|t| v2.contains(t))
            .cloned()
            .collect();
        if shared.is_empty() {
            return Err(PotentialError::EmptyIntersection);
        }
        let warnings = overlap_warnings::<A, B>(shared.len(), [v1.len(), v2.len()]);
        let vocab = Vocab::new(shared)?;
        let index_in = |v: &Vocab<A::Token>| -> Vec<usize> {
            vocab
                .symbols()
                .map(|s| {
                    v.symbol_index(s)
                        .expect("shared tokens are in both vocabularies")
                })
                .collect()
        };
        let indexes = Some((index_in(&v1), index_in(&v2)));
        Ok(Product {
            first,
            second,
            vocab,
            indexes,
            warnings,
        })
    }

    /// The first potential.
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The second potential.
    pub fn second(&self) -> &B {
        &self.second
    }

    /// What building the product warned of: that the shared vocabulary is
    /// less than 10% of one side's (as genlm-control warns), naming that
    /// side's type. Each warning is also a `tracing` warning, or a line on
    /// stderr when the program installs no subscriber; a test reads them
    /// here.
    ///
    /// ```
    /// use potential_core::{ops::Product, Potential, PotentialError, Vocab};
    ///
    /// struct Zero(Vocab<u32>);
    /// impl Potential for Zero {
    ///     type Token = u32;
    ///     fn vocab(&self) -> &Vocab<u32> { &self.0 }
    ///     async fn complete(&self, _: &[u32]) -> Result<f64, PotentialError> { Ok(0.0) }
    ///     async fn prefix(&self, _: &[u32]) -> Result<f64, PotentialError> { Ok(0.0) }
    /// }
    ///
    /// let p = Product::new(Zero(Vocab::new(0..5)?), Zero(Vocab::new(0..100)?))?;
    /// assert_eq!(p.warnings().len(), 1);
    /// assert!(p.warnings()[0].contains("of the second potential's (`Zero`, 100 tokens)"));
    /// # Ok::<(), PotentialError>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Adds both sides' next-token weights in the product's vocabulary.
    ///
    /// With one vocabulary on both sides the sum is taken in place in one
    /// side's vector: with vocabularies of thousands of tokens these
    /// vectors are the bulk of the work, so no third one is allocated. A
    /// side that is a [`Mask`] is not read as values: two masks give their
    /// intersection, a mask and values the values with `-∞` written where
    /// the mask has no bit (the sum, exactly, since `x + 0 = x`).
    fn combine(
        &self,
        w1: LogWeights<A::Token>,
        w2: LogWeights<A::Token>,
    ) -> Result<LogWeights<A::Token>> {
        for (name, side, vocab) in [
            ("first", &w1, self.first.vocab()),
            ("second", &w2, self.second.vocab()),
        ] {
            let expected = vocab.len() + 1;
            if side.len() != expected {
                return Err(PotentialError::InvalidInput(format!(
                    "the {name} potential's logw_next gave {} weights, expected {expected}",
                    side.len()
                )));
            }
        }
        let Some((first, second)) = &self.indexes else {
            return match (w1.as_mask(), w2.as_mask()) {
                (Some(a), Some(b)) => {
                    let mut both = a.clone();
                    both.intersect_with(b)?;
                    LogWeights::from_mask(self.vocab.clone(), both)
                }
                (Some(mask), None) => restricted(&self.vocab, w2.into_vec(), mask),
                (None, Some(mask)) => restricted(&self.vocab, w1.into_vec(), mask),
                (None, None) => {
                    let mut values = w1.into_vec();
                    for (x, y) in values.iter_mut().zip(w2.as_slice()) {
                        *x += y;
                    }
                    LogWeights::new(self.vocab.clone(), values)
                }
            };
        };
        // Different vocabularies: read each side at the shared tokens'
        // positions (from the bits, for a mask).
        let values = first
            .iter()
            .zip(second)
            .map(|(i, j)| w1.at(*i) + w2.at(*j))
            .collect();
        LogWeights::new(self.vocab.clone(), values)
    }
}

/// `values` with `-∞` where `mask` has no bit: the sum of values and a mask.
fn restricted<T: TokenType>(
    vocab: &Vocab<T>,
    mut values: Vec<f64>,
    mask: &Mask,
) -> Result<LogWeights<T>> {
    mask.restrict(&mut values)?;
    LogWeights::new(vocab.clone(), values)
}

/// Below this share of either side's vocabulary, a product warns (as
/// genlm-control does): it can only ever produce the shared tokens.
const OVERLAP_WARNING: f64 = 0.1;

/// The warnings of a product of `A` and `B` that share `shared` tokens
/// out of `sides`, each also emitted as a `tracing` warning, or written
/// to stderr when no subscriber listens (as genlm's `warnings.warn` is
/// seen without one).
fn overlap_warnings<A, B>(shared: usize, sides: [usize; 2]) -> Vec<String> {
    let names = [
        ("first", short_type_name::<A>()),
        ("second", short_type_name::<B>()),
    ];
    let mut warnings = Vec::new();
    for ((side, name), len) in names.into_iter().zip(sides) {
        if (shared as f64) < OVERLAP_WARNING * len as f64 {
            let message = format!(
                "the product's vocabulary ({shared} tokens) is less than {}% of the {side} \
                 potential's (`{name}`, {len} tokens): the product only ever produces tokens \
                 that both vocabularies hold",
                OVERLAP_WARNING * 100.0
            );
            let listened =
                tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>());
            if listened {
                tracing::warn!(shared, side_tokens = len, "{message}");
            } else {
                eprintln!("warning: {message}");
            }
            warnings.push(message);
        }
    }
    warnings
}

/// `T`'s name without module paths: `Arc<Product<Ngram, Regex<u8>>>`
/// rather than `alloc::sync::Arc<potential_core::ops::product::…>`.
fn short_type_name<T: ?Sized>() -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in std::any::type_name::<T>().chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' {
            // A path separator: what came before it was a module.
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out + &word
}

fn add_all(method: Method, a: Vec<f64>, b: Vec<f64>, n: usize) -> Result<Vec<f64>> {
    check_len(method, n, a.len())?;
    check_len(method, n, b.len())?;
    Ok(a.into_iter().zip(b).map(|(x, y)| x + y).collect())
}

impl<A, B> Potential for Product<A, B>
where
    A: Potential,
    B: Potential<Token = A::Token>,
{
    type Token = A::Token;

    fn vocab(&self) -> &Vocab<A::Token> {
        &self.vocab
    }

    fn native_batch(&self) -> NativeBatch {
        self.first.native_batch().union(self.second.native_batch())
    }

    async fn complete(&self, context: &[A::Token]) -> Result<f64> {
        let w1 = self.first.complete(context).await?;
        if w1 == f64::NEG_INFINITY {
            return Ok(w1);
        }
        Ok(w1 + self.second.complete(context).await?)
    }

    async fn prefix(&self, context: &[A::Token]) -> Result<f64> {
        let w1 = self.first.prefix(context).await?;
        if w1 == f64::NEG_INFINITY {
            return Ok(w1);
        }
        Ok(w1 + self.second.prefix(context).await?)
    }

    async fn logw_next(&self, context: &[A::Token]) -> Result<LogWeights<A::Token>> {
        let (w1, w2) = try_join(
            self.first.logw_next(context),
            self.second.logw_next(context),
        )
        .await?;
        self.combine(w1, w2)
    }

    async fn batch_complete(&self, contexts: &[Vec<A::Token>]) -> Result<Vec<f64>> {
        let (a, b) = try_join(
            self.first.batch_complete(contexts),
            self.second.batch_complete(contexts),
        )
        .await?;
        add_all(Method::BatchComplete, a, b, contexts.len())
    }

    async fn batch_prefix(&self, contexts: &[Vec<A::Token>]) -> Result<Vec<f64>> {
        let (a, b) = try_join(
            self.first.batch_prefix(contexts),
            self.second.batch_prefix(contexts),
        )
        .await?;
        add_all(Method::BatchPrefix, a, b, contexts.len())
    }

    async fn batch_score(&self, contexts: &[Vec<Symbol<A::Token>>]) -> Result<Vec<f64>> {
        let (a, b) = try_join(
            self.first.batch_score(contexts),
            self.second.batch_score(contexts),
        )
        .await?;
        add_all(Method::BatchScore, a, b, contexts.len())
    }

    async fn batch_logw_next(
        &self,
        contexts: &[Vec<A::Token>],
    ) -> Result<Vec<LogWeights<A::Token>>> {
        let (a, b) = try_join(
            self.first.batch_logw_next(contexts),
            self.second.batch_logw_next(contexts),
        )
        .await?;
        check_len(Method::BatchLogwNext, contexts.len(), a.len())?;
        check_len(Method::BatchLogwNext, contexts.len(), b.len())?;
        a.into_iter()
            .zip(b)
            .map(|(x, y)| self.combine(x, y))
            .collect()
    }
}

impl<A: Potential + fmt::Debug, B: fmt::Debug> fmt::Debug for Product<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Product({:?}, {:?})", self.first, self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::block_on;
    use crate::dyn_potential::DynPotential;
    use crate::testing::{Length, NoCConstraint};

    /// log weight = -(number of `target` tokens), as prefix and as complete.
    struct Count {
        vocab: Vocab<char>,
        target: char,
    }

    impl Potential for Count {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.vocab
        }
        async fn complete(&self, c: &[char]) -> Result<f64> {
            Ok(-(c.iter().filter(|t| **t == self.target).count() as f64))
        }
        async fn prefix(&self, c: &[char]) -> Result<f64> {
            if c.contains(&'x') {
                return Ok(f64::NEG_INFINITY);
            }
            self.complete(c).await
        }
    }

    #[test]
    fn same_vocabulary_adds_weights() {
        block_on(async {
            let p = Product::new(Length::abc(), Length::abc()).unwrap();
            assert_eq!(p.complete(&['a', 'b']).await.unwrap(), -4.0);
            assert_eq!(p.prefix(&['a', 'b']).await.unwrap(), -2.0);
            let w = p.logw_next(&['a']).await.unwrap();
            assert_eq!(w.get(&'c'), -1.0);
            assert_eq!(w.eos(), -1.0);
            let batch = p.batch_prefix(&[vec!['a'], vec![]]).await.unwrap();
            assert_eq!(batch, vec![-1.0, 0.0]);
        });
    }

    #[test]
    fn different_vocabularies_intersect_in_first_order() {
        block_on(async {
            let first = Count {
                vocab: Vocab::new(['c', 'x', 'b', 'a']).unwrap(),
                target: 'a',
            };
            let second = Length::abc();
            let p = Product::new(first, second).unwrap();
            assert_eq!(p.vocab().tokens(), ['c', 'b', 'a']);
            // By hand: prefix([a]) = -1 + -0.5; logw_next(c | [a]) = (-1 - 1) - (-1.5) = ...
            let w = p.logw_next(&['a']).await.unwrap();
            // first: prefix(ac) - prefix(a) = -1 - -1 = 0; second: -1 - -0.5 = -0.5
            assert_eq!(w.get(&'c'), -0.5);
            // first: prefix(aa) - prefix(a) = -1; second: -0.5
            assert_eq!(w.get(&'a'), -1.5);
            // EOS: first complete(a) - prefix(a) = 0; second -1 - -0.5
            assert_eq!(w.eos(), -0.5);
            assert_eq!(w.get(&'x'), f64::NEG_INFINITY);
            assert_eq!(w.as_slice().len(), 4);
            let batch = p.batch_logw_next(&[vec!['a']]).await.unwrap();
            assert_eq!(batch[0], w);
        });
    }

    /// A side whose weights are a mask gives the same product as the same
    /// weights as values, on either side, alone and in batches; two masks
    /// stay a mask.
    #[test]
    fn a_mask_side_restricts_the_other_exactly() {
        block_on(async {
            let ninf = f64::NEG_INFINITY;
            let want = [-0.5, -0.5, ninf, -0.5];
            for dense in [false, true] {
                let left = Product::new(NoCConstraint::new(dense), Length::abc()).unwrap();
                let right = Product::new(Length::abc(), NoCConstraint::new(dense)).unwrap();
                for p in [&left as &dyn DynPotential<char>, &right] {
                    let w = p.dyn_logw_next(&['a']).await.unwrap();
                    assert_eq!(w.as_slice(), want);
                    assert_eq!(w.as_mask(), None);
                    let batch = p.dyn_batch_logw_next(&[vec!['a'], vec![]]).await.unwrap();
                    assert_eq!(batch[0], w);
                }
            }
            let both = Product::new(NoCConstraint::new(false), NoCConstraint::new(false)).unwrap();
            let w = both.logw_next(&[]).await.unwrap();
            assert_eq!(
                w.as_mask().map(|m| m.iter().collect::<Vec<_>>()),
                Some(vec![0, 1, 3])
            );
            let mixed = Product::new(NoCConstraint::new(false), NoCConstraint::new(true)).unwrap();
            assert_eq!(mixed.logw_next(&[]).await.unwrap(), w);
            // Different vocabularies read the mask at the shared tokens.
            let first = Count {
                vocab: Vocab::new(['c', 'x', 'b', 'a']).unwrap(),
                target: 'a',
            };
            let p = Product::new(first, NoCConstraint::new(false)).unwrap();
            let w = p.logw_next(&['a']).await.unwrap();
            assert_eq!(w.as_slice(), [ninf, 0.0, -1.0, 0.0]);
        });
    }

    #[test]
    fn single_calls_skip_the_second_side_on_zero_weight() {
        struct Fails(Vocab<char>);
        impl Potential for Fails {
            type Token = char;
            fn vocab(&self) -> &Vocab<char> {
                &self.0
            }
            async fn complete(&self, _: &[char]) -> Result<f64> {
                Err(PotentialError::msg("second side was called"))
            }
            async fn prefix(&self, _: &[char]) -> Result<f64> {
                Err(PotentialError::msg("second side was called"))
            }
        }
        block_on(async {
            let first = Count {
                vocab: Vocab::new(['a', 'x']).unwrap(),
                target: 'a',
            };
            let p = Product::new(first, Fails(Vocab::new(['a', 'x']).unwrap())).unwrap();
            assert_eq!(p.prefix(&['x']).await.unwrap(), f64::NEG_INFINITY);
            assert!(p.prefix(&['a']).await.is_err());
        });
    }

    #[test]
    fn a_small_overlap_warns_naming_the_potential() {
        let wide = |n: u32| Count {
            vocab: Vocab::new((0..n).map(|i| char::from_u32(0x100 + i).unwrap())).unwrap(),
            target: 'a',
        };
        // 1 shared token of 3 and of 20 (5%): the second side warns.
        let narrow = Count {
            vocab: Vocab::new(['a', 'b', '\u{100}']).unwrap(),
            target: 'a',
        };
        let narrow = Product::new(narrow, wide(20)).unwrap();
        assert_eq!(
            narrow.warnings(),
            [
                "the product's vocabulary (1 tokens) is less than 10% of the second potential's \
              (`Count`, 20 tokens): the product only ever produces tokens that both \
              vocabularies hold"
            ]
        );
        // 2 shared tokens of 20 (10%): no warning.
        assert!(
            Product::new(wide(2), wide(20))
                .unwrap()
                .warnings()
                .is_empty()
        );
        assert!(
            Product::new(Length::abc(), Length::abc())
                .unwrap()
                .warnings()
                .is_empty()
        );
    }

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(short_type_name::<Count>(), "Count");
        assert_eq!(
            short_type_name::<std::sync::Arc<Product<Count, Length>>>(),
            "Arc<Product<Count, Length>>"
        );
        assert_eq!(short_type_name::<(u8, [f64; 2])>(), "(u8, [f64; 2])");
    }

    #[test]
    fn disjoint_vocabularies_are_an_error() {
        let a = Count {
            vocab: Vocab::new(['x']).unwrap(),
            target: 'x',
        };
        assert!(matches!(
            Product::new(a, Length::abc()),
            Err(PotentialError::EmptyIntersection)
        ));
    }
}
