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
use std::sync::Arc;

use crate::dyn_potential::DynPotential;
use crate::error::{Method, PotentialError};
use crate::potential::{Potential, check_len};
use crate::spawn::{Recipe, Spawnable};
use crate::vocab::{Shown, Symbol, TokenType};
use crate::weights::LogWeights;

/// How close two log weights must be, with genlm-control's two rules:
///
/// - [`close`](Self::close), for single values (scores, `complete`, one
///   next-token weight against `score - prefix`):
///   `abs_diff <= atol && rel_diff <= rtol` (both must hold), where
///   `abs_diff = |actual - expected|` and `rel_diff = abs_diff / |expected|`
///   (genlm's `_compute_diff`);
/// - [`allclose`](Self::allclose), for a batch's next-token weights against
///   the single call's: `abs_diff <= atol + rtol * |expected|`
///   (`np.testing.assert_allclose`, which genlm's
///   `assert_batch_consistency` uses there).
///
/// Under both, `-inf` equals `-inf` and NaN or `+inf` on either side never
/// passes (neither is a log weight; numpy would pass two NaNs). Under
/// `close`, an `expected` of zero admits only an `actual` of zero
/// (`rel_diff` is infinite otherwise).
///
/// # Which tolerance
///
/// - [`Tolerance::default()`] (`rtol 1e-6`, `atol 1e-9`) for potentials
///   computed in `f64` with the same arithmetic on both paths: the
///   built-ins, hand-written potentials, anything exact enough that a
///   larger difference is a bug.
/// - [`Tolerance::genlm()`] (`rtol 1e-3`, `atol 1e-5`, genlm-control's
///   defaults) for potentials whose batch path runs other arithmetic than
///   the single path (a language model batched on an accelerator, `f32`
///   weights), and when porting genlm-control's tests: it passes what
///   genlm passes.
///
/// ```
/// use potential_core::checks::Tolerance;
/// let tol = Tolerance { rtol: 1e-4, atol: 1e-3 };
/// assert!(tol.close(1.0, 1.00005));
/// assert!(!tol.close(1.0, 1.0005)); // within atol, but not within rtol
/// assert!(tol.allclose(1.0, 1.0005)); // within atol + rtol * 1
/// assert!(!tol.close(0.0, 1e-12)); // nothing is relatively close to zero
/// assert!(tol.close(f64::NEG_INFINITY, f64::NEG_INFINITY));
///
/// // genlm's defaults accept a batched model's float noise.
/// assert!(Tolerance::genlm().allclose(-10.0, -10.0001));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Default for Tolerance {
    /// `rtol = 1e-6`, `atol = 1e-9`: for exact `f64` potentials (see
    /// [which tolerance](Tolerance#which-tolerance)).
    fn default() -> Self {
        Tolerance {
            rtol: 1e-6,
            atol: 1e-9,
        }
    }
}

impl Tolerance {
    /// genlm-control's defaults, `rtol = 1e-3`, `atol = 1e-5`: for
    /// potentials whose batch path computes in other arithmetic (see
    /// [which tolerance](Tolerance#which-tolerance)).
    pub fn genlm() -> Self {
        Tolerance {
            rtol: 1e-3,
            atol: 1e-5,
        }
    }

    /// Whether `actual` is close enough to `expected` as a single value:
    /// both differences within their tolerance.
    pub fn close(&self, expected: f64, actual: f64) -> bool {
        let (abs, rel) = diffs(expected, actual);
        // NaN differences compare false, so they never pass.
        abs <= self.atol && rel <= self.rtol
    }

    /// Whether `actual` is close enough to `expected` as one entry of a
    /// weight vector: `|actual - expected| <= atol + rtol * |expected|`,
    /// numpy's `assert_allclose`.
    pub fn allclose(&self, expected: f64, actual: f64) -> bool {
        // An infinite `expected` would make the bound infinite: as in
        // numpy, infinities must match exactly (and only `-inf` is a weight).
        if expected.is_infinite() || actual.is_infinite() {
            return expected == f64::NEG_INFINITY && actual == f64::NEG_INFINITY;
        }
        // A NaN difference compares false, so it never passes.
        (actual - expected).abs() <= self.atol + self.rtol * expected.abs()
    }

    /// Options that check only the `k` heaviest symbols (tokens and EOS)
    /// of each `logw_next`, as genlm-control's `top` does: one `score` per
    /// token is what makes [`assert_logw_next_consistency`] slow on a
    /// vocabulary of many thousands of tokens. Every check accepts them
    /// (see [`NextCheck::top`]).
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

/// The options of every check: the tolerance, and which next-token
/// weights to compare. A [`Tolerance`] converts into the every-symbol
/// form; [`Tolerance::top`] gives the other. So one value serves all three
/// checks:
///
/// ```
/// use potential_core::checks::{self, Tolerance};
/// use potential_core::{Potential, PotentialError, Vocab};
///
/// struct Half(Vocab<u8>);
/// impl Potential for Half {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.0 }
///     async fn complete(&self, c: &[u8]) -> Result<f64, PotentialError> { Ok(-(c.len() as f64)) }
///     async fn prefix(&self, c: &[u8]) -> Result<f64, PotentialError> { Ok(-0.5 * c.len() as f64) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = Half(Vocab::new(0..=255)?);
/// let contexts = vec![vec![], vec![7, 8]];
/// let options = Tolerance::genlm().top(10);
/// checks::assert_logw_next_consistency(&p, &contexts, options).await.unwrap();
/// checks::assert_autoreg_fact(&p, &contexts, options).await.unwrap();
/// checks::assert_batch_consistency(&p, &contexts, options).await.unwrap();
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextCheck {
    /// How close the values must be.
    pub tol: Tolerance,
    /// Compare only this many of the heaviest symbols of each `logw_next`
    /// (ties by vocabulary order, EOS last); `None` compares them all.
    /// `Some(0)` is an error.
    ///
    /// [`assert_logw_next_consistency`] scores only these symbols;
    /// [`assert_batch_consistency`] compares only these entries of each
    /// batch result (the heaviest of the single call's); and
    /// [`assert_autoreg_fact`], which reads one weight per position
    /// whatever the vocabulary, ignores it.
    pub top: Option<usize>,
}

impl From<Tolerance> for NextCheck {
    fn from(tol: Tolerance) -> Self {
        NextCheck { tol, top: None }
    }
}

impl NextCheck {
    /// The options, or an error when they ask for nothing.
    fn valid(self, check: &'static str) -> Result<Self, CheckError> {
        if self.top == Some(0) {
            return Err(CheckError::Options {
                check,
                message: "top must be at least 1 (None checks every symbol)",
            });
        }
        Ok(self)
    }

    /// The symbols of `next` to compare, with their weights.
    fn pick<'a, T: TokenType>(&self, next: &'a LogWeights<T>) -> Vec<(Symbol<&'a T>, f64)> {
        match self.top {
            Some(k) => next.top_k(k),
            None => next.iter().collect(),
        }
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
        /// The `Debug` forms of the contexts with a prefix of weight zero
        /// (`-inf`), where `logw_next` is undefined. Every check reports
        /// them rather than skipping them, as genlm-control fails on them
        /// (its `logw_next` raises). For [`assert_autoreg_fact`], whose
        /// sum needs `logw_next` at every prefix of the context, the entry
        /// names the dead prefix too.
        zero_weight: Vec<String>,
    },
    /// A rebuilt potential is not the potential it was rebuilt from
    /// ([`assert_respawns`]): another vocabulary or other native batch forms.
    #[error("{check}: the rebuilt potential differs: {what}")]
    Rebuilt {
        /// The check that ran.
        check: &'static str,
        /// What differs, with both sides.
        what: String,
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

/// Runs a future to completion on a fresh current-thread runtime: the
/// checks (and a potential's methods) are async, a `#[test]` usually is not.
///
/// ```
/// use potential_core::checks::block_on;
/// assert_eq!(block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
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

    /// Compares two single values ([`Tolerance::close`]).
    fn compare(&mut self, item: &dyn Debug, expected: f64, actual: f64) {
        let close = self.tol.close(expected, actual);
        self.record(close, item, expected, actual);
    }

    /// Compares two entries of weight vectors ([`Tolerance::allclose`]).
    fn compare_entry(&mut self, item: &dyn Debug, expected: f64, actual: f64) {
        let close = self.tol.allclose(expected, actual);
        self.record(close, item, expected, actual);
    }

    fn record(&mut self, close: bool, item: &dyn Debug, expected: f64, actual: f64) {
        if !close {
            self.mismatches.push(Mismatch {
                context: self.context.clone(),
                item: format!("{item:?}"),
                expected,
                actual,
            });
        }
    }

    fn zero_weight(&mut self, shown: String) {
        self.zero_weight.push(shown);
    }

    /// The potential's answer, or the check's error naming the context.
    fn answer<T>(&self, answer: Result<T, PotentialError>) -> Result<T, CheckError> {
        answer.map_err(|error| CheckError::Potential {
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
/// every context, each value with [`Tolerance::close`].
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
    let options = options.into().valid(CHECK)?;
    let mut all = Report::new(CHECK, options.tol, String::new());
    for context in contexts {
        let mut report = Report::new(CHECK, options.tol, shown(context));
        let here = report.answer(potential.prefix(context).await)?;
        if here == f64::NEG_INFINITY {
            report.zero_weight(shown(context));
            all.merge(report);
            continue;
        }
        let next = report.answer(potential.logw_next(context).await)?;
        for (symbol, actual) in options.pick(&next) {
            let extended = symbols(context, symbol);
            let score = report.answer(potential.score(&extended).await)?;
            report.compare(&symbol.map(Shown), score - here, actual);
        }
        all.merge(report);
    }
    all.finish()
}

/// Checks that `complete(ctx)` factors autoregressively:
/// `prefix([]) + Σ logw_next(ctx[..i])[ctx[i]] + logw_next(ctx)[EOS]`,
/// with [`Tolerance::close`]. ([`NextCheck::top`] changes nothing here:
/// the sum reads one weight per position.)
///
/// The sum needs `logw_next` at every prefix of the context, so a context
/// with a prefix of zero weight (itself included) fails the check, as it
/// does in genlm-control (whose `logw_next` raises there): the error names
/// the context and its first dead prefix. A sum that reaches `-inf` through
/// a next-token weight while `prefix` says the prefix lives is compared
/// as it is: it passes only when `complete` is `-inf` too.
pub async fn assert_autoreg_fact<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    options: impl Into<NextCheck>,
) -> Result<(), CheckError> {
    const CHECK: &str = "autoregressive factorization";
    let NextCheck { tol, .. } = options.into().valid(CHECK)?;
    let mut all = Report::new(CHECK, tol, String::new());
    for context in contexts {
        let mut report = Report::new(CHECK, tol, shown(context));
        let expected = report.answer(potential.complete(context).await)?;
        let mut actual = report.answer(potential.prefix(&[]).await)?;
        let mut dead = None;
        for i in 0..=context.len() {
            if actual == f64::NEG_INFINITY {
                // Dead, or a next-token weight of zero: `prefix` tells which.
                let here = report.answer(potential.prefix(&context[..i]).await)?;
                if here == f64::NEG_INFINITY {
                    dead = Some(i);
                }
                break;
            }
            let next = report.answer(potential.logw_next(&context[..i]).await)?;
            actual += match context.get(i) {
                Some(token) => next.get(token),
                None => next.eos(),
            };
        }
        match dead {
            Some(i) if i == context.len() => report.zero_weight(shown(context)),
            Some(i) => report.zero_weight(format!(
                "{} (its prefix {})",
                shown(context),
                shown(&context[..i])
            )),
            None => report.compare(&"complete", expected, actual),
        }
        all.merge(report);
    }
    all.finish()
}

/// Checks that every batch form gives what the single form gives, context
/// by context: `batch_complete` against `complete`, `batch_prefix` against
/// `prefix`, `batch_score` against `score` (each context with and without
/// EOS), all with [`Tolerance::close`]; and `batch_logw_next` against
/// `logw_next`, entry by entry with [`Tolerance::allclose`] (genlm's
/// `assert_allclose`), every entry or the [`top`](NextCheck::top)
/// heaviest of the single call's.
///
/// A context whose prefix weight is zero fails the check (genlm's
/// `batch_logw_next` raises on it): `logw_next` is undefined there, so it
/// is left out of the `batch_logw_next` call, its other batch forms are
/// still compared, and the error names it.
pub async fn assert_batch_consistency<P: Potential>(
    potential: &P,
    contexts: &[Vec<P::Token>],
    options: impl Into<NextCheck>,
) -> Result<(), CheckError> {
    const CHECK: &str = "batch consistency";
    let options = options.into().valid(CHECK)?;
    let tol = options.tol;
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
    let (complete, prefix, score) = report.answer(batch.await)?;
    let lengths = [
        (Method::BatchComplete, complete.len(), contexts.len()),
        (Method::BatchPrefix, prefix.len(), contexts.len()),
        (Method::BatchScore, score.len(), 2 * contexts.len()),
    ];
    for (method, got, expected) in lengths {
        report.answer(check_len(method, expected, got))?;
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
        let next = report.answer(potential.batch_logw_next(&live).await)?;
        report.answer(check_len(Method::BatchLogwNext, live.len(), next.len()))?;
        next
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
        let (c, p, ended, open, next) = one.answer(single.await)?;
        one.compare(&"batch_complete", c, complete[i]);
        one.compare(&"batch_prefix", p, prefix[i]);
        one.compare(&"batch_score (with EOS)", ended, score[2 * i]);
        one.compare(&"batch_score (without EOS)", open, score[2 * i + 1]);
        // Each live context has its batch result, in order.
        let batch = (prefix[i] != f64::NEG_INFINITY).then(|| batch_next.next());
        match (next, batch.flatten()) {
            (Some(next), Some(batch)) => {
                for (symbol, want) in options.pick(&next) {
                    let item = format_args!("batch_logw_next {:?}", symbol.map(Shown));
                    one.compare_entry(&item, want, batch.get_symbol(symbol));
                }
            }
            _ => one.zero_weight(shown(context)),
        }
        report.merge(one);
    }
    report.finish()
}

/// Checks that `potential` survives the trip to a worker process: its
/// [`Recipe`], encoded and decoded as the wire carries it, rebuilds
/// through the registry a potential over the same token type, with the
/// same vocabulary and [native batch forms](Potential::native_batch), that
/// gives the same answers bit for bit: `complete` and `prefix` on every
/// context, and `logw_next` on every context (an error on both sides
/// where the prefix weight is zero). Returns the rebuilt potential for
/// further checks.
///
/// This is the test every spawnable potential wants; an unregistered type
/// (a generic one without [`register!`](crate::register)) fails it with
/// the registry's error.
///
/// ```
/// use potential_core::{checks, Potential, PotentialError, Registered, Vocab};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Short { vocab: Vocab<u8>, max: usize }
///
/// impl Potential for Short {
///     type Token = u8;
///     fn vocab(&self) -> &Vocab<u8> { &self.vocab }
///     async fn complete(&self, c: &[u8]) -> Result<f64, PotentialError> {
///         Ok(if c.len() <= self.max { 0.0 } else { f64::NEG_INFINITY })
///     }
///     async fn prefix(&self, c: &[u8]) -> Result<f64, PotentialError> { self.complete(c).await }
/// }
/// impl Registered for Short {}
/// potential_core::register!(Short);
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = Short { vocab: Vocab::new(*b"ab")?, max: 2 };
/// let rebuilt = checks::assert_respawns(&p, &[vec![], b"ab".to_vec(), b"aba".to_vec()])
///     .await
///     .unwrap();
/// assert_eq!(rebuilt.complete(b"b").await?, 0.0);
/// # Ok::<(), PotentialError>(()) }).unwrap();
/// ```
pub async fn assert_respawns<P: Spawnable>(
    potential: &P,
    contexts: &[Vec<P::Token>],
) -> Result<Arc<dyn DynPotential<P::Token>>, CheckError> {
    const CHECK: &str = "respawn";
    // Bit for bit: a rebuilt potential runs the same code on the same state.
    let exact = Tolerance {
        rtol: 0.0,
        atol: 0.0,
    };
    let recipe = Report::new(CHECK, exact, "the recipe".to_string());
    let rebuilt = recipe.answer(rebuild(potential))?;
    let differs = |what: String| Err(CheckError::Rebuilt { check: CHECK, what });
    if rebuilt.vocab() != potential.vocab() {
        return differs(format!(
            "its vocabulary has {} tokens, the original's {}",
            rebuilt.vocab().len(),
            potential.vocab().len()
        ));
    }
    if rebuilt.native_batch() != potential.native_batch() {
        return differs(format!(
            "its native batch forms are {:?}, the original's {:?}",
            rebuilt.native_batch(),
            potential.native_batch()
        ));
    }
    let mut all = Report::new(CHECK, exact, String::new());
    for context in contexts {
        let mut report = Report::new(CHECK, exact, shown(context));
        let prefix = report.answer(potential.prefix(context).await)?;
        let complete = report.answer(potential.complete(context).await)?;
        let rebuilt_prefix = report.answer(rebuilt.prefix(context).await)?;
        let rebuilt_complete = report.answer(rebuilt.complete(context).await)?;
        report.compare(&"prefix", prefix, rebuilt_prefix);
        report.compare(&"complete", complete, rebuilt_complete);
        if prefix == f64::NEG_INFINITY {
            // Undefined on both sides: the rebuilt one must refuse it too.
            if rebuilt.logw_next(context).await.is_ok() {
                report.zero_weight(shown(context));
            }
        } else {
            let want = report.answer(potential.logw_next(context).await)?;
            let have = report.answer(rebuilt.logw_next(context).await)?;
            for ((symbol, w), h) in want.iter().zip(have.as_slice()) {
                let item = format_args!("logw_next {:?}", symbol.map(Shown));
                report.compare(&item, w, *h);
            }
        }
        all.merge(report);
    }
    all.finish()?;
    Ok(rebuilt)
}

/// What a worker does with a potential's recipe: encode it, decode it,
/// build it, and take it as a potential over the same tokens.
fn rebuild<P: Spawnable>(potential: &P) -> Result<Arc<dyn DynPotential<P::Token>>, PotentialError> {
    let recipe = potential.recipe()?;
    let wire = postcard::to_stdvec(&recipe)
        .map_err(|e| PotentialError::InvalidInput(format!("cannot encode the recipe: {e}")))?;
    let decoded: Recipe = postcard::from_bytes(&wire)
        .map_err(|e| PotentialError::InvalidInput(format!("cannot decode the recipe: {e}")))?;
    decoded
        .build()?
        .expect_tokens::<P::Token>("the rebuilt potential")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Length, NoC, keeps_length};
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
        keeps_length!();
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
            // The factorization needs logw_next(['c']), which is undefined.
            let err = assert_autoreg_fact(&p, &contexts(), tol).await.unwrap_err();
            assert!(
                matches!(&err, CheckError::Mismatch { mismatches, zero_weight, .. }
                    if mismatches.is_empty() && zero_weight == &["['c', 'c', 'a'] (its prefix ['c'])"]),
                "{err}"
            );
            // The batch forms agree on every context, but logw_next is
            // undefined on the dead one: reported, as genlm's batch_logw_next raises.
            let err = assert_batch_consistency(&p, &contexts(), tol)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, CheckError::Mismatch { mismatches, zero_weight, .. }
                    if mismatches.is_empty() && zero_weight == &["['c', 'c', 'a']"]),
                "{err}"
            );
            assert_autoreg_fact(&p, &contexts()[..3], tol)
                .await
                .unwrap();
            assert_batch_consistency(&p, &contexts()[..3], tol)
                .await
                .unwrap();
        });
    }

    /// Length where every context holding a `c` is dead: `complete` and
    /// `prefix` are both `-inf` there, a consistent potential.
    struct Dead(Length);

    impl Potential for Dead {
        type Token = char;
        fn vocab(&self) -> &Vocab<char> {
            &self.0.vocab
        }
        async fn complete(&self, c: &[char]) -> Result<f64> {
            if c.contains(&'c') {
                Ok(f64::NEG_INFINITY)
            } else {
                self.0.complete(c).await
            }
        }
        async fn prefix(&self, c: &[char]) -> Result<f64> {
            if c.contains(&'c') {
                Ok(f64::NEG_INFINITY)
            } else {
                self.0.prefix(c).await
            }
        }
    }

    #[test]
    fn a_dead_context_fails_every_check_even_when_complete_agrees() {
        block_on(async {
            let p = Dead(Length::abc());
            let tol = Tolerance::default();
            let dead = [vec!['a', 'c']];
            let err = assert_autoreg_fact(&p, &dead, tol).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "autoregressive factorization: 1 context(s) of prefix weight zero\n  \
                 context ['a', 'c']: prefix weight is -inf, so logw_next is undefined there \
                 (leave the context out, or fix prefix if it should not be zero)\n"
            );
            let err = assert_batch_consistency(&p, &dead, tol).await.unwrap_err();
            assert!(
                matches!(&err, CheckError::Mismatch { zero_weight, .. } if zero_weight == &["['a', 'c']"]),
                "{err}"
            );
            let err = assert_logw_next_consistency(&p, &dead, tol)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, CheckError::Mismatch { zero_weight, .. } if zero_weight == &["['a', 'c']"]),
                "{err}"
            );
            // The live contexts pass.
            assert_autoreg_fact(&p, &contexts()[..3], tol)
                .await
                .unwrap();
        });
    }

    /// Length whose `batch_logw_next` gives the single call's weights
    /// changed by the function.
    struct BatchOff(Length, fn(&mut [f64]));

    impl Potential for BatchOff {
        type Token = char;
        keeps_length!();
        async fn batch_logw_next(&self, cs: &[Vec<char>]) -> Result<Vec<LogWeights<char>>> {
            let mut out = Vec::new();
            for c in cs {
                let mut values = self.0.logw_next(c).await?.into_vec();
                (self.1)(&mut values);
                out.push(LogWeights::new(self.0.vocab.clone(), values)?);
            }
            Ok(out)
        }
    }

    #[test]
    fn batch_weights_are_compared_with_numpys_allclose() {
        let tol = Tolerance::genlm();
        // The issue's numbers: genlm's assert_allclose passes them, its
        // score rule does not.
        assert!(tol.allclose(-10.0, -10.0001));
        assert!(!tol.close(-10.0, -10.0001));
        assert!(tol.allclose(f64::NEG_INFINITY, f64::NEG_INFINITY));
        for (a, b) in [
            (f64::NEG_INFINITY, 0.0),
            (0.0, f64::NEG_INFINITY),
            (f64::INFINITY, f64::INFINITY),
            (f64::NAN, f64::NAN),
            (1.0, f64::NAN),
        ] {
            assert!(!tol.allclose(a, b), "{a} {b}");
        }
        assert!(!tol.allclose(-10.0, -10.02));
        block_on(async {
            // Float noise: every weight 1e-5 relatively heavier.
            let p = BatchOff(Length::abc(), |w| {
                w.iter_mut().for_each(|x| *x *= 1.0 + 1e-5)
            });
            let contexts = contexts();
            assert_batch_consistency(&p, &contexts, tol).await.unwrap();
            let err = assert_batch_consistency(&p, &contexts, Tolerance::default())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("item batch_logw_next"), "{err}");
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
            let errors = [
                assert_logw_next_consistency(&p, contexts, tol.top(0)).await,
                assert_autoreg_fact(&p, contexts, tol.top(0)).await,
                assert_batch_consistency(&p, contexts, tol.top(0)).await,
            ];
            for err in errors {
                assert!(matches!(err, Err(CheckError::Options { .. })), "{err:?}");
            }
            // Every check takes the same options.
            assert_autoreg_fact(&p, &[vec!['a', 'a']], tol.top(1))
                .await
                .unwrap();
            // The batch check compares the heaviest entries of the single
            // call's weights: after [], EOS, a and b; c is off in the batch.
            let c_off = BatchOff(Length::abc(), |w| w[2] -= 0.25);
            assert_batch_consistency(&c_off, &[vec![]], tol.top(3))
                .await
                .unwrap();
            let err = assert_batch_consistency(&c_off, &[vec![]], tol.top(4))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("item batch_logw_next Token('c')"),
                "{err}"
            );
        });
    }

    #[test]
    fn batch_score_is_compared_with_score() {
        /// Length with a `score` that is one too heavy; its `batch_score`
        /// (the default, through `batch_complete` and `batch_prefix`) is right.
        struct WrongScore(Length);
        impl Potential for WrongScore {
            type Token = char;
            keeps_length!();
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
