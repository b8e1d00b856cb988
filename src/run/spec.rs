//! What the orchestrator is asked to do, in plain types (built by `commands::run`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::compose::Project;

/// Node ids per 1-based group number: the whole plan, also for groups not run here.
pub type Assignment = BTreeMap<usize, Vec<String>>;

/// Turns the collected node ids into an assignment (and typically saves the plan).
pub type Planner = Box<dyn FnOnce(Vec<String>) -> Result<Assignment, crate::errors::Error>>;

/// Where the tests of each group come from.
pub enum TestSource {
    /// A fixed assignment (`--plan FILE`): no collection.
    Fixed(Assignment),
    /// Plan from the first collection that arrives (static split).
    Collect(Planner),
    /// A work queue made from the first collection: groups pull units as they go.
    Queue {
        /// Recorded durations (unknown tests get the planner's estimate).
        durations: crate::plan::Durations,
        /// What a unit is.
        split_by: crate::config::SplitBy,
        /// How many groups pull from the queue.
        groups: usize,
    },
}

/// How long a group may show no progress before every thread's stack is printed (once), when no
/// `--test-timeout` ends a hung test sooner.
pub const STALL_WARNING: Duration = Duration::from_secs(600);

/// One run of N isolated environments.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Run id (unique per run; part of every engine-side name and label).
    pub run_id: String,
    /// One isolated project per group to run here (`isolation.group` says which).
    pub projects: Vec<Project>,
    /// The service the tests run in.
    pub test_service: String,
    /// The test command (`pytest ...`).
    pub command: Vec<String>,
    /// Extra environment for the test container.
    pub env: Vec<(String, String)>,
    /// How long services may take to become ready.
    pub ready_timeout: Duration,
    /// Per-group limit for the test phase.
    pub timeout: Option<Duration>,
    /// Per-test limit (`--test-timeout`).
    pub test_timeout: Option<Duration>,
    /// How long a test process may outlive pytest's session (`--exit-grace`).
    pub exit_grace: Duration,
    /// The run's secret for the plugin's lines.
    pub token: super::protocol::Token,
    /// How long a group may show no progress (no output, no finished test) before every
    /// thread's stack is printed as a warning, once ([`STALL_WARNING`]).
    pub stall_warning: Duration,
    /// Results folder.
    pub out_dir: PathBuf,
    /// Keep environments after the run.
    pub keep: bool,
    /// Do not build images.
    pub no_build: bool,
    /// Build `build:` services by content even when their image exists.
    pub build: bool,
    /// Readiness poll interval.
    pub poll: Duration,
    /// `secrets:`/`configs:` files by service (validated before any container exists).
    pub files: std::collections::HashMap<String, Vec<crate::compose::FileMount>>,
    /// The engine (index into the run's engines) each of `projects` runs on; missing
    /// entries mean the first engine.
    pub placement: Vec<usize>,
    /// `--copy-source`.
    pub copy_source: super::source_copy::CopySource,
    /// How tests reach the groups (the plugin's mode).
    pub dist: crate::config::Dist,
    /// Only start the environments and collect (what `compose-shard plan` needs): once the
    /// plan is known, groups tear down without running tests.
    pub collect_only: bool,
}
