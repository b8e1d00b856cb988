//! The terminal summary: one row per group, a totals row, and what went wrong (duplicates,
//! never-run tests, failures), plus a slowest-tests list. Plain text, no colour: the caller
//! decides where it goes.

use std::fmt::Write as _;

use super::junit_types::{FailureKind, JunitTotals};
use super::phase::{Phase, PhaseSpan};

/// Plain per-group data for summaries and the timeline (filled by the orchestrator).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSummary {
    /// 1-based group number.
    pub group: usize,
    /// Testcases run.
    pub tests: usize,
    /// Testcases passed.
    pub passed: usize,
    /// Testcases failed.
    pub failed: usize,
    /// Testcases skipped.
    pub skipped: usize,
    /// Testcases errored.
    pub errors: usize,
    /// `ok`, `failed`, or `crashed: <reason>`.
    pub status: String,
    /// What the group spent its time on, in order.
    pub phases: Vec<PhaseSpan>,
    /// The engine it ran on, when a run used several (empty otherwise).
    pub engine: String,
    /// What must be seen although it did not change the group's outcome (a test process that
    /// outlived pytest).
    pub warnings: Vec<String>,
}

/// Per-group summaries from merged totals alone (no phase timings), for `merge`.
pub fn summaries_from_junit(totals: &JunitTotals) -> Vec<GroupSummary> {
    totals
        .per_group
        .iter()
        .map(|g| GroupSummary {
            group: g.group,
            tests: g.counts.tests,
            passed: g.counts.passed,
            failed: g.counts.failures,
            skipped: g.counts.skipped,
            errors: g.counts.errors,
            status: match &g.missing_reason {
                Some(reason) => format!("crashed: {reason}"),
                None if g.counts.failures + g.counts.errors > 0 => "failed".into(),
                None => "ok".into(),
            },
            engine: String::new(),
            warnings: Vec::new(),
            phases: vec![PhaseSpan {
                phase: Phase::Tests,
                start: 0.0,
                end: g.counts.time,
            }],
        })
        .collect()
}

/// Seconds spent in the `tests` phase, or from the first phase's start to the last's end
/// when there is no such phase.
pub(crate) fn wall_time(group: &GroupSummary) -> Option<f64> {
    let tests = group.phases.iter().find(|p| p.phase == Phase::Tests);
    match tests {
        Some(p) => Some(p.end - p.start),
        None => {
            let start = group.phases.iter().map(|p| p.start).reduce(f64::min)?;
            let end = group.phases.iter().map(|p| p.end).reduce(f64::max)?;
            Some(end - start)
        }
    }
}

/// The totals row of a group table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TotalRow {
    /// Tests.
    pub tests: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Errors.
    pub errors: usize,
    /// Skipped.
    pub skipped: usize,
    /// Seconds of test time.
    pub time: f64,
    /// Everything passed.
    pub ok: bool,
}

/// The table `merge` prints: the group table with the merged JUnit's totals, then what went
/// wrong (duplicates, never-run tests, failures).
pub fn render_summary_table(groups: &[GroupSummary], totals: &JunitTotals) -> String {
    let total = TotalRow {
        tests: totals.counts.tests,
        passed: totals.counts.passed,
        failed: totals.counts.failures,
        errors: totals.counts.errors,
        skipped: totals.counts.skipped,
        time: totals.counts.time,
        ok: totals.all_passed(),
    };
    let mut out = render_group_table(groups, &total);
    append_problems(&mut out, totals);
    out
}

/// Seconds a group spent getting ready: its environment, readiness and collection phases.
fn setup_time(group: &GroupSummary) -> Option<f64> {
    let setup: Vec<f64> = group
        .phases
        .iter()
        .filter(|p| p.phase.is_setup())
        .map(PhaseSpan::seconds)
        .collect();
    (!setup.is_empty()).then(|| setup.iter().sum())
}

/// A status cell: the first line, at most 40 characters (the reasons are printed in full
/// elsewhere).
fn short_status(status: &str) -> String {
    let first = status.lines().next().unwrap_or_default();
    if first.chars().count() <= 40 {
        return first.to_string();
    }
    let mut cut: String = first.chars().take(39).collect();
    cut.push('…');
    cut
}

/// The one table of groups, for `run` and `merge` alike: tests, outcomes, setup and test
/// time (from the phases; `-` when unknown) and status per group, then the totals row.
pub fn render_group_table(groups: &[GroupSummary], total: &TotalRow) -> String {
    let header = [
        "group", "tests", "passed", "failed", "errors", "skipped", "setup", "time", "status",
    ];
    let mut rows: Vec<[String; 9]> = groups
        .iter()
        .map(|g| {
            [
                g.group.to_string(),
                g.tests.to_string(),
                g.passed.to_string(),
                g.failed.to_string(),
                g.errors.to_string(),
                g.skipped.to_string(),
                setup_time(g).map_or("-".into(), format_seconds),
                wall_time(g).map_or("-".into(), format_seconds),
                short_status(&g.status),
            ]
        })
        .collect();
    rows.push([
        "total".into(),
        total.tests.to_string(),
        total.passed.to_string(),
        total.failed.to_string(),
        total.errors.to_string(),
        total.skipped.to_string(),
        String::new(),
        format_seconds(total.time),
        if total.ok { "ok" } else { "failed" }.into(),
    ]);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Numbers right-aligned, words left-aligned.
            if (1..=7).contains(&i) {
                let _ = write!(text, "{cell:>w$}  ");
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for (i, row) in rows.iter().enumerate() {
        if i + 1 == rows.len() {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
        line(&mut out, &row.each_ref().map(String::as_str));
    }
    out
}

/// `title (n):` and the first 20 node ids, when there are any.
fn append_ids(out: &mut String, title: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title} ({}):", ids.len());
    for id in ids.iter().take(20) {
        let _ = writeln!(out, "  {id}");
    }
}

fn append_problems(out: &mut String, totals: &JunitTotals) {
    append_ids(out, "ran in more than one group", &totals.duplicates);
    append_ids(out, "collected but never run", &totals.never_run);
    if !totals.failed_tests.is_empty() {
        let _ = writeln!(out, "\nfailed ({}):", totals.failed_tests.len());
        for f in totals.failed_tests.iter().take(50) {
            let kind = match f.kind {
                FailureKind::Failure => "FAILED",
                FailureKind::Error => "ERROR ",
            };
            let _ = writeln!(out, "  {kind} [g{}] {} - {}", f.group, f.node_id, f.message);
        }
        if totals.failed_tests.len() > 50 {
            let _ = writeln!(out, "  ... and {} more", totals.failed_tests.len() - 50);
        }
    }
}

/// `1.234s`, `2m03s`, `1h02m`.
pub(crate) fn format_seconds(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 60.0 {
        return format!("{secs:.2}s");
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

/// The `count` slowest tests, slowest first, from `(node id, seconds)` pairs.
pub fn render_slowest(durations: &[(String, f64)], count: usize) -> String {
    let slower =
        |a: &&(String, f64), b: &&(String, f64)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    let mut sorted: Vec<&(String, f64)> = durations.iter().collect();
    // Only the top `count` need ordering; a full sort of every test would dominate a merge.
    if count > 0 && sorted.len() > count {
        sorted.select_nth_unstable_by(count - 1, slower);
        sorted.truncate(count);
    }
    sorted.sort_by(slower);
    let mut out = format!("slowest {} tests:\n", count.min(sorted.len()));
    for (id, secs) in sorted.into_iter().take(count) {
        let _ = writeln!(out, "  {:>9}  {id}", format_seconds(*secs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit_types::{CaseCounts, FailedTest, GroupTotals};

    fn totals() -> JunitTotals {
        JunitTotals {
            counts: CaseCounts {
                tests: 5,
                failures: 1,
                errors: 1,
                skipped: 0,
                passed: 3,
                time: 75.0,
            },
            per_group: vec![
                GroupTotals {
                    group: 1,
                    counts: CaseCounts {
                        tests: 4,
                        failures: 1,
                        passed: 3,
                        time: 70.0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                GroupTotals {
                    group: 2,
                    counts: CaseCounts {
                        tests: 1,
                        errors: 1,
                        ..Default::default()
                    },
                    missing_reason: Some("timeout after 30m".into()),
                },
            ],
            duplicates: vec![],
            never_run: vec!["t.py::gone".into()],
            failed_tests: vec![FailedTest {
                node_id: "t.py::test_a".into(),
                group: 1,
                kind: FailureKind::Failure,
                file: Some("t.py".into()),
                line: Some(3),
                message: "assert 1 == 2".into(),
            }],
            durations: vec![],
        }
    }

    #[test]
    fn a_run_table_shows_setup_from_the_phases_and_cuts_long_statuses() {
        let phase = |phase: Phase, start: f64, end: f64| PhaseSpan { phase, start, end };
        let groups = vec![GroupSummary {
            group: 1,
            tests: 2,
            passed: 2,
            status: format!("crashed: {}\n--- last lines ---", "x".repeat(80)),
            phases: vec![
                phase(Phase::Environment, 1.0, 4.0),
                phase(Phase::Readiness, 4.0, 5.0),
                phase(Phase::Collection, 5.0, 6.5),
                phase(Phase::Tests, 6.5, 16.5),
            ],
            ..GroupSummary::default()
        }];
        let table = render_group_table(&groups, &TotalRow::default());
        let row = table.lines().nth(1).unwrap();
        assert!(row.contains(" 5.50s  10.00s  crashed: xxx"), "{row}");
        assert!(
            row.ends_with('…') && !table.contains("last lines"),
            "{table}"
        );
    }

    #[test]
    fn table_has_groups_totals_and_problems() {
        let t = totals();
        let table = render_summary_table(&summaries_from_junit(&t), &t);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "group  tests  passed  failed  errors  skipped  setup   time  status"
        );
        assert_eq!(
            lines[1],
            "1          4       3       1       0        0      -  1m10s  failed"
        );
        assert_eq!(
            lines[2],
            "2          1       0       0       1        0      -  0.00s  crashed: timeout after 30m"
        );
        assert!(
            lines[4]
                .starts_with("total      5       3       1       1        0         1m15s  failed"),
            "{}",
            lines[4]
        );
        assert!(table.contains("collected but never run (1):\n  t.py::gone"));
        assert!(table.contains("FAILED [g1] t.py::test_a - assert 1 == 2"));
    }

    #[test]
    fn slowest_first_and_capped() {
        let d = vec![("a".into(), 1.0), ("b".into(), 3.0), ("c".into(), 2.0)];
        assert_eq!(
            render_slowest(&d, 2),
            "slowest 2 tests:\n      3.00s  b\n      2.00s  c\n"
        );
    }
}
