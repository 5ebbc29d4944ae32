//! Errors on the wire: [`WireError`] mirrors [`PotentialError`] variant
//! for variant, so that a caller matches a worker's error exactly as an
//! in-process one; a potential's own error travels as its message.

use serde::{Deserialize, Serialize};

use crate::error::{Method, PotentialError, Wrapper};

/// [`PotentialError`] on the wire: the same variants, owned strings; a
/// method or a wrapper travels as its variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // each variant is the one of `PotentialError` with its name
pub enum WireError {
    EmptyVocabulary,
    DuplicateToken {
        token: String,
    },
    EmptyIntersection,
    EmptyBatch {
        method: Method,
    },
    ZeroWeightContext {
        context: String,
    },
    BatchSizeMismatch {
        method: Method,
        expected: u64,
        got: u64,
    },
    InvalidInput(String),
    Closed(Wrapper),
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
        method: Method,
        value: f64,
    },
    Timeout {
        method: Method,
        after: std::time::Duration,
    },
}

impl From<&PotentialError> for WireError {
    fn from(e: &PotentialError) -> Self {
        match e {
            PotentialError::EmptyVocabulary => WireError::EmptyVocabulary,
            PotentialError::DuplicateToken { token } => WireError::DuplicateToken {
                token: token.clone(),
            },
            PotentialError::EmptyIntersection => WireError::EmptyIntersection,
            PotentialError::EmptyBatch { method } => WireError::EmptyBatch { method: *method },
            PotentialError::ZeroWeightContext { context } => WireError::ZeroWeightContext {
                context: context.clone(),
            },
            PotentialError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => WireError::BatchSizeMismatch {
                method: *method,
                expected: *expected as u64,
                got: *got as u64,
            },
            PotentialError::InvalidInput(s) => WireError::InvalidInput(s.clone()),
            PotentialError::Closed(w) => WireError::Closed(*w),
            PotentialError::WorkerFailure(s) => WireError::WorkerFailure(s.clone()),
            PotentialError::Panicked(s) => WireError::Panicked(s.clone()),
            PotentialError::Potential(e) => WireError::Potential(e.to_string()),
            PotentialError::UnknownToken { token, position } => WireError::UnknownToken {
                token: token.clone(),
                position: *position as u64,
            },
            PotentialError::InvalidWeight { method, value } => WireError::InvalidWeight {
                method: *method,
                value: *value,
            },
            PotentialError::Timeout { method, after } => WireError::Timeout {
                method: *method,
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
            WireError::EmptyBatch { method } => PotentialError::EmptyBatch { method },
            WireError::ZeroWeightContext { context } => {
                PotentialError::ZeroWeightContext { context }
            }
            WireError::BatchSizeMismatch {
                method,
                expected,
                got,
            } => PotentialError::BatchSizeMismatch {
                method,
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
                got: usize::try_from(got).unwrap_or(usize::MAX),
            },
            WireError::InvalidInput(s) => PotentialError::InvalidInput(s),
            WireError::Closed(w) => PotentialError::Closed(w),
            WireError::WorkerFailure(s) => PotentialError::WorkerFailure(s),
            WireError::Panicked(s) => PotentialError::Panicked(s),
            WireError::Potential(s) => PotentialError::msg(s),
            WireError::UnknownToken { token, position } => PotentialError::UnknownToken {
                token,
                position: usize::try_from(position).unwrap_or(usize::MAX),
            },
            WireError::InvalidWeight { method, value } => {
                PotentialError::InvalidWeight { method, value }
            }
            WireError::Timeout { method, after } => PotentialError::Timeout { method, after },
        }
    }
}
