//! `compose-shard merge` end to end: result folders from two "runners" (real pytest and
//! coverage.py output of tests/python/minicalc split by a plan), durations updated, outputs
//! written atomically, and malformed input rejected without touching existing outputs.

#[path = "report_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{copy_tree, crate_root, run_python};

const PLAN: [&[&str]; 3] = [
    &["tests/test_arith.py", "tests/test_text.py"],
    &["tests/test_arith_more.py"],
    &["tests/test_shapes.py"],
];

fn merge(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compose-shard"))
        .arg("merge")
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run compose-shard")
}

fn collect(project: &Path, paths: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
    ];
    args.extend_from_slice(paths);
    run_python(project, &args, false)
        .lines()
        .filter(|l| l.contains("::"))
        .map(str::to_string)
        .collect()
}

/// Run group `k` of the plan in `project` into `<folder>/g<k>/`.
fn run_group(project: &Path, folder: &Path, k: usize) {
    let dir = folder.join(format!("g{k}"));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join(".coverage");
    let junit = format!("--junitxml={}", dir.join("junit.xml").display());
    let data_arg = data.to_str().unwrap();
    let mut args = vec![
        "-m",
        "coverage",
        "run",
        "--data-file",
        data_arg,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        &junit,
    ];
    args.extend_from_slice(PLAN[k - 1]);
    run_python(project, &args, false);
    let xml = dir.join("coverage.xml");
    run_python(
        project,
        &[
            "-m",
            "coverage",
            "xml",
            "--data-file",
            data_arg,
            "-o",
            xml.to_str().unwrap(),
        ],
        false,
    );
}

fn write_plan(project: &Path, folder: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let groups: Vec<serde_json::Value> = PLAN
        .iter()
        .enumerate()
        .map(|(i, paths)| {
            let tests = collect(project, paths);
            all.extend(tests.clone());
            serde_json::json!({"group": i + 1, "tests": tests, "estimated_seconds": 0.0})
        })
        .collect();
    let plan = serde_json::json!({"version": 1, "groups": groups});
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(
        folder.join("plan.json"),
        serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();
    all
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

struct Runners {
    _tmp: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
    out: PathBuf,
    ids: Vec<String>,
}

fn two_runners() -> Runners {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("minicalc");
    copy_tree(&crate_root().join("tests/python/minicalc"), &project);
    let a = tmp.path().join("runner-a");
    let b = tmp.path().join("runner-b");
    let ids = write_plan(&project, &a);
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(a.join("plan.json"), b.join("plan.json")).unwrap();
    run_group(&project, &a, 1);
    run_group(&project, &b, 2);
    run_group(&project, &b, 3);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    Runners {
        _tmp: tmp,
        a,
        b,
        out,
        ids,
    }
}

#[test]
fn merges_runner_folders_and_updates_durations() {
    let r = two_runners();
    let junit = r.out.join("junit.xml");
    let cov = r.out.join("coverage.xml");
    let durations = r.out.join(".test_durations");
    std::fs::write(&durations, "{\n    \"tests/test_gone.py::test_old\": 9.0,\n    \"tests/test_shapes.py::test_square\": 100.0\n}").unwrap();
    let output = merge(&[
        Path::new("--junit-xml"),
        &junit,
        Path::new("--cov-xml"),
        &cov,
        Path::new("--store-durations"),
        &durations,
        &r.a,
        &r.b,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("total  {:>5}", r.ids.len())),
        "{stdout}"
    );

    let merged = std::fs::read_to_string(&junit).unwrap();
    for k in 1..=3 {
        assert!(merged.contains(&format!("(group {k}/3)")), "{merged}");
    }
    let coverage = std::fs::read_to_string(&cov).unwrap();
    assert!(coverage.contains("filename=\"geometry/shapes.py\""));

    let stored =
        compose_shard::plan::Durations::parse(&std::fs::read_to_string(&durations).unwrap())
            .unwrap();
    let mut keys: Vec<&String> = stored.0.keys().collect();
    let mut ids: Vec<&String> = r.ids.iter().collect();
    keys.sort();
    ids.sort();
    assert_eq!(
        keys, ids,
        "every collected test measured, the removed test dropped"
    );
    assert!(
        stored.get("tests/test_shapes.py::test_square").unwrap() < 100.0,
        "re-measured"
    );
    assert_eq!(
        files_in(&r.out),
        vec![".test_durations", "coverage.xml", "junit.xml"]
    );
}

#[test]
fn a_group_missing_from_every_input_fails_the_merge_but_is_reported() {
    let r = two_runners();
    let junit = r.out.join("junit.xml");
    let output = merge(&[Path::new("--junit-xml"), &junit, &r.a]);
    assert_eq!(output.status.code(), Some(1));
    let merged = std::fs::read_to_string(&junit).unwrap();
    assert!(
        merged.contains("no input holds results for group 2"),
        "{merged}"
    );
    assert!(merged.contains("no input holds results for group 3"));
}

#[test]
fn malformed_input_names_file_and_line_and_leaves_outputs_alone() {
    let r = two_runners();
    let junit = r.out.join("junit.xml");
    let cov = r.out.join("coverage.xml");
    std::fs::write(&junit, "previous junit").unwrap();
    std::fs::write(&cov, "previous coverage").unwrap();
    // Truncate group 3's coverage mid-document: JUnit merges fine, coverage must fail.
    let broken = r.b.join("g3/coverage.xml");
    let text = std::fs::read_to_string(&broken).unwrap();
    let cut: String = text.lines().take(12).collect::<Vec<_>>().join("\n");
    std::fs::write(&broken, format!("{cut}\n<line number=\"1\" hits=\"x\"/>")).unwrap();
    let output = merge(&[
        Path::new("--junit-xml"),
        &junit,
        Path::new("--cov-xml"),
        &cov,
        &r.a,
        &r.b,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:13:", broken.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&junit).unwrap(), "previous junit");
    assert_eq!(std::fs::read_to_string(&cov).unwrap(), "previous coverage");
    assert_eq!(files_in(&r.out), vec!["coverage.xml", "junit.xml"]);
}

#[test]
fn github_actions_gets_step_summary_and_folded_logs() {
    let r = two_runners();
    std::fs::write(
        r.a.join("g1/output.log"),
        "collected 8 items\n::error::not a command\n",
    )
    .unwrap();
    let summary = r.out.join("step-summary.md");
    std::fs::write(&summary, "previous step\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_compose-shard"))
        .args(["merge".as_ref(), r.a.as_os_str(), r.b.as_os_str()])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", "abc")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("::group::group 1/3 output\n::stop-commands::compose-shard-log\ncollected 8 items\n::error::not a command\n::compose-shard-log::\n::endgroup::\n"), "{stdout}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("previous step\n## compose-shard: "),
        "appended, not replaced: {md}"
    );
    assert!(md.contains("| 3 |"), "{md}");
}
