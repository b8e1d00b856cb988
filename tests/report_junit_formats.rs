//! JUnit shapes other than current pytest's: a bare `<testsuite>` root (pytest before 5.1),
//! nested suites and CDATA from other producers, and inputs whose own totals are wrong (the
//! merge recounts from the testcases).

use std::path::PathBuf;

use compose_shard::report::{junit_durations, merge_junit, GroupResult};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bare_suite_nested_suites_and_lying_totals_are_recounted() {
    let dir = tempfile::tempdir().unwrap();
    // Legacy pytest: bare <testsuite>, xunit1 attributes, a teardown error reported as a
    // second testcase of the same node id; the suite claims 99 tests.
    let legacy = write(
        &dir,
        "legacy.xml",
        r#"<?xml version="1.0" encoding="utf-8"?>
<testsuite errors="0" failures="0" name="pytest" skipped="0" tests="99" time="1.0">
<properties><property name="python" value="3.6"/></properties>
<testcase classname="tests.test_old" file="tests/test_old.py" line="3" name="test_a" time="0.25"/>
<testcase classname="tests.test_old" file="tests/test_old.py" line="7" name="test_b" time="0.5"/>
<testcase classname="tests.test_old" file="tests/test_old.py" line="7" name="test_b" time="0.125"><error message="test teardown failure">teardown boom</error></testcase>
</testsuite>"#,
    );
    // Another producer: nested suites, CDATA output, skipped without a message.
    let other = write(
        &dir,
        "other.xml",
        r#"<testsuites tests="1"><testsuite name="outer"><testsuite name="inner">
<testcase classname="pkg.mod.TestX" name="test_c" time="2"><system-out><![CDATA[raw <output> & more]]></system-out></testcase>
<testcase classname="pkg.mod.TestX" name="test_d"><skipped/></testcase>
</testsuite></testsuite></testsuites>"#,
    );
    let groups = vec![
        GroupResult {
            group: 1,
            groups: 2,
            junit: Some(legacy.clone()),
            ..Default::default()
        },
        GroupResult {
            group: 2,
            groups: 2,
            junit: Some(other),
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    let totals = merge_junit(&groups, None, &mut out).unwrap();
    assert_eq!(
        (
            totals.counts.tests,
            totals.counts.errors,
            totals.counts.skipped,
            totals.counts.passed,
        ),
        (5, 1, 1, 3)
    );
    assert_eq!(totals.per_group[0].counts.tests, 3);
    assert!((totals.counts.time - 2.875).abs() < 1e-9);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#"<testsuite name="pytest (group 1/2)" tests="3" failures="0" errors="1" skipped="0" time="0.875">"#), "{text}");
    assert!(
        text.contains(r#"<testsuite name="outer (group 2/2)""#),
        "{text}"
    );
    assert!(text.contains("<property name=\"python\" value=\"3.6\"/>"));
    assert!(text.contains("<![CDATA[raw <output> & more]]>"));
    assert_eq!(
        text.matches("<testsuite ").count(),
        2,
        "nested suites are flattened"
    );
    // Setup + call + teardown of test_b add up, as pytest-split stores them.
    let durations = junit_durations(&legacy).unwrap();
    assert_eq!(
        durations,
        vec![
            ("tests/test_old.py::test_a".to_string(), 0.25),
            ("tests/test_old.py::test_b".to_string(), 0.625)
        ]
    );
    let failed = &totals.failed_tests[0];
    assert_eq!(
        (failed.file.as_deref(), failed.line),
        (Some("tests/test_old.py"), Some(8))
    );
    assert_eq!(
        totals
            .durations
            .iter()
            .find(|(id, _)| id == "pkg/mod.py::TestX::test_c")
            .map(|d| d.1),
        Some(2.0)
    );
}
