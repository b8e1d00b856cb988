//! Events the orchestrator emits. The display, the summary and the reports consume them;
//! nothing in the orchestrator or the engine prints.

use super::outcome::{GroupStatus, Lingering};
use crate::report::PhaseSpan;

/// What a group is doing now, for the live display (the timeline's phases are
/// [`crate::report::Phase`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Creating networks and volumes.
    Creating,
    /// Starting a service's container.
    Starting(String),
    /// Waiting for services to become ready.
    WaitingFor(Vec<String>),
    /// The test container started: its entrypoint runs and pytest collects the suite.
    Collecting,
    /// Running the tests.
    Testing,
    /// Copying result files out.
    Copying,
    /// Removing the group's resources.
    TearingDown,
    /// Finished.
    Done,
}

impl std::fmt::Display for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activity::Creating => f.write_str("creating networks and volumes"),
            Activity::Starting(s) => write!(f, "starting {s}"),
            Activity::WaitingFor(s) => write!(f, "waiting for {}", s.join(", ")),
            Activity::Collecting => f.write_str("starting the test command (collecting)"),
            Activity::Testing => f.write_str("testing"),
            Activity::Copying => f.write_str("copying results"),
            Activity::TearingDown => f.write_str("tearing down"),
            Activity::Done => f.write_str("done"),
        }
    }
}

/// How one test phase ended, as the pytest plugin reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    /// Passed.
    Passed,
    /// Failed in its call.
    Failed,
    /// Skipped (or xfailed).
    Skipped,
    /// Failed in setup or teardown.
    Error,
}

/// How one finished test ended, as the plugin's line said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// Outcome.
    pub outcome: TestOutcome,
    /// Setup, call and teardown together, if measured.
    pub seconds: Option<f64>,
}

/// Counters for one group, updated from the plugin's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// Tests planned for the group.
    pub planned: usize,
    /// Tests finished (their teardown reported).
    pub done: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Errors in setup/teardown.
    pub errors: usize,
}

/// Everything known about a finished group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// 1-based group number.
    pub group: usize,
    /// Outcome.
    pub status: GroupStatus,
    /// Counters.
    pub counts: TestCounts,
    /// Seconds from the group's start until its tests started.
    pub setup_seconds: f64,
    /// Seconds the tests ran.
    pub test_seconds: f64,
    /// Seconds spent removing the group's resources.
    pub teardown_seconds: f64,
    /// pytest's exit code, if it ran.
    pub pytest_exit: Option<i64>,
    /// Node ids that ran (teardown reported), in order.
    pub ran: Vec<String>,
    /// How each of `ran` ended, as the plugin reported it (what is left of a group whose
    /// engine died with its result files).
    pub results: Vec<TestResult>,
    /// Result files copied out, relative to the group's folder.
    pub files: Vec<std::path::PathBuf>,
    /// The tests the group was given, in its own node ids.
    pub assigned: Vec<String>,
    /// What the group spent its time on, in order, on the run's time axis.
    pub phases: Vec<PhaseSpan>,
    /// The engine it ran on (its address), when the run used several.
    pub engine: String,
    /// The test process outlived pytest (threads left behind), if it did.
    pub lingering: Option<Lingering>,
    /// CPU and wall seconds the test process spent in its tests (the plugin's measure).
    pub cpu: Option<(f64, f64)>,
}

impl GroupReport {
    /// A report of a group that has not run (yet): no tests, no phases, passed.
    pub fn new(group: usize) -> GroupReport {
        GroupReport {
            group,
            status: GroupStatus::Passed,
            counts: TestCounts::default(),
            setup_seconds: 0.0,
            test_seconds: 0.0,
            teardown_seconds: 0.0,
            pytest_exit: None,
            ran: Vec::new(),
            results: Vec::new(),
            files: Vec::new(),
            assigned: Vec::new(),
            phases: Vec::new(),
            engine: String::new(),
            lingering: None,
            cpu: None,
        }
    }

    /// The report module's plain summary of this group (tables, timeline).
    pub fn summary(&self) -> crate::report::GroupSummary {
        crate::report::GroupSummary {
            group: self.group,
            engine: self.engine.clone(),
            tests: self.counts.done,
            passed: self.counts.passed,
            failed: self.counts.failed,
            skipped: self.counts.skipped,
            errors: self.counts.errors,
            status: match self.status.problem() {
                Some(problem) => format!("crashed: {problem}"),
                None if self.status == GroupStatus::Passed => "ok".into(),
                None => self.status.label().into(),
            },
            phases: self.phases.clone(),
            warnings: self.lingering.iter().map(|l| l.to_string()).collect(),
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// General progress ("building image app").
    Info(String),
    /// Something the user must see in every display mode (how to enter a kept group).
    Notice(String),
    /// Something the user should know that does not stop the run.
    Warning(String),
    /// A group started doing something else.
    Activity {
        /// Group.
        group: usize,
        /// What it does now.
        activity: Activity,
    },
    /// The plan is known: how many tests each started group has.
    Planned {
        /// Group.
        group: usize,
        /// Number of tests.
        tests: usize,
    },
    /// A dynamic group took its next chunk of units from the queue.
    Unit {
        /// Group.
        group: usize,
        /// Units the group has taken so far.
        units: usize,
        /// Tests in this chunk (0: the queue had nothing left for it).
        tests: usize,
        /// Units left in the queue.
        remaining_units: usize,
        /// Their estimated seconds.
        remaining_seconds: f64,
    },
    /// One test finished.
    Test {
        /// Group.
        group: usize,
        /// Node id.
        node_id: String,
        /// Outcome.
        outcome: TestOutcome,
    },
    /// A group finished.
    GroupDone(Box<GroupReport>),
    /// An interrupt arrived; cleanup is under way.
    Interrupted {
        /// A second interrupt arrived.
        forced: bool,
    },
    /// Resources removed during cleanup.
    Removed(Vec<String>),
}

/// Where events go. Sending never fails the run: a display that went away is not an error.
#[derive(Debug, Clone)]
pub struct EventSink(tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink {
    /// A sink and the receiver a consumer reads from.
    pub fn channel() -> (EventSink, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (EventSink(tx), rx)
    }

    /// Emit one event.
    pub fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }
}
