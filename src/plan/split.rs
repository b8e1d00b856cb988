//! From collected tests and durations to a [`Plan`]: give every test a duration, gather tests
//! into units per `--split-by`, balance the units (see `balance.rs`), and list each
//! group's tests in collection order.
//!
//! Only the unit names and weights reach the balancer, with units numbered in name order, so
//! the groups do not depend on collection order or on hash-map iteration order; collection
//! order only decides the order of tests inside a group.

use std::collections::{HashMap, HashSet};

use super::balance::{balance, longest_first};
use super::durations::Durations;
use super::estimate::Estimator;
use super::model::{GroupPlan, Plan, PLAN_VERSION};
use super::node_id::unit_of;
use super::PlanError;
use crate::config::SplitBy;

/// Whole microseconds, the balancer's unit of weight (saturating for absurdly large values).
pub fn to_micros(seconds: f64) -> u64 {
    // `as` saturates, and durations are validated non-negative and finite on parse.
    (seconds * 1e6).round() as u64
}

fn to_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// The most groups a plan may have. A fixed limit rather than one tied to the number of tests,
/// because groups without tests are allowed (a CI matrix keeps its width when tests are
/// removed); it only stops a typo (`--groups 100000`) from printing megabytes of empty groups.
/// It is four times the 256 jobs a GitHub Actions matrix can have.
pub const MAX_GROUPS: usize = 1024;

/// Pure and deterministic. 1 <= groups <= [`MAX_GROUPS`] (else PlanError::NoGroups). A test listed twice is
/// planned once, at its first position.
pub fn split(
    tests: &[String],
    durations: &Durations,
    groups: usize,
    split_by: SplitBy,
) -> Result<Plan, PlanError> {
    if groups == 0 {
        return Err(PlanError::NoGroups);
    }
    if groups > MAX_GROUPS {
        return Err(PlanError::TooManyGroups(groups));
    }
    let estimator = Estimator::new(durations);
    let units = Units::gather(tests, &estimator, split_by);
    let assignment = balance(&units.weights, groups);
    let longest_first_max = longest_first(&units.weights, groups).max_load();

    let mut plans: Vec<GroupPlan> = (0..groups)
        .map(|g| GroupPlan {
            group: g + 1,
            tests: Vec::new(),
            estimated_seconds: to_seconds(assignment.loads[g]),
            units: 0,
            estimated_tests: 0,
        })
        .collect();
    for (unit, &g) in assignment.group_of.iter().enumerate() {
        plans[g].units += 1;
        plans[g].estimated_tests += units.estimated_tests[unit];
    }
    for &(test, unit) in &units.tests {
        plans[assignment.group_of[unit]]
            .tests
            .push(tests[test].clone());
    }
    let recorded = units.tests.len() - units.estimated_tests.iter().sum::<usize>();
    Ok(Plan {
        version: PLAN_VERSION,
        split_by,
        estimate: estimator.summary(recorded, units.tests.len() - recorded),
        estimated_seconds: to_seconds(assignment.loads.iter().sum()),
        longest_first_slowest_seconds: to_seconds(longest_first_max),
        groups: plans,
    })
}

/// Units numbered in name order, with their weights.
pub(super) struct Units<'t> {
    /// Unit names (test, class or module per `--split-by`), in name order.
    pub names: Vec<&'t str>,
    /// Weight per unit, microseconds.
    pub weights: Vec<u64>,
    /// Tests with an estimated duration, per unit.
    pub estimated_tests: Vec<usize>,
    /// `(index into the collected tests, unit)` in collection order, duplicates removed.
    pub tests: Vec<(usize, usize)>,
}

impl<'t> Units<'t> {
    pub(super) fn gather(
        tests: &'t [String],
        estimator: &Estimator<'_>,
        split_by: SplitBy,
    ) -> Units<'t> {
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        let mut weights: Vec<u64> = Vec::new();
        let mut estimated: Vec<usize> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(tests.len());
        let mut members = Vec::with_capacity(tests.len());
        for (i, test) in tests.iter().enumerate() {
            if !seen.insert(test) {
                continue;
            }
            let name = unit_of(test, split_by);
            let unit = *index_of.entry(name).or_insert_with(|| {
                names.push(name);
                weights.push(0);
                estimated.push(0);
                names.len() - 1
            });
            let seconds = match estimator.recorded(test) {
                Some(s) => s,
                None => {
                    estimated[unit] += 1;
                    estimator.estimate(test)
                }
            };
            weights[unit] = weights[unit].saturating_add(to_micros(seconds));
            members.push((i, unit));
        }
        // Renumber units in name order so that ties are broken by name.
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_unstable_by_key(|&u| names[u]);
        let mut rank = vec![0; names.len()];
        for (r, &u) in by_name.iter().enumerate() {
            rank[u] = r;
        }
        Units {
            names: by_name.iter().map(|&u| names[u]).collect(),
            weights: by_name.iter().map(|&u| weights[u]).collect(),
            estimated_tests: by_name.iter().map(|&u| estimated[u]).collect(),
            tests: members.into_iter().map(|(i, u)| (i, rank[u])).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn durations(pairs: &[(&str, f64)]) -> Durations {
        Durations(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn classes_stay_together_and_order_is_kept() {
        let tests = ids(&[
            "t.py::TestA::test_1",
            "t.py::test_free",
            "t.py::TestA::test_2[x::y]",
            "u.py::TestB::test_1",
        ]);
        let d = durations(&[
            ("t.py::TestA::test_1", 2.0),
            ("t.py::TestA::test_2[x::y]", 2.0),
            ("t.py::test_free", 1.0),
            ("u.py::TestB::test_1", 3.0),
        ]);
        let plan = split(&tests, &d, 2, SplitBy::Class).unwrap();
        let g1 = &plan.groups[0];
        assert_eq!(
            g1.tests,
            ids(&["t.py::TestA::test_1", "t.py::TestA::test_2[x::y]"])
        );
        assert_eq!(g1.estimated_seconds, 4.0);
        assert_eq!(
            plan.groups[1].tests,
            ids(&["t.py::test_free", "u.py::TestB::test_1"])
        );
        assert_eq!(plan.total_tests(), 4);
        assert_eq!(plan.estimate.estimated_tests, 0);
    }

    #[test]
    fn zero_groups_is_an_error_and_duplicates_are_planned_once() {
        let tests = ids(&["a.py::t", "a.py::t"]);
        assert!(matches!(
            split(&tests, &Durations::default(), 0, SplitBy::Test),
            Err(PlanError::NoGroups)
        ));
        let plan = split(&tests, &Durations::default(), 3, SplitBy::Test).unwrap();
        assert_eq!(plan.total_tests(), 1);
        assert_eq!(plan.estimate.estimated_tests, 1);
        assert_eq!(plan.groups[0].estimated_seconds, 1.0);
        assert!(plan.groups[1].tests.is_empty() && plan.groups[2].tests.is_empty());
    }

    #[test]
    fn unknown_tests_get_their_file_median() {
        let tests = ids(&["a.py::new", "b.py::new"]);
        let d = durations(&[("a.py::old1", 4.0), ("a.py::old2", 6.0), ("c.py::x", 0.5)]);
        let plan = split(&tests, &d, 1, SplitBy::Test).unwrap();
        // a.py: median 5; b.py: overall median of 0.5, 4, 6 = 4.
        assert_eq!(plan.groups[0].estimated_seconds, 9.0);
        assert_eq!(plan.estimate.fallback_seconds, 4.0);
    }
}
