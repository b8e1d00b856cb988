//! The report module's error type: every variant says which file (and line, for XML) failed
//! and what to do about it.

use std::path::PathBuf;

/// Errors from merging or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input is not well-formed XML, or not the report format it claims to be.
    #[error("{file}:{line}: {message}; regenerate this report (a crashed or interrupted run can truncate it) or leave it out of the merge")]
    Malformed {
        /// The input file.
        file: String,
        /// 1-based line of the problem (1 when the problem is the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An input is well-formed XML but neither JUnit nor Cobertura.
    #[error("{file}: root element is <{root}>, expected <testsuites>/<testsuite> (JUnit) or <coverage> (Cobertura)")]
    UnknownFormat {
        /// The input file.
        file: String,
        /// The root element found.
        root: String,
    },
    /// Reading or writing a file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create a temporary file beside", "replace").
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing the merged output failed.
    #[error("failed to write the merged {what}: {source}")]
    Output {
        /// Which output ("JUnit XML", "coverage XML").
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The inputs cannot be merged together.
    #[error("{0}")]
    Incompatible(String),
}
