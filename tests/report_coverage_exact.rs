//! Exactness proof for the Cobertura merge: a real package's test suite (tests/python/minicalc,
//! branch coverage on) is run with coverage.py in groups; `coverage combine` + `coverage xml`
//! of the groups' data files is the reference, and `merge_coverage` of the groups' XML reports
//! must equal it byte for byte, except the `timestamp` attribute. That compares every line's
//! hits, every branch line's condition-coverage and missing-branches, every count and rate at
//! class, package and root level, the sort order and the layout.

#[path = "report_support.rs"]
mod support;

use std::path::{Path, PathBuf};

use compose_shard::report::merge_coverage;
use support::{copy_tree, crate_root, run_python, without_timestamp};

const GROUPS: [&[&str]; 3] = [
    &[
        "tests/test_arith.py",
        "tests/test_text.py::TestDescribe::test_even",
    ],
    &[
        "tests/test_arith_more.py",
        "tests/test_text.py::test_first_word",
    ],
    &[
        "tests/test_shapes.py",
        "tests/test_text.py::TestDescribe::test_odd_big",
    ],
];

/// Run one group under coverage in `project`, leaving `.coverage.g<k>` and `g<k>.xml`.
fn run_group(project: &Path, k: usize) -> PathBuf {
    let data = format!(".coverage.g{k}");
    let mut args = vec![
        "-m",
        "coverage",
        "run",
        "--data-file",
        &data,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
    ];
    args.extend_from_slice(GROUPS[k - 1]);
    run_python(project, &args, false);
    let xml = format!("g{k}.xml");
    run_python(
        project,
        &["-m", "coverage", "xml", "--data-file", &data, "-o", &xml],
        false,
    );
    project.join(xml)
}

fn reference(project: &Path) -> String {
    run_python(
        project,
        &[
            "-m",
            "coverage",
            "combine",
            "--keep",
            "--data-file",
            ".coverage.all",
            ".coverage.g1",
            ".coverage.g2",
            ".coverage.g3",
        ],
        false,
    );
    run_python(
        project,
        &[
            "-m",
            "coverage",
            "xml",
            "--data-file",
            ".coverage.all",
            "-o",
            "reference.xml",
        ],
        false,
    );
    std::fs::read_to_string(project.join("reference.xml")).unwrap()
}

fn merged(inputs: &[PathBuf]) -> String {
    let mut out = Vec::new();
    merge_coverage(inputs, &mut out).expect("merge");
    String::from_utf8(out).unwrap()
}

#[test]
fn merge_equals_coverage_combine_then_xml() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("minicalc");
    copy_tree(&crate_root().join("tests/python/minicalc"), &project);
    let inputs: Vec<PathBuf> = (1..=3).map(|k| run_group(&project, k)).collect();
    let expected = reference(&project);
    // The groups really differ, or the test proves nothing.
    let g1 = std::fs::read_to_string(&inputs[0]).unwrap();
    assert_ne!(without_timestamp(&g1), without_timestamp(&expected));
    assert!(
        expected.contains("missing-branches"),
        "fixture must have partial branches"
    );
    assert_eq!(
        without_timestamp(&merged(&inputs)),
        without_timestamp(&expected)
    );
}

#[test]
fn merge_matches_reports_from_different_source_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let here = tmp.path().join("runner-a/minicalc");
    let there = tmp.path().join("runner-b/checkout/minicalc");
    copy_tree(&crate_root().join("tests/python/minicalc"), &here);
    copy_tree(&crate_root().join("tests/python/minicalc"), &there);
    let local: Vec<PathBuf> = (1..=3).map(|k| run_group(&here, k)).collect();
    let expected = reference(&here);
    let remote2 = run_group(&there, 2);
    let remote3 = run_group(&there, 3);
    let remote_text = std::fs::read_to_string(&remote2).unwrap();
    assert!(
        remote_text.contains("runner-b"),
        "the second runner's report has its own root"
    );
    let inputs = vec![local[0].clone(), remote2, remote3];
    assert_eq!(
        without_timestamp(&merged(&inputs)),
        without_timestamp(&expected)
    );
}

/// pycobertura, a real consumer, reads the merged report with the reference's totals.
#[test]
fn pycobertura_reads_the_merge_with_reference_totals() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("minicalc");
    copy_tree(&crate_root().join("tests/python/minicalc"), &project);
    let inputs: Vec<PathBuf> = (1..=3).map(|k| run_group(&project, k)).collect();
    reference(&project);
    std::fs::write(project.join("merged.xml"), merged(&inputs)).unwrap();
    let script = r#"
import sys
from pycobertura import Cobertura
for path in sys.argv[1:]:
    c = Cobertura(path)
    files = sorted(c.files())
    print(c.line_rate(), c.branch_rate(), c.total_statements(), c.total_misses(), len(files),
          [(f, c.line_rate(f), c.total_misses(f), c.missed_lines(f)) for f in files])
"#;
    let out = support::run_python(
        &project,
        &["-c", script, "reference.xml", "merged.xml"],
        false,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0].contains("arith.py"), "{out}");
}
