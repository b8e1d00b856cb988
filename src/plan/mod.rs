//! Planning: parse the collected test list and durations, split tests into balanced groups.
//! Pure code, no I/O beyond the caller-provided readers.

/// Errors from planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No groups requested.
    #[error("--groups must be 1 or more")]
    NoGroups,
}
