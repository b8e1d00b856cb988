//! The end of a run: merged results through the report module, `missing.txt` for groups
//! without results, GitHub Actions output, and `--store-durations`.

use std::path::{Path, PathBuf};

use crate::errors::Error;
use crate::plan::{self, timings::TestingLoad};
use crate::report;
use crate::report::{
    github_annotations, github_log_group, github_step_summary, write_merged_results, GroupResult,
    MergedResults, ResultsLayout,
};
use crate::run::{self, RunOutcome, RunSpec, PROGRESS_FILE_NAME};

/// Write the reports into `<out>` (layout in docs/reports.md) with the report module's one
/// call: merged `junit.xml` (a group without results becomes an error testcase, so CI
/// dashboards show it), merged `coverage.xml`, `timeline.html`; plus `g<k>/missing.txt` for
/// such groups. A failure is a warning: the per-group files stay in `<out>/g<k>/` anyway.
pub(super) fn write_reports(spec: &RunSpec, outcome: &RunOutcome) -> Option<MergedResults> {
    let layout = ResultsLayout::new(&spec.out_dir);
    let groups = spec
        .projects
        .first()
        .and_then(|p| p.isolation.as_ref())
        .map_or(1, |i| i.groups);
    let groups = outcome.last_group(groups);
    let results: Vec<GroupResult> = outcome
        .groups
        .iter()
        .map(|g| {
            let existing = |p: PathBuf| Some(p).filter(|p| p.exists());
            let mut reason = g.status.problem();
            if reason.is_some() && rebuild_junit(&layout, outcome, g.group) && outcome.dynamic {
                // The lost tests carry the cause; the rest of the group's results are there.
                reason = None;
            }
            if let Some(reason) = &reason {
                let _ = std::fs::create_dir_all(layout.group_dir(g.group));
                let _ = std::fs::write(layout.missing(g.group), format!("{reason}\n"));
            }
            GroupResult {
                group: g.group,
                groups,
                junit: with_retries(&layout, outcome, g)
                    .or_else(|| existing(layout.junit(g.group))),
                coverage: existing(layout.coverage(g.group)),
                missing_reason: reason,
                system_err: g.lingering.as_ref().map(|l| format!("compose-shard: {l}")),
            }
        })
        .collect();
    if results.is_empty() {
        return None;
    }
    // The tests expected of the groups run here: with --only, the others are not expected;
    // in dynamic mode, what the groups were given and what nobody took.
    let expected: Vec<String> = if outcome.dynamic {
        let mut expected: Vec<String> = outcome
            .groups
            .iter()
            .flat_map(|g| g.assigned.iter().cloned())
            .collect();
        expected.extend(outcome.not_run.iter().cloned());
        expected
    } else {
        outcome
            .groups
            .iter()
            .flat_map(|g| {
                outcome
                    .assignment
                    .get(&g.group)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    let summaries: Vec<_> = outcome.groups.iter().map(|g| g.summary()).collect();
    match write_merged_results(
        &layout,
        &results,
        (!expected.is_empty()).then_some(&expected[..]),
        &summaries,
        "compose-shard run",
    ) {
        Ok(merged) => Some(merged),
        Err(e) => {
            eprintln!(
                "warning: merging results into {}: {}",
                layout.root.display(),
                crate::errors::render_chain(&e)
            );
            None
        }
    }
}

/// A group's JUnit file rewritten with the retries of its failed tests
/// (`g<k>/junit-with-retries.xml`, Surefire's flaky/rerun elements), when it has any.
fn with_retries(
    layout: &ResultsLayout,
    outcome: &RunOutcome,
    g: &run::GroupReport,
) -> Option<PathBuf> {
    let explanation = outcome.explanation.as_ref()?;
    let mut ids: Vec<String> = g.ran.clone();
    ids.extend(
        outcome
            .lost
            .iter()
            .filter(|l| l.group == g.group)
            .map(|l| l.node_id.clone()),
    );
    let reruns: std::collections::BTreeMap<String, report::Retried> = ids
        .iter()
        .filter_map(|id| {
            let attempts = explanation.retries.get(id)?.clone();
            let class = explanation.classes.get(id);
            let note = class.map(|c| format!("compose-shard --retries: {}", c.describe()));
            let passed = class.is_some_and(|c| !c.fails_the_run());
            Some((
                id.clone(),
                report::Retried {
                    attempts,
                    passed,
                    note,
                },
            ))
        })
        .collect();
    let input = layout.junit(g.group);
    if reruns.is_empty() || !input.exists() {
        return None;
    }
    let output = layout.group_dir(g.group).join("junit-with-retries.xml");
    let index = report::NodeIdIndex::new(&ids);
    let written = report::write_atomically(&output, |w| {
        report::apply_reruns(&input, &reruns, &index, w)
    });
    match written {
        Ok(()) => Some(output),
        Err(e) => {
            eprintln!(
                "warning: adding the retries to group {}'s JUnit: {}",
                g.group,
                crate::errors::render_chain(&e)
            );
            None
        }
    }
}

/// A group whose pytest died before writing its JUnit XML: rebuild it from the plugin's
/// `progress.jsonl` (the tests it finished) plus one error testcase per test it lost in
/// flight, naming the group and the cause. Returns whether it did.
fn rebuild_junit(layout: &ResultsLayout, outcome: &RunOutcome, group: usize) -> bool {
    let junit = layout.junit(group);
    if junit.exists() {
        return false;
    }
    let progress = layout.group_dir(group).join(PROGRESS_FILE_NAME);
    let entries = match std::fs::read_to_string(&progress) {
        Ok(text) => report::parse_progress(&text),
        // The engine died with the container: what the plugin's lines said is all there is.
        Err(_) => outcome
            .groups
            .iter()
            .filter(|g| g.group == group)
            .flat_map(|g| g.ran.iter().zip(&g.results))
            .map(|(id, result)| from_plugin_line(id, result))
            .collect(),
    };
    let lost: Vec<(String, String)> = outcome
        .lost
        .iter()
        .filter(|l| l.group == group)
        .map(|l| {
            (
                l.node_id.clone(),
                format!(
                    "lost in flight: group {group}'s test container ended while this test was running or about to run: {}",
                    l.cause
                ),
            )
        })
        .collect();
    if entries.is_empty() && lost.is_empty() {
        return false;
    }
    let xml = report::junit_from_progress(&entries, &lost);
    report::write_text(&junit, &xml).is_ok()
}

/// A finished test as the plugin's `done` line reported it.
fn from_plugin_line(id: &str, result: &run::TestResult) -> report::ProgressEntry {
    let outcome = match result.outcome {
        run::TestOutcome::Passed => "passed",
        run::TestOutcome::Failed => "failed",
        run::TestOutcome::Skipped => "skipped",
        run::TestOutcome::Error => "error",
    };
    report::ProgressEntry {
        id: id.to_string(),
        outcome: outcome.to_string(),
        seconds: result.seconds.unwrap_or(0.0),
        message: (outcome == "failed" || outcome == "error")
            .then(|| format!("{outcome} (the failure's text was lost with the group's container)")),
    }
}

/// Under GitHub Actions: annotations for failures, each group's log folded, and the step
/// summary.
pub(super) fn github_output(
    spec: &RunSpec,
    outcome: &RunOutcome,
    merged: &MergedResults,
    failures: &[report::FailureRow],
) {
    if std::env::var_os("GITHUB_ACTIONS").is_none() {
        return;
    }
    for line in github_annotations(&merged.junit, 50) {
        println!("{line}");
    }
    for line in report::github_explained_annotations(failures) {
        println!("{line}");
    }
    let layout = ResultsLayout::new(&spec.out_dir);
    for g in &outcome.groups {
        if let Ok(log) = std::fs::read_to_string(layout.output_log(g.group)) {
            print!(
                "{}",
                github_log_group(&format!("group {} output", g.group), &log)
            );
        }
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let summaries: Vec<_> = outcome.groups.iter().map(|g| g.summary()).collect();
        let mut markdown = github_step_summary(&summaries, &merged.junit, None);
        markdown.push_str(&report::github_explained(failures));
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, markdown.as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: writing the GitHub step summary: {e}");
        }
    }
}

/// `--store-durations FILE` (or the remembered durations): update the file from the merged
/// JUnit's per-test durations. Entries of tests that no longer exist are dropped only when
/// this run collected the reference itself (not `--only K` of a plan), and only where its
/// test command collected (`command`: the whole suite, or the paths it names; nothing after
/// `-k`, `-m`, a node id: see [`run::collection_scope`]). A run of one file must not make
/// the next run of the whole suite forget the rest.
/// `load`: what the host's CPUs did while the groups tested (local engines only).
pub(super) fn store_durations(
    path: &Path,
    outcome: &RunOutcome,
    merged: &MergedResults,
    load: Option<TestingLoad>,
    command: &[String],
) -> Result<(), Error> {
    let pruning = outcome.collected.as_ref().and_then(|collected| {
        Some(crate::plan::Pruning {
            under: run::collection_scope(command)?,
            collected: collected.iter().cloned().collect(),
        })
    });
    crate::durations_store::write_update(
        path,
        merged.junit.durations.iter().cloned(),
        pruning.as_ref(),
    )?;
    store_timings(path, outcome, load)
}

/// Keep this run's start-up figures beside the durations file, for `--groups auto`.
fn store_timings(
    durations_path: &Path,
    outcome: &RunOutcome,
    load: Option<TestingLoad>,
) -> Result<(), Error> {
    let span = |g: &run::GroupReport, phase: report::Phase| {
        g.phases
            .iter()
            .find(|p| p.phase == phase)
            .map(report::PhaseSpan::seconds)
    };
    let healthy: Vec<&run::GroupReport> = outcome
        .groups
        .iter()
        .filter(|g| {
            matches!(
                g.status,
                run::GroupStatus::Passed | run::GroupStatus::Failed
            )
        })
        .collect();
    let environment: Vec<f64> = healthy
        .iter()
        .filter_map(|g| {
            Some(span(g, report::Phase::Environment)? + span(g, report::Phase::Readiness)?)
        })
        .collect();
    let collection: Vec<f64> = healthy
        .iter()
        .filter_map(|g| span(g, report::Phase::Collection))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some(timings) =
        plan::RunTimings::from_run(&environment, &collection, outcome.groups.len(), cpus)
    else {
        return Ok(());
    };
    let cpu: Vec<(f64, f64)> = outcome.groups.iter().filter_map(|g| g.cpu).collect();
    let failed = run::failed_tests(outcome);
    let path = durations_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(plan::TIMINGS_FILE);
    let timings = timings
        .with_tests(&cpu, (cpus, load), failed)
        .or_kept(plan::RunTimings::read(&path).as_ref());
    Ok(report::write_text(&path, &timings.to_json())?)
}
