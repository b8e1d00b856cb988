//! Errors from the orchestrator and the exit codes they map to.

use super::outcome::{CollectionFailure, EnvironmentFailure};
use crate::errors::ExitCode;

/// Errors from the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
    /// Collecting or planning the tests failed.
    #[error("{0}")]
    Collection(Box<CollectionFailure>),
    /// Images could not be built or found, or no environment could be started.
    #[error("{0}")]
    Environment(Box<EnvironmentFailure>),
    /// The engine cannot see the checkout and `--copy-source never` forbids copying it.
    #[error("{0}")]
    SourceNotVisible(String),
}

impl RunError {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Interrupted => ExitCode::Interrupted,
            RunError::Collection(_) => ExitCode::Usage,
            RunError::Environment(_) => ExitCode::Environment,
            RunError::SourceNotVisible(_) => ExitCode::Usage,
        }
    }
}
