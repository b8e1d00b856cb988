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
        let invalid = |(line, column): (usize, usize), message: String| PlanError::PlanFormat {
            line,
            column,
            message,
        };
        let probe: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| invalid((e.line(), e.column()), e.to_string()))?;
        let version_at = || locate(text, "\"version\"", 0);
        match probe.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(PLAN_VERSION) => {}
            Some(v) => {
                return Err(invalid(version_at(), format!(
                    "plan version {v} is not supported by this compose-shard (it reads version {PLAN_VERSION}); recreate the plan with `compose-shard plan --format json`"
                )))
            }
            None => {
                return Err(invalid(
                    (1, 1),
                    "no numeric \"version\" field; this is not a compose-shard plan".into(),
                ))
            }
        }
        // Re-parse from the text rather than the probe so serde reports line and column.
        let plan: Plan = serde_json::from_str(text)
            .map_err(|e| invalid((e.line(), e.column()), e.to_string()))?;
        plan.check(text)
            .map_err(|(at, message)| invalid(at, message))?;
        Ok(plan)
    }

    fn check(&self, text: &str) -> Result<(), ((usize, usize), String)> {
        if self.groups.is_empty() {
            return Err((
                locate(text, "\"groups\"", 0),
                "the plan has no groups; plans have at least one".into(),
            ));
        }
        let mut seen = HashSet::new();
        for (index, group) in self.groups.iter().enumerate() {
            if group.group != index + 1 {
                return Err((
                    locate(text, "\"group\":", index),
                    format!(
                        "groups must be numbered 1, 2, ... in order, but entry {} has number {}",
                        index + 1,
                        group.group
                    ),
                ));
            }
            for test in &group.tests {
                if !seen.insert(test.as_str()) {
                    let needle = serde_json::to_string(test).expect("strings serialize");
                    return Err((
                        locate(text, &needle, 1),
                        format!(
                            "test {test:?} appears more than once (again in group {}); every test must be in exactly one group",
                            group.group
                        ),
                    ));
                }
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

/// Line and column (1-based) of the `nth` (0-based) occurrence of `needle`, or (1, 1).
fn locate(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let Some((at, _)) = text.match_indices(needle).nth(nth) else {
        return (1, 1);
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{split, Durations};

    fn sample() -> String {
        let tests: Vec<String> = ["a.py::t1", "a.py::t2", "b.py::t[x]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        split(&tests, &Durations::default(), 2, SplitBy::Test)
            .unwrap()
            .to_json()
    }

    fn error(text: &str) -> (usize, usize, String) {
        match Plan::from_json(text).unwrap_err() {
            PlanError::PlanFormat {
                line,
                column,
                message,
            } => (line, column, message),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn reads_back_what_it_writes() {
        let text = sample();
        let plan = Plan::from_json(&text).unwrap();
        assert_eq!(plan.to_json(), text);
        assert_eq!(plan.group(1).unwrap().group, 1);
        assert!(plan.group(0).is_none() && plan.group(3).is_none());
        assert_eq!(plan.total_tests(), 3);
    }

    #[test]
    fn other_versions_are_refused_at_the_version_field() {
        let text = sample().replace("\"version\": 1", "\"version\": 2");
        let (line, column, message) = error(&text);
        assert_eq!((line, column), (2, 3));
        assert!(message.contains("version 2 is not supported"), "{message}");
        assert!(error("{}").2.contains("not a compose-shard plan"));
    }

    #[test]
    fn duplicate_tests_and_bad_numbering_are_located() {
        let text = sample().replacen("\"b.py::t[x]\"", "\"a.py::t1\"", 1);
        let (line, _, message) = error(&text);
        assert!(
            message.contains("\"a.py::t1\" appears more than once"),
            "{message}"
        );
        let dup_line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("a.py::t1"))
            .nth(1)
            .unwrap()
            .0
            + 1;
        assert_eq!(line, dup_line);

        let text = sample().replace("\"group\": 2", "\"group\": 5");
        let (line, _, message) = error(&text);
        assert!(message.contains("entry 2 has number 5"), "{message}");
        assert!(text.lines().nth(line - 1).unwrap().contains("\"group\": 5"));
    }

    #[test]
    fn errors_can_name_their_file() {
        let err = Plan::from_json("[]")
            .unwrap_err()
            .in_file("results/plan.json");
        let text = crate::errors::render_chain(&err);
        assert!(
            text.starts_with("results/plan.json: invalid plan at line 1"),
            "{text}"
        );
    }

    #[test]
    fn malformed_json_reports_serde_location() {
        let (line, _, _) = error("{\n  \"version\": 1,\n  \"groups\": [,]\n}");
        assert_eq!(line, 3);
    }
}
