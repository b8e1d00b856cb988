//! Reports: merge JUnit and Cobertura XML, measure test durations from JUnit, write summaries,
//! CI annotations and the timeline, and own the result folder's layout ([`ResultsLayout`]). Pure code over files, `Read` and `Write`: it takes plain data
//! ([`GroupResult`], [`GroupSummary`]) and never imports the orchestrator's types, so the
//! orchestrator can call it without a cycle.
//!
//! Everything that reads XML streams it with quick-xml and treats it as untrusted (see
//! `xml_input`); every output file goes through [`StagedFile`] (or [`write_atomically`]):
//! replaced atomically, or written through when it is a device, pipe or symlink.

mod atomic;
mod coverage_merge;
mod coverage_model;
mod coverage_read;
mod coverage_write;
mod error;
mod failure_location;
mod github;
mod input_kind;
mod junit_durations;
mod junit_merge;
mod junit_progress;
mod junit_scan;
mod junit_types;
mod merged_results;
pub mod node_id;
mod phase;
mod py_format;
mod reruns;
mod results_layout;
mod summary;
mod timeline;
mod xml_input;

pub use atomic::{write_atomically, write_text, StagedFile};
pub use coverage_merge::merge_coverage;
pub use coverage_write::CoverageTotals;
pub use error::ReportError;
pub use github::{
    github_annotations, github_blob_base, github_explained, github_explained_annotations,
    github_log_group, github_step_summary, FailureRow,
};
pub use input_kind::{classify, ReportKind};
pub use junit_durations::{junit_durations, junit_durations_with};
pub use junit_merge::merge_junit;
pub use junit_progress::{junit_from_progress, parse_progress, ProgressEntry};
pub use junit_types::{CaseCounts, FailedTest, FailureKind, GroupResult, GroupTotals, JunitTotals};
pub use merged_results::{write_merged_results, MergedResults};
pub use node_id::NodeIdIndex;
pub use phase::{Phase, PhaseSpan};
pub use reruns::{apply_reruns, read_attempts, Attempt, AttemptOutcome, Retried};
pub use results_layout::{read_plan_groups, ResultsLayout};
pub use summary::{
    render_group_table, render_slowest, render_summary_table, summaries_from_junit, GroupSummary,
    TotalRow,
};
pub use timeline::render_timeline_html;
