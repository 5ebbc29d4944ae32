//! Property checks that a potential author runs in tests.
//!
//! Each check compares two ways of computing the same numbers and returns
//! a [`CheckError`] whose message lists, per failing item, the context, the
//! token, the expected and actual values and both differences. `-inf`
//! equals `-inf`; NaN equals nothing.
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
//! checks::assert_autoreg_fact(&p, &contexts, tol).await.unwrap();
//! checks::assert_batch_consistency(&p, &contexts, tol).await.unwrap();
//! # Ok::<(), PotentialError>(()) }).unwrap();
//! ```

use std::fmt::{self, Debug};

use crate::error::PotentialError;
use crate::potential::Potential;
use crate::vocab::Symbol;

/// How close two log weights must be: `|a - b| <= atol + rtol * |b|`.
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
        if expected == actual {
            return true; // covers -inf == -inf and +inf == +inf
        }
        (actual - expected).abs() <= self.atol + self.rtol * expected.abs()
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
    /// `|actual - expected|`.
    pub fn abs_diff(&self) -> f64 {
        (self.actual - self.expected).abs()
    }

    /// `|actual - expected| / |expected|`.
    pub fn rel_diff(&self) -> f64 {
        self.abs_diff() / self.expected.abs()
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
    /// Some values differ beyond the tolerance.
    #[error("{}", MismatchReport { check, mismatches })]
    Mismatch {
        /// The check that ran.
        check: &'static str,
        /// Every value that differs.
        mismatches: Vec<Mismatch>,
    },
}

struct MismatchReport<'a> {
    check: &'a str,
    mismatches: &'a [Mismatch],
}

impl fmt::Display for MismatchReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} value(s) differ",
            self.check,
            self.mismatches.len()
        )?;
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
        Ok(())
    }
}

/// Collects mismatches for one check.
struct Report<'a> {
    check: &'static str,
    tol: Tolerance,
    context: &'a dyn Debug,
    mismatches: Vec<Mismatch>,
}

impl<'a> Report<'a> {
    fn new(check: &'static str, tol: Tolerance, context: &'a dyn Debug) -> Self {
        Report {
            check,
            tol,
            context,
            mismatches: Vec::new(),
        }
    }

    fn compare(&mut self, item: &dyn Debug, expected: f64, actual: f64) {
        if !self.tol.close(expected, actual) {
            self.mismatches.push(Mismatch {
                context: format!("{:?}", self.context),
                item: format!("{item:?}"),
                expected,
                actual,
            });
        }
    }

    fn fail<T>(&self, error: PotentialError) -> Result<T, CheckError> {
        Err(CheckError::Potential {
            check: self.check,
            context: format!("{:?}", self.context),
            error,
        })
    }

    fn merge(&mut self, other: Report<'_>) {
        self.mismatches.extend(other.mismatches);
    }

    fn finish(self) -> Result<(), CheckError> {
        if self.mismatches.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                check: self.check,
                mismatches: self.mismatches,
            })
        }
    }
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
/// every token `x` and EOS, for every context whose prefix weight is not
/// zero (zero-weight contexts are skipped: their next-token weights are
/// undefined).
pub async fn assert_logw_next_consistency<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    tol: Tolerance,
) -> Result<(), CheckError> {
    const CHECK: &str = "logw_next consistency";
    let mut all = Report::new(CHECK, tol, &"");
    for context in contexts {
        let mut report = Report::new(CHECK, tol, context);
        let here = match potential.prefix(context).await {
            Ok(w) if w == f64::NEG_INFINITY => continue,
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        let next = match potential.logw_next(context).await {
            Ok(w) => w,
            Err(e) => return report.fail(e),
        };
        for (symbol, actual) in next.iter() {
            let extended = symbols(context, symbol);
            match potential.score(&extended).await {
                Ok(score) => report.compare(&symbol, score - here, actual),
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
    let mut all = Report::new(CHECK, tol, &"");
    for context in contexts {
        let mut report = Report::new(CHECK, tol, context);
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

/// Checks that every batch form gives what the single forms give, context
/// by context (`score` on each context with and without EOS).
pub async fn assert_batch_consistency<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    tol: Tolerance,
) -> Result<(), CheckError> {
    const CHECK: &str = "batch consistency";
    let mut report = Report::new(CHECK, tol, &"the batch");
    let batch = async {
        let complete = potential.batch_complete(contexts).await?;
        let prefix = potential.batch_prefix(contexts).await?;
        let scored: Vec<Vec<Symbol<P::Token>>> = contexts
            .iter()
            .flat_map(|c| {
                [
                    symbols(c, Symbol::Eos),
                    c.iter().cloned().map(Symbol::Token).collect(),
                ]
            })
            .collect();
        let score = potential.batch_score(&scored).await?;
        Ok::<_, PotentialError>((complete, prefix, score))
    };
    let (complete, prefix, score) = match batch.await {
        Ok(b) => b,
        Err(e) => return report.fail(e),
    };
    let lengths = [
        ("batch_complete", complete.len(), contexts.len()),
        ("batch_prefix", prefix.len(), contexts.len()),
        ("batch_score", score.len(), 2 * contexts.len()),
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
                    method: "batch_logw_next",
                    expected: live.len(),
                    got: w.len(),
                });
            }
            Err(e) => return report.fail(e),
        }
    }
    .into_iter();
    for (i, context) in contexts.iter().enumerate() {
        let mut one = Report::new(CHECK, tol, context);
        let single = async {
            let c = potential.complete(context).await?;
            let p = potential.prefix(context).await?;
            let next = if p == f64::NEG_INFINITY {
                None
            } else {
                Some(potential.logw_next(context).await?)
            };
            Ok::<_, PotentialError>((c, p, next))
        };
        let (c, p, next) = match single.await {
            Ok(v) => v,
            Err(e) => return one.fail(e),
        };
        one.compare(&"batch_complete", c, complete[i]);
        one.compare(&"batch_prefix", p, prefix[i]);
        one.compare(&"batch_score (with EOS)", c, score[2 * i]);
        one.compare(&"batch_score (without EOS)", p, score[2 * i + 1]);
        if prefix[i] != f64::NEG_INFINITY {
            let batch = batch_next
                .next()
                .expect("one batch result per live context");
            if let Some(next) = next {
                for ((symbol, want), have) in next.iter().zip(batch.as_slice()) {
                    one.compare(&format_args!("batch_logw_next {symbol:?}"), want, *have);
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

    /// Length with a `logw_next` that is off by 0.25 on `b`, and a
    /// `batch_prefix` that is off by one.
    struct Skewed(Length);

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
            values[1] += 0.25;
            LogWeights::new(self.0.vocab.clone(), values)
        }
        async fn batch_prefix(&self, cs: &[Vec<char>]) -> Result<Vec<f64>> {
            non_empty("batch_prefix", cs)?;
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
            let p = Skewed(Length::abc());
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
    fn zero_weight_contexts_are_skipped_not_failed() {
        block_on(async {
            let p = NoC(Length::abc());
            let tol = Tolerance::default();
            assert_logw_next_consistency(&p, &contexts(), tol)
                .await
                .unwrap();
            assert_autoreg_fact(&p, &contexts(), tol).await.unwrap_err();
            assert_batch_consistency(&p, &contexts(), tol)
                .await
                .unwrap();
        });
    }

    #[test]
    fn tolerance_treats_infinities_as_equal_and_nan_as_different() {
        let tol = Tolerance {
            rtol: 0.0,
            atol: 1e-3,
        };
        assert!(tol.close(f64::NEG_INFINITY, f64::NEG_INFINITY));
        assert!(!tol.close(f64::NEG_INFINITY, 0.0));
        assert!(!tol.close(f64::NAN, f64::NAN));
        assert!(tol.close(1.0, 1.0005));
        assert!(!tol.close(1.0, 1.01));
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
