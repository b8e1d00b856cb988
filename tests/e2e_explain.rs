//! End-to-end: `--retries` against the real engine on `compose-templates/failure-kinds`, a
//! suite with a flaky test (a seeded coin), two order-dependent ones (module state left by
//! an earlier test, a row left in the group's PostgreSQL) and a real bug. Each is classified,
//! the merged JUnit carries Surefire's retry elements (read back with junitparser and checked
//! against the schema's structure), the exit code is 1 for the real and order-dependent
//! failures only, `compose-shard bisect` names the polluter, and `--until` reproduces a
//! failure from the plan.

#[path = "report_support.rs"]
mod report_support;
#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

const COIN: &str = "tests/test_coin.py::test_coin_lands_heads";
const STATE: &str = "tests/test_state.py::TestMode::test_4_mode_is_modern";
const STATE_CULPRIT: &str = "tests/test_state.py::TestMode::test_2_switches_to_legacy";
const ROWS: &str = "tests/test_rows.py::TestLedger::test_4_ledger_starts_empty";
const ROWS_CULPRIT: &str = "tests/test_rows.py::TestLedger::test_2_records_a_payment";
const BUG: &str = "tests/test_bug.py::test_rounding";

/// The summary line of a failed test.
fn line_of<'a>(all: &'a str, id: &str) -> &'a str {
    all.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no summary line for {id}:\n{all}"))
}

/// Each testcase of the merged JUnit as junitparser reads it.
fn junit_cases(path: &std::path::Path) -> Vec<serde_json::Value> {
    let script = report_support::crate_root().join("tests/python/check_surefire_junit.py");
    let out = report_support::run_python(
        path.parent().unwrap(),
        &[script.to_str().unwrap(), path.to_str().unwrap()],
        false,
    );
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn case<'a>(cases: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    cases
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no testcase {name}"))
}

fn children(case: &serde_json::Value) -> Vec<String> {
    case["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

// Over 80 lines: one run and everything it must show, in the order a user reads it.
#[test]
fn retries_tell_flaky_order_dependent_and_real_failures_apart() {
    require_docker_and_images();
    let stack = stack_copy("failure-kinds");
    let out = stack.path().join("results");
    let output = wait_limited(
        spawn_run(
            stack.path(),
            &[
                "--groups",
                "2",
                "--retries",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(900),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let coin = line_of(&all, COIN);
    assert!(coin.contains("flaky: passed on retry 1"), "{coin}");
    let state = line_of(&all, STATE);
    assert!(
        state.contains(&format!(
            "order-dependent: passes alone, fails after {STATE_CULPRIT}"
        )),
        "{state}"
    );
    assert!(state.contains("compose-shard run --plan"), "{state}");
    let rows = line_of(&all, ROWS);
    assert!(
        rows.contains(&format!(
            "order-dependent: passes alone, fails after {ROWS_CULPRIT}"
        )),
        "{rows}"
    );
    let bug = line_of(&all, BUG);
    assert!(bug.contains("real: failed on 2 retries"), "{bug}");
    assert!(
        bug.contains(&format!("--until {BUG}")) && bug.contains("--plan"),
        "{bug}"
    );
    assert!(all.contains("1 flaky, 2 order-dependent, 1 real"), "{all}");

    let cases = junit_cases(&out.join("junit.xml"));
    let coin_case = case(&cases, "test_coin_lands_heads");
    assert_eq!(
        coin_case["outcome"], "passed",
        "a flaky test reads as passed"
    );
    assert_eq!(children(coin_case), ["flakyFailure", "system-err"]);
    let bug_case = case(&cases, "test_rounding");
    assert_eq!(bug_case["outcome"], "failure");
    assert_eq!(
        children(bug_case)
            .iter()
            .filter(|c| *c == "rerunFailure")
            .count(),
        2
    );
    let rows_case = case(&cases, "test_4_ledger_starts_empty");
    assert_eq!(
        rows_case["outcome"], "failure",
        "order-dependent still fails"
    );
    assert!(
        rows_case["system_err"]
            .as_str()
            .unwrap()
            .contains(ROWS_CULPRIT),
        "{rows_case}"
    );

    // The culprits' plan reproduces the failure with just them: one group, two tests.
    let plans: Vec<_> = std::fs::read_dir(out.join("bisect"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(plans.len(), 2, "{plans:?}");
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());

    // `bisect` on the saved plan names the polluter of the database test.
    let bisect = binary()
        .current_dir(stack.path())
        .args(["bisect", "--progress", "plain", "--out"])
        .arg(stack.path().join("bisect-results"))
        .arg("--plan")
        .arg(out.join("plan.json"))
        .arg(ROWS)
        .output()
        .unwrap();
    let said = text(&bisect);
    assert_eq!(bisect.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("culprit: {ROWS_CULPRIT}")), "{said}");
    assert!(
        said.contains("reproduce: compose-shard run --plan"),
        "{said}"
    );

    // The reproduce line of the real failure, as printed: group K up to the test.
    let plan = planned(&out.join("plan.json"));
    let (k, tests) = plan
        .iter()
        .find(|(_, t)| t.iter().any(|t| t == BUG))
        .unwrap();
    let again = run_to_end(
        stack.path(),
        &[
            "--plan",
            out.join("plan.json").to_str().unwrap(),
            "--only",
            &k.to_string(),
            "--until",
            BUG,
            "--out",
            stack.path().join("until").to_str().unwrap(),
        ],
    );
    let said = text(&again);
    assert_eq!(again.status.code(), Some(1), "{said}");
    let ran = ran_per_group(&stack.path().join("until"));
    let upto = tests.iter().position(|t| t == BUG).unwrap();
    assert_eq!(ran[k], tests[..=upto].to_vec(), "{said}");
}

#[test]
fn a_run_whose_only_failure_is_flaky_passes() {
    require_docker_and_images();
    let stack = stack_copy("failure-kinds");
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "1",
            "--retries",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--",
            "pytest",
            "tests/test_coin.py",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(line_of(&all, COIN).contains("flaky"), "{all}");
    assert!(all.contains("1 flaky, 0 order-dependent, 0 real"), "{all}");
    assert!(all.contains("result: passed"), "{all}");
}
