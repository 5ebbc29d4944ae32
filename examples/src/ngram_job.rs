//! The embedded default of the main job, which needs nothing downloaded: an
//! n-gram model trained on the bundled public-domain books, under a
//! regular expression over the generated text.

use potential_builtins::{NgramConfig, NgramLm, Regex};
use potential_core::{Potential, Result};

use crate::main_job::{InWorkers, JobOptions};
use potential_smc::SamplerOptions;

/// The n-gram job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramJob {
    /// The constraint, a byte-level regular expression over the whole text.
    pub pattern: String,
    /// The language model's settings.
    pub model: NgramConfig,
}

impl Default for NgramJob {
    fn default() -> Self {
        NgramJob {
            pattern: r"[A-Z][a-z]+( [a-z]+){3,12}[.!?]".to_string(),
            model: NgramConfig {
                order: 4,
                merges: 8000,
            },
        }
    }
}

impl NgramJob {
    /// The main job's defaults for this model: 64 particles of at most 40
    /// tokens in two groups, and the whole product in the workers (the
    /// n-gram model's `logw_next` is the work, and it is cheap to rebuild).
    pub fn job_options() -> JobOptions {
        JobOptions {
            sampler: SamplerOptions::new(64, 40, 2026),
            workers: 2,
            in_workers: InWorkers::Product,
        }
    }

    /// Trains the language model on the bundled corpus and builds the
    /// constraint over its vocabulary.
    pub fn build(&self) -> Result<(NgramLm, Regex)> {
        let lm = NgramLm::from_bundled_corpus_plain(&self.model)?;
        let regex = Regex::new_plain(&self.pattern, lm.vocab().clone())?;
        Ok((lm, regex))
    }
}
