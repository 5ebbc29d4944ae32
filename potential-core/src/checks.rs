//! Property checks that a potential author runs in tests.
//!
//! Each check compares two ways of computing the same numbers and returns
//! a [`CheckError`] whose message lists, per failing item, the context, the
//! token, the expected and actual values and both differences. Values are
//! compared with genlm-control's rule (see [`Tolerance`]): `-inf` equals
//! `-inf`; NaN and `+inf` equal nothing.
//!
//! ```
//! use potential_core::checks::{self, Tolerance};
//! use potential_core::{Potential, PotentialError, Vocab};
//!
//! struct Length(Vocab<char>);
//! impl Potential for Length {
//!     type Token = char;
//!     fn vocab(&self) -> &Vocab<char> { &self.0 }
//!     async fn complete(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64)) }
//!     async fn prefix(&self, c: &[char]) -> Result<f64, PotentialError> { Ok(-0.5 * c.len() as f64) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let p = Length(Vocab::new(['a', 'b'])?);
//! let contexts = vec![vec![], vec!['a'], vec!['a', 'b']];
//! let tol = Tolerance::default();
//! checks::assert_logw_next_consistency(&p, &contexts, tol).await.unwrap();
//! // With a large vocabulary, check only the heaviest tokens (genlm's `top`).
//! checks::assert_logw_next_consistency(&p, &contexts, tol.top(2)).await.unwrap();
//! checks::assert_autoreg_fact(&p, &contexts, tol).await.unwrap();
//! checks::assert_batch_consistency(&p, &contexts, tol).await.unwrap();
//! # Ok::<(), PotentialError>(()) }).unwrap();
//! ```

use std::fmt::{self, Debug};

use crate::error::{Method, PotentialError};
use crate::potential::Potential;
use crate::vocab::{Shown, Symbol, TokenType};

/// How close two log weights must be: genlm-control's rule,
/// `abs_diff <= atol && rel_diff <= rtol` (both must hold), where
/// `abs_diff = |actual - expected|` and `rel_diff = abs_diff / |expected|`.
///
/// As in genlm-control, `-inf` equals `-inf` (both differences are zero),
/// an `expected` of zero admits only an `actual` of zero (`rel_diff` is
/// infinite otherwise), and NaN or `+inf` on either side never passes.
/// This is stricter than `|a - b| <= atol + rtol * |b|` (numpy's
/// `isclose`): a check never passes what genlm's rejects with the same
/// numbers.
///
/// ```
/// use potential_core::checks::Tolerance;
/// let tol = Tolerance { rtol: 1e-4, atol: 1e-3 };
/// assert!(tol.close(1.0, 1.00005));
/// assert!(!tol.close(1.0, 1.0005)); // within atol, but not within rtol
/// assert!(!tol.close(0.0, 1e-12)); // nothing is relatively close to zero
/// assert!(tol.close(f64::NEG_INFINITY, f64::NEG_INFINITY));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Default for Tolerance {
    /// `rtol = 1e-6`, `atol = 1e-9`.
    fn default() -> Self {
        Tolerance {
            rtol: 1e-6,
            atol: 1e-9,
        }
    }
}

impl Tolerance {
    /// Whether `actual` is close enough to `expected`.
    pub fn close(&self, expected: f64, actual: f64) -> bool {
        let (abs, rel) = diffs(expected, actual);
        // NaN differences compare false, so they never pass.
        abs <= self.atol && rel <= self.rtol
    }

    /// Options for [`assert_logw_next_consistency`] that check only the
    /// `k` heaviest symbols (tokens and EOS) of each `logw_next`, as
    /// genlm-control's `top` does: one `score` per token is what makes the
    /// check slow on a vocabulary of many thousands of tokens.
    pub fn top(self, k: usize) -> NextCheck {
        NextCheck {
            tol: self,
            top: Some(k),
        }
    }
}

/// genlm-control's `_compute_diff`: `(abs_diff, rel_diff)`.
fn diffs(expected: f64, actual: f64) -> (f64, f64) {
    if expected == f64::NEG_INFINITY && actual == f64::NEG_INFINITY {
        return (0.0, 0.0);
    }
    let abs = (actual - expected).abs();
    let rel = if expected == 0.0 {
        if actual == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        abs / expected.abs()
    };
    (abs, rel)
}

/// What [`assert_logw_next_consistency`] compares: every symbol, or only
/// the `top` heaviest of each `logw_next`. A [`Tolerance`] converts into
/// the every-symbol form; [`Tolerance::top`] gives the other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextCheck {
    /// How close the values must be.
    pub tol: Tolerance,
    /// Check only this many of the heaviest symbols (ties by vocabulary
    /// order, EOS last); `None` checks them all. `Some(0)` is an error.
    pub top: Option<usize>,
}

impl From<Tolerance> for NextCheck {
    fn from(tol: Tolerance) -> Self {
        NextCheck { tol, top: None }
    }
}

/// One value that differs between the two computations of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The `Debug` form of the context.
    pub context: String,
    /// What was compared: a token, `EOS`, or the method.
    pub item: String,
    /// The value the check expected.
    pub expected: f64,
    /// The value the potential gave.
    pub actual: f64,
}

impl Mismatch {
    /// `|actual - expected|`, zero when both are `-inf`.
    pub fn abs_diff(&self) -> f64 {
        diffs(self.expected, self.actual).0
    }

    /// `|actual - expected| / |expected|`, zero when both are `-inf` or
    /// both zero, infinite when only `expected` is zero.
    pub fn rel_diff(&self) -> f64 {
        diffs(self.expected, self.actual).1
    }
}

/// Why a check failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    /// The potential itself returned an error.
    #[error("{check}: the potential failed on context {context}: {error}")]
    Potential {
        /// The check that ran.
        check: &'static str,
        /// The `Debug` form of the context.
        context: String,
        /// The error.
        error: PotentialError,
    },
    /// Some values differ beyond the tolerance, or some contexts could not
    /// be checked because their prefix weight is zero.
    #[error("{}", MismatchReport { check, mismatches, zero_weight })]
    Mismatch {
        /// The check that ran.
        check: &'static str,
        /// Every value that differs.
        mismatches: Vec<Mismatch>,
        /// The `Debug` forms of the contexts whose prefix weight is `-inf`,
        /// where `logw_next` is undefined ([`assert_logw_next_consistency`]
        /// reports them rather than skipping them: genlm-control fails on
        /// the NaN they give).
        zero_weight: Vec<String>,
    },
    /// The check was asked for something it cannot do.
    #[error("{check}: {message}")]
    Options {
        /// The check that was called.
        check: &'static str,
        /// What is wrong.
        message: &'static str,
    },
}

struct MismatchReport<'a> {
    check: &'a str,
    mismatches: &'a [Mismatch],
    zero_weight: &'a [String],
}

impl fmt::Display for MismatchReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.check)?;
        match (self.mismatches.len(), self.zero_weight.len()) {
            (m, 0) => writeln!(f, "{m} value(s) differ")?,
            (0, z) => writeln!(f, "{z} context(s) of prefix weight zero")?,
            (m, z) => writeln!(
                f,
                "{m} value(s) differ, {z} context(s) of prefix weight zero"
            )?,
        }
        for m in self.mismatches {
            writeln!(
                f,
                "  context {} item {}: expected {}, actual {}, abs diff {:e}, rel diff {:e}",
                m.context,
                m.item,
                m.expected,
                m.actual,
                m.abs_diff(),
                m.rel_diff()
            )?;
        }
        for context in self.zero_weight {
            writeln!(
                f,
                "  context {context}: prefix weight is -inf, so logw_next is undefined there \
                 (leave the context out, or fix prefix if it should not be zero)"
            )?;
        }
        Ok(())
    }
}

/// Collects mismatches for one check.
struct Report {
    check: &'static str,
    tol: Tolerance,
    /// The context as the messages show it.
    context: String,
    mismatches: Vec<Mismatch>,
    zero_weight: Vec<String>,
}

impl Report {
    fn new(check: &'static str, tol: Tolerance, context: String) -> Self {
        Report {
            check,
            tol,
            context,
            mismatches: Vec::new(),
            zero_weight: Vec::new(),
        }
    }

    fn compare(&mut self, item: &dyn Debug, expected: f64, actual: f64) {
        if !self.tol.close(expected, actual) {
            self.mismatches.push(Mismatch {
                context: self.context.clone(),
                item: format!("{item:?}"),
                expected,
                actual,
            });
        }
    }

    fn zero_weight(&mut self) {
        self.zero_weight.push(self.context.clone());
    }

    fn fail<T>(&self, error: PotentialError) -> Result<T, CheckError> {
        Err(CheckError::Potential {
            check: self.check,
            context: self.context.clone(),
            error,
        })
    }

    fn merge(&mut self, other: Report) {
        self.mismatches.extend(other.mismatches);
        self.zero_weight.extend(other.zero_weight);
    }

    fn finish(self) -> Result<(), CheckError> {
        if self.mismatches.is_empty() && self.zero_weight.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                check: self.check,
                mismatches: self.mismatches,
                zero_weight: self.zero_weight,
            })
        }
    }
}

/// A context as the messages show it.
fn shown<T: TokenType>(context: &[T]) -> String {
    format!("{:?}", Shown(context))
}

fn symbols<T: Clone>(context: &[T], last: Symbol<&T>) -> Vec<Symbol<T>> {
    context
        .iter()
        .cloned()
        .map(Symbol::Token)
        .chain(std::iter::once(last.cloned()))
        .collect()
}

/// Checks that `logw_next(ctx)[x] == score(ctx + x) - prefix(ctx)` for
/// every token `x` and EOS (or only the heaviest: [`Tolerance::top`]), for
/// every context.
///
/// A context whose prefix weight is zero (`-inf`) fails the check:
/// `logw_next` is undefined there (genlm-control fails on the NaN it
/// gives), so the error names it rather than passing it unchecked.
pub async fn assert_logw_next_consistency<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    options: impl Into<NextCheck>,
) -> Result<(), CheckError> {
    const CHECK: &str = "logw_next consistency";
    let NextCheck { tol, top } = options.into();
    if top == Some(0) {
        return Err(CheckError::Options {
            check: CHECK,
            message: "top must be at least 1 (None checks every symbol)",
        });
    }
    let mut all = Report::new(CHECK, tol, String::new());
    for context in contexts {
        let mut report = Report::new(CHECK, tol, shown(context));
        let here = match potential.prefix(context).await {
            Ok(w) if w == f64::NEG_INFINITY => {
                report.zero_weight();
                all.merge(report);
                continue;
            }
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        let next = match potential.logw_next(context).await {
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        let checked = match top {
            Some(k) => next.top_k(k),
            None => next.iter().collect(),
        };
        for (symbol, actual) in checked {
            let extended = symbols(context, symbol);
            match potential.score(&extended).await {
                Ok(score) => report.compare(&symbol.map(Shown), score - here, actual),
                Err(e) => return report.fail(e),
            }
        }
        all.merge(report);
    }
    all.finish()
}

/// Checks that `complete(ctx)` factors autoregressively:
/// `prefix([]) + Σ logw_next(ctx[..i])[ctx[i]] + logw_next(ctx)[EOS]`.
///
/// The sum stops at the first prefix of zero weight, and then `complete`
/// must be `-inf` too.
pub async fn assert_autoreg_fact<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    tol: Tolerance,
) -> Result<(), CheckError> {
    const CHECK: &str = "autoregressive factorization";
    let mut all = Report::new(CHECK, tol, String::new());
    for context in contexts {
        let mut report = Report::new(CHECK, tol, shown(context));
        let expected = match potential.complete(context).await {
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        let mut actual = match potential.prefix(&[]).await {
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        for i in 0..=context.len() {
            if actual == f64::NEG_INFINITY {
                break;
            }
            let next = match potential.logw_next(&context[..i]).await {
                Ok(w) => w,
                Err(e) => return report.fail(e),
            };
            actual += match context.get(i) {
                Some(token) => next.get(token),
                None => next.eos(),
            };
        }
        report.compare(&"complete", expected, actual);
        all.merge(report);
    }
    all.finish()
}

/// Checks that every batch form gives what the single form gives, context
/// by context: `batch_complete` against `complete`, `batch_prefix` against
/// `prefix`, `batch_score` against `score` (each context with and without
/// EOS), and `batch_logw_next` against `logw_next` on the contexts whose
/// prefix weight is not zero (elsewhere `logw_next` is undefined:
/// [`assert_logw_next_consistency`] reports such contexts).
pub async fn assert_batch_consistency<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    tol: Tolerance,
) -> Result<(), CheckError> {
    const CHECK: &str = "batch consistency";
    let mut report = Report::new(CHECK, tol, "the batch".to_string());
    // Each context with EOS, then without.
    let scored: Vec<Vec<Symbol<P::Token>>> = contexts
        .iter()
        .flat_map(|c| {
            [
                symbols(c, Symbol::Eos),
                c.iter().cloned().map(Symbol::Token).collect(),
            ]
        })
        .collect();
    let batch = async {
        let complete = potential.batch_complete(contexts).await?;
        let prefix = potential.batch_prefix(contexts).await?;
        let score = potential.batch_score(&scored).await?;
        Ok::<_, PotentialError>((complete, prefix, score))
    };
    let (complete, prefix, score) = match batch.await {
        Ok(b) => b,
        Err(e) => return report.fail(e),
    };
    let lengths = [
        (Method::BatchComplete, complete.len(), contexts.len()),
        (Method::BatchPrefix, prefix.len(), contexts.len()),
        (Method::BatchScore, score.len(), 2 * contexts.len()),
    ];
    for (method, got, expected) in lengths {
        if got != expected {
            return report.fail(PotentialError::BatchSizeMismatch {
                method,
                expected,
                got,
            });
        }
    }
    // logw_next is undefined on zero-weight contexts, so only the others go in the batch.
    let live: Vec<Vec<P::Token>> = contexts
        .iter()
        .zip(&prefix)
        .filter(|(_, p)| **p != f64::NEG_INFINITY)
        .map(|(c, _)| c.clone())
        .collect();
    let mut batch_next = if live.is_empty() {
        Vec::new()
    } else {
        match potential.batch_logw_next(&live).await {
            Ok(w) if w.len() == live.len() => w,
            Ok(w) => {
                return report.fail(PotentialError::BatchSizeMismatch {
                    method: Method::BatchLogwNext,
                    expected: live.len(),
                    got: w.len(),
                });
            }
            Err(e) => return report.fail(e),
        }
    }
    .into_iter();
    for (i, context) in contexts.iter().enumerate() {
        let mut one = Report::new(CHECK, tol, shown(context));
        let single = async {
            let c = potential.complete(context).await?;
            let p = potential.prefix(context).await?;
            let ended = potential.score(&scored[2 * i]).await?;
            let open = potential.score(&scored[2 * i + 1]).await?;
            let next = if p == f64::NEG_INFINITY {
                None
            } else {
                Some(potential.logw_next(context).await?)
            };
            Ok::<_, PotentialError>((c, p, ended, open, next))
        };
        let (c, p, ended, open, next) = match single.await {
            Ok(v) => v,
            Err(e) => return one.fail(e),
        };
        one.compare(&"batch_complete", c, complete[i]);
        one.compare(&"batch_prefix", p, prefix[i]);
        one.compare(&"batch_score (with EOS)", ended, score[2 * i]);
        one.compare(&"batch_score (without EOS)", open, score[2 * i + 1]);
        if prefix[i] != f64::NEG_INFINITY {
            let batch = batch_next
                .next()
                .expect("one batch result per live context");
            if let Some(next) = next {
                for ((symbol, want), have) in next.iter().zip(batch.as_slice()) {
                    let item = format_args!("batch_logw_next {:?}", symbol.map(Shown));
                    one.compare(&item, want, *have);
                }
            }
        }
        report.merge(one);
    }
    report.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::potential::tests::{Length, NoC, block_on};
    use crate::vocab::Vocab;
    use crate::weights::LogWeights;
    use crate::{Result, non_empty};

    fn contexts() -> Vec<Vec<char>> {
        vec![vec![], vec!['a'], vec!['a', 'b'], vec!['c', 'c', 'a']]
    }

    /// Length with a `logw_next` that is off by `.1` on `b`, and a
    /// `batch_prefix` that is off by one.
    struct Skewed(Length, f64);

    impl Potential for Skewed {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0.vocab
        }
        async fn complete(&self, c: &[char]) -> Result<f64> {
            self.0.complete(c).await
        }
        async fn prefix(&self, c: &[char]) -> Result<f64> {
            self.0.prefix(c).await
        }
        async fn logw_next(&self, c: &[char]) -> Result<LogWeights<char>> {
            let right = self.0.logw_next(c).await?;
            let mut values = right.into_vec();
            values[1] += self.1;
            LogWeights::new(self.0.vocab.clone(), values)
        }
        async fn batch_prefix(&self, cs: &[Vec<char>]) -> Result<Vec<f64>> {
            non_empty(Method::BatchPrefix, cs)?;
            Ok(cs.iter().map(|c| -0.5 * c.len() as f64 - 1.0).collect())
        }
    }

    #[test]
    fn correct_potentials_pass_every_check() {
        block_on(async {
            let p = Length::abc();
            let tol = Tolerance::default();
            assert_logw_next_consistency(&p, &contexts(), tol)
                .await
                .unwrap();
            assert_autoreg_fact(&p, &contexts(), tol).await.unwrap();
            assert_batch_consistency(&p, &contexts(), tol)
                .await
                .unwrap();
        });
    }

    #[test]
    fn inconsistent_potentials_fail_with_a_readable_message() {
        block_on(async {
            let p = Skewed(Length::abc(), 0.25);
            let tol = Tolerance::default();
            let err = assert_logw_next_consistency(&p, &contexts(), tol)
                .await
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("logw_next consistency: 4 value(s) differ"),
                "{text}"
            );
            assert!(
                text.contains(
                    "context ['a'] item Token('b'): expected -0.5, actual -0.25, abs diff 2.5e-1, rel diff 5e-1"
                ),
                "{text}"
            );
            let err = assert_autoreg_fact(&p, &[vec!['a', 'b']], tol)
                .await
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("item \"complete\": expected -2, actual -1.75"),
                "{err}"
            );
            let err = assert_batch_consistency(&p, &contexts(), tol)
                .await
                .unwrap_err();
            let CheckError::Mismatch { mismatches, .. } = err else {
                panic!("expected mismatches")
            };
            assert!(mismatches.iter().any(|m| m.item == "\"batch_prefix\""));
        });
    }

    #[test]
    fn zero_weight_contexts_are_reported_not_skipped() {
        block_on(async {
            let p = NoC(Length::abc());
            let tol = Tolerance::default();
            let err = assert_logw_next_consistency(&p, &contexts(), tol)
                .await
                .unwrap_err();
            let CheckError::Mismatch {
                mismatches,
                zero_weight,
                ..
            } = &err
            else {
                panic!("expected a report, got {err}")
            };
            assert!(mismatches.is_empty(), "{err}");
            assert_eq!(zero_weight, &["['c', 'c', 'a']"]);
            let text = err.to_string();
            assert!(
                text.starts_with("logw_next consistency: 1 context(s) of prefix weight zero"),
                "{text}"
            );
            assert!(
                text.contains("context ['c', 'c', 'a']: prefix weight is -inf"),
                "{text}"
            );
            // Left out, the other contexts pass.
            assert_logw_next_consistency(&p, &contexts()[..3], tol)
                .await
                .unwrap();
            // complete(['c', 'c', 'a']) is -3, but the factorization stops at -inf.
            assert_autoreg_fact(&p, &contexts(), tol).await.unwrap_err();
            // The batch forms agree on every context, the zero-weight one included.
            assert_batch_consistency(&p, &contexts(), tol)
                .await
                .unwrap();
        });
    }

    #[test]
    fn top_checks_only_the_heaviest_symbols() {
        block_on(async {
            // `b` is 0.25 too light: after [] and ['a'], a, c and EOS are
            // the three heaviest.
            let p = Skewed(Length::abc(), -0.25);
            let contexts = &contexts()[..2];
            let tol = Tolerance::default();
            assert_logw_next_consistency(&p, contexts, tol.top(3))
                .await
                .unwrap();
            for failing in [tol.top(4), tol.into()] {
                let err = assert_logw_next_consistency(&p, contexts, failing)
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("item Token('b')"), "{err}");
            }
            let err = assert_logw_next_consistency(&p, contexts, tol.top(0))
                .await
                .unwrap_err();
            assert!(matches!(err, CheckError::Options { .. }), "{err}");
        });
    }

    #[test]
    fn batch_score_is_compared_with_score() {
        /// Length with a `score` that is one too heavy; its `batch_score`
        /// (the default, through `batch_complete` and `batch_prefix`) is right.
        struct WrongScore(Length);
        impl Potential for WrongScore {
            type Token = char;
            fn vocab(&self) -> &Vocab<char> {
                &self.0.vocab
            }
            async fn complete(&self, c: &[char]) -> Result<f64> {
                self.0.complete(c).await
            }
            async fn prefix(&self, c: &[char]) -> Result<f64> {
                self.0.prefix(c).await
            }
            async fn score(&self, c: &[Symbol<char>]) -> Result<f64> {
                Ok(self.0.score(c).await? + 1.0)
            }
        }
        block_on(async {
            let p = WrongScore(Length::abc());
            let err = assert_batch_consistency(&p, &contexts(), Tolerance::default())
                .await
                .unwrap_err();
            let CheckError::Mismatch { mismatches, .. } = &err else {
                panic!("expected mismatches, got {err}")
            };
            assert_eq!(mismatches.len(), 2 * contexts().len(), "{err}");
            assert!(
                mismatches
                    .iter()
                    .all(|m| m.item.starts_with("\"batch_score") && m.expected == m.actual + 1.0),
                "{err}"
            );
        });
    }

    #[test]
    fn tolerance_is_genlms_rule() {
        let tol = Tolerance {
            rtol: 1e-4,
            atol: 1e-3,
        };
        assert!(tol.close(f64::NEG_INFINITY, f64::NEG_INFINITY));
        assert!(!tol.close(f64::NEG_INFINITY, 0.0));
        assert!(!tol.close(0.0, f64::NEG_INFINITY));
        assert!(!tol.close(f64::INFINITY, f64::INFINITY));
        assert!(!tol.close(f64::NAN, f64::NAN));
        assert!(!tol.close(1.0, f64::NAN));
        assert!(tol.close(1.0, 1.00005));
        assert!(tol.close(0.0, 0.0));
        // Within atol + rtol * |expected| (numpy's isclose), but genlm
        // rejects both: the relative difference exceeds rtol.
        assert!(!tol.close(1.0, 1.0005));
        assert!(!tol.close(0.0, 1e-12));
        // Within rtol, but not within atol.
        assert!(!tol.close(1e3, 1e3 + 0.05));
        let m = Mismatch {
            context: String::new(),
            item: String::new(),
            expected: 0.0,
            actual: 1e-12,
        };
        assert_eq!((m.abs_diff(), m.rel_diff()), (1e-12, f64::INFINITY));
    }

    #[test]
    fn potential_errors_are_reported_with_the_context() {
        struct Broken(Vocab<char>);
        impl Potential for Broken {
            type Token = char;
            fn vocab(&self) -> &Vocab<char> {
                &self.0
            }
            async fn complete(&self, _: &[char]) -> Result<f64> {
                Err(PotentialError::msg("no model"))
            }
            async fn prefix(&self, _: &[char]) -> Result<f64> {
                Ok(0.0)
            }
        }
        block_on(async {
            let p = Broken(Vocab::new(['a']).unwrap());
            let err = assert_autoreg_fact(&p, &[vec!['a']], Tolerance::default())
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "autoregressive factorization: the potential failed on context ['a']: no model"
            );
        });
    }
}
