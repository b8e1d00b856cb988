//! Planning: parse the collected test list and durations, split tests into balanced groups.
//! Pure code, no I/O: callers read files and hand in strings.

pub mod durations;

pub use durations::Durations;

/// Errors from planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No groups requested.
    #[error("--groups must be 1 or more")]
    NoGroups,
    /// A durations file is not in pytest-split's format.
    #[error(
        "durations file {file}: {source}; fix it or delete it (it is rebuilt by --store-durations)"
    )]
    Durations {
        /// The file.
        file: String,
        /// What is wrong.
        source: durations::DurationsFormatError,
    },
}
