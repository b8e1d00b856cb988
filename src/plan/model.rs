//! The plan: which tests each group runs, and its stable JSON form (`plan --format json`,
//! `compose-shard-results/plan.json`, `run --plan FILE`). The schema is documented in
//! docs/planning.md; fields are only ever added, and `version` changes if one changes meaning.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::estimate::Estimate;
use super::PlanError;
use crate::config::SplitBy;

/// The schema version this build writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// Tests split into groups 1..=N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Schema version, [`PLAN_VERSION`].
    pub version: u32,
    /// What was kept together.
    pub split_by: SplitBy,
    /// The estimate used for tests without a recorded duration.
    pub estimate: Estimate,
    /// Sum of all groups' estimates, in seconds.
    pub estimated_seconds: f64,
    /// The slowest group's estimate that plain longest-first (pytest-split's
    /// `least_duration`) would have given on the same units; the plan's slowest group is never
    /// above it.
    pub longest_first_slowest_seconds: f64,
    /// Every group, in order; `groups[k - 1].group == k`.
    pub groups: Vec<GroupPlan>,
}

/// One group's share of the tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// 1-based group number.
    pub group: usize,
    /// Node ids in pytest's collection order.
    pub tests: Vec<String>,
    /// Sum of the tests' recorded or estimated durations, in seconds.
    pub estimated_seconds: f64,
    /// How many units (tests, classes or modules, per `split_by`) the group holds.
    pub units: usize,
    /// How many of `tests` had no recorded duration.
    pub estimated_tests: usize,
}

impl Plan {
    /// Pretty-printed JSON in the documented schema.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan always serializes");
        text.push('\n');
        text
    }

    /// Read a plan written by [`Plan::to_json`], checking the version, the group numbering and
    /// that no test is in two groups.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let invalid = |line: usize, column: usize, message: String| PlanError::PlanFormat {
            line,
            column,
            message,
        };
        let probe: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.line(), e.column(), e.to_string()))?;
        match probe.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(PLAN_VERSION) => {}
            Some(v) => {
                return Err(invalid(1, 1, format!(
                    "plan version {v} is not supported by this compose-shard (it reads version {PLAN_VERSION}); recreate the plan with this version"
                )))
            }
            None => {
                return Err(invalid(
                    1,
                    1,
                    "no \"version\" field; this is not a compose-shard plan".into(),
                ))
            }
        }
        let plan: Plan = serde_json::from_value(probe).map_err(|e| invalid(1, 1, e.to_string()))?;
        plan.check().map_err(|message| invalid(1, 1, message))?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), String> {
        if self.groups.is_empty() {
            return Err("the plan has no groups".into());
        }
        let mut seen = HashSet::new();
        for (index, group) in self.groups.iter().enumerate() {
            if group.group != index + 1 {
                return Err(format!(
                    "groups must be numbered 1, 2, ... in order; entry {} has number {}",
                    index + 1,
                    group.group
                ));
            }
            if let Some(dup) = group.tests.iter().find(|t| !seen.insert(t.as_str())) {
                return Err(format!(
                    "test {dup:?} appears more than once (again in group {})",
                    group.group
                ));
            }
        }
        Ok(())
    }

    /// Group `k` (1-based).
    pub fn group(&self, k: usize) -> Option<&GroupPlan> {
        k.checked_sub(1).and_then(|i| self.groups.get(i))
    }

    /// Number of tests over all groups.
    pub fn total_tests(&self) -> usize {
        self.groups.iter().map(|g| g.tests.len()).sum()
    }

    /// The slowest group's estimate in seconds (0 when there are no tests).
    pub fn slowest_seconds(&self) -> f64 {
        self.groups
            .iter()
            .map(|g| g.estimated_seconds)
            .fold(0.0, f64::max)
    }
}
