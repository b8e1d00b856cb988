//! End-to-end: a run always ends, with its results, against the real engine. The pytest-redis
//! stack gets three more tests: one that leaves a non-daemon thread blocked for ever (Python
//! waits for it at exit), one that sleeps for an hour, and one that prints lines imitating
//! compose-shard's plugin under `-s`. With `--test-timeout` and `--exit-grace` the run ends
//! on its own: the sleeping test is an error with its stack, its group's other tests run in
//! the other group exactly once, the lingering thread is named with its stack, and the
//! forged lines change nothing.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

const EXTRA: &str = r###"import os
import threading
import time


def test_leaves_a_thread_behind():
    lock = threading.Lock()
    lock.acquire()
    threading.Thread(target=lock.acquire, name="stuck-worker").start()


def test_sleeps_for_an_hour():
    time.sleep(3600)


def test_prints_the_plugins_lines():
    print("##compose-shard## done failed 0.1 tests/test_leaderboard.py::test_top_is_sorted")
    print("##compose-shard## stopped maxfail")
    print("##compose-shard## next 9")
    print("##compose-shard:0123456789abcdef0123456789abcdef## finished 3")
"###;

/// `(classname, name)` of every testcase in a JUnit file, with how many times each appears.
fn testcases(xml: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for part in xml.split("<testcase ").skip(1) {
        let part = format!(" {part}");
        let attr = |name: &str| {
            part.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        *seen
            .entry(format!("{}::{}", attr("classname"), attr("name")))
            .or_default() += 1;
    }
    seen
}

// Over 80 lines: one run and everything it must show.
#[test]
fn hung_tests_lingering_threads_and_forged_lines_never_stop_a_run_from_ending() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    std::fs::write(stack.path().join("tests/test_zz_ends.py"), EXTRA).unwrap();
    let out = stack.path().join("results");
    let output = wait_limited(
        spawn_run(
            stack.path(),
            &[
                "--groups",
                "2",
                "--test-timeout",
                "15s",
                "--exit-grace",
                "5s",
                "--out",
                out.to_str().unwrap(),
                "--",
                "pytest",
                "-s",
            ],
        ),
        Duration::from_secs(600),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let hung = "tests/test_zz_ends.py::test_sleeps_for_an_hour";
    assert!(
        all.contains(&format!("{hung} ran longer than --test-timeout")),
        "{all}"
    );
    assert!(
        all.contains("1 non-daemon thread kept the test process alive past --exit-grace 5s"),
        "{all}"
    );
    assert!(all.contains("stuck-worker"), "the thread's stack: {all}");
    assert!(!all.contains("stopped taking tests"), "{all}");
    assert!(
        !all.contains("no test finished and nothing was printed"),
        "{all}"
    );

    // Every collected test once in the merged JUnit: the timed-out one as an error with
    // its stack, the rest of its group's work run by the other group, nothing else failed.
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let cases = testcases(&merged);
    let twice: Vec<_> = cases.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{twice:?}");
    let collected: usize = std::fs::read_to_string(out.join("g1/output.log"))
        .unwrap()
        .lines()
        .find_map(|l| plugin_args(l, "collected"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::process::Command::new("cp")
        .args(["-r", out.to_str().unwrap(), "/tmp/e2e_ends_out"])
        .status();
    assert_eq!(cases.len(), collected, "{cases:?}\n{all}");
    let hung_case = merged
        .split("<testcase ")
        .find(|c| c.contains("name=\"test_sleeps_for_an_hour\""))
        .unwrap();
    assert!(hung_case.contains("<error"), "{hung_case}");
    assert!(hung_case.contains("--test-timeout 15s"), "{hung_case}");
    assert!(
        hung_case.contains("time.sleep(3600)"),
        "its stack: {hung_case}"
    );
    let failed = merged.matches("<failure").count();
    let errors = merged.matches("<error").count();
    assert_eq!((failed, errors), (0, 1), "only the timed-out test: {all}");
    // The lingering thread's group keeps pytest's results and says why it was ended.
    assert!(
        merged.contains("<system-err>compose-shard: pytest had finished"),
        "{merged}"
    );
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}
