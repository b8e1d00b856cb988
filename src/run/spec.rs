//! What the orchestrator is asked to do, in plain types (built by `commands::run`).
//!
//! [`RunSpec::new`] holds every default in one place; callers set only what they decide.

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

/// Makes a fresh isolated copy of the project as group number `k` (groups `--groups auto`
/// adds while the run goes on, retries, replays, probes).
#[derive(Clone)]
pub struct ProjectFactory(
    pub std::sync::Arc<dyn Fn(usize) -> Result<Project, crate::errors::Error>>,
);

impl std::fmt::Debug for ProjectFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProjectFactory")
    }
}

/// `--groups auto` in a dynamic run on one engine: more groups join while the run goes on,
/// as long as the work left pays for starting them ([`super::elastic`]).
#[derive(Debug, Clone)]
pub struct Elastic {
    /// Fresh projects for the groups that join.
    pub factory: ProjectFactory,
    /// At most this many groups in all.
    pub max_groups: usize,
    /// CPUs of the engine.
    pub cpus: usize,
    /// CPU seconds per wall second of the last run's tests, until this run measures its own.
    pub cpu_fraction: Option<f64>,
    /// Reads the engine host's CPU counters ([`crate::machine::cpu_sample`] when the engine
    /// runs here): no group joins while the host's CPUs are busy (the tests' own share leaves
    /// out the services they wait on, which use the same CPUs). `None`: not known.
    pub host_cpu: Option<fn() -> Option<crate::machine::CpuSample>>,
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
    /// The run's secret for the plugin's lines.
    pub token: super::protocol::Token,
    /// Remove whatever still carries the run's label once the groups are done (off for the
    /// fresh environments of retries and searches, which must not touch kept groups).
    pub sweep: bool,
    /// How long a group may show no progress (no output, no finished test) before every
    /// thread's stack is printed as a warning, once ([`STALL_WARNING`]).
    pub stall_warning: Duration,
    /// Results folder.
    pub out_dir: PathBuf,
    /// The run's results folder, left out of build contexts and source uploads (`out_dir`,
    /// except for the fresh environments of `--retries`, whose results go below it).
    pub results_root: PathBuf,
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
    /// `--exit-grace`: how long a test process may stay alive after pytest's session finished
    /// (threads or child processes that do not end) before it is stopped.
    pub exit_grace: Duration,
    /// `--test-timeout`: the limit for each single test, if any.
    pub test_timeout: Option<Duration>,
    /// `--retries`: how many times a failed test is rerun, each time in a fresh environment
    /// (0: never).
    pub retries: u32,
    /// `--until TEST`: the group (exactly one, from `--plan`) runs its tests in plan order up
    /// to and including this node id, then stops.
    pub until: Option<String>,
    /// `--snapshots`: whether snapshots of the started services are used, taken or refreshed.
    pub snapshots: crate::config::Snapshots,
    /// The cache folder snapshots are kept under (`None`: no cache, so no snapshots).
    pub cache_dir: Option<PathBuf>,
    /// A service ready faster than this after its start gets no snapshot: copying its data
    /// in would not be faster (default [`super::service_snapshot::WORTH_SECONDS`]).
    pub snapshot_worth: Duration,
    /// `--tmpfs-data`: the services' data volumes in memory (tmpfs) instead of on disk.
    pub tmpfs_data: bool,
    /// The size of each such tmpfs (`None`: a share of half the engine's memory).
    pub tmpfs_size: Option<u64>,
    /// Restore snapshots by layering over templates on the engine (else by copying).
    pub snapshot_layers: bool,
    /// The test container's plugin and results folders are this machine's where the engine
    /// shares them (else the plugin's files go through the engine's archive API).
    pub host_folders: bool,
    /// compose-shard runs the services' healthchecks itself and turns the engine's off in
    /// the run's containers ([`super::health`]); off for kept environments and with
    /// `COMPOSE_SHARD_OWN_HEALTHCHECKS=0`.
    pub own_healthchecks: bool,
    /// How many environments each engine starts at a time (`COMPOSE_SHARD_STARTS_AT_ONCE`;
    /// 0 is every one at once); `None`: by the engine's CPUs ([`super::start_turns`]).
    pub starts_at_once: Option<usize>,
    /// The CPU share of a group's tests as the last run measured it (0: they wait, 1: they
    /// compute), if known: with tests that wait, an engine starts environments in turns.
    pub tests_cpu_fraction: Option<f64>,
    /// Start pytest while the services get ready where nothing runs before it.
    pub early_start: bool,
    /// Groups join while the run goes on (`--groups auto`, dynamic, one engine).
    pub elastic: Option<Elastic>,
}

impl RunSpec {
    /// How often readiness is polled unless told otherwise (Compose polls about every 500 ms).
    pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

    /// A run of `projects` (one isolated project per group run here) with the tests in
    /// `test_service` and results in `out_dir`, everything else at its default: the default
    /// test command (`pytest`) and readiness timeout, no test-phase limit, no extra
    /// environment, images reused or built as needed, static distribution, `--copy-source
    /// auto`, every group on the first engine, no `secrets:`/`configs:` files, the default
    /// exit grace, no per-test limit, no retries, no `--until`, snapshots `auto` but no cache
    /// folder to keep them in (so none), data on disk.
    pub fn new(
        run_id: impl Into<String>,
        projects: Vec<Project>,
        test_service: impl Into<String>,
        out_dir: impl Into<PathBuf>,
    ) -> RunSpec {
        let out_dir: PathBuf = out_dir.into();
        RunSpec {
            run_id: run_id.into(),
            projects,
            test_service: test_service.into(),
            command: vec![crate::config::resolve::DEFAULT_COMMAND.to_string()],
            env: Vec::new(),
            ready_timeout: crate::config::resolve::DEFAULT_READY_TIMEOUT,
            timeout: None,
            results_root: out_dir.clone(),
            out_dir,
            keep: false,
            no_build: false,
            build: false,
            poll: Self::DEFAULT_POLL,
            files: std::collections::HashMap::new(),
            placement: Vec::new(),
            copy_source: super::source_copy::CopySource::Auto,
            dist: crate::config::Dist::Static,
            collect_only: false,
            exit_grace: crate::config::resolve::DEFAULT_EXIT_GRACE,
            test_timeout: None,
            token: super::protocol::Token::generate(),
            sweep: true,
            stall_warning: STALL_WARNING,
            retries: 0,
            until: None,
            snapshots: crate::config::Snapshots::Auto,
            cache_dir: None,
            snapshot_worth: Duration::from_secs_f64(super::service_snapshot::WORTH_SECONDS),
            tmpfs_data: false,
            tmpfs_size: None,
            snapshot_layers: true,
            host_folders: true,
            own_healthchecks: true,
            starts_at_once: None,
            tests_cpu_fraction: None,
            early_start: true,
            elastic: None,
        }
    }
}
