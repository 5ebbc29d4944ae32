//! Errors on the wire: [`WireError`] mirrors [`PotentialError`] variant
//! for variant, so that a caller matches a worker's error exactly as an
//! in-process one; a potential's own error travels as its message.

use serde::{Deserialize, Serialize};

use crate::error::{Method, PotentialError, Wrapper};

/// [`PotentialError`] on the wire: the same variants, owned strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // each variant is the one of `PotentialError` with its name
pub enum WireError {
    EmptyVocabulary,
    DuplicateToken {
        token: String,
    },
    EmptyIntersection,
    EmptyBatch {
        method: String,
    },
    ZeroWeightContext {
        context: String,
    },
    BatchSizeMismatch {
        method: String,
        expected: u64,
        got: u64,
    },
    InvalidInput(String),
    Closed(String),
    WorkerFailure(String),
    Panicked(String),
    /// A potential's own error, by its message.
    Potential(String),
    // Later variants go last, so that older peers decode the ones above.
    UnknownToken {
        token: String,
        position: u64,
    },
    InvalidWeight {
        method: String,
        value: f64,
    },
    Timeout {
        method: String,
        after: std::time::Duration,
    },
}

/// The name of a method on the wire, back as the `&'static str` that
/// errors carry; an unknown name (a newer peer) keeps its meaning in words.
fn method_name(name: &str) -> &'static str {
    Method::from_name(name).map_or("a batch method", Method::as_str)
}

impl From<&PotentialError> for WireError {
    fn from(e: &PotentialError) -> Self {
        match e {
            PotentialError::EmptyVocabulary => WireError::EmptyVocabulary,
            PotentialError::DuplicateToken { token } => WireError::DuplicateToken {
                token: token.clone(),
            },
            PotentialError::EmptyIntersection => WireError::EmptyIntersection,
            PotentialError::EmptyBatch { method } => WireError::EmptyBatch {
                method: method.to_string(),
            },
            PotentialError::ZeroWeightContext { context } => WireError::ZeroWeightContext {
                context: context.clone(),
            },
            PotentialError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => WireError::BatchSizeMismatch {
                method: method.to_string(),
                expected: *expected as u64,
                got: *got as u64,
            },
            PotentialError::InvalidInput(s) => WireError::InvalidInput(s.clone()),
            PotentialError::Closed(s) => WireError::Closed(s.to_string()),
            PotentialError::WorkerFailure(s) => WireError::WorkerFailure(s.clone()),
            PotentialError::Panicked(s) => WireError::Panicked(s.clone()),
            PotentialError::Potential(e) => WireError::Potential(e.to_string()),
            PotentialError::UnknownToken { token, position } => WireError::UnknownToken {
                token: token.clone(),
                position: *position as u64,
            },
            PotentialError::InvalidWeight { method, value } => WireError::InvalidWeight {
                method: method.to_string(),
                value: *value,
            },
            PotentialError::Timeout { method, after } => WireError::Timeout {
                method: method.to_string(),
                after: *after,
            },
        }
    }
}

impl From<WireError> for PotentialError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::EmptyVocabulary => PotentialError::EmptyVocabulary,
            WireError::DuplicateToken { token } => PotentialError::DuplicateToken { token },
            WireError::EmptyIntersection => PotentialError::EmptyIntersection,
            WireError::EmptyBatch { method } => PotentialError::EmptyBatch {
                method: method_name(&method),
            },
            WireError::ZeroWeightContext { context } => {
                PotentialError::ZeroWeightContext { context }
            }
            WireError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => PotentialError::BatchSizeMismatch {
                method: method_name(&method),
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
                got: usize::try_from(got).unwrap_or(usize::MAX),
            },
            WireError::InvalidInput(s) => PotentialError::InvalidInput(s),
            WireError::Closed(s) => {
                PotentialError::Closed(Wrapper::from_name(&s).map_or("wrapper", Wrapper::as_str))
            }
            WireError::WorkerFailure(s) => PotentialError::WorkerFailure(s),
            WireError::Panicked(s) => PotentialError::Panicked(s),
            WireError::Potential(s) => PotentialError::msg(s),
            WireError::UnknownToken { token, position } => PotentialError::UnknownToken {
                token,
                position: usize::try_from(position).unwrap_or(usize::MAX),
            },
            WireError::InvalidWeight { method, value } => PotentialError::InvalidWeight {
                method: method_name(&method),
                value,
            },
            WireError::Timeout { method, after } => PotentialError::Timeout {
                method: method_name(&method),
                after,
            },
        }
    }
}
