//! The crate's error type and the documented exit codes.
//!
//! Every error maps to one [`ExitCode`]: usage/configuration problems are 2, problems with the
//! environment (Docker daemon, images, services that never become ready) are 3.

use std::path::PathBuf;

/// Documented process exit codes (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Every test passed (or there was nothing to do).
    Success = 0,
    /// Some tests failed.
    TestsFailed = 1,
    /// Usage or configuration error: bad flags, invalid compose file, malformed input file.
    Usage = 2,
    /// Environment error: daemon unreachable, image missing, service never ready, container crashed.
    Environment = 3,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

/// Top-level error: one variant per module, each carrying that module's own error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or isolating the compose project failed.
    #[error(transparent)]
    Compose(#[from] crate::compose::ComposeError),
    /// Planning failed (bad test list or durations file).
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Talking to the Docker engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The orchestrator failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// Merging or writing reports failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A flag or setting is invalid.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "create directory").
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The subcommand exists but is not implemented in this version.
    #[error("`compose-shard {0}` is not implemented yet")]
    NotImplemented(&'static str),
    /// The run was interrupted.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::NotImplemented(_) | Error::Compose(_) | Error::Plan(_) => {
                ExitCode::Usage
            }
            Error::Report(_) | Error::Io { .. } => ExitCode::Usage,
            Error::Engine(_) => ExitCode::Environment,
            Error::Run(e) => e.exit_code(),
            Error::Interrupted => ExitCode::Interrupted,
        }
    }
}

impl From<crate::engine::EngineListError> for Error {
    /// An engine named by flag or setting that cannot be used is a usage error (exit 2); an
    /// unusable default engine (`DOCKER_HOST`...) is an environment error (exit 3).
    fn from(e: crate::engine::EngineListError) -> Self {
        match e {
            crate::engine::EngineListError::Default(e) => Error::Engine(e),
            named => Error::Usage(named.to_string()),
        }
    }
}

/// Render an error and its sources as `a: b: c`, skipping sources already contained in the
/// message (transparent wrappers repeat their inner message).
pub fn render_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
