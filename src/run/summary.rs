//! The end-of-run summary: a table of groups, the overall result, the command that reproduces
//! a failed group, and the exit code.

use std::fmt::Write;

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
    let failed = outcome.groups.iter().any(|g| {
        matches!(
            g.status,
            GroupStatus::Failed | GroupStatus::TimedOut { .. } | GroupStatus::TestTimedOut { .. }
        )
    });
    let unfinished = !outcome.not_run.is_empty() || !outcome.lost.is_empty();
    if failed || unfinished || !outcome.missing.is_empty() || !outcome.duplicated.is_empty() {
        return ExitCode::TestsFailed;
    }
    ExitCode::Success
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
                group(2, GroupStatus::Failed, 8, 2),
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
}
