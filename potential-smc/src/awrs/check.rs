//! Checking drawn tokens with the constraint: the only constraint calls
//! AWRS makes.

use potential_core::{Method, Potential, PotentialError, Result, Symbol, Vocab, check_weight};

/// Checks the symbols AWRS draws for one particle: a token `t` by the
/// constraint's `prefix` of the context followed by `t`, EOS by its
/// `complete` of the context. Accepted symbols are remembered (geometric
/// AWRS may draw one again); rejected ones never come back.
pub(super) struct Checker<'a, C: Potential> {
    constraint: &'a C,
    context: &'a [C::Token],
    /// The vocabulary the drawn indices refer to (the language model's).
    vocab: &'a Vocab<C::Token>,
    accepted: Vec<usize>,
    /// The constraint calls made.
    pub(super) calls: usize,
}

impl<'a, C: Potential> Checker<'a, C> {
    pub(super) fn new(
        constraint: &'a C,
        context: &'a [C::Token],
        vocab: &'a Vocab<C::Token>,
    ) -> Self {
        Checker {
            constraint,
            context,
            vocab,
            accepted: Vec::new(),
            calls: 0,
        }
    }

    /// Whether the constraint allows the symbol at `index` next.
    pub(super) async fn accept(&mut self, index: usize) -> Result<bool> {
        if self.accepted.contains(&index) {
            return Ok(true);
        }
        self.calls += 1;
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
        let accepted = boolean(weight)?;
        if accepted {
            self.accepted.push(index);
        }
        Ok(accepted)
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
