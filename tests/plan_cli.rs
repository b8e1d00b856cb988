//! `compose-shard plan` as users run it: the real binary, in a temporary project folder, for
//! each output format and each way of finding the durations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compose_shard::plan::Plan;

/// A temporary project folder with a test list from real pytest output.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let collected =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/collect/pytest9-q.txt");
        std::fs::copy(collected, dir.path().join("tests.txt")).unwrap();
        Project { dir }
    }

    fn write(&self, name: &str, text: &str) -> &Self {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn plan(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_compose-shard"))
            .arg("plan")
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    fn plan_json(&self, args: &[&str]) -> Plan {
        let mut all = vec!["--tests", "tests.txt", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.plan(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        Plan::from_json(&stdout(&out)).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

const SLOW_CLASS: &str = r#"{
    "tests/test_shapes.py::TestGroup::test_one": 30.0,
    "tests/test_shapes.py::TestGroup::test_two[1]": 30.0,
    "tests/test_shapes.py::test_plain": 2.0
}"#;

#[test]
fn json_lists_every_test_once_and_keeps_classes_together() {
    let project = Project::new();
    project.write(".test_durations", SLOW_CLASS);
    let plan = project.plan_json(&["--groups", "3"]);
    assert_eq!(plan.groups.len(), 3);
    assert_eq!(plan.total_tests(), 14);
    let with_class: Vec<usize> = plan
        .groups
        .iter()
        .filter(|g| g.tests.iter().any(|t| t.contains("::TestGroup::test_")))
        .map(|g| g.group)
        .collect();
    assert_eq!(with_class.len(), 1, "TestGroup split across groups");
    let g = plan.group(with_class[0]).unwrap();
    assert_eq!(
        g.tests
            .iter()
            .filter(|t| t.contains("::TestGroup::test_"))
            .count(),
        3
    );
    // Unrecorded tests count as the median of their file's recorded ones (2, 30, 30 -> 30),
    // the unicode file's as the median of all recorded (also 30): units of 90 (TestGroup),
    // 10 x 30 and 2 seconds. The best split of those into 3 groups has 150 s at most.
    assert_eq!(plan.estimated_seconds, 392.0);
    assert_eq!(plan.slowest_seconds(), 150.0);
    assert_eq!(plan.estimate.recorded_tests, 3);
    assert_eq!(plan.estimate.estimated_tests, 11);
}

#[test]
fn split_by_test_may_divide_a_class() {
    let project = Project::new();
    project.write(".test_durations", SLOW_CLASS);
    let plan = project.plan_json(&["--groups", "3", "--split-by", "test"]);
    let class_groups: std::collections::BTreeSet<usize> = plan
        .groups
        .iter()
        .filter(|g| g.tests.iter().any(|t| t.contains("::TestGroup::test_")))
        .map(|g| g.group)
        .collect();
    assert!(class_groups.len() > 1, "{class_groups:?}");
}

#[test]
fn text_shows_the_table_imbalance_and_empty_groups() {
    let project = Project::new();
    project.write("one.txt", "a.py::t1\na.py::t2\n");
    let out = project.plan(&[
        "--groups",
        "3",
        "--tests",
        "one.txt",
        "--split-by",
        "module",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["group", "tests", "units", "est.", "seconds"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["1", "2", "1", "2.0"]
    );
    assert!(
        lines[2].ends_with("(empty)") && lines[3].ends_with("(empty)"),
        "{text}"
    );
    assert!(text.contains("imbalance: 3.000"), "{text}");
    assert!(text.contains("empty groups: 2, 3"), "{text}");
    assert!(
        text.contains("2 of 2 tests have no recorded duration"),
        "{text}"
    );
}

#[test]
fn github_matrix_lists_the_groups_and_their_count() {
    let project = Project::new();
    let out = project.plan(&[
        "--groups",
        "4",
        "--tests",
        "tests.txt",
        "--format",
        "github-matrix",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"group\":[1,2,3,4],\"groups\":[4]}\n");
}

#[test]
fn same_inputs_give_byte_identical_json() {
    let project = Project::new();
    project.write(".test_durations", SLOW_CLASS);
    let args = ["--groups", "5", "--tests", "tests.txt", "--format", "json"];
    let first = project.plan(&args);
    let second = project.plan(&args);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn durations_come_from_pyproject_when_set_there() {
    let project = Project::new();
    project
        .write(
            "pyproject.toml",
            "[tool.compose-shard]\ndurations = \"ci/times.json\"\n",
        )
        .write("ci/times.json", SLOW_CLASS);
    let plan = project.plan_json(&["--groups", "2"]);
    assert_eq!(plan.estimate.recorded_tests, 3);
}

#[test]
fn a_missing_default_durations_file_means_everything_is_estimated() {
    let project = Project::new();
    let plan = project.plan_json(&["--groups", "2", "--split-by", "test"]);
    assert_eq!(plan.estimate.recorded_tests, 0);
    assert_eq!(plan.estimate.fallback_seconds, 1.0);
    assert_eq!(plan.estimated_seconds, 14.0);
    assert_eq!(plan.slowest_seconds(), 7.0);
}

#[test]
fn a_missing_named_durations_file_is_an_error() {
    let project = Project::new();
    let out = project.plan(&[
        "--groups",
        "2",
        "--tests",
        "tests.txt",
        "--durations",
        "nope.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--durations nope.json: no such file"), "{err}");
    assert!(err.contains("--store-durations"), "{err}");
}

#[test]
fn a_malformed_durations_file_is_reported_with_its_line() {
    let project = Project::new();
    project.write(
        "d.json",
        "{\n    \"a.py::t\": 1.0,\n    \"b.py::t\": \"slow\"\n}",
    );
    let out = project.plan(&[
        "--groups",
        "2",
        "--tests",
        "tests.txt",
        "--durations",
        "d.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("durations file d.json: line 3"), "{err}");
}

#[test]
fn tree_output_is_refused_with_the_file_and_line() {
    let project = Project::new();
    let tree =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/collect/pytest8-tree.txt");
    std::fs::copy(tree, project.path().join("tree.txt")).unwrap();
    let out = project.plan(&["--groups", "2", "--tests", "tree.txt"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("test list tree.txt: line "), "{err}");
    assert!(err.contains("pytest --collect-only -q"), "{err}");
}

#[test]
fn without_tests_file_collection_needs_a_compose_project() {
    // Without --tests, plan collects inside Docker, so it first loads the compose project;
    // an empty folder has none, which is a usage error naming what to pass.
    let project = Project::new();
    let out = project.plan(&["--groups", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no compose file found"), "{err}");
    assert!(err.contains("-f FILE"), "{err}");
}

#[test]
fn durations_from_junit_balance_the_plan_and_split_by_comes_from_pyproject() {
    // JUnit of an earlier run says the class is slow; pyproject asks to split by test, so
    // its two slow tests may land in different groups.
    let project = Project::new();
    project.write(
        "old-junit.xml",
        r#"<testsuites><testsuite name="pytest" tests="2">
<testcase classname="tests.test_shapes.TestGroup" name="test_one" file="tests/test_shapes.py" time="30.0"/>
<testcase classname="tests.test_shapes.TestGroup" name="test_two[1]" file="tests/test_shapes.py" time="30.0"/>
</testsuite></testsuites>"#,
    );
    project.write(
        "pyproject.toml",
        "[tool.compose-shard]\nsplit-by = \"test\"\n",
    );
    let plan = project.plan_json(&["--groups", "2", "--durations-from-junit", "old-junit.xml"]);
    let slow_groups: Vec<usize> = plan
        .groups
        .iter()
        .filter(|g| g.tests.iter().any(|t| t.contains("::TestGroup::test_")))
        .map(|g| g.group)
        .collect();
    assert_eq!(slow_groups, vec![1, 2], "the two 30 s tests share a group");
    assert_eq!(
        plan.estimate.recorded_tests, 2,
        "the JUnit timings were used"
    );
}
