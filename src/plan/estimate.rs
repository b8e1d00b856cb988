//! Durations for tests that have none recorded (new tests, renamed parameters).
//!
//! The rule: the median of the recorded durations of tests in the same file; for a file with
//! no recorded test, the median of all recorded durations; with no durations at all, 1 second.
//! Median rather than pytest-split's mean because real durations are heavy-tailed: one slow
//! integration test would otherwise inflate the guess for every new unit test. The same file
//! first because tests in one file share fixtures and therefore cost. All recorded entries
//! count, also those of tests not selected by this collection (`-k`, `-m`): they are still
//! measurements of the same code base.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::durations::Durations;
use super::node_id::module_of;

/// Seconds assumed per test when nothing at all is recorded (pytest-split's choice too).
pub const DEFAULT_SECONDS: f64 = 1.0;

/// Where the fallback for files without recorded tests came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackSource {
    /// The median of every recorded duration.
    MedianOfAll,
    /// Nothing was recorded: [`DEFAULT_SECONDS`].
    Default,
}

/// Which estimate was used for tests without a recorded duration (part of the plan JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The rule, a stable identifier: always `"median-of-file"` (median of the same file's
    /// recorded tests, else `fallback_seconds`).
    pub rule: String,
    /// Seconds used for a test whose file has no recorded test.
    pub fallback_seconds: f64,
    /// How `fallback_seconds` was obtained.
    pub fallback_source: FallbackSource,
    /// Collected tests that had a recorded duration.
    pub recorded_tests: usize,
    /// Collected tests whose duration was estimated.
    pub estimated_tests: usize,
}

/// The rule's identifier in [`Estimate::rule`].
pub const RULE: &str = "median-of-file";

/// Gives every test a duration: the recorded one, or the estimate.
#[derive(Debug)]
pub struct Estimator<'a> {
    durations: &'a Durations,
    per_module: HashMap<&'a str, f64>,
    fallback_seconds: f64,
    fallback_source: FallbackSource,
}

impl<'a> Estimator<'a> {
    /// Precompute the per-file and overall medians of `durations`.
    pub fn new(durations: &'a Durations) -> Self {
        let mut by_module: HashMap<&str, Vec<f64>> = HashMap::new();
        for (id, &secs) in &durations.0 {
            by_module.entry(module_of(id)).or_default().push(secs);
        }
        let mut all: Vec<f64> = durations.0.values().copied().collect();
        let (fallback_seconds, fallback_source) = match median(&mut all) {
            Some(m) => (m, FallbackSource::MedianOfAll),
            None => (DEFAULT_SECONDS, FallbackSource::Default),
        };
        let per_module = by_module
            .into_iter()
            .filter_map(|(module, mut secs)| median(&mut secs).map(|m| (module, m)))
            .collect();
        Estimator {
            durations,
            per_module,
            fallback_seconds,
            fallback_source,
        }
    }

    /// The recorded duration of `node_id`, if any.
    pub fn recorded(&self, node_id: &str) -> Option<f64> {
        self.durations.get(node_id)
    }

    /// Whether the module (file) of `node_id` has recorded tests, so that its estimate is
    /// their median rather than a guess from other files.
    pub fn knows_module(&self, node_id: &str) -> bool {
        self.per_module.contains_key(module_of(node_id))
    }

    /// The estimate for a test without a recorded duration.
    pub fn estimate(&self, node_id: &str) -> f64 {
        self.per_module
            .get(module_of(node_id))
            .copied()
            .unwrap_or(self.fallback_seconds)
    }

    /// The summary stored in the plan, given how many tests were recorded and estimated.
    pub fn summary(&self, recorded_tests: usize, estimated_tests: usize) -> Estimate {
        Estimate {
            rule: RULE.to_string(),
            fallback_seconds: self.fallback_seconds,
            fallback_source: self.fallback_source,
            recorded_tests,
            estimated_tests,
        }
    }
}

/// The median (mean of the two middle values for an even count); `None` when empty. The
/// values are finite (durations are validated on parse), so `total_cmp` is a plain order.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durations(pairs: &[(&str, f64)]) -> Durations {
        Durations(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn same_file_median_then_overall_median_then_default() {
        let d = durations(&[
            ("a.py::t1", 1.0),
            ("a.py::t2", 3.0),
            ("a.py::C::t3", 10.0),
            ("b.py::t1", 0.5),
        ]);
        let e = Estimator::new(&d);
        // a.py: median of 1, 3, 10.
        assert_eq!(e.estimate("a.py::new"), 3.0);
        assert_eq!(e.estimate("a.py::C::new[x::y]"), 3.0);
        assert_eq!(e.estimate("b.py::new"), 0.5);
        // Overall: median of 0.5, 1, 3, 10.
        assert_eq!(e.estimate("c.py::new"), 2.0);
        assert_eq!(e.summary(4, 2).fallback_source, FallbackSource::MedianOfAll);

        let empty = Durations::default();
        let e = Estimator::new(&empty);
        assert_eq!(e.estimate("a.py::t"), DEFAULT_SECONDS);
        let s = e.summary(0, 1);
        assert_eq!(s.fallback_source, FallbackSource::Default);
        assert_eq!(s.rule, RULE);
    }
}
