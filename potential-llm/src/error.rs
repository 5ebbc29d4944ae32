//! Why a model could not be opened.

use std::path::PathBuf;

use potential_core::PotentialError;

/// Why a model file could not be found or loaded.
///
/// Opening an [`Llm`](crate::Llm) wraps it in a
/// [`PotentialError::Potential`], so callers that only see
/// `PotentialError` get its message; those that want the kind can
/// downcast the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A known model is not in the cache directory.
    #[error("the model file {} is missing; fetch it with {fetch}", path.display())]
    MissingModel {
        /// Where the file was looked for.
        path: PathBuf,
        /// What fetches it (a command, and the function that runs it).
        fetch: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// The file is not a GGUF file this crate can load: truncated, corrupt,
    /// or missing metadata.
    #[error("invalid model file: {0}")]
    Invalid(String),
    /// The file holds a model of an architecture the crate does not know.
    #[error("unsupported architecture `{0}`: only `llama` and `gemma3` GGUF models are supported")]
    Architecture(String),
    /// A tensor the architecture needs is not in the file.
    #[error("invalid model file: tensor `{0}` is missing")]
    MissingTensor(String),
    /// The fetch script failed.
    #[error("fetching the model failed: {0}")]
    Fetch(String),
}

impl From<LoadError> for PotentialError {
    fn from(e: LoadError) -> Self {
        PotentialError::custom(e)
    }
}
