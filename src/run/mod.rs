//! The orchestrator: per-group lifecycle, concurrency, signals, timeouts. It works in our own
//! types through the [`Backend`] trait and emits [`Event`]s that the display and the reports
//! consume.

mod backend;
mod bind_sources;
mod data_in_memory;
mod dispatch;
mod display;
mod elastic;
mod error;
mod event;
mod explain;
mod group;
mod health;
mod images;
mod leftovers;
mod orchestrator;
mod outcome;
mod plugin_folders;
pub mod protocol;
mod pytest_command;
mod resource_labels;
pub mod service_snapshot;
mod signals;
mod snapshot_layers;
mod source_copy;
mod spec;
mod start_turns;
mod startup;
mod summary;
mod warm_start;

#[cfg(test)]
mod fake_backend;
#[cfg(test)]
mod orchestrator_tests;

pub use backend::Backend;
pub use bind_sources::create_missing_bind_sources;
pub use dispatch::LostTest;
pub use display::{Display, DisplayMode};
pub use error::RunError;
pub use event::{Activity, Event, EventSink, GroupReport, TestCounts, TestOutcome, TestResult};
pub use explain::{Explainer, Explanation, FailureClass, ATTEMPT_ENV};
pub use leftovers::{find_leftovers, process_alive};
pub use orchestrator::{run, run_on, EngineSlot, RunOutcome};
pub use outcome::{
    format_limit, CollectionFailure, CollectionMismatch, EnvironmentFailure, FailureCause,
    GroupStatus, Lingering,
};
pub use plugin_folders::kept_folders;
pub use protocol::PROGRESS_FILE_NAME;
pub use pytest_command::{collection_scope, PLUGIN_SOURCE};
pub use resource_labels::{group_label, run_label, stamp_labels};
pub use signals::{run_interruptible, run_with_signals, Interrupted};
pub use source_copy::CopySource;
pub use spec::{Assignment, Elastic, Planner, ProjectFactory, RunSpec, TestSource, STALL_WARNING};
pub use startup::{declared_tcp_ports, start_order};
pub use summary::{
    exit_code, failed_tests, failure_rows, load_note, most_groups_testing, render_summary,
    reproduce_command,
};
