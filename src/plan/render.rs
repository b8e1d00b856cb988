//! Human and CI renderings of a [`Plan`] (`plan --format text|github-matrix`); the JSON form
//! is [`Plan::to_json`].

use std::fmt::Write as _;

use super::estimate::FallbackSource;
use super::model::Plan;

/// table: group, tests, est. seconds; imbalance (slowest/mean); empty groups reported
///
/// Also the number of units per group and, when some tests had no recorded duration, how
/// many and what they were estimated at.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:>7}  {:>7}  {:>12}",
        "group", "tests", "units", "est. seconds"
    );
    for g in &plan.groups {
        let _ = writeln!(
            out,
            "{:>5}  {:>7}  {:>7}  {:>12.1}{}",
            g.group,
            g.tests.len(),
            g.units,
            g.estimated_seconds,
            if g.tests.is_empty() { "  (empty)" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "{:>5}  {:>7}  {:>7}  {:>12.1}",
        "total",
        plan.total_tests(),
        plan.groups.iter().map(|g| g.units).sum::<usize>(),
        plan.estimated_seconds
    );
    let mean = plan.estimated_seconds / plan.groups.len().max(1) as f64;
    let slowest = plan.slowest_seconds();
    if mean > 0.0 {
        let _ = writeln!(
            out,
            "imbalance: {:.3} (slowest group {slowest:.1} s / mean {mean:.1} s; longest-first alone: {:.1} s)",
            slowest / mean,
            plan.longest_first_slowest_seconds
        );
    } else if plan.total_tests() == 0 {
        let _ = writeln!(out, "imbalance: none (no tests)");
    } else {
        let _ = writeln!(out, "imbalance: unknown (every test counts as 0 s)");
    }
    let empty: Vec<String> = plan
        .groups
        .iter()
        .filter(|g| g.tests.is_empty())
        .map(|g| g.group.to_string())
        .collect();
    if !empty.is_empty() {
        let _ = writeln!(
            out,
            "empty groups: {} (fewer units than groups, or units too heavy to share); they run nothing and pass",
            empty.join(", ")
        );
    }
    let e = &plan.estimate;
    if e.estimated_tests > 0 {
        let fallback = match e.fallback_source {
            FallbackSource::MedianOfAll => "the median of all recorded tests",
            FallbackSource::Default => "the default, as nothing is recorded",
        };
        let _ = writeln!(
            out,
            "estimated: {} of {} tests have no recorded duration; each counts as the median of its file's recorded tests, else {:.3} s ({fallback})",
            e.estimated_tests,
            e.estimated_tests + e.recorded_tests,
            e.fallback_seconds
        );
    }
    out
}

/// {"group":[1,..,N]} plus N, documented so `run --groups N --only K` works per matrix job.
///
/// One line, `{"group":[1,2,3],"groups":[3]}`, for `strategy.matrix: ${{ fromJSON(...) }}`.
/// `groups` is a one-value dimension, so it does not multiply the jobs; each job runs
/// `compose-shard run --groups ${{ matrix.groups }} --only ${{ matrix.group }}`, which plans
/// again and gets the same groups because planning is deterministic.
pub fn render_github_matrix(plan: &Plan) -> String {
    let n = plan.groups.len();
    let groups: Vec<usize> = (1..=n).collect();
    let value = serde_json::json!({ "group": groups, "groups": [n] });
    format!("{value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SplitBy;
    use crate::plan::{split, Durations};

    #[test]
    fn zero_second_and_empty_suites_have_no_imbalance_ratio() {
        let tests = vec!["a.py::t".to_string()];
        let zero = Durations([("a.py::t".to_string(), 0.0)].into_iter().collect());
        let text = render_text(&split(&tests, &zero, 2, SplitBy::Test).unwrap());
        assert!(
            text.contains("imbalance: unknown (every test counts as 0 s)"),
            "{text}"
        );
        let text = render_text(&split(&[], &zero, 2, SplitBy::Test).unwrap());
        assert!(text.contains("imbalance: none (no tests)"), "{text}");
        assert!(text.contains("empty groups: 1, 2"), "{text}");
    }

    #[test]
    fn matrix_has_one_entry_per_group() {
        let plan = split(&[], &Durations::default(), 1, SplitBy::Class).unwrap();
        assert_eq!(
            render_github_matrix(&plan),
            "{\"group\":[1],\"groups\":[1]}\n"
        );
    }
}
