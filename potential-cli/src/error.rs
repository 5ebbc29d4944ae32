//! The command's errors: a message and an exit status.

use std::fmt;
use std::process::ExitCode;

use potential_core::PotentialError;

/// Why the command stopped: a plain message for the user, and the exit
/// status it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong, in words, naming the flag or file at fault.
    pub message: String,
    /// The exit status: [`CliError::USAGE`] or [`CliError::FAILED`].
    pub status: u8,
}

impl CliError {
    /// The status of bad usage or bad input (a flag that does not apply, a
    /// file that is not what it should be, a prompt that does not fit):
    /// the user can fix it. clap uses the same for the errors it finds.
    pub const USAGE: u8 = 2;
    /// The status of a run that failed, or of an answer that failed its
    /// independent check.
    pub const FAILED: u8 = 1;

    /// Bad usage or input.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            status: Self::USAGE,
        }
    }

    /// A run that failed.
    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            status: Self::FAILED,
        }
    }

    /// The exit code of the process.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An error of the potentials or the sampler during a run: the run failed.
impl From<PotentialError> for CliError {
    fn from(e: PotentialError) -> Self {
        CliError::failed(e.to_string())
    }
}
