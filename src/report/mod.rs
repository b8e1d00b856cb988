//! Reports: merge JUnit and Cobertura XML, update durations, write summaries.
//! Pure code over `Read`/`Write`.

/// Errors from merging or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input could not be parsed.
    #[error("{file}: {message}")]
    Malformed {
        /// The input file.
        file: String,
        /// What is wrong, with line where known.
        message: String,
    },
}
