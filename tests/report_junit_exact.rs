//! The JUnit merge against a real pytest run: the suite in tests/python/outcomes (every
//! outcome pytest reports: pass, failure, setup and teardown errors, failure plus teardown
//! error, skip, xfail, strict xpass, output, properties, odd parameter ids, nested classes) is
//! run whole and split into groups. The merge of the groups must hold the same testcases with
//! the same outcomes as the whole run, the same recomputed totals, map every testcase back to
//! its collected node id, and be read back by junitparser with the same totals.

#[path = "report_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use compose_shard::report::{junit_durations, merge_junit, GroupResult, JunitTotals};
use support::{copy_tree, crate_root, run_python};

fn collect(project: &Path) -> Vec<String> {
    run_python(
        project,
        &[
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        false,
    )
    .lines()
    .filter(|l| l.contains("::"))
    .map(str::to_string)
    .collect()
}

fn run_pytest(project: &Path, out: &str, ids: &[String], family: &str) -> PathBuf {
    let junit = format!("--junitxml={out}");
    let family = format!("junit_family={family}");
    let mut args = vec![
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        &family,
        "-o",
        "junit_logging=all",
        &junit,
    ];
    args.extend(ids.iter().map(String::as_str));
    run_python(project, &args, true);
    project.join(out)
}

/// `node id -> outcome` of a JUnit file, as junitparser sees it, plus its recomputed totals.
fn junitparser_view(project: &Path, file: &Path) -> (String, String) {
    let script = r#"
import sys, json
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
t = dict(tests=0, failures=0, errors=0, skipped=0)
for suite in (xml if xml._tag == "testsuites" else [xml]):
    for case in suite:
        kinds = sorted(type(r).__name__ for r in case.result)
        cases.append([case.classname, case.name, kinds])
        t["tests"] += 1
        t["failures"] += sum(isinstance(r, Failure) for r in case.result)
        t["errors"] += sum(isinstance(r, Error) for r in case.result)
        t["skipped"] += sum(isinstance(r, Skipped) for r in case.result)
print(json.dumps(sorted(cases)))
print(json.dumps(t, sort_keys=True))
"#;
    let out = run_python(project, &["-c", script, file.to_str().unwrap()], false);
    let mut lines = out.lines();
    (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    )
}

fn totals_json(t: &JunitTotals) -> String {
    format!(
        "{{\"errors\": {}, \"failures\": {}, \"skipped\": {}, \"tests\": {}}}",
        t.counts.errors, t.counts.failures, t.counts.skipped, t.counts.tests
    )
}

fn check_family(family: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("outcomes");
    copy_tree(&crate_root().join("tests/python/outcomes"), &project);
    let ids = collect(&project);
    assert!(ids.len() > 20, "collected {ids:?}");
    let whole = run_pytest(&project, "whole.xml", &ids, family);

    // Three groups, round-robin, so every file is split across groups.
    let groups: Vec<GroupResult> = (0..3)
        .map(|g| {
            let mine: Vec<String> = ids.iter().skip(g).step_by(3).cloned().collect();
            GroupResult {
                group: g + 1,
                groups: 3,
                junit: Some(run_pytest(
                    &project,
                    &format!("g{}.xml", g + 1),
                    &mine,
                    family,
                )),
                ..GroupResult::default()
            }
        })
        .collect();
    let merged_path = project.join("merged.xml");
    let mut out = Vec::new();
    let totals = merge_junit(&groups, Some(&ids), &mut out).unwrap();
    std::fs::write(&merged_path, &out).unwrap();

    let single = GroupResult {
        group: 1,
        groups: 1,
        junit: Some(whole.clone()),
        ..GroupResult::default()
    };
    let whole_totals = merge_junit(&[single], Some(&ids), &mut Vec::new()).unwrap();
    assert_eq!(
        (
            totals.counts.tests,
            totals.counts.failures,
            totals.counts.errors,
            totals.counts.skipped,
            totals.counts.passed
        ),
        (
            whole_totals.counts.tests,
            whole_totals.counts.failures,
            whole_totals.counts.errors,
            whole_totals.counts.skipped,
            whole_totals.counts.passed
        )
    );
    assert!(
        totals.counts.failures >= 3 && totals.counts.errors >= 3 && totals.counts.skipped >= 2,
        "{totals:?}"
    );
    assert!(
        totals.duplicates.is_empty() && totals.never_run.is_empty(),
        "{totals:?}"
    );
    assert_eq!(
        totals
            .per_group
            .iter()
            .map(|g| g.counts.tests)
            .sum::<usize>(),
        totals.counts.tests
    );

    let (whole_cases, whole_counts) = junitparser_view(&project, &whole);
    let (merged_cases, merged_counts) = junitparser_view(&project, &merged_path);
    assert_eq!(
        merged_cases, whole_cases,
        "same testcases with the same outcomes"
    );
    assert_eq!(merged_counts, whole_counts);
    assert_eq!(merged_counts, totals_json(&totals));

    // Every testcase maps back to a collected node id, and so do the durations.
    let durations: BTreeMap<String, f64> =
        junit_durations(&merged_path).unwrap().into_iter().collect();
    let merged_text = String::from_utf8(out).unwrap();
    assert!(merged_text.contains("pytest (group 2/3)"));
    assert!(merged_text.contains("<system-out>"));
    assert!(merged_text.contains("name=\"answer\""));
    for failed in &totals.failed_tests {
        assert!(ids.contains(&failed.node_id), "{failed:?} not collected");
        assert!(
            failed.file.as_deref().is_some_and(|f| f.ends_with(".py")),
            "{failed:?}"
        );
        // xunit2 has no `line` attribute: only failures with a crash location have a line.
        assert!(
            failed.line.is_some() || family == "xunit2",
            "{failed:?} has no line"
        );
    }
    let fail = totals
        .failed_tests
        .iter()
        .find(|f| f.node_id == "test_outcomes.py::test_fail")
        .unwrap();
    assert_eq!(fail.line, Some(13), "the assert line of test_fail");
    assert!(fail.message.contains("one is not two"), "{fail:?}");
    // Without the collection, ids are reconstructed; the unambiguous ones must match exactly.
    for id in [
        "test_outcomes.py::test_pass",
        "test_outcomes.py::TestGroup::TestNested::test_inner",
        "test_more.py::test_many[3]",
    ] {
        assert!(
            durations.contains_key(id),
            "{id} missing from {:?}",
            durations.keys()
        );
    }
}

#[test]
fn xunit2_split_merge_equals_whole_run() {
    check_family("xunit2");
}

#[test]
fn xunit1_split_merge_equals_whole_run() {
    check_family("xunit1");
}

#[test]
fn missing_group_duplicates_and_never_run_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("outcomes");
    copy_tree(&crate_root().join("tests/python/outcomes"), &project);
    let ids = collect(&project);
    let first: Vec<String> = ids[..5].to_vec();
    let overlap: Vec<String> = ids[4..8].to_vec();
    let groups = vec![
        GroupResult {
            group: 1,
            groups: 3,
            junit: Some(run_pytest(&project, "a.xml", &first, "xunit2")),
            ..Default::default()
        },
        GroupResult {
            group: 2,
            groups: 3,
            junit: Some(run_pytest(&project, "b.xml", &overlap, "xunit2")),
            ..Default::default()
        },
        GroupResult {
            group: 3,
            groups: 3,
            junit: None,
            missing_reason: Some(
                "test container exited with code 137 (killed: out of memory?)".into(),
            ),
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    let totals = merge_junit(&groups, Some(&ids), &mut out).unwrap();
    assert_eq!(totals.duplicates, vec![ids[4].clone()]);
    assert_eq!(totals.never_run, ids[8..].to_vec());
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("pytest (group 3/3)"));
    assert!(text.contains("exited with code 137"));
    let crashed = totals.per_group.last().unwrap();
    assert_eq!((crashed.counts.tests, crashed.counts.errors), (1, 1));
    assert!(totals
        .failed_tests
        .iter()
        .any(|f| f.node_id == "group 3/3" && f.message.contains("137")));
}
