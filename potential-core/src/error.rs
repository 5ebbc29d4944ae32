//! The one error type of the library.

use std::sync::Arc;

/// Everything that can go wrong when building or calling a potential.
///
/// Callers match on the variant; none of them is ever a panic or a hang.
/// The type is `Clone` (the potential's own error is shared behind an `Arc`)
/// because one failing batch fails every caller that was part of it.
///
/// ```
/// use potential_core::{PotentialError, Vocab};
///
/// let err = Vocab::new(vec!['a', 'b', 'a']).unwrap_err();
/// assert!(matches!(err, PotentialError::DuplicateToken { .. }));
/// assert_eq!(err.to_string(), "duplicate token 'a' in vocabulary");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PotentialError {
    /// A vocabulary was built from no tokens.
    #[error("a vocabulary needs at least one token")]
    EmptyVocabulary,

    /// A vocabulary was built with the same token twice.
    #[error("duplicate token {token} in vocabulary")]
    DuplicateToken {
        /// The `Debug` form of the repeated token.
        token: String,
    },

    /// The product of two potentials whose vocabularies share no token.
    #[error("the vocabularies of the two potentials have no token in common")]
    EmptyIntersection,

    /// A batch method was called with no contexts.
    #[error("`{method}` was called with an empty batch")]
    EmptyBatch {
        /// The batch method that was called.
        method: Method,
    },

    /// `logw_next` was asked about a context whose prefix weight is zero
    /// (log weight `-inf`), so no next-token distribution exists.
    #[error("context {context} has zero weight as a prefix; its next-token weights are undefined")]
    ZeroWeightContext {
        /// The `Debug` form of the context.
        context: String,
    },

    /// A batch method returned a different number of results than it was given contexts.
    #[error("`{method}` returned {got} results for a batch of {expected} contexts")]
    BatchSizeMismatch {
        /// The batch method that lied about its length.
        method: Method,
        /// The number of contexts in the batch.
        expected: usize,
        /// The number of results it returned.
        got: usize,
    },

    /// A context or a weight vector that does not fit the potential: an end
    /// of sequence before the last position, or a weight vector of the wrong length.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A context holds a token that is not in the potential's vocabulary.
    #[error("token {token} at position {position} of the context is not in the vocabulary")]
    UnknownToken {
        /// The `Debug` form of the token.
        token: String,
        /// Its position in the context.
        position: usize,
    },

    /// A potential returned a value that is not a log weight: NaN, or
    /// `+inf` (an infinite weight, which no distribution normalizes).
    #[error("`{method}` returned {value}, which is not a log weight")]
    InvalidWeight {
        /// The method that returned it.
        method: Method,
        /// The value.
        value: f64,
    },

    /// A call did not finish within its time limit (the autobatching
    /// wrapper's [`call_timeout`](crate::AutoBatchOptions::call_timeout)).
    #[error("`{method}` did not finish within {after:?}")]
    Timeout {
        /// The method that was cut off.
        method: Method,
        /// The time limit.
        after: std::time::Duration,
    },

    /// The wrapper (an autobatching loop, a worker pool) was shut down.
    #[error("the {0} was shut down")]
    Closed(Wrapper),

    /// A worker process failed while it held the call, or no worker is left.
    #[error("worker failure: {0}")]
    WorkerFailure(String),

    /// The potential panicked while answering; the message is the panic's payload.
    #[error("the potential panicked: {0}")]
    Panicked(String),

    /// The potential's own error.
    #[error(transparent)]
    Potential(Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl PotentialError {
    /// Wraps a potential's own error.
    ///
    /// ```
    /// use potential_core::PotentialError;
    /// let err = PotentialError::custom(std::io::Error::other("model file is missing"));
    /// assert_eq!(err.to_string(), "model file is missing");
    /// ```
    pub fn custom<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        PotentialError::Potential(Arc::new(error))
    }

    /// A potential's own error from a message.
    pub fn msg(message: impl Into<String>) -> Self {
        PotentialError::Potential(Arc::new(Message(message.into())))
    }

    /// Turns the payload of a caught panic into an error.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a non-string panic payload".to_string()
        };
        PotentialError::Panicked(text)
    }
}

/// A plain message used as a potential's own error.
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// A method of [`Potential`](crate::Potential), as errors, checks and the
/// worker protocol name it.
///
/// It is the only way the library names a method: [`PotentialError`]
/// carries it (a caller matches on `Method::BatchScore`), the checks take
/// it (`non_empty(Method::BatchPrefix, contexts)`), and the worker protocol
/// sends it by variant. Its name in words ([`Method::as_str`]) is written
/// once, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Method {
    /// `complete`.
    Complete,
    /// `prefix`.
    Prefix,
    /// `score`.
    Score,
    /// `logw_next`.
    LogwNext,
    /// `batch_complete`.
    BatchComplete,
    /// `batch_prefix`.
    BatchPrefix,
    /// `batch_score`.
    BatchScore,
    /// `batch_logw_next`.
    BatchLogwNext,
}

impl Method {
    /// The method's name in the trait.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Complete => "complete",
            Method::Prefix => "prefix",
            Method::Score => "score",
            Method::LogwNext => "logw_next",
            Method::BatchComplete => "batch_complete",
            Method::BatchPrefix => "batch_prefix",
            Method::BatchScore => "batch_score",
            Method::BatchLogwNext => "batch_logw_next",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wrapper that can be shut down, as [`PotentialError::Closed`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Wrapper {
    /// An [`AutoBatched`](crate::AutoBatched) potential's loop.
    AutoBatched,
    /// A pool of worker processes (`potential-runtime`).
    WorkerPool,
}

impl Wrapper {
    /// The wrapper's name in error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Wrapper::AutoBatched => "autobatching wrapper",
            Wrapper::WorkerPool => "worker pool",
        }
    }

    /// The error of a call made after this wrapper was shut down.
    pub const fn closed(self) -> PotentialError {
        PotentialError::Closed(self)
    }
}

impl std::fmt::Display for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result type of every fallible call in this library.
pub type Result<T, E = PotentialError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads_become_messages() {
        let err = PotentialError::from_panic(Box::new("boom"));
        assert_eq!(err.to_string(), "the potential panicked: boom");
        let err = PotentialError::from_panic(Box::new(String::from("bang")));
        assert_eq!(err.to_string(), "the potential panicked: bang");
        let err = PotentialError::from_panic(Box::new(7_u32));
        assert!(matches!(err, PotentialError::Panicked(_)));
    }

    #[test]
    fn custom_errors_are_shared_and_displayed() {
        let err = PotentialError::msg("nope");
        let copy = err.clone();
        assert_eq!(copy.to_string(), "nope");
        assert!(matches!(copy, PotentialError::Potential(_)));
    }

    #[test]
    fn methods_and_wrappers_are_named_in_words() {
        assert_eq!(Method::BatchLogwNext.to_string(), "batch_logw_next");
        assert_eq!(
            Wrapper::AutoBatched.closed().to_string(),
            "the autobatching wrapper was shut down"
        );
    }

    #[test]
    fn new_errors_name_the_token_the_method_and_the_limit() {
        let err = PotentialError::UnknownToken {
            token: "'z'".into(),
            position: 2,
        };
        assert_eq!(
            err.to_string(),
            "token 'z' at position 2 of the context is not in the vocabulary"
        );
        let err = PotentialError::InvalidWeight {
            method: Method::Prefix,
            value: f64::NAN,
        };
        assert_eq!(
            err.to_string(),
            "`prefix` returned NaN, which is not a log weight"
        );
        let err = PotentialError::Timeout {
            method: Method::BatchLogwNext,
            after: std::time::Duration::from_millis(20),
        };
        assert_eq!(
            err.to_string(),
            "`batch_logw_next` did not finish within 20ms"
        );
    }

    #[test]
    fn mismatch_names_both_lengths() {
        let err = PotentialError::BatchSizeMismatch {
            method: Method::BatchPrefix,
            expected: 3,
            got: 2,
        };
        assert_eq!(
            err.to_string(),
            "`batch_prefix` returned 2 results for a batch of 3 contexts"
        );
    }
}
