//! Planning: parse the collected test list and durations, split tests into balanced groups.
//! Pure code, no I/O: callers read files and hand in strings. The algorithm, its guarantee,
//! the estimate for unknown tests and the JSON schema are described in docs/planning.md.

pub mod auto_groups;
mod balance;
pub mod bisect;
pub mod collection;
pub mod durations;
pub mod estimate;
pub mod id_match;
pub mod model;
pub mod node_id;
pub mod placement;
pub mod queue;
pub mod render;
pub mod split;
pub mod timings;

pub use auto_groups::{choose_groups, AutoChoice, AutoInputs};
pub use bisect::{BisectStep, BisectVerdict, Bisection};
pub use collection::{parse_collect_output, parse_test_list, TestListError};
pub use durations::{Durations, Pruning};
pub use estimate::{Estimate, FallbackSource};
pub use id_match::{match_ids, IdMatch};
pub use model::{GroupPlan, Plan, PLAN_VERSION};
pub use node_id::{class_of, module_of, unit_of};
pub use placement::{capacity, place_groups};
pub use queue::{plan_of_run, queue_units, Chunk, GroupEnd, QueueEnd, QueueUnit, WorkQueue};
pub use render::{render_github_matrix, render_text};
pub use split::{split, to_micros, MAX_GROUPS};
pub use timings::{RunTimings, TIMINGS_FILE};

/// Errors from planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No groups requested.
    #[error("--groups must be 1 or more")]
    NoGroups,
    /// More groups requested than [`MAX_GROUPS`].
    #[error("--groups {0} is more than {max}, the most compose-shard plans; each group is a full copy of the compose project (or a CI runner), so use fewer groups", max = split::MAX_GROUPS)]
    TooManyGroups(usize),
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
    /// A test list is not usable output of `pytest --collect-only -q`.
    #[error("test list {file}: {source}")]
    TestList {
        /// The file.
        file: String,
        /// What is wrong.
        source: TestListError,
    },
    /// A plan is not a valid compose-shard plan ([`Plan::from_json`]).
    #[error("invalid plan at line {line}, column {column}: {message}")]
    PlanFormat {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An error about a named file, e.g. `run --plan FILE` (see [`PlanError::in_file`]).
    #[error("{file}: {source}")]
    InFile {
        /// The file.
        file: String,
        /// What is wrong with it.
        source: Box<PlanError>,
    },
}

impl PlanError {
    /// Name the file the error is about: `Plan::from_json(&text).map_err(|e| e.in_file(path))`.
    pub fn in_file(self, file: impl Into<String>) -> PlanError {
        PlanError::InFile {
            file: file.into(),
            source: Box::new(self),
        }
    }
}
