//! The orchestrator: per-group lifecycle, concurrency, signals, timeouts. Emits events.

use crate::errors::ExitCode;

/// Errors from the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
}

impl RunError {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Interrupted => ExitCode::Interrupted,
        }
    }
}
