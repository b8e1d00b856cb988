//! The end-of-run summary: a table of groups, the overall result, the command that reproduces
//! a failed group, and the exit code.

use std::fmt::Write;

use super::explain::FailureClass;
use super::orchestrator::RunOutcome;
use super::outcome::GroupStatus;
use crate::errors::ExitCode;

/// The exit code for a finished (not interrupted) run: 3 if any environment failed, 2 if the
/// suite could not be collected, 1 if any test failed, timed out or did not run, 0 otherwise.
pub fn exit_code(outcome: &RunOutcome) -> ExitCode {
    if let Some(fatal) = &outcome.fatal {
        return fatal.exit_code();
    }
    if outcome
        .groups
        .iter()
        .any(|g| matches!(g.status, GroupStatus::Environment(_)))
    {
        return ExitCode::Environment;
    }
    if outcome
        .groups
        .iter()
        .any(|g| matches!(g.status, GroupStatus::Collection(_)))
    {
        return ExitCode::Usage;
    }
    let failed = outcome
        .groups
        .iter()
        .any(|g| group_fails_the_run(outcome, g));
    let lost_not_flaky = outcome.lost.iter().any(|l| {
        outcome.explanation.as_ref().map_or(true, |e| {
            e.classes
                .get(&l.node_id)
                .map_or(true, |c| c.fails_the_run())
        })
    });
    let unfinished = !outcome.not_run.is_empty() || lost_not_flaky;
    if failed || unfinished || !outcome.missing.is_empty() || !outcome.duplicated.is_empty() {
        return ExitCode::TestsFailed;
    }
    ExitCode::Success
}

/// Whether a group's outcome fails the run: it timed out, or it failed and (with
/// `--retries`) not every one of its failed tests turned out flaky.
fn group_fails_the_run(outcome: &RunOutcome, g: &super::event::GroupReport) -> bool {
    match &g.status {
        GroupStatus::TimedOut { .. } => true,
        GroupStatus::Failed | GroupStatus::TestTimedOut { .. } => {
            let Some(explanation) = &outcome.explanation else {
                return true;
            };
            let failed: Vec<&String> = failed_in(g).collect();
            // pytest failed without a failed test to show for it (a coverage threshold, a
            // session error): nothing to explain away.
            failed.is_empty()
                || failed.iter().any(|id| {
                    explanation
                        .classes
                        .get(*id)
                        .map_or(true, |c| c.fails_the_run())
                })
        }
        _ => false,
    }
}

/// The tests of a group that failed or errored, in the order they ran.
fn failed_in(g: &super::event::GroupReport) -> impl Iterator<Item = &String> {
    g.ran.iter().zip(&g.results).filter_map(|(id, r)| {
        matches!(
            r.outcome,
            super::event::TestOutcome::Failed | super::event::TestOutcome::Error
        )
        .then_some(id)
    })
}

/// `compose-shard run --plan <out>/plan.json --only K <flags> -- <command>`, reproducing one
/// group with the same tests and the same services.
pub fn reproduce_command(
    plan_file: &str,
    group: usize,
    flags: &[String],
    command: &[String],
) -> String {
    let mut words = vec![
        "compose-shard".to_string(),
        "run".into(),
        "--plan".into(),
        plan_file.to_string(),
        "--only".into(),
        group.to_string(),
    ];
    words.extend(flags.iter().cloned());
    if !command.is_empty() {
        words.push("--".into());
        words.extend(command.iter().cloned());
    }
    shell_words::join(words)
}

/// `compose-shard run --plan PLAN [--only K --until TEST] <flags> -- <command>`: reproduces
/// one test on a laptop, with the services and the tests that ran before it in its group.
fn reproduce_test(
    plan_file: &str,
    at: Option<(usize, &str)>,
    flags: &[String],
    command: &[String],
) -> String {
    let mut words = vec![
        "compose-shard".to_string(),
        "run".into(),
        "--plan".into(),
        plan_file.to_string(),
    ];
    if let Some((group, test)) = at {
        words.extend([
            "--only".into(),
            group.to_string(),
            "--until".into(),
            test.to_string(),
        ]);
    }
    words.extend(flags.iter().cloned());
    if !command.is_empty() {
        words.push("--".into());
        words.extend(command.iter().cloned());
    }
    shell_words::join(words)
}

/// The failed (or lost) tests of a run, in group order: (word, node id, group).
fn failed_ids(outcome: &RunOutcome) -> Vec<(&'static str, &str, usize)> {
    let mut found = Vec::new();
    for g in &outcome.groups {
        for (id, r) in g.ran.iter().zip(&g.results) {
            let word = match r.outcome {
                super::event::TestOutcome::Failed => "FAILED",
                super::event::TestOutcome::Error => "ERROR",
                _ => continue,
            };
            found.push((word, id.as_str(), g.group));
        }
    }
    found.extend(
        outcome
            .lost
            .iter()
            .map(|l| ("LOST", l.node_id.as_str(), l.group)),
    );
    found
}

/// The node ids of the run's failed (or lost) tests.
pub fn failed_tests(outcome: &RunOutcome) -> Vec<String> {
    failed_ids(outcome)
        .into_iter()
        .map(|(_, id, _)| id.to_string())
        .collect()
}

/// At most how many groups ran tests at the same time (from their `tests` phases).
pub fn most_groups_testing(outcome: &RunOutcome) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for span in outcome
        .groups
        .iter()
        .flat_map(|g| &g.phases)
        .filter(|p| p.phase == crate::report::Phase::Tests)
    {
        edges.push((span.start, 1));
        edges.push((span.end, -1));
    }
    // Ends before starts at the same instant: touching spans do not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most.max(0) as usize
}

/// A note when tests that failed look load-sensitive: they passed in the previous run (or
/// on a retry) and more groups ran tests at once than the engine has CPUs.
pub fn load_note(
    outcome: &RunOutcome,
    cpus: usize,
    previous: Option<(&[String], &std::collections::HashSet<String>)>,
) -> Option<String> {
    let busy = most_groups_testing(outcome);
    if cpus == 0 || busy <= cpus {
        return None;
    }
    let flaky: Vec<&str> = outcome
        .explanation
        .iter()
        .flat_map(|e| e.of("flaky"))
        .map(String::as_str)
        .collect();
    let newly: Vec<String> = match previous {
        Some((failed_before, recorded)) => failed_tests(outcome)
            .into_iter()
            .filter(|id| recorded.contains(id) && !failed_before.contains(id))
            .collect(),
        None => Vec::new(),
    };
    let mut suspects: Vec<&str> = flaky;
    suspects.extend(newly.iter().map(String::as_str));
    suspects.sort_unstable();
    suspects.dedup();
    if suspects.is_empty() {
        return None;
    }
    Some(format!(
        "note: {} test(s) that passed in the previous run or on a retry failed while {busy} groups ran tests at once on {cpus} CPU(s), e.g. {}: they may be sensitive to load (timing assertions, short timeouts); --groups {cpus} would tell",
        suspects.len(),
        suspects.iter().take(5).copied().collect::<Vec<_>>().join(", ")
    ))
}

/// Every failed (or lost) test of the run: what it turned out to be (with `--retries`) and
/// the command that reproduces it on a laptop.
pub fn failure_rows(
    outcome: &RunOutcome,
    plan_file: &str,
    flags: &[String],
    command: &[String],
) -> Vec<crate::report::FailureRow> {
    let explanation = outcome.explanation.as_ref();
    failed_ids(outcome)
        .into_iter()
        .map(|(word, id, group)| {
            let here = |plan: &str, at| reproduce_test(plan, at, flags, command);
            let until = here(plan_file, Some((group, id)));
            let retried = explanation
                .and_then(|e| e.retries.get(id))
                .map_or(0, Vec::len);
            let (class, detail, reproduce) = match explanation.and_then(|e| e.classes.get(id)) {
                Some(FailureClass::Flaky { passed_on }) => (
                    Some("flaky"),
                    format!(
                        "passed on retry {passed_on} in a fresh environment, counted as passed"
                    ),
                    None,
                ),
                Some(FailureClass::OrderDependent {
                    culprits,
                    plan: Some(plan),
                    ..
                }) => (
                    Some("order-dependent"),
                    format!("passes alone, fails after {}", culprits.join(", ")),
                    Some(here(&plan.display().to_string(), None)),
                ),
                Some(FailureClass::OrderDependent { note, .. }) => (
                    Some("order-dependent"),
                    format!(
                        "passes alone, fails after the tests its group ran before it{}",
                        note.as_deref()
                            .map(|n| format!("; {n}"))
                            .unwrap_or_default()
                    ),
                    Some(until),
                ),
                Some(FailureClass::Real) => (
                    Some("real"),
                    format!(
                        "failed on {retried} retr{} in a fresh environment",
                        if retried == 1 { "y" } else { "ies" }
                    ),
                    Some(until),
                ),
                None => (None, String::new(), Some(until)),
            };
            crate::report::FailureRow {
                word: if class == Some("flaky") {
                    "flaky"
                } else {
                    word
                },
                node_id: id.to_string(),
                group,
                class,
                detail,
                reproduce,
            }
        })
        .collect()
}

/// At most this many failed tests are listed with their reproduce command.
const LISTED_FAILURES: usize = 20;

/// One line per failed test, ending with the command that reproduces it.
fn failed_test_lines(
    out: &mut String,
    outcome: &RunOutcome,
    plan_file: &str,
    flags: &[String],
    command: &[String],
) {
    let rows = failure_rows(outcome, plan_file, flags, command);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "failed tests ({}):", rows.len());
    for row in rows.iter().take(LISTED_FAILURES) {
        let what = match row.class {
            Some(class) => format!("g{}, {class}: {}", row.group, row.detail),
            None => format!("g{}", row.group),
        };
        let _ = match &row.reproduce {
            Some(command) => writeln!(out, "  {} {} ({what}): {command}", row.word, row.node_id),
            None => writeln!(out, "  {} {} ({what})", row.word, row.node_id),
        };
    }
    if rows.len() > LISTED_FAILURES {
        let _ = writeln!(
            out,
            "  ... and {} more (all of them are in junit.xml)",
            rows.len() - LISTED_FAILURES
        );
    }
    if let Some(e) = &outcome.explanation {
        let _ = writeln!(
            out,
            "failures explained in {:.0}s: {} flaky, {} order-dependent, {} real",
            e.seconds,
            e.of("flaky").len(),
            e.of("order-dependent").len(),
            e.of("real").len()
        );
    }
}

/// Up to five ids, comma-separated.
fn first_five(ids: &[String]) -> String {
    ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
}

/// The table of groups (the report module's, as `merge` prints it) and which engine ran
/// which groups.
fn table(out: &mut String, outcome: &RunOutcome) {
    let groups: Vec<_> = outcome.groups.iter().map(|g| g.summary()).collect();
    let sum = |f: fn(&super::event::TestCounts) -> usize| -> usize {
        outcome.groups.iter().map(|g| f(&g.counts)).sum()
    };
    let total = crate::report::TotalRow {
        tests: sum(|c| c.done),
        passed: sum(|c| c.passed),
        failed: sum(|c| c.failed),
        errors: sum(|c| c.errors),
        skipped: sum(|c| c.skipped),
        time: outcome.groups.iter().map(|g| g.test_seconds).sum(),
        ok: outcome
            .groups
            .iter()
            .all(|g| g.status == GroupStatus::Passed),
    };
    out.push_str(&crate::report::render_group_table(&groups, &total));
    let mut engines: Vec<(&str, Vec<String>)> = Vec::new();
    for g in outcome.groups.iter().filter(|g| !g.engine.is_empty()) {
        match engines.iter_mut().find(|(e, _)| *e == g.engine) {
            Some((_, groups)) => groups.push(format!("g{}", g.group)),
            None => engines.push((&g.engine, vec![format!("g{}", g.group)])),
        }
    }
    for (engine, groups) in &engines {
        let _ = writeln!(out, "engine {engine}: {}", groups.join(", "));
    }
}

/// Why groups failed, and what did not run exactly once.
fn problems(out: &mut String, outcome: &RunOutcome) {
    if let Some(fatal) = &outcome.fatal {
        let _ = writeln!(out, "error: {fatal}");
    }
    for g in &outcome.groups {
        if !matches!(g.status, GroupStatus::Passed | GroupStatus::Failed) {
            let _ = writeln!(out, "g{}: {}", g.group, g.status);
        }
        if let Some(lingering) = &g.lingering {
            let _ = writeln!(out, "g{}: warning: {lingering}", g.group);
        }
    }
    if !outcome.unstable_ids.is_empty() {
        let _ = writeln!(
            out,
            "note: this suite's parametrized test ids change between collections; {} test(s) were matched by file, function and position, e.g. {}",
            outcome.unstable_ids.len(),
            outcome
                .unstable_ids
                .iter()
                .take(5)
                .map(|(a, b)| format!("{a} (as {b})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !outcome.missing.is_empty() {
        let _ = writeln!(
            out,
            "{} planned tests did not run, e.g. {}",
            outcome.missing.len(),
            first_five(&outcome.missing)
        );
    }
    if let Some(reason) = &outcome.stopped {
        let _ = writeln!(
            out,
            "stopped early: {reason}; {} test(s) did not run",
            outcome.not_run.len()
        );
    } else if !outcome.not_run.is_empty() {
        let _ = writeln!(
            out,
            "{} test(s) did not run: no group was left to take them, e.g. {}",
            outcome.not_run.len(),
            first_five(&outcome.not_run)
        );
    }
    if !outcome.lost.is_empty() {
        let _ = writeln!(
            out,
            "{} test(s) lost in flight with a group whose test container died (error testcases in junit.xml):",
            outcome.lost.len()
        );
        for l in outcome.lost.iter().take(10) {
            let _ = writeln!(out, "  g{}: {} ({})", l.group, l.node_id, l.cause);
        }
    }
    if !outcome.duplicated.is_empty() {
        let _ = writeln!(
            out,
            "{} tests ran more than once, e.g. {}",
            outcome.duplicated.len(),
            first_five(&outcome.duplicated)
        );
    }
}

/// The summary table and the overall result, as text.
pub fn render_summary(
    outcome: &RunOutcome,
    plan_file: &str,
    flags: &[String],
    command: &[String],
) -> String {
    let mut out = String::new();
    table(&mut out, outcome);
    problems(&mut out, outcome);
    // Without a plan (images or collection failed) there is nothing to reproduce from.
    let plan_exists = outcome.fatal.is_none();
    if plan_exists {
        failed_test_lines(&mut out, outcome, plan_file, flags, command);
    }
    for g in outcome
        .groups
        .iter()
        .filter(|g| plan_exists && g.status != GroupStatus::Passed)
    {
        let _ = writeln!(
            out,
            "reproduce g{}: {}",
            g.group,
            reproduce_command(plan_file, g.group, flags, command)
        );
    }
    let code = exit_code(outcome);
    let word = match code {
        ExitCode::Success => "passed",
        ExitCode::TestsFailed => "failed",
        _ => "error",
    };
    let _ = writeln!(out, "result: {word} (exit code {})", code as i32);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::{Phase, PhaseSpan};
    use crate::run::dispatch::LostTest;
    use crate::run::event::{GroupReport, TestCounts};
    use crate::run::outcome::{CollectionFailure, EnvironmentFailure, FailureCause, Lingering};

    fn group(n: usize, status: GroupStatus, passed: usize, failed: usize) -> GroupReport {
        let span = |phase, start, end| PhaseSpan { phase, start, end };
        GroupReport {
            status,
            counts: TestCounts {
                planned: passed + failed,
                done: passed + failed,
                passed,
                failed,
                ..TestCounts::default()
            },
            phases: vec![
                span(Phase::Environment, 0.0, 3.0),
                span(Phase::Readiness, 3.0, 4.5),
                span(Phase::Collection, 4.5, 6.0),
                span(Phase::Tests, 6.0, 6.0 + 10.0 * n as f64),
            ],
            test_seconds: 10.0 * n as f64,
            ..GroupReport::new(n)
        }
    }

    /// Group 2 ran four tests; three failed, one errored.
    fn with_failures(mut g: GroupReport) -> GroupReport {
        use crate::run::event::{TestOutcome, TestResult};
        let result = |outcome| TestResult {
            outcome,
            seconds: Some(0.5),
        };
        g.ran = [
            "test_ok",
            "test_coin",
            "test_after_polluter",
            "test_bug",
            "test_setup",
        ]
        .iter()
        .map(|n| format!("tests/t.py::{n}"))
        .collect();
        g.results = vec![
            result(TestOutcome::Passed),
            result(TestOutcome::Failed),
            result(TestOutcome::Failed),
            result(TestOutcome::Failed),
            result(TestOutcome::Error),
        ];
        g
    }

    fn explanation() -> crate::run::explain::Explanation {
        use crate::run::explain::{Explanation, FailureClass};
        let id = |n: &str| format!("tests/t.py::{n}");
        let failed = crate::report::Attempt {
            outcome: crate::report::AttemptOutcome::Failure,
            message: "assert 1 == 2".into(),
            text: String::new(),
            time: 0.1,
        };
        Explanation {
            retries: [
                (id("test_bug"), vec![failed.clone(), failed]),
                (id("test_setup"), vec![]),
            ]
            .into_iter()
            .collect(),
            classes: [
                (id("test_coin"), FailureClass::Flaky { passed_on: 1 }),
                (
                    id("test_after_polluter"),
                    FailureClass::OrderDependent {
                        group: 2,
                        culprits: vec![id("test_ok")],
                        plan: Some(
                            "compose-shard-results/bisect/tests_t_py__test_after_polluter.json"
                                .into(),
                        ),
                        note: None,
                    },
                ),
                (id("test_bug"), FailureClass::Real),
                (
                    id("test_setup"),
                    FailureClass::OrderDependent {
                        group: 2,
                        culprits: vec![],
                        plan: None,
                        note: Some("the search ran out of time".into()),
                    },
                ),
            ]
            .into_iter()
            .collect(),
            seconds: 42.0,
        }
    }

    #[test]
    fn the_end_of_run_summary_of_every_kind_of_group() {
        let mut lingering = group(1, GroupStatus::Passed, 10, 0);
        lingering.lingering = Some(Lingering {
            threads: 2,
            stacks: Some("Thread 'stuck' (non-daemon, id 1):\n  File \"t.py\", line 3".into()),
            grace: Duration::from_secs(30),
            killed: false,
        });
        let outcome = RunOutcome {
            groups: vec![
                lingering,
                with_failures(group(2, GroupStatus::Failed, 8, 2)),
                group(
                    3,
                    GroupStatus::TestTimedOut {
                        test: "tests/t.py::test_hangs".into(),
                        limit: Duration::from_secs(5),
                    },
                    4,
                    0,
                ),
                group(
                    4,
                    GroupStatus::Environment(EnvironmentFailure {
                        state: Some("exited with code 137 (OOM killed)".into()),
                        ..EnvironmentFailure::of(FailureCause::TestProcess {
                            exit_code: Some(137),
                        })
                    }),
                    1,
                    0,
                ),
                group(
                    5,
                    GroupStatus::Collection(CollectionFailure::Errors {
                        count: 1,
                        tail: "E   ImportError: no module named shop".into(),
                    }),
                    0,
                    0,
                ),
                group(
                    6,
                    GroupStatus::TimedOut {
                        limit: Duration::from_secs(1800),
                        stacks: None,
                    },
                    3,
                    0,
                ),
            ],
            lost: vec![LostTest {
                node_id: "tests/t.py::test_in_flight".into(),
                group: 4,
                cause: "the test process ended abnormally (exit code 137)".into(),
            }],
            explanation: Some(explanation()),
            not_run: vec!["tests/t.py::test_after".into()],
            ..RunOutcome::default()
        };
        let text = render_summary(
            &outcome,
            "compose-shard-results/plan.json",
            &["--service".into(), "app".into()],
            &["pytest".into(), "-q".into()],
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_failure_that_passed_before_is_named_load_sensitive_only_when_groups_outnumbered_cpus() {
        use crate::run::event::{TestOutcome, TestResult};
        let busy = |n: usize, start: f64| {
            let mut g = group(n, GroupStatus::Failed, 1, 1);
            g.phases = vec![PhaseSpan {
                phase: Phase::Tests,
                start,
                end: start + 10.0,
            }];
            g.ran = vec![format!("t.py::test_{n}")];
            g.results = vec![TestResult {
                outcome: TestOutcome::Failed,
                seconds: Some(0.1),
            }];
            g
        };
        let outcome = RunOutcome {
            groups: vec![busy(1, 0.0), busy(2, 1.0), busy(3, 2.0), busy(4, 12.0)],
            ..RunOutcome::default()
        };
        assert_eq!(most_groups_testing(&outcome), 3);
        let recorded: std::collections::HashSet<String> =
            ["t.py::test_1", "t.py::test_2"].map(String::from).into();
        let failed_before = vec!["t.py::test_2".to_string()];
        let note = load_note(&outcome, 2, Some((&failed_before, &recorded))).unwrap();
        assert!(
            note.contains("1 test(s) that passed in the previous run"),
            "{note}"
        );
        assert!(
            note.contains("3 groups ran tests at once on 2 CPU(s), e.g. t.py::test_1"),
            "{note}"
        );
        assert!(note.contains("--groups 2"), "{note}");
        // Enough CPUs, or nothing that passed before: no note.
        assert_eq!(
            load_note(&outcome, 4, Some((&failed_before, &recorded))),
            None
        );
        assert_eq!(load_note(&outcome, 2, None), None);
    }
}
