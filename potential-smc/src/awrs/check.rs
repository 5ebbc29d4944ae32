//! Checking drawn tokens with the constraint: the only constraint calls
//! AWRS makes.

use std::collections::HashMap;

use futures::future::{join, join_all};
use potential_core::{Method, Potential, PotentialError, Result, Symbol, Vocab, check_weight};

/// Checks the symbols AWRS draws for one particle: a token `t` by the
/// constraint's `prefix` of the context followed by `t`, EOS by its
/// `complete` of the context. Verdicts are remembered (geometric AWRS may
/// draw an accepted symbol again, and a symbol checked ahead is asked for
/// later).
///
/// **Checking ahead.** Within one particle AWRS is sequential: draw, check,
/// and only on a rejection draw the next. With an expensive constraint in
/// worker processes that leaves all but one worker idle while the longest
/// rejection chain runs (in the word-list job, the longest chain of each
/// step held 91% of its checks). The order of the draws does not depend
/// on the verdicts (the Gumbel keys of an order are drawn when it is
/// built), so the next symbols of the order can be checked at the same
/// time as the current one: with a lookahead of `k`, each check the
/// algorithm waits for goes out together with up to `k - 1` of the symbols
/// after it. The algorithm still reads the verdicts in its own order, so
/// its result is the one it gives without checking ahead, for every seed;
/// what checking ahead costs is the checks of the symbols after the
/// accepted one, made and not needed. A symbol checked ahead whose check
/// fails is an error only if the algorithm asks about it.
pub(super) struct Checker<'a, C: Potential> {
    constraint: &'a C,
    context: &'a [C::Token],
    /// The vocabulary the drawn indices refer to (the language model's).
    vocab: &'a Vocab<C::Token>,
    /// How many symbols go out with each check, the one asked included.
    lookahead: usize,
    verdicts: HashMap<usize, Result<bool>>,
    /// The constraint calls made.
    pub(super) calls: usize,
}

impl<'a, C: Potential> Checker<'a, C> {
    /// A checker of the symbols after `context`, sending `lookahead` (at
    /// least 1) symbols out at a time.
    pub(super) fn new(
        constraint: &'a C,
        context: &'a [C::Token],
        vocab: &'a Vocab<C::Token>,
        lookahead: usize,
    ) -> Self {
        Checker {
            constraint,
            context,
            vocab,
            lookahead: lookahead.max(1),
            verdicts: HashMap::new(),
            calls: 0,
        }
    }

    /// How many symbols after the one asked about are worth drawing ahead.
    pub(super) fn ahead(&self) -> usize {
        self.lookahead - 1
    }

    /// Whether the constraint allows the symbol at `index` next. If it has
    /// not been checked yet, it is checked together with the first of
    /// `next` (the indices the algorithm would ask about after it, in its
    /// order) not checked yet, up to the lookahead.
    pub(super) async fn accept(&mut self, index: usize, next: &[usize]) -> Result<bool> {
        if let Some(verdict) = self.verdicts.get(&index) {
            return verdict.clone();
        }
        let mut others: Vec<usize> = Vec::new();
        for &i in next {
            if others.len() + 1 == self.lookahead {
                break;
            }
            if i != index && !self.verdicts.contains_key(&i) && !others.contains(&i) {
                others.push(i);
            }
        }
        self.calls += 1 + others.len();
        let (own, verdicts) = join(
            self.check(index),
            join_all(others.iter().map(|&i| self.check(i))),
        )
        .await;
        self.verdicts.extend(others.into_iter().zip(verdicts));
        self.verdicts.insert(index, own.clone());
        own
    }

    /// One constraint call.
    async fn check(&self, index: usize) -> Result<bool> {
        let weight = match self.vocab.symbol(index) {
            Some(Symbol::Token(token)) => {
                let mut extended = Vec::with_capacity(self.context.len() + 1);
                extended.extend_from_slice(self.context);
                extended.push(token.clone());
                check_weight(Method::Prefix, self.constraint.prefix(&extended).await?)?
            }
            _ => check_weight(
                Method::Complete,
                self.constraint.complete(self.context).await?,
            )?,
        };
        boolean(weight)
    }
}

/// A boolean constraint's verdict: log weight 0 allows, `-inf` rules out;
/// any other weight means the constraint is not boolean, and AWRS's weight
/// estimate would be wrong.
pub(super) fn boolean(weight: f64) -> Result<bool> {
    if weight == 0.0 {
        Ok(true)
    } else if weight == f64::NEG_INFINITY {
        Ok(false)
    } else {
        Err(PotentialError::InvalidInput(format!(
            "AWRS needs a boolean constraint (log weights 0 or -inf), which gave {weight}"
        )))
    }
}
