//! The plain data the JUnit merge takes and returns; shared with the orchestrator, which fills
//! [`GroupResult`] without the report module knowing anything about how groups ran.

use std::path::PathBuf;

/// One group's inputs for the merge.
#[derive(Debug, Clone, Default)]
pub struct GroupResult {
    /// 1-based group number.
    pub group: usize,
    /// Number of groups in the run.
    pub groups: usize,
    /// The group's JUnit XML, if it produced one.
    pub junit: Option<PathBuf>,
    /// The group's Cobertura XML, if it produced one.
    pub coverage: Option<PathBuf>,
    /// Why results are missing or incomplete (crash, timeout...); reported as an error testcase.
    pub missing_reason: Option<String>,
    /// What compose-shard has to say about the group that is not a test's result (a test
    /// process that outlived pytest): the group's suite gets it as its `<system-err>`.
    pub system_err: Option<String>,
}

/// Testcases counted by outcome, and their time: of one group's suite or of the whole merge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseCounts {
    /// Testcase elements.
    pub tests: usize,
    /// Testcases with a `<failure>`.
    pub failures: usize,
    /// Testcases with an `<error>` (including the one standing for a group's missing
    /// results).
    pub errors: usize,
    /// Testcases with a `<skipped>`.
    pub skipped: usize,
    /// Testcases with no failure, error or skip.
    pub passed: usize,
    /// Sum of the testcases' times, in seconds.
    pub time: f64,
}

impl CaseCounts {
    /// Add `other`'s counts and time to these.
    pub fn add(&mut self, other: &CaseCounts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.passed += other.passed;
        self.time += other.time;
    }
}

/// Totals of one group's suite in the merged JUnit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTotals {
    /// 1-based group number.
    pub group: usize,
    /// The suite's testcases.
    pub counts: CaseCounts,
    /// Why the group's results are missing, if they are.
    pub missing_reason: Option<String>,
}

/// Whether a failed test failed (assertion) or errored (setup, teardown, collection, crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A `<failure>`.
    Failure,
    /// An `<error>`.
    Error,
}

/// A failed or errored test, with where to point a reader.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedTest {
    /// The pytest node id (or `group k/N` for a group whose results are missing).
    pub node_id: String,
    /// The group it ran in.
    pub group: usize,
    /// Failure or error.
    pub kind: FailureKind,
    /// File to point at, relative to the rootdir, if known.
    pub file: Option<String>,
    /// 1-based line in `file`, if known.
    pub line: Option<u32>,
    /// The failure's message.
    pub message: String,
}

/// Totals recomputed from the testcases of every group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitTotals {
    /// Every group's testcases.
    pub counts: CaseCounts,
    /// Per-group totals, in group order.
    pub per_group: Vec<GroupTotals>,
    /// Node ids that ran in more than one group (sorted).
    pub duplicates: Vec<String>,
    /// Collected node ids that no group ran (in collection order); empty when the collection
    /// was not given.
    pub never_run: Vec<String>,
    /// Every failed or errored testcase, group by group.
    pub failed_tests: Vec<FailedTest>,
    /// Measured `(node id, seconds)`, group by group: setup + call + teardown, summed per node
    /// id within a group (what pytest-split stores; see [`crate::report::junit_durations`]).
    /// The synthetic testcases of missing groups are not included.
    pub durations: Vec<(String, f64)>,
}

impl JunitTotals {
    /// Whether everything passed: no failure, no error, nothing missing or run twice.
    pub fn all_passed(&self) -> bool {
        self.counts.failures == 0
            && self.counts.errors == 0
            && self.never_run.is_empty()
            && self.duplicates.is_empty()
    }
}
